//! Beyond the account's TPS the protocol's throttle status comes back:
//! CMPP Result 8, SMGP Status 1 (system busy), SGIP Result 33.

mod common;
use common::*;
use smsgw_codecs::{cmpp, sgip, smgp};
use smsgw_simulators::ProtocolKind;

const TPS: u32 = 50;
const SENT: u32 = 120;

fn cfg(kind: ProtocolKind) -> smsgw_simulators::SimConfig {
    let mut c = config(kind);
    c.accounts[0].tps = Some(TPS);
    c
}

#[tokio::test]
async fn cmpp_throttle_result_8_beyond_tps() {
    let s = sim(cfg(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), cmpp::Version::V30).await;
    let mut all = bytes::BytesMut::new();
    for i in 0..SENT {
        c.framer
            .encode(
                i + 10,
                &cmpp_submit(cmpp::Version::V30, "13800138000", "x", false),
                &mut all,
            )
            .unwrap();
    }
    c.send_raw(&all).await;
    let (mut ok, mut throttled) = (0, 0);
    for _ in 0..SENT {
        match c.packet().await.pdu {
            cmpp::Pdu::SubmitResp(r) if r.result == cmpp::SubmitResult::OK => ok += 1,
            cmpp::Pdu::SubmitResp(r) if r.result == cmpp::SubmitResult::FLOW_CONTROL => {
                throttled += 1
            }
            other => panic!("{other:?}"),
        }
    }
    // The burst may straddle a one-second window boundary.
    assert!((TPS..=2 * TPS).contains(&ok), "ok = {ok}");
    assert_eq!(ok + throttled, SENT);
    assert_eq!(
        cmpp::SubmitResult(8).class(),
        smsgw_codecs::StatusClass::Throttled
    );
    let st = s.stats();
    assert_eq!(st.totals.throttled, throttled as u64);
    assert_eq!(st.accounts["901234"].throttled, throttled as u64);
}

#[tokio::test]
async fn smgp_throttle_status_beyond_tps() {
    let s = sim(cfg(ProtocolKind::Smgp)).await;
    let mut c = smgp_login(s.addr()).await;
    let mut all = bytes::BytesMut::new();
    for i in 0..SENT {
        c.framer
            .encode(i + 10, &smgp_submit("18900000001", "x", false), &mut all)
            .unwrap();
    }
    c.send_raw(&all).await;
    let (mut ok, mut throttled) = (0, 0);
    for _ in 0..SENT {
        match c.packet().await.pdu {
            smgp::Pdu::SubmitResp(r) if r.status == smgp::Status::OK => ok += 1,
            smgp::Pdu::SubmitResp(r) if r.status == smgp::Status::SYSTEM_BUSY => throttled += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!((TPS..=2 * TPS).contains(&ok), "ok = {ok}");
    assert_eq!(ok + throttled, SENT);
}

#[tokio::test]
async fn sgip_throttle_result_33_beyond_tps() {
    let s = sim(cfg(ProtocolKind::Sgip)).await;
    let mut c = sgip_login(s.addr()).await;
    let mut all = bytes::BytesMut::new();
    for i in 0..SENT {
        c.framer
            .encode(
                sgip_seq(i + 1),
                &sgip_submit("8613000000001", "x", false),
                &mut all,
            )
            .unwrap();
    }
    c.send_raw(&all).await;
    let (mut ok, mut throttled) = (0, 0);
    for _ in 0..SENT {
        match c.packet().await.pdu {
            sgip::Pdu::SubmitResp(r) if r.result == sgip::ResultCode::OK => ok += 1,
            sgip::Pdu::SubmitResp(r) if r.result == sgip::ResultCode::QUEUE_FULL => throttled += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!((TPS..=2 * TPS).contains(&ok), "ok = {ok}");
    assert_eq!(ok + throttled, SENT);
}

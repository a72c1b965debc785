//! 1,000 submits per protocol, every report correlated with its submit
//! response by message id; SGIP reports arrive on the SMG's own connection
//! to a listening SP.

mod common;
use common::*;
use smsgw_codecs::{cmpp, sgip, smgp, Inbound};
use smsgw_simulators::ProtocolKind;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::net::TcpListener;

const N: usize = 1000;

async fn cmpp_thousand(kind: ProtocolKind, v: cmpp::Version) {
    let s = sim(config(kind)).await;
    let mut c = cmpp_login(s.addr(), v).await;
    // Pipeline every submit, then read responses and reports together.
    let mut all = bytes::BytesMut::new();
    for i in 0..N {
        let pdu = cmpp_submit(v, &format!("138{:08}", i), &format!("msg {i}"), true);
        c.framer.encode(100 + i as u32, &pdu, &mut all).unwrap();
    }
    c.send_raw(&all).await;
    let mut ids: HashMap<u64, u32> = HashMap::new(); // msg id -> submit seq
    let mut reports: HashSet<u64> = HashSet::new();
    while ids.len() < N || reports.len() < N {
        let p = c.packet().await;
        match p.pdu {
            cmpp::Pdu::SubmitResp(r) => {
                assert_eq!(r.result, cmpp::SubmitResult::OK);
                assert_eq!(r.msg_id.gateway(), 1001, "ISMG code in Msg_Id");
                assert!((1..=12).contains(&r.msg_id.month()));
                assert!(ids.insert(r.msg_id.0, p.seq).is_none(), "duplicate Msg_Id");
            }
            cmpp::Pdu::Deliver(d) => {
                let rep = d.report(v).unwrap().expect("a status report");
                assert_eq!(rep.stat.as_bytes(), b"DELIVRD");
                assert!(reports.insert(rep.msg_id.0), "one report per submit");
                c.send(
                    p.seq,
                    &cmpp::Pdu::DeliverResp(cmpp::DeliverResp {
                        msg_id: d.msg_id,
                        result: cmpp::SubmitResult::OK,
                    }),
                )
                .await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let id_set: HashSet<u64> = ids.keys().copied().collect();
    assert_eq!(id_set, reports, "every report matches a submit response");
    let seqs: HashSet<u32> = ids.values().copied().collect();
    assert_eq!(seqs.len(), N);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let st = s.stats();
    assert_eq!(st.totals.submits_received, N as u64);
    assert_eq!(st.totals.reports_sent, N as u64);
    assert_eq!(st.totals.reports_acknowledged, N as u64);
    let rx = s.received();
    assert_eq!(rx.len(), N);
    assert_eq!(rx[7].text, "msg 7");
}

#[tokio::test]
async fn cmpp3_thousand_submits_reports_correlated() {
    cmpp_thousand(ProtocolKind::Cmpp3, cmpp::Version::V30).await;
}

#[tokio::test]
async fn cmpp2_thousand_submits_reports_correlated() {
    cmpp_thousand(ProtocolKind::Cmpp2, cmpp::Version::V20).await;
}

#[tokio::test]
async fn smgp_thousand_submits_reports_correlated() {
    let s = sim(config(ProtocolKind::Smgp)).await;
    let mut c = smgp_login(s.addr()).await;
    let mut all = bytes::BytesMut::new();
    for i in 0..N {
        c.framer
            .encode(
                100 + i as u32,
                &smgp_submit(&format!("189{:08}", i), "hello", true),
                &mut all,
            )
            .unwrap();
    }
    c.send_raw(&all).await;
    let mut ids = HashSet::new();
    let mut reports = HashSet::new();
    while ids.len() < N || reports.len() < N {
        let p = c.packet().await;
        match p.pdu {
            smgp::Pdu::SubmitResp(r) => {
                assert_eq!(r.status, smgp::Status::OK);
                assert!(r.msg_id.is_bcd(), "BCD MsgID");
                assert_eq!(r.msg_id.smgw_code(), 1001);
                assert!(ids.insert(r.msg_id));
            }
            smgp::Pdu::Deliver(d) => {
                assert_eq!(d.is_report, 1);
                let rep = d.report().expect("report");
                assert!(rep.is_delivered());
                assert!(reports.insert(rep.id));
                c.send(
                    p.seq,
                    &smgp::Pdu::DeliverResp(smgp::DeliverResp {
                        msg_id: d.msg_id,
                        status: smgp::Status::OK,
                    }),
                )
                .await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ids, reports);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.stats().totals.reports_acknowledged, N as u64);
}

#[tokio::test]
async fn smgp_send_only_login_gets_no_deliver() {
    let s = sim(config(ProtocolKind::Smgp)).await;
    let (mut tx, r) = smgp_connect(s.addr(), "10690001", "secret", smgp::LoginMode::SEND).await;
    assert_eq!(r.status, smgp::Status::OK);
    let (mut rx, r) = smgp_connect(s.addr(), "10690001", "secret", smgp::LoginMode::RECEIVE).await;
    assert_eq!(r.status, smgp::Status::OK);
    tx.send(9, &smgp_submit("18900000001", "x", true)).await;
    let resp = match tx.packet().await.pdu {
        smgp::Pdu::SubmitResp(r) => r,
        other => panic!("{other:?}"),
    };
    let p = rx.packet().await;
    match p.pdu {
        smgp::Pdu::Deliver(d) => assert_eq!(d.report().unwrap().id, resp.msg_id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        tx.recv_within(Duration::from_millis(200)).await,
        Recv::Timeout
    ));
}

/// The SP side of SGIP: accept the SMG's Bind (login type 2) and answer
/// every Report / Deliver.
async fn sgip_sp_server(
    listener: TcpListener,
    expect_name: &str,
    expect_pw: &str,
    tx: tokio::sync::mpsc::UnboundedSender<sgip::Pdu>,
) {
    let (stream, _) = listener.accept().await.unwrap();
    let mut c = Client::accepted(stream, sgip::Sgip);
    let p = c.packet().await;
    match &p.pdu {
        sgip::Pdu::Bind(b) => {
            assert_eq!(b.login_type, sgip::LoginType::SMG_TO_SP);
            assert!(b.verify(expect_name, expect_pw));
        }
        other => panic!("expected Bind, got {other:?}"),
    }
    c.send(p.seq, &sgip::Pdu::BindResp(sgip::Resp::ok())).await;
    loop {
        match c.recv_within(Duration::from_secs(10)).await {
            Recv::Item(Inbound::Packet(p)) => {
                let resp = match &p.pdu {
                    sgip::Pdu::Report(_) => sgip::Pdu::ReportResp(sgip::Resp::ok()),
                    sgip::Pdu::Deliver(_) => sgip::Pdu::DeliverResp(sgip::Resp::ok()),
                    _ => continue,
                };
                c.send(p.seq, &resp).await;
                if tx.send(p.pdu).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

#[tokio::test]
async fn sgip_thousand_submits_reports_arrive_on_sp_listener() {
    let sp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(ProtocolKind::Sgip);
    cfg.sgip.sp_addr = Some(sp.local_addr().unwrap());
    cfg.sgip.sp_login = Some(smsgw_simulators::SpLogin {
        name: "smg".into(),
        password: "smgpw".into(),
    });
    let (tx, mut reports_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(sgip_sp_server(sp, "smg", "smgpw", tx));
    let s = sim(cfg).await;
    let mut c = sgip_login(s.addr()).await;
    let mut all = bytes::BytesMut::new();
    for i in 0..N {
        c.framer
            .encode(
                sgip_seq(i as u32),
                &sgip_submit(&format!("86130{:08}", i), "hi", true),
                &mut all,
            )
            .unwrap();
    }
    c.send_raw(&all).await;
    let mut acked = HashSet::new();
    while acked.len() < N {
        let p = c.packet().await;
        match p.pdu {
            sgip::Pdu::SubmitResp(r) => {
                assert_eq!(r.result, sgip::ResultCode::OK);
                acked.insert(p.seq);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut reported = HashSet::new();
    while reported.len() < N {
        let pdu = tokio::time::timeout(Duration::from_secs(10), reports_rx.recv())
            .await
            .unwrap()
            .unwrap();
        match pdu {
            sgip::Pdu::Report(r) => {
                assert_eq!(r.state, sgip::ReportState::DELIVERED);
                assert_eq!(r.report_type, sgip::ReportType::SUBMIT);
                assert!(reported.insert(r.submit_sequence_number));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        acked, reported,
        "Report.SubmitSequenceNumber is the Submit's sequence"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let st = s.stats();
    assert_eq!(st.totals.sp_link_connects, 1);
    assert_eq!(st.totals.reports_acknowledged, N as u64);
}

#[tokio::test]
async fn cmpp_long_message_one_id_and_report_per_segment() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), cmpp::Version::V30).await;
    let cmpp::Pdu::Submit(template) = cmpp_submit(cmpp::Version::V30, "13800138000", "x", true)
    else {
        unreachable!()
    };
    let text: String = "长".repeat(150);
    let segs = cmpp::submits_for_text(
        &template,
        &text,
        smsgw_codecs::text::DataCoding::UCS2,
        smsgw_codecs::udh::ConcatRef::Eight(0x2a),
    )
    .unwrap();
    assert_eq!(segs.len(), 3);
    for (i, seg) in segs.into_iter().enumerate() {
        c.send(50 + i as u32, &cmpp::Pdu::Submit(seg)).await;
    }
    let mut ids = HashSet::new();
    let mut reports = HashSet::new();
    while ids.len() < 3 || reports.len() < 3 {
        let p = c.packet().await;
        match p.pdu {
            cmpp::Pdu::SubmitResp(r) => assert!(ids.insert(r.msg_id)),
            cmpp::Pdu::Deliver(d) => {
                assert!(reports.insert(d.report(cmpp::Version::V30).unwrap().unwrap().msg_id));
                c.send(
                    p.seq,
                    &cmpp::Pdu::DeliverResp(cmpp::DeliverResp {
                        msg_id: d.msg_id,
                        result: cmpp::SubmitResult::OK,
                    }),
                )
                .await;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids, reports);
    let rx = s.received();
    assert_eq!(
        rx.iter()
            .map(|m| (m.pk_total, m.pk_number))
            .collect::<Vec<_>>(),
        vec![(3, 1), (3, 2), (3, 3)]
    );
    assert_eq!(rx.iter().map(|m| m.text.as_str()).collect::<String>(), text);
}

#[tokio::test]
async fn cmpp_mass_submit_reports_per_recipient_with_id_range() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), cmpp::Version::V30).await;
    let cmpp::Pdu::Submit(mut sub) = cmpp_submit(cmpp::Version::V30, "13800000001", "mass", true)
    else {
        unreachable!()
    };
    sub.dest_terminal_ids
        .push(smsgw_codecs::wire::FixedStr::from_padded(b"13800000002"));
    sub.dest_terminal_ids
        .push(smsgw_codecs::wire::FixedStr::from_padded(b"13800000003"));
    c.send(7, &cmpp::Pdu::Submit(sub)).await;
    let first = match c.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => r.msg_id,
        other => panic!("{other:?}"),
    };
    let mut got = HashMap::new();
    for _ in 0..3 {
        let p = c.packet().await;
        let cmpp::Pdu::Deliver(d) = p.pdu else {
            panic!()
        };
        let r = d.report(cmpp::Version::V30).unwrap().unwrap();
        got.insert(r.msg_id, r.dest_terminal_id.to_str_lossy().into_owned());
    }
    for (i, dest) in ["13800000001", "13800000002", "13800000003"]
        .iter()
        .enumerate()
    {
        assert_eq!(got[&first.nth(i as u16)], *dest);
    }
}

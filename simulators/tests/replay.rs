//! Same seed, same traffic → same decisions (outcomes and faults).

mod common;
use common::*;
use smsgw_codecs::cmpp;
use smsgw_simulators::{ErrorInjection, Faults, ProtocolKind};
use std::collections::BTreeMap;
use std::time::Duration;

const V: cmpp::Version = cmpp::Version::V30;

/// (submit seq → result or None when dropped, stats in report order)
async fn run(seed: u64) -> (BTreeMap<u32, Option<u32>>, Vec<String>) {
    let mut cfg = config(ProtocolKind::Cmpp3);
    cfg.seed = Some(seed);
    cfg.reports.outcomes = [("DELIVRD", 0.5), ("UNDELIV", 0.3), ("EXPIRED", 0.2)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    cfg.faults = Faults {
        drop_response: 0.2,
        error: Some(ErrorInjection {
            code: 9,
            fraction: 0.2,
        }),
        ..Default::default()
    };
    let s = sim(cfg).await;
    let mut c = cmpp_login(s.addr(), V).await;
    let n = 200u32;
    let mut all = bytes::BytesMut::new();
    for i in 0..n {
        c.framer
            .encode(
                i + 1,
                &cmpp_submit(V, "13800138000", "replay", true),
                &mut all,
            )
            .unwrap();
    }
    c.send_raw(&all).await;
    let mut results: BTreeMap<u32, Option<u32>> = (1..=n).map(|i| (i, None)).collect();
    let mut stats = Vec::new();
    // Done when every submit is answered or known dropped, and every
    // accepted submit (status 0 in the received ring) has its report.
    let mut answered = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "replay run did not finish"
        );
        let st = s.stats().totals;
        let accepted = s.received().iter().filter(|m| m.status == 0).count();
        if st.submits_received == n as u64
            && answered + st.faults_dropped == n as u64
            && stats.len() == accepted
        {
            break;
        }
        match c.recv_within(Duration::from_millis(100)).await {
            Recv::Item(smsgw_codecs::Inbound::Packet(p)) => match p.pdu {
                cmpp::Pdu::SubmitResp(r) => {
                    answered += 1;
                    results.insert(p.seq, Some(r.result.0));
                }
                cmpp::Pdu::Deliver(d) => {
                    let rep = d.report(V).unwrap().unwrap();
                    stats.push(rep.stat.to_str_lossy().into_owned());
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
            },
            Recv::Timeout => continue,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.seed(), seed);
    (results, stats)
}

#[tokio::test]
async fn same_seed_replays_exactly() {
    let a = run(7).await;
    let b = run(7).await;
    assert_eq!(a, b);
    // The faults really fired and the outcomes really vary.
    assert!(a.0.values().any(|r| r.is_none()));
    assert!(a.0.values().any(|r| *r == Some(9)));
    assert!(a.1.iter().any(|s| s == "UNDELIV"));
    let c = run(8).await;
    assert_ne!(a, c);
}

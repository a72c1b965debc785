//! End to end through the binary: `smsgw send` → embedded queue → `smsgw
//! serve` → CMPP 3.0 over real TCP to a minimal in-test ISMG (built on the
//! codecs, 127.0.0.1:0) that writes each status report *before* the submit
//! response → reports correlated → `stats` / `msg show`.
#![cfg(feature = "sql")]

mod common;

use common::smsgw;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ismg::{self, Seen, SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_delivered_with_reports_before_responses() {
    let seen = Arc::new(Seen::default());
    let addr = ismg::start(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("e2e.db").display());
    smsgw(
        &store,
        &[
            "link",
            "add",
            "m1",
            "--protocol",
            "cmpp3",
            "--addr",
            &addr,
            "--account",
            "901234",
            "--secret",
            SECRET,
        ],
    );
    for i in 0..20 {
        let prio = ["otp", "notify", "marketing"][i % 3];
        smsgw(
            &store,
            &[
                "send",
                "--to",
                "13800138000",
                "--text",
                "hello",
                "--priority",
                prio,
                "--id",
                &format!("m{i}"),
            ],
        );
    }
    let long = "长".repeat(100); // 2 segments
    smsgw(
        &store,
        &[
            "send",
            "--to",
            "13900139000",
            "--text",
            &long,
            "--id",
            "long",
            "--biz",
            "billing",
        ],
    );

    let mut serve = Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(["serve", "--store", &store])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let s: serde_json::Value =
            serde_json::from_str(&smsgw(&store, &["stats", "--json"])).unwrap();
        if s["by_state"]["delivered"] == 21 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let pid = serve.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = serve.wait().unwrap();
    assert_eq!(stats["by_state"]["delivered"], 21, "{stats}");
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    assert_eq!(
        seen.submits.load(Ordering::SeqCst),
        22,
        "one submit per segment, none twice"
    );
    assert_eq!(stats["segments"], 22);
    assert_eq!(stats["by_link"]["m1"]["messages"], 21);
    assert_eq!(stats["by_biz"]["billing"]["segments"], 2);
    assert_eq!(stats["reports_unmatched"], 0);
    assert_eq!(stats["possible_duplicates"], 0);
    assert_eq!(seen.unanswered(), 0, "every report answered once stored");
    let h: serde_json::Value =
        serde_json::from_str(&smsgw(&store, &["msg", "show", "long", "--json"])).unwrap();
    let states: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["accepted", "submitted", "delivered"]);
    assert_eq!(h[2]["code"], "DELIVRD");
    assert_eq!(h[2]["link"], "m1");
}

/// The ISMG keeps a report until it is answered: not acked → sent again on
/// the same connection after its timeout and, after a reconnect, on the new
/// connection; acked once → answered and never sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_report_is_redelivered_until_acked() {
    use smsgw::session::{
        Credentials, Link, LinkConfig, LinkEvent, ProtocolKind, Segment, SubmitRequest,
    };
    let seen = Arc::new(Seen::default());
    let addr = ismg::start(seen.clone()).await;
    let cfg = LinkConfig::new(
        "m1",
        ProtocolKind::Cmpp3,
        &addr,
        Credentials {
            account: "901234".into(),
            secret: SECRET.into(),
            node_id: 0,
        },
    );
    async fn next_report(
        rx: &mut tokio::sync::mpsc::Receiver<LinkEvent>,
        within: Duration,
    ) -> Option<smsgw::session::Report> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(LinkEvent::Report(r))) => return Some(r),
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    }

    let (link, mut rx) = Link::start(cfg.clone()).await.unwrap();
    link.submit(SubmitRequest {
        token: 1,
        segment: Segment::single(
            "1065",
            "13800138000",
            "svc",
            0,
            bytes::Bytes::from_static(b"hi"),
        ),
    })
    .await
    .unwrap();
    let first = next_report(&mut rx, Duration::from_secs(5))
        .await
        .expect("report");
    // not acked: the same connection gets it again after the timeout
    let again = next_report(&mut rx, ismg::REPORT_RESEND * 3)
        .await
        .expect("report resent on the same connection");
    assert_eq!(again.carrier_id, first.carrier_id);
    assert_eq!(seen.unanswered(), 1);
    // the process "dies" before storing it: a new link (connection) gets it
    let drain = async { while rx.recv().await.is_some() {} };
    tokio::join!(link.shutdown(), drain);
    let resends = seen.report_resends.load(Ordering::SeqCst);
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let redelivered = next_report(&mut rx, Duration::from_secs(5))
        .await
        .expect("report redelivered on the next connection");
    assert_eq!(redelivered.carrier_id, first.carrier_id);
    assert!(seen.report_resends.load(Ordering::SeqCst) > resends);
    // stored this time: acked, answered, settled
    assert!(redelivered.ack.ack());
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.unanswered() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.unanswered(), 0, "answered");
    assert_eq!(seen.report_acks.load(Ordering::SeqCst), 1);
    // and not sent again
    assert!(
        next_report(&mut rx, ismg::REPORT_RESEND * 2)
            .await
            .is_none(),
        "an answered report is not resent"
    );
    assert_eq!(seen.reports.load(Ordering::SeqCst), 1);
    let drain = async { while rx.recv().await.is_some() {} };
    tokio::join!(link.shutdown(), drain);
}

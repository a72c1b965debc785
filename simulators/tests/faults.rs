//! Every fault mode, observed from the client side (CMPP 3.0 unless the
//! fault is protocol-specific), plus heartbeats, report retries and bad
//! input handling.

mod common;
use common::*;
use smsgw_codecs::{cmpp, FrameError, Inbound};
use smsgw_simulators::{
    CorruptKind, DelayRange, ErrorInjection, Faults, FragmentWrites, ProtocolKind,
};
use std::time::{Duration, Instant};

const V: cmpp::Version = cmpp::Version::V30;

fn submit(report: bool) -> cmpp::Pdu {
    cmpp_submit(V, "13800138000", "fault", report)
}

async fn with_faults(f: Faults) -> (smsgw_simulators::SimHandle, Client<cmpp::Cmpp>) {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    s.set_faults(f).unwrap();
    let c = cmpp_login(s.addr(), V).await;
    (s, c)
}

#[tokio::test]
async fn response_delay_does_not_block_the_reader() {
    let d = Duration::from_millis(150);
    let (s, mut c) = with_faults(Faults {
        response_delay: Some(DelayRange { min: d, max: d }),
        ..Default::default()
    })
    .await;
    let t0 = Instant::now();
    c.send(10, &submit(false)).await;
    c.send(11, &cmpp::Pdu::ActiveTest).await;
    // The heartbeat answer overtakes the delayed submit response.
    let first = c.packet().await;
    assert_eq!(first.seq, 11);
    assert!(matches!(first.pdu, cmpp::Pdu::ActiveTestResp(_)));
    let second = c.packet().await;
    assert_eq!(second.seq, 10);
    assert!(matches!(second.pdu, cmpp::Pdu::SubmitResp(_)));
    assert!(t0.elapsed() >= d);
    assert_eq!(s.stats().totals.faults_delayed, 1);
}

#[tokio::test]
async fn drop_response_fraction() {
    let (s, mut c) = with_faults(Faults {
        drop_response: 1.0,
        ..Default::default()
    })
    .await;
    c.send(10, &submit(false)).await;
    assert!(matches!(
        c.recv_within(Duration::from_millis(300)).await,
        Recv::Timeout
    ));
    assert_eq!(s.stats().totals.faults_dropped, 1);
    assert_eq!(s.stats().totals.submits_received, 1);
}

#[tokio::test]
async fn injected_error_code() {
    let (s, mut c) = with_faults(Faults {
        error: Some(ErrorInjection {
            code: 13,
            fraction: 1.0,
        }),
        ..Default::default()
    })
    .await;
    c.send(10, &submit(true)).await;
    match c.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => assert_eq!(r.result, cmpp::SubmitResult::BAD_DEST_TERMINAL_ID),
        other => panic!("{other:?}"),
    }
    // A refused submit gets no report.
    assert!(matches!(
        c.recv_within(Duration::from_millis(200)).await,
        Recv::Timeout
    ));
    assert_eq!(s.stats().totals.faults_error_code, 1);
}

#[tokio::test]
async fn disconnect_after_n_pdus() {
    // CONNECT counts: the connection closes after the 2nd submit.
    let (s, mut c) = with_faults(Faults {
        disconnect_after_pdus: Some(3),
        ..Default::default()
    })
    .await;
    c.send(10, &submit(false)).await;
    assert!(matches!(c.packet().await.pdu, cmpp::Pdu::SubmitResp(_)));
    c.send(11, &submit(false)).await;
    assert!(c.closed().await);
    assert_eq!(s.stats().totals.faults_disconnect, 1);
}

#[tokio::test]
async fn disconnect_every_t() {
    let (s, mut c) = with_faults(Faults {
        disconnect_every: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    let t0 = Instant::now();
    assert!(c.closed().await);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert_eq!(s.stats().totals.faults_disconnect, 1);
}

#[tokio::test]
async fn report_before_submit_response() {
    let (s, mut c) = with_faults(Faults {
        report_before_response: true,
        ..Default::default()
    })
    .await;
    c.send(10, &submit(true)).await;
    let first = c.packet().await;
    let report_id = match first.pdu {
        cmpp::Pdu::Deliver(d) => d.report(V).unwrap().unwrap().msg_id,
        other => panic!("expected the report first, got {other:?}"),
    };
    match c.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => assert_eq!(r.msg_id, report_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.stats().totals.faults_report_early, 1);
}

#[tokio::test]
async fn report_on_another_connection() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    s.set_faults(Faults {
        report_on_other_connection: true,
        ..Default::default()
    })
    .unwrap();
    let mut a = cmpp_login(s.addr(), V).await;
    let mut b = cmpp_login(s.addr(), V).await;
    a.send(10, &submit(true)).await;
    let id = match a.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => r.msg_id,
        other => panic!("{other:?}"),
    };
    match b.packet().await.pdu {
        cmpp::Pdu::Deliver(d) => assert_eq!(d.report(V).unwrap().unwrap().msg_id, id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.recv_within(Duration::from_millis(200)).await,
        Recv::Timeout
    ));
    assert_eq!(s.stats().totals.faults_report_other_conn, 1);
}

#[tokio::test]
async fn fragmented_and_sticky_writes() {
    let (s, mut c) = with_faults(Faults {
        fragment_writes: Some(FragmentWrites { max_chunk: 40 }),
        ..Default::default()
    })
    .await;
    let n = 100u32;
    let mut all = bytes::BytesMut::new();
    for i in 0..n {
        c.framer.encode(1000 + i, &submit(false), &mut all).unwrap();
    }
    c.send_raw(&all).await;
    for i in 0..n {
        let p = c.packet().await;
        assert_eq!(p.seq, 1000 + i);
        assert!(matches!(p.pdu, cmpp::Pdu::SubmitResp(r) if r.result == cmpp::SubmitResult::OK));
    }
    // 100 × 24-byte responses in chunks of at most 40 bytes: many reads,
    // frames split across them, and the client's framer reassembled them.
    assert!(c.reads > 20, "reads = {}", c.reads);
    assert!(s.stats().totals.faults_fragmented_writes > 0);
}

#[tokio::test]
async fn corrupt_frame_on_demand() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), V).await;
    assert_eq!(s.corrupt(Some("901234"), CorruptKind::Body), 1);
    match c.recv().await {
        Recv::Item(Inbound::Malformed { command_id, .. }) => assert_eq!(command_id, 5),
        other => panic!("expected a malformed DELIVER, got {other:?}"),
    }
    assert_eq!(s.corrupt(None, CorruptKind::Length), 1);
    assert!(matches!(
        c.recv().await,
        Recv::Framing(FrameError::FrameTooShort { .. })
    ));
    drop(c);
    while s.stats().totals.connections_open > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = cmpp_login(s.addr(), V).await;
    assert_eq!(s.corrupt(None, CorruptKind::Garbage), 1);
    assert!(matches!(
        c.recv().await,
        Recv::Framing(FrameError::FrameTooLarge { .. })
    ));
    assert_eq!(s.stats().totals.faults_corrupt_frames, 3);
}

#[tokio::test]
async fn unacknowledged_reports_are_retried_then_dropped() {
    let mut cfg = config(ProtocolKind::Cmpp3);
    cfg.reports.retry_after = Duration::from_millis(100);
    cfg.reports.max_attempts = 3;
    let s = sim(cfg).await;
    let mut c = cmpp_login(s.addr(), V).await;
    c.send(10, &submit(true)).await;
    let id = match c.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => r.msg_id,
        other => panic!("{other:?}"),
    };
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let p = c.packet().await;
        match p.pdu {
            cmpp::Pdu::Deliver(d) => assert_eq!(d.report(V).unwrap().unwrap().msg_id, id),
            other => panic!("{other:?}"),
        }
        seqs.push(p.seq);
    }
    assert!(matches!(
        c.recv_within(Duration::from_millis(300)).await,
        Recv::Timeout
    ));
    let st = s.stats().totals;
    assert_eq!(
        (
            st.reports_sent,
            st.reports_retried,
            st.reports_dropped,
            st.reports_acknowledged
        ),
        (3, 2, 1, 0)
    );
    seqs.dedup();
    assert_eq!(seqs.len(), 3, "each resend has its own sequence");
}

#[tokio::test]
async fn sends_active_test_when_idle_and_drops_silent_peer() {
    let mut cfg = config(ProtocolKind::Cmpp3);
    cfg.heartbeat.interval = Duration::from_millis(100);
    cfg.heartbeat.max_missed = 2;
    let s = sim(cfg).await;
    let mut c = cmpp_login(s.addr(), V).await;
    // Answer the first test: the connection stays.
    let p = c.packet().await;
    assert!(matches!(p.pdu, cmpp::Pdu::ActiveTest));
    c.send(p.seq, &cmpp::Pdu::ActiveTestResp(Default::default()))
        .await;
    // Then go silent: two unanswered tests, then the close.
    let t0 = Instant::now();
    assert!(matches!(c.packet().await.pdu, cmpp::Pdu::ActiveTest));
    assert!(matches!(c.packet().await.pdu, cmpp::Pdu::ActiveTest));
    assert!(c.closed().await);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert_eq!(s.stats().totals.heartbeat_timeouts, 1);
}

#[tokio::test]
async fn malformed_body_gets_error_status_and_connection_stays() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), V).await;
    // A SUBMIT with a 5-byte body.
    c.send_raw(&[0, 0, 0, 17, 0, 0, 0, 4, 0, 0, 0, 9, 1, 2, 3, 4, 5])
        .await;
    let p = c.packet().await;
    assert_eq!(p.seq, 9);
    match p.pdu {
        cmpp::Pdu::SubmitResp(r) => assert_eq!(r.result, cmpp::SubmitResult::BAD_STRUCTURE),
        other => panic!("{other:?}"),
    }
    c.send(10, &submit(false)).await;
    assert!(
        matches!(c.packet().await.pdu, cmpp::Pdu::SubmitResp(r) if r.result == cmpp::SubmitResult::OK)
    );
    assert_eq!(s.stats().totals.malformed, 1);
}

#[tokio::test]
async fn framing_error_closes_connection() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), V).await;
    // Declared length 4 GiB: rejected before anything is reserved.
    c.send_raw(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 4, 0, 0, 0, 1])
        .await;
    assert!(c.closed().await);
    let mut c = cmpp_login(s.addr(), V).await;
    c.send_raw(&[0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef]).await;
    assert!(c.closed().await);
    assert_eq!(s.stats().totals.framing_errors, 2);
}

#[tokio::test]
async fn faults_change_while_running() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), V).await;
    c.send(1, &submit(false)).await;
    assert!(
        matches!(c.packet().await.pdu, cmpp::Pdu::SubmitResp(r) if r.result == cmpp::SubmitResult::OK)
    );
    s.set_faults(Faults {
        error: Some(ErrorInjection {
            code: 99,
            fraction: 1.0,
        }),
        ..Default::default()
    })
    .unwrap();
    c.send(2, &submit(false)).await;
    assert!(matches!(c.packet().await.pdu, cmpp::Pdu::SubmitResp(r) if r.result.0 == 99));
    s.set_faults(Faults::default()).unwrap();
    c.send(3, &submit(false)).await;
    assert!(
        matches!(c.packet().await.pdu, cmpp::Pdu::SubmitResp(r) if r.result == cmpp::SubmitResult::OK)
    );
    assert!(s
        .set_faults(Faults {
            drop_response: 2.0,
            ..Default::default()
        })
        .is_err());
}

//! Session layer over real TCP against a minimal in-test CMPP 3.0 ISMG
//! built on the codecs' `Framer` (127.0.0.1:0). Timers are shortened to
//! milliseconds; every test is bounded in time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use smsgw::session::backoff::Backoff;
use smsgw::session::rate::RateConfig;
use smsgw::session::window::WindowConfig;
use smsgw::session::{
    CarrierMsgId, Credentials, DownReason, Link, LinkConfig, LinkEvent, LinkHandle, ProtocolKind,
    Segment, SubmitRequest,
};
use smsgw_codecs::cmpp::{
    ActiveTestResp, Cmpp, ConnectResp, ConnectStatus, Deliver, MsgId, Pdu, Report, SubmitResp,
    SubmitResult, Version,
};
use smsgw_codecs::wire::FixedStr;
use smsgw_codecs::{Framer, Inbound, Packet, StatusClass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const ACCOUNT: &str = "901234";
const SECRET: &str = "secret";

/// Fault knobs of the test ISMG.
#[derive(Clone, Default)]
struct PeerCfg {
    /// Answer CONNECT with status 3.
    refuse: bool,
    /// Never answer the first send of every Nth submit (counted per link).
    drop_first_of_every: u32,
    /// Answer the first K submits with Result 8 (flow control).
    throttle_first: u32,
    /// Close the connection after reading this many submits (first
    /// connection only).
    close_after: Option<u32>,
    /// Send a status report after each accepted submit.
    reports: bool,
    /// Don't answer ACTIVE_TEST.
    mute_active_test: bool,
    /// Send our own ACTIVE_TEST after login.
    probe_active_test: bool,
    /// After login, send a DELIVER whose body is truncated.
    malformed_deliver: bool,
    /// After this many submits (first connection), write a frame with a
    /// declared length below the header: a framing error.
    garbage_after: Option<u32>,
    /// Hold every batch of responses this long before writing it.
    respond_delay: Option<Duration>,
    /// Admit at most this many submits per 1 s window (per link), answer
    /// the rest with Result 8.
    tps_limit: Option<u32>,
}

#[derive(Default)]
struct PeerStats {
    connects: AtomicU32,
    submits: AtomicU32,
    active_tests: AtomicU32,
    active_test_resps: AtomicU32,
    terminates: AtomicU32,
    /// Result of the DELIVER_RESPs we got back.
    deliver_resp_results: Mutex<Vec<u32>>,
    /// Submit sequence → times seen.
    seen: Mutex<HashMap<u32, u32>>,
    /// Reads that carried at least one SUBMIT, and how many carried two or
    /// more (the client batched several frames into one write).
    submit_reads: AtomicU32,
    multi_submit_reads: AtomicU32,
    max_submits_per_read: AtomicU32,
    /// When each accepted / throttled submit was answered.
    accepted_at: Mutex<Vec<tokio::time::Instant>>,
    throttled_at: Mutex<Vec<tokio::time::Instant>>,
    /// Start of the current TPS window and submits admitted in it.
    tps_window: Mutex<Option<(tokio::time::Instant, u32)>>,
}

async fn start_peer(cfg: PeerCfg) -> (String, Arc<PeerStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stats = Arc::new(PeerStats::default());
    let st = stats.clone();
    tokio::spawn(async move {
        let mut conn_no = 0u32;
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            conn_no += 1;
            tokio::spawn(peer_conn(sock, cfg.clone(), st.clone(), conn_no));
        }
    });
    (addr, stats)
}

async fn peer_conn(mut sock: TcpStream, cfg: PeerCfg, st: Arc<PeerStats>, conn_no: u32) {
    let framer = Framer::new(Cmpp::new(Version::V30));
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::new();
    let mut seq = 1000u32;
    let mut submits_here = 0u32;
    loop {
        // Read as a carrier would: whatever is there, up to 64 KiB.
        rbuf.reserve(64 * 1024);
        match sock.read_buf(&mut rbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut submits_this_read = 0u32;
        while let Ok(Some(item)) = framer.decode(&mut rbuf) {
            let Inbound::Packet(Packet { seq: s, pdu }) = item else {
                continue;
            };
            match pdu {
                Pdu::Connect(c) => {
                    st.connects.fetch_add(1, Ordering::SeqCst);
                    let ok = !cfg.refuse && c.verify(SECRET.as_bytes());
                    let status = if ok {
                        ConnectStatus::OK
                    } else {
                        ConnectStatus::AUTH_FAILED
                    };
                    let resp = ConnectResp::new(
                        Version::V30,
                        status,
                        &c.authenticator_source,
                        SECRET.as_bytes(),
                        0x30,
                    );
                    framer
                        .encode(s, &Pdu::ConnectResp(resp), &mut wbuf)
                        .unwrap();
                    if !ok {
                        let _ = sock.write_all(&wbuf).await;
                        return;
                    }
                    if cfg.malformed_deliver {
                        seq += 1;
                        // Header for a DELIVER with a 5-byte body: far too short.
                        wbuf.extend_from_slice(&17u32.to_be_bytes());
                        wbuf.extend_from_slice(&5u32.to_be_bytes());
                        wbuf.extend_from_slice(&seq.to_be_bytes());
                        wbuf.extend_from_slice(&[1, 2, 3, 4, 5]);
                    }
                    if cfg.probe_active_test {
                        seq += 1;
                        framer.encode(seq, &Pdu::ActiveTest, &mut wbuf).unwrap();
                    }
                }
                Pdu::Submit(_) => {
                    submits_here += 1;
                    submits_this_read += 1;
                    let n = st.submits.fetch_add(1, Ordering::SeqCst) + 1;
                    let times = {
                        let mut seen = st.seen.lock().unwrap();
                        let e = seen.entry(s).or_default();
                        *e += 1;
                        *e
                    };
                    if conn_no == 1 && cfg.close_after.is_some_and(|k| submits_here >= k) {
                        let _ = sock.write_all(&wbuf).await;
                        return; // killed mid-stream, this submit unanswered
                    }
                    if conn_no == 1 && cfg.garbage_after.is_some_and(|k| submits_here >= k) {
                        wbuf.extend_from_slice(&[0, 0, 0, 3, 0xde, 0xad]);
                        let _ = sock.write_all(&wbuf).await;
                        // Keep the socket open: the client must close it.
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        return;
                    }
                    if cfg.drop_first_of_every > 0
                        && times == 1
                        && n.is_multiple_of(cfg.drop_first_of_every)
                    {
                        continue;
                    }
                    let over_limit = cfg.tps_limit.is_some_and(|limit| {
                        let now = tokio::time::Instant::now();
                        let mut w = st.tps_window.lock().unwrap();
                        let (start, count) = w.get_or_insert((now, 0));
                        if now.duration_since(*start) >= Duration::from_secs(1) {
                            *start = now;
                            *count = 0;
                        }
                        if *count < limit {
                            *count += 1;
                            false
                        } else {
                            true
                        }
                    });
                    let result = if n <= cfg.throttle_first || over_limit {
                        st.throttled_at
                            .lock()
                            .unwrap()
                            .push(tokio::time::Instant::now());
                        SubmitResult::FLOW_CONTROL
                    } else {
                        st.accepted_at
                            .lock()
                            .unwrap()
                            .push(tokio::time::Instant::now());
                        SubmitResult::OK
                    };
                    let msg_id = MsgId(0x1000_0000 + s as u64);
                    framer
                        .encode(
                            s,
                            &Pdu::SubmitResp(SubmitResp { msg_id, result }),
                            &mut wbuf,
                        )
                        .unwrap();
                    if cfg.reports && result == SubmitResult::OK {
                        let report = Report {
                            msg_id,
                            stat: FixedStr::new(b"DELIVRD").unwrap(),
                            submit_time: FixedStr::new(b"2612041507").unwrap(),
                            done_time: FixedStr::new(b"2612041508").unwrap(),
                            dest_terminal_id: FixedStr::new(b"13800138000").unwrap(),
                            smsc_sequence: 1,
                        };
                        let mut d = Deliver {
                            msg_id: MsgId(99),
                            ..Default::default()
                        };
                        d.set_report(&report, Version::V30).unwrap();
                        d.normalize(Version::V30);
                        seq += 1;
                        framer.encode(seq, &Pdu::Deliver(d), &mut wbuf).unwrap();
                    }
                }
                Pdu::ActiveTest => {
                    st.active_tests.fetch_add(1, Ordering::SeqCst);
                    if !cfg.mute_active_test {
                        framer
                            .encode(
                                s,
                                &Pdu::ActiveTestResp(ActiveTestResp::default()),
                                &mut wbuf,
                            )
                            .unwrap();
                    }
                }
                Pdu::DeliverResp(r) => {
                    st.deliver_resp_results.lock().unwrap().push(r.result.0);
                }
                Pdu::ActiveTestResp(_) => {
                    st.active_test_resps.fetch_add(1, Ordering::SeqCst);
                }
                Pdu::Terminate => {
                    st.terminates.fetch_add(1, Ordering::SeqCst);
                    framer.encode(s, &Pdu::TerminateResp, &mut wbuf).unwrap();
                    let _ = sock.write_all(&wbuf).await;
                    return;
                }
                _ => {}
            }
        }
        if submits_this_read > 0 {
            st.submit_reads.fetch_add(1, Ordering::SeqCst);
            if submits_this_read >= 2 {
                st.multi_submit_reads.fetch_add(1, Ordering::SeqCst);
            }
            st.max_submits_per_read
                .fetch_max(submits_this_read, Ordering::SeqCst);
        }
        if !wbuf.is_empty() {
            if let Some(d) = cfg.respond_delay {
                tokio::time::sleep(d).await;
            }
            if sock.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
    }
}

fn config(addr: &str) -> LinkConfig {
    let mut cfg = LinkConfig::new(
        "test",
        ProtocolKind::Cmpp3,
        addr,
        Credentials {
            account: ACCOUNT.into(),
            secret: SECRET.into(),
            node_id: 0,
        },
    );
    cfg.window = WindowConfig::try_new(16, Duration::from_millis(300), 3).unwrap();
    cfg.timers.connect_timeout = Duration::from_secs(2);
    cfg.timers.login_timeout = Duration::from_secs(2);
    cfg.timers.shutdown_grace = Duration::from_secs(1);
    cfg.reconnect = Backoff::try_new(
        Duration::from_millis(50),
        Duration::from_millis(400),
        2.0,
        0.2,
    )
    .unwrap();
    cfg
}

fn req(token: u64) -> SubmitRequest {
    SubmitRequest {
        token,
        segment: Segment::single(
            "1065",
            "13800138000",
            "svc",
            0,
            bytes::Bytes::from_static(b"hello"),
        ),
    }
}

/// Collects events until `done` says so or the deadline passes.
async fn collect(
    rx: &mut mpsc::Receiver<LinkEvent>,
    within: Duration,
    mut done: impl FnMut(&[LinkEvent]) -> bool,
) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while !done(&out) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => out.push(ev),
            _ => break,
        }
    }
    out
}

/// token → its single result; panics on a second result for one token.
fn results(evs: &[LinkEvent]) -> HashMap<u64, LinkEvent> {
    let mut out = HashMap::new();
    for ev in evs {
        if let Some(t) = ev.token() {
            assert!(
                out.insert(t, ev.clone()).is_none(),
                "token {t} got two results: {ev:?}"
            );
        }
    }
    out
}

async fn submit_all(link: &LinkHandle, n: u64) {
    for t in 0..n {
        link.submit(req(t)).await.unwrap();
    }
}

async fn shutdown_and_drain(
    link: LinkHandle,
    rx: &mut mpsc::Receiver<LinkEvent>,
    evs: &mut Vec<LinkEvent>,
) {
    let drain = async {
        while let Some(ev) = rx.recv().await {
            evs.push(ev);
        }
    };
    // Drain concurrently so a full event channel cannot block shutdown.
    let (_, ()) = tokio::join!(drain, async move { link.shutdown().await });
}

#[tokio::test]
async fn submits_are_accepted_and_reports_arrive() {
    let (addr, stats) = start_peer(PeerCfg {
        reports: true,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.connections = 2;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    submit_all(&link, 200).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| {
        results(e).len() == 200
            && e.iter()
                .filter(|e| matches!(e, LinkEvent::Report(_)))
                .count()
                == 200
    })
    .await;
    let res = results(&evs);
    assert_eq!(res.len(), 200);
    let mut ids = Vec::new();
    for (_, ev) in res {
        let LinkEvent::Accepted { carrier_id, .. } = ev else {
            panic!("{ev:?}")
        };
        ids.push(carrier_id);
    }
    let reports: Vec<CarrierMsgId> = evs
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Report(r) => Some(r.carrier_id),
            _ => None,
        })
        .collect();
    ids.sort();
    let mut r2 = reports.clone();
    r2.sort();
    assert_eq!(ids, r2, "every accepted id got its report");
    assert!(
        evs.iter()
            .filter(|e| matches!(e, LinkEvent::Up { .. }))
            .count()
            == 2
    );
    let mut rest = Vec::new();
    shutdown_and_drain(link, &mut rx, &mut rest).await;
    assert_eq!(
        stats.terminates.load(Ordering::SeqCst),
        2,
        "graceful terminate on both connections"
    );
    assert!(
        rest.iter().all(|e| e.token().is_none()),
        "nothing left over: {rest:?}"
    );
}

#[tokio::test]
async fn login_refused_backs_off_without_hot_loop() {
    let (addr, stats) = start_peer(PeerCfg {
        refuse: true,
        ..Default::default()
    })
    .await;
    let (link, mut rx) = Link::start(config(&addr)).await.unwrap();
    let evs = collect(&mut rx, Duration::from_millis(1200), |_| false).await;
    let downs: Vec<_> = evs
        .iter()
        .filter(|e| {
            matches!(
                e,
                LinkEvent::Down {
                    reason: DownReason::LoginRefused { code: 3, .. },
                    ..
                }
            )
        })
        .collect();
    assert!(!downs.is_empty(), "login refusal reported: {evs:?}");
    assert!(!evs.iter().any(|e| matches!(e, LinkEvent::Up { .. })));
    // 50, 100, 200, 400, 400 ms (minus up to 20 % jitter): at most ~6 in 1.2 s.
    let connects = stats.connects.load(Ordering::SeqCst);
    assert!((2..=7).contains(&connects), "connects {connects}");
    // A queued submit is not lost: it comes back Unsent on shutdown.
    link.submit(req(1)).await.unwrap();
    let mut rest = Vec::new();
    shutdown_and_drain(link, &mut rx, &mut rest).await;
    assert!(
        rest.iter()
            .any(|e| matches!(e, LinkEvent::Unsent { token: 1 })),
        "{rest:?}"
    );
}

/// A report's DELIVER_RESP goes out only when the consumer acks it (after
/// storing the report), once per report however often it is acked.
#[tokio::test]
async fn reports_are_answered_only_after_ack() {
    let (addr, stats) = start_peer(PeerCfg {
        reports: true,
        ..Default::default()
    })
    .await;
    let (link, mut rx) = Link::start(config(&addr)).await.unwrap();
    submit_all(&link, 3).await;
    let evs = collect(&mut rx, Duration::from_secs(5), |e| {
        results(e).len() == 3
            && e.iter()
                .filter(|e| matches!(e, LinkEvent::Report(_)))
                .count()
                == 3
    })
    .await;
    let acks: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Report(r) => Some(r.ack.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 3, "{evs:?}");
    let answered = || stats.deliver_resp_results.lock().unwrap().len();
    let settle = |want: usize| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while answered() < want && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // and nothing more follows
        tokio::time::sleep(Duration::from_millis(200)).await;
        answered()
    };
    assert_eq!(settle(0).await, 0, "no DELIVER_RESP before any ack");
    assert!(acks[0].ack());
    assert!(acks[1].ack());
    assert!(!acks[1].clone().ack(), "a report is answered once");
    assert_eq!(settle(2).await, 2, "one DELIVER_RESP per acked report");
    assert!(acks[2].ack());
    assert_eq!(settle(3).await, 3);
    assert_eq!(*stats.deliver_resp_results.lock().unwrap(), vec![0, 0, 0]);
    link.shutdown().await;
    // the connection is gone: a late ack is dropped quietly
    assert!(!acks[2].ack());
}

#[tokio::test]
async fn heartbeats_both_directions() {
    let (addr, stats) = start_peer(PeerCfg {
        probe_active_test: true,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.timers.heartbeat_idle = Duration::from_millis(100);
    cfg.timers.heartbeat_timeout = Duration::from_millis(200);
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let evs = collect(&mut rx, Duration::from_millis(700), |_| false).await;
    assert!(
        stats.active_tests.load(Ordering::SeqCst) >= 2,
        "we send ACTIVE_TEST when idle"
    );
    assert_eq!(
        stats.active_test_resps.load(Ordering::SeqCst),
        1,
        "we answer the peer's ACTIVE_TEST"
    );
    assert!(
        !evs.iter().any(|e| matches!(e, LinkEvent::Down { .. })),
        "{evs:?}"
    );
    link.shutdown().await;
}

#[tokio::test]
async fn unanswered_heartbeats_drop_the_connection() {
    let (addr, stats) = start_peer(PeerCfg {
        mute_active_test: true,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.timers.heartbeat_idle = Duration::from_millis(50);
    cfg.timers.heartbeat_timeout = Duration::from_millis(50);
    cfg.timers.heartbeat_max_missed = 3;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let evs = collect(&mut rx, Duration::from_secs(3), |e| {
        e.iter().any(|e| {
            matches!(
                e,
                LinkEvent::Down {
                    reason: DownReason::HeartbeatMissed,
                    ..
                }
            )
        })
    })
    .await;
    assert!(evs.iter().any(|e| matches!(
        e,
        LinkEvent::Down {
            reason: DownReason::HeartbeatMissed,
            ..
        }
    )));
    assert!(stats.active_tests.load(Ordering::SeqCst) >= 3);
    link.shutdown().await;
}

#[tokio::test]
async fn peer_killed_mid_stream_loses_nothing() {
    let (addr, stats) = start_peer(PeerCfg {
        close_after: Some(30),
        ..Default::default()
    })
    .await;
    let (link, mut rx) = Link::start(config(&addr)).await.unwrap();
    submit_all(&link, 100).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| {
        results(e).len() == 100
    })
    .await;
    let res = results(&evs);
    assert_eq!(res.len(), 100, "every submit has exactly one result");
    let unknown = res
        .values()
        .filter(|e| matches!(e, LinkEvent::Unknown { .. }))
        .count();
    let accepted = res
        .values()
        .filter(|e| matches!(e, LinkEvent::Accepted { .. }))
        .count();
    assert_eq!(unknown + accepted, 100, "{res:?}");
    assert!(
        unknown >= 1,
        "the in-flight window at the kill is unknown-outcome"
    );
    assert!(unknown <= 16, "never more than the window: {unknown}");
    assert!(
        evs.iter()
            .filter(|e| matches!(e, LinkEvent::Up { .. }))
            .count()
            >= 2,
        "reconnected"
    );
    assert!(stats.connects.load(Ordering::SeqCst) >= 2);
    link.shutdown().await;
}

#[tokio::test]
async fn dropped_responses_are_resent_and_settle() {
    let (addr, stats) = start_peer(PeerCfg {
        drop_first_of_every: 5,
        ..Default::default()
    })
    .await;
    let (link, mut rx) = Link::start(config(&addr)).await.unwrap();
    submit_all(&link, 50).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| results(e).len() == 50).await;
    let res = results(&evs);
    assert_eq!(res.len(), 50);
    assert!(
        res.values()
            .all(|e| matches!(e, LinkEvent::Accepted { .. })),
        "{res:?}"
    );
    let resent = stats
        .seen
        .lock()
        .unwrap()
        .values()
        .filter(|&&n| n >= 2)
        .count();
    assert!(
        resent >= 5,
        "resends happened under the same sequence: {resent}"
    );
    link.shutdown().await;
}

#[tokio::test]
async fn window_timeout_gives_up_after_n_sends() {
    // Every submit's first send is dropped and N=1: all time out, none lost.
    let (addr, _stats) = start_peer(PeerCfg {
        drop_first_of_every: 1,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.window = WindowConfig::try_new(4, Duration::from_millis(100), 1).unwrap();
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    submit_all(&link, 10).await;
    let evs = collect(&mut rx, Duration::from_secs(5), |e| results(e).len() == 10).await;
    let res = results(&evs);
    assert_eq!(res.len(), 10);
    assert!(
        res.values()
            .all(|e| matches!(e, LinkEvent::TimedOut { .. })),
        "{res:?}"
    );
    link.shutdown().await;
}

fn count_throttled(res: &HashMap<u64, LinkEvent>) -> usize {
    res.values()
        .filter(|e| {
            matches!(
                e,
                LinkEvent::Rejected {
                    code: 8,
                    class: StatusClass::Throttled,
                    ..
                }
            )
        })
        .count()
}

fn count_accepted(res: &HashMap<u64, LinkEvent>) -> usize {
    res.values()
        .filter(|e| matches!(e, LinkEvent::Accepted { .. }))
        .count()
}

#[tokio::test]
async fn throttled_submits_are_resent_after_the_rate_is_cut() {
    let (addr, stats) = start_peer(PeerCfg {
        throttle_first: 20,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.rate = RateConfig::capped(500.0).unwrap();
    cfg.throttle.delay = Duration::from_millis(20);
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    submit_all(&link, 60).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| results(e).len() == 60).await;
    let res = results(&evs);
    assert_eq!(res.len(), 60);
    assert_eq!(count_throttled(&res), 0, "{res:?}");
    assert_eq!(count_accepted(&res), 60, "every throttled submit resent");
    // 20 throttled sends plus 60 accepted ones.
    assert_eq!(stats.submits.load(Ordering::SeqCst), 80);
    let tps = link.current_tps().unwrap();
    assert!(tps < 500.0, "rate was cut: {tps}");
    link.shutdown().await;
}

#[tokio::test]
async fn throttle_resends_are_bounded_then_rejected() {
    let (addr, stats) = start_peer(PeerCfg {
        throttle_first: u32::MAX,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.rate = RateConfig::capped(500.0).unwrap();
    cfg.throttle.max_resends = 2;
    cfg.throttle.delay = Duration::from_millis(10);
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    submit_all(&link, 5).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| results(e).len() == 5).await;
    let res = results(&evs);
    assert_eq!(count_throttled(&res), 5, "{res:?}");
    // Sent 1 + 2 resends each.
    assert_eq!(stats.submits.load(Ordering::SeqCst), 15);
    link.shutdown().await;
}

#[tokio::test]
async fn no_throttle_resends_when_disabled() {
    let (addr, _stats) = start_peer(PeerCfg {
        throttle_first: 20,
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.rate = RateConfig::capped(500.0).unwrap();
    cfg.throttle.max_resends = 0;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    submit_all(&link, 60).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| results(e).len() == 60).await;
    let res = results(&evs);
    assert_eq!(count_throttled(&res), 20);
    assert_eq!(count_accepted(&res), 40);
    link.shutdown().await;
}

/// A carrier admitting 100 submits/s against our cap of 400 over two
/// connections: every message ends Accepted, and once the rate has adapted
/// the accepted rate stays at the carrier's limit with few throttles.
#[tokio::test]
async fn carrier_tps_limit_rate_converges_and_nothing_is_lost() {
    let limit = 100u32;
    let (addr, stats) = start_peer(PeerCfg {
        tps_limit: Some(limit),
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.connections = 2;
    cfg.window = WindowConfig::try_new(16, Duration::from_secs(2), 3).unwrap();
    cfg.rate = RateConfig::capped(400.0).unwrap();
    cfg.throttle.max_resends = 50;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let n = 600u64;
    let started = tokio::time::Instant::now();
    let producer = {
        let sub = link.submitter();
        tokio::spawn(async move {
            for t in 0..n {
                sub.submit(req(t)).await.unwrap();
            }
        })
    };
    let evs = collect(&mut rx, Duration::from_secs(30), |e| {
        results(e).len() == n as usize
    })
    .await;
    producer.await.unwrap();
    let res = results(&evs);
    assert_eq!(res.len(), n as usize, "every message has a result");
    assert_eq!(count_accepted(&res), n as usize, "{res:?}");
    let sends = stats.submits.load(Ordering::SeqCst) as u64;
    let throttles = sends - n;
    // Second half of the run: the accepted rate is at the limit (a little
    // over is possible across the peer's window boundaries) and throttles
    // are rare.
    let at = stats.accepted_at.lock().unwrap().clone();
    let total = at.last().unwrap().duration_since(started);
    let half = started + total / 2;
    let late = at.iter().filter(|t| **t >= half).count();
    let late_throttles = stats
        .throttled_at
        .lock()
        .unwrap()
        .iter()
        .filter(|t| **t >= half)
        .count();
    let late_secs = (total / 2).as_secs_f64();
    let late_tps = late as f64 / late_secs;
    let tps_now = link.current_tps().unwrap();
    eprintln!(
        "limit {limit}/s: {n} accepted in {:.2} s with {throttles} throttles ({late_throttles} in the second half); late {late_tps:.1}/s; adaptive rate {tps_now:.1}",
        total.as_secs_f64()
    );
    assert!(late_tps <= limit as f64 * 1.25, "late tps {late_tps}");
    assert!(
        late_tps >= limit as f64 * 0.5,
        "late tps {late_tps} too low"
    );
    assert!(tps_now < 400.0, "the adaptive rate came down: {tps_now}");
    assert!(
        (late_throttles as f64) < 0.25 * late as f64,
        "second half: {late_throttles} throttles vs {late} accepted"
    );
    link.shutdown().await;
}

/// With a window of 64 and a full queue, several SUBMIT frames leave in one
/// write: the peer sees reads carrying two or more, and the link's own
/// counters show more frames than write syscalls.
#[tokio::test]
async fn submits_are_batched_into_few_writes() {
    let (addr, stats) = start_peer(PeerCfg {
        respond_delay: Some(Duration::from_millis(5)),
        ..Default::default()
    })
    .await;
    let mut cfg = config(&addr);
    cfg.window = WindowConfig::try_new(64, Duration::from_secs(2), 3).unwrap();
    cfg.queue_capacity = 1024;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    // Queue everything before the login completes.
    let n = 1000u64;
    for t in 0..n {
        link.try_submit(req(t)).unwrap();
    }
    let evs = collect(&mut rx, Duration::from_secs(20), |e| {
        results(e).len() == n as usize
    })
    .await;
    let res = results(&evs);
    assert_eq!(count_accepted(&res), n as usize);
    let reads = stats.submit_reads.load(Ordering::SeqCst);
    let multi = stats.multi_submit_reads.load(Ordering::SeqCst);
    let max = stats.max_submits_per_read.load(Ordering::SeqCst);
    let (writes, frames) = link.io_stats();
    eprintln!("peer: {reads} reads with submits, {multi} with >= 2, max {max}; client: {frames} frames in {writes} writes");
    assert!(multi >= 1 && max >= 2, "no read carried two submits");
    assert!(reads < n as u32, "{reads} reads for {n} submits");
    assert!(frames >= n, "{frames} frames");
    assert!(writes * 2 <= frames, "{frames} frames in {writes} writes");
    link.shutdown().await;
}

#[tokio::test]
async fn malformed_deliver_is_answered_and_the_session_continues() {
    let (addr, stats) = start_peer(PeerCfg {
        malformed_deliver: true,
        ..Default::default()
    })
    .await;
    let (link, mut rx) = Link::start(config(&addr)).await.unwrap();
    submit_all(&link, 5).await;
    let evs = collect(&mut rx, Duration::from_secs(5), |e| results(e).len() == 5).await;
    assert!(results(&evs)
        .values()
        .all(|e| matches!(e, LinkEvent::Accepted { .. })));
    assert_eq!(
        *stats.deliver_resp_results.lock().unwrap(),
        vec![1],
        "answered with Result 1 (bad structure)"
    );
    assert!(
        !evs.iter().any(|e| matches!(e, LinkEvent::Down { .. })),
        "{evs:?}"
    );
    link.shutdown().await;
}

#[tokio::test]
async fn framing_error_closes_and_in_flight_becomes_unknown() {
    let (addr, _stats) = start_peer(PeerCfg {
        garbage_after: Some(10),
        ..Default::default()
    })
    .await;
    let (link, mut rx) = Link::start(config(&addr)).await.unwrap();
    submit_all(&link, 40).await;
    let evs = collect(&mut rx, Duration::from_secs(10), |e| results(e).len() == 40).await;
    let res = results(&evs);
    assert_eq!(res.len(), 40);
    assert!(
        evs.iter().any(|e| matches!(
            e,
            LinkEvent::Down {
                reason: DownReason::Framing(_),
                ..
            }
        )),
        "{evs:?}"
    );
    assert!(res.values().any(|e| matches!(e, LinkEvent::Unknown { .. })));
    assert!(res
        .values()
        .all(|e| matches!(e, LinkEvent::Unknown { .. } | LinkEvent::Accepted { .. })));
    link.shutdown().await;
}

#[tokio::test]
async fn bench_reports_throughput_latency_and_reports() {
    let (addr, _stats) = start_peer(PeerCfg {
        reports: true,
        ..Default::default()
    })
    .await;
    let args = smsgw::session::BenchArgs {
        protocol: ProtocolKind::Cmpp3,
        target: addr,
        account: ACCOUNT.into(),
        secret: SECRET.into(),
        messages: 300,
        connections: 2,
        window: 16,
        tps: 0,
        text: "bench".into(),
        reports: true,
        json: true,
        ..Default::default()
    };
    let report = smsgw::session::run_bench(args).await.unwrap();
    assert_eq!(report.segments, 300);
    assert_eq!(report.accepted, 300, "{report:?}");
    assert_eq!(report.errors, 0);
    assert_eq!(report.reports, 300);
    assert!(report.writes > 0 && report.frames_out >= 300, "{report:?}");
    assert!(report.msgs_per_s > 0.0 && report.p50_ms > 0.0 && report.p99_ms >= report.p50_ms);
    let shown = report.to_string();
    let last = shown.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in ["messages", "msgs_per_s", "p50_ms", "p99_ms", "errors"] {
        assert!(v.get(key).is_some(), "json has {key}: {last}");
    }
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_then_terminates() {
    // The peer sleeps before each batch of responses, serially, so the
    // window timeout and the grace must cover all batches.
    let cfg = PeerCfg {
        respond_delay: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let (addr, stats) = start_peer(cfg).await;
    let mut link_cfg = config(&addr);
    link_cfg.window = WindowConfig::try_new(16, Duration::from_secs(10), 3).unwrap();
    link_cfg.timers.shutdown_grace = Duration::from_secs(5);
    let (link, mut rx) = Link::start(link_cfg).await.unwrap();
    // Wait for the login so the submits go out on a live session.
    collect(&mut rx, Duration::from_secs(3), |e| {
        e.iter().any(|e| matches!(e, LinkEvent::Up { .. }))
    })
    .await;
    submit_all(&link, 10).await;
    let t = tokio::time::Instant::now();
    while stats.submits.load(Ordering::SeqCst) < 10 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        stats.submits.load(Ordering::SeqCst),
        10,
        "all ten on the wire before shutdown"
    );
    let mut evs = Vec::new();
    shutdown_and_drain(link, &mut rx, &mut evs).await;
    let res = results(&evs);
    assert_eq!(res.len(), 10);
    assert!(
        res.values()
            .all(|e| matches!(e, LinkEvent::Accepted { .. })),
        "settled before terminate: {res:?}"
    );
    assert_eq!(stats.terminates.load(Ordering::SeqCst), 1);
}

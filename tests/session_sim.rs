//! The session layer against the real simulators (`smsgw_simulators`) over
//! loopback TCP: restart, dropped responses, throttling, fragmented writes,
//! SGIP reports on the SP-side server, heartbeats, refused logins. Timers
//! are shortened; each test takes a few seconds at most.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smsgw::session::backoff::Backoff;
use smsgw::session::rate::RateConfig;
use smsgw::session::window::WindowConfig;
use smsgw::session::{
    Credentials, DownReason, Link, LinkConfig, LinkEvent, LinkHandle, ProtocolKind, Segment,
    SgipServerConfig, SubmitRequest,
};
use smsgw_simulators as sim;
use smsgw_simulators::{AccountConfig, Faults, FragmentWrites, SimConfig, SimHandle, SpLogin};
use tokio::sync::mpsc;

const ACCOUNT: &str = "901234";
const SECRET: &str = "secret";

fn sim_config(protocol: sim::ProtocolKind, listen: SocketAddr) -> SimConfig {
    let mut cfg = SimConfig::new(protocol, listen).account(AccountConfig::new(ACCOUNT, SECRET));
    cfg.seed = Some(7);
    cfg.reports.delay = Duration::from_millis(10);
    cfg
}

async fn start_sim(cfg: SimConfig) -> SimHandle {
    sim::start(cfg).await.expect("simulator starts")
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn link_config(protocol: ProtocolKind, addr: SocketAddr) -> LinkConfig {
    let mut cfg = LinkConfig::new(
        "sim",
        protocol,
        &addr.to_string(),
        Credentials {
            account: ACCOUNT.into(),
            secret: SECRET.into(),
            node_id: 3_000_000_001,
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

fn req(token: u64, need_report: bool) -> SubmitRequest {
    let mut segment = Segment::single(
        ACCOUNT,
        "13800138000",
        "svc",
        0,
        bytes::Bytes::from_static(b"hello from the session tests"),
    );
    segment.need_report = need_report;
    SubmitRequest { token, segment }
}

/// Submits `n` segments from a task of its own (the queue applies
/// backpressure; the test keeps draining events meanwhile).
fn produce(link: &LinkHandle, n: u64, need_report: bool) -> tokio::task::JoinHandle<()> {
    let sub = link.submitter();
    tokio::spawn(async move {
        for t in 0..n {
            if sub.submit(req(t, need_report)).await.is_err() {
                return;
            }
        }
    })
}

/// Events with the instant each arrived.
type Timed = Vec<(Instant, LinkEvent)>;

/// Collects events until `done` says so or the deadline passes.
async fn collect(
    rx: &mut mpsc::Receiver<LinkEvent>,
    within: Duration,
    mut done: impl FnMut(&Timed) -> bool,
) -> Timed {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while !done(&out) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                // Play a consumer that stores reports at once: answer them.
                if let LinkEvent::Report(r) = &ev {
                    r.ack.ack();
                }
                out.push((Instant::now(), ev))
            }
            _ => break,
        }
    }
    out
}

/// A `collect` predicate: true once `n` per-submit results have arrived
/// (counts only the events new since its last call).
fn settled(n: u64) -> impl FnMut(&Timed) -> bool {
    let (mut seen, mut results) = (0usize, 0u64);
    move |evs: &Timed| {
        results += evs[seen..]
            .iter()
            .filter(|(_, e)| e.token().is_some())
            .count() as u64;
        seen = evs.len();
        results >= n
    }
}

/// Like [`settled`], for `n` status reports.
fn reports_in(n: u64) -> impl FnMut(&Timed) -> bool {
    let (mut seen, mut reports) = (0usize, 0u64);
    move |evs: &Timed| {
        reports += evs[seen..]
            .iter()
            .filter(|(_, e)| matches!(e, LinkEvent::Report(_)))
            .count() as u64;
        seen = evs.len();
        reports >= n
    }
}

/// token → its single result; panics on a second result for one token.
fn results(evs: &Timed) -> HashMap<u64, LinkEvent> {
    let mut out = HashMap::new();
    for (_, ev) in evs {
        if let Some(t) = ev.token() {
            assert!(
                out.insert(t, ev.clone()).is_none(),
                "token {t} got two results: {ev:?}"
            );
        }
    }
    out
}

fn count(evs: &Timed, f: impl Fn(&LinkEvent) -> bool) -> usize {
    evs.iter().filter(|(_, e)| f(e)).count()
}

fn is_accepted(e: &LinkEvent) -> bool {
    matches!(e, LinkEvent::Accepted { .. })
}

/// Shuts the link down while draining its events (a full event channel
/// must not block the shutdown); returns what came out.
async fn shutdown_and_drain(
    link: LinkHandle,
    rx: &mut mpsc::Receiver<LinkEvent>,
) -> Vec<LinkEvent> {
    let mut evs = Vec::new();
    let drain = async {
        while let Some(ev) = rx.recv().await {
            evs.push(ev);
        }
    };
    let (_, ()) = tokio::join!(drain, async move { link.shutdown().await });
    evs
}

/// The simulator's counters once `ok` holds, or after 3 s.
async fn sim_stats_until(
    sim: &SimHandle,
    ok: impl Fn(&sim::CountersSnapshot) -> bool,
) -> sim::CountersSnapshot {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let st = sim.stats().totals;
        if ok(&st) || Instant::now() >= deadline {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sim_killed_and_restarted_on_the_same_port_loses_nothing() {
    let sim1 = start_sim(sim_config(sim::ProtocolKind::Cmpp3, any_port())).await;
    let addr = sim1.addr();
    // Slow responses a little so the window is full when the sim dies.
    let faults = Faults {
        response_delay: Some(sim::DelayRange {
            min: Duration::from_millis(1),
            max: Duration::from_millis(3),
        }),
        ..Default::default()
    };
    sim1.set_faults(faults.clone()).unwrap();
    let mut cfg = link_config(ProtocolKind::Cmpp3, addr);
    cfg.connections = 2;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let n = 3000u64;
    let t0 = Instant::now();
    let producer = produce(&link, n, false);

    // Let part of the stream through, then kill the simulator.
    let mut evs = collect(&mut rx, Duration::from_secs(10), |e| {
        count(e, is_accepted) >= 500
    })
    .await;
    assert!(
        count(&evs, is_accepted) >= 500,
        "stream started: {}",
        evs.len()
    );
    eprintln!(
        "restart: {} accepted after {:?}",
        count(&evs, is_accepted),
        t0.elapsed()
    );
    sim1.shutdown().await;
    eprintln!("restart: first simulator down after {:?}", t0.elapsed());
    // Both connections notice.
    evs.extend(
        collect(&mut rx, Duration::from_secs(5), |e| {
            count(e, |e| matches!(e, LinkEvent::Down { .. })) >= 2
        })
        .await,
    );
    let downs = count(&evs, |e| matches!(e, LinkEvent::Down { .. }));
    assert!(downs >= 2, "both connections went down: {downs}");
    // Down for a few backoff rounds, then back on the same port.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sim2 = start_sim(sim_config(sim::ProtocolKind::Cmpp3, addr)).await;
    assert_eq!(sim2.addr(), addr);
    eprintln!("restart: second simulator up after {:?}", t0.elapsed());

    // `collect` sees only what it collects: count the results so far.
    let so_far = evs.iter().filter(|(_, e)| e.token().is_some()).count() as u64;
    evs.extend(collect(&mut rx, Duration::from_secs(10), settled(n - so_far)).await);
    producer.await.unwrap();
    eprintln!("restart: all results after {:?}", t0.elapsed());
    let res = results(&evs);
    assert_eq!(res.len() as u64, n, "every submit has exactly one result");
    let accepted = res.values().filter(|e| is_accepted(e)).count();
    let unknown = res
        .values()
        .filter(|e| matches!(e, LinkEvent::Unknown { .. }))
        .count();
    assert_eq!(
        accepted + unknown,
        n as usize,
        "only accepted or unknown-outcome: {:?}",
        res.values()
            .filter(|e| !is_accepted(e) && !matches!(e, LinkEvent::Unknown { .. }))
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(
        unknown <= 2 * 16,
        "at most the windows in flight: {unknown}"
    );
    let ups = count(&evs, |e| matches!(e, LinkEvent::Up { .. }));
    assert!(
        ups >= 3,
        "two logins, then at least one again after the restart (the other may still be in backoff when the last result arrives): {ups}"
    );
    // What the second simulator accepted is what we saw accepted after it
    // started (plus at most the unknowns it may have answered too late).
    let after = sim2.stats().totals.submit_responses_sent;
    let mut lat: Vec<Duration> = evs
        .iter()
        .filter_map(|(_, e)| match e {
            LinkEvent::Accepted { latency, .. } => Some(*latency),
            _ => None,
        })
        .collect();
    lat.sort();
    eprintln!(
        "restart: second sim {:?}; latency p50 {:?} max {:?}",
        sim2.stats().totals,
        lat[lat.len() / 2],
        lat.last()
    );
    assert!(after > 0, "the restarted simulator took traffic");
    eprintln!("restart: {accepted} accepted, {unknown} unknown, {downs} downs, {ups} ups, {after} accepted by the second sim");
    let rest = shutdown_and_drain(link, &mut rx).await;
    assert!(rest.iter().all(|e| e.token().is_none()), "{rest:?}");
    sim2.shutdown().await;
}

#[tokio::test]
async fn dropped_responses_are_resent_until_answered() {
    let mut scfg = sim_config(sim::ProtocolKind::Cmpp3, any_port());
    scfg.faults.drop_response = 0.2;
    let sim = start_sim(scfg).await;
    let mut cfg = link_config(ProtocolKind::Cmpp3, sim.addr());
    // 0.2^6: practically every message is answered within 6 sends.
    cfg.window = WindowConfig::try_new(16, Duration::from_millis(200), 6).unwrap();
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let n = 200u64;
    let producer = produce(&link, n, false);
    let evs = collect(&mut rx, Duration::from_secs(15), settled(n)).await;
    producer.await.unwrap();
    let res = results(&evs);
    assert_eq!(res.len() as u64, n, "every submit has a result");
    let accepted = res.values().filter(|e| is_accepted(e)).count();
    let timed_out = res
        .values()
        .filter(|e| matches!(e, LinkEvent::TimedOut { .. }))
        .count();
    assert_eq!(accepted + timed_out, n as usize, "{res:?}");
    assert!(accepted as u64 >= n - 1, "accepted {accepted} of {n}");
    let st = sim.stats().totals;
    assert!(st.faults_dropped > 0, "the fault fired: {st:?}");
    assert!(
        st.submits_received >= n + st.faults_dropped - timed_out as u64,
        "every dropped response was followed by a resend: {st:?}"
    );
    assert_eq!(
        count(&evs, |e| matches!(e, LinkEvent::Down { .. })),
        0,
        "no reconnect needed"
    );
    link.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn simulator_tps_limit_rate_converges_and_nothing_is_lost() {
    let limit = 100u32;
    let mut scfg = sim::SimConfig::new(sim::ProtocolKind::Cmpp3, any_port())
        .account(AccountConfig::new(ACCOUNT, SECRET).with_tps(limit));
    scfg.seed = Some(7);
    let sim = start_sim(scfg).await;
    let mut cfg = link_config(ProtocolKind::Cmpp3, sim.addr());
    cfg.connections = 2;
    cfg.window = WindowConfig::try_new(16, Duration::from_secs(2), 3).unwrap();
    cfg.rate = RateConfig::capped(400.0).unwrap();
    cfg.throttle.max_resends = 50;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let n = 400u64;
    let started = Instant::now();
    let producer = produce(&link, n, false);
    let evs = collect(&mut rx, Duration::from_secs(30), settled(n)).await;
    producer.await.unwrap();
    let res = results(&evs);
    assert_eq!(res.len() as u64, n, "every message has a result");
    assert_eq!(
        res.values().filter(|e| is_accepted(e)).count() as u64,
        n,
        "all accepted in the end: {:?}",
        res.values()
            .filter(|e| !is_accepted(e))
            .take(5)
            .collect::<Vec<_>>()
    );
    let st = sim.stats().totals;
    assert!(st.throttled > 0, "the simulator throttled: {st:?}");
    // Second half of the run: accepted at about the limit.
    let at: Vec<Instant> = evs
        .iter()
        .filter(|(_, e)| is_accepted(e))
        .map(|(t, _)| *t)
        .collect();
    let total = at.last().unwrap().duration_since(started);
    let half = started + total / 2;
    let late = at.iter().filter(|t| **t >= half).count();
    let late_tps = late as f64 / (total / 2).as_secs_f64();
    let tps_now = link.current_tps().unwrap();
    eprintln!(
        "limit {limit}/s: {n} accepted in {:.2} s, {} throttled; late {late_tps:.1}/s; adaptive rate {tps_now:.1}",
        total.as_secs_f64(),
        st.throttled
    );
    // The simulator counts per calendar second: a little over is possible
    // across second boundaries.
    assert!(late_tps <= limit as f64 * 1.3, "late tps {late_tps}");
    assert!(late_tps >= limit as f64 * 0.5, "late tps {late_tps}");
    assert!(tps_now < 400.0, "the adaptive rate came down: {tps_now}");
    link.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn fragmented_writes_still_decode_results_and_reports() {
    let mut scfg = sim_config(sim::ProtocolKind::Cmpp3, any_port());
    scfg.faults.fragment_writes = Some(FragmentWrites { max_chunk: 7 });
    let sim = start_sim(scfg).await;
    let (link, mut rx) = Link::start(link_config(ProtocolKind::Cmpp3, sim.addr()))
        .await
        .unwrap();
    let n = 300u64;
    let producer = produce(&link, n, true);
    let (mut all, mut reports) = (settled(n), reports_in(n));
    let evs = collect(&mut rx, Duration::from_secs(15), |e| all(e) && reports(e)).await;
    producer.await.unwrap();
    let res = results(&evs);
    assert_eq!(res.len() as u64, n);
    assert!(res.values().all(is_accepted), "{res:?}");
    assert_eq!(
        count(&evs, |e| matches!(e, LinkEvent::Report(_))) as u64,
        n,
        "every report decoded from the fragments"
    );
    assert_eq!(count(&evs, |e| matches!(e, LinkEvent::Down { .. })), 0);
    let st = sim_stats_until(&sim, |st| st.reports_acknowledged >= n).await;
    assert!(st.faults_fragmented_writes > 0, "{st:?}");
    assert_eq!(st.reports_acknowledged, n, "we acked every report: {st:?}");
    link.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn sgip_reports_arrive_on_the_sp_side_server() {
    // The link's SP-side server must be where the SMG connects: pick a port,
    // free it, give it to both.
    let sp_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut scfg = sim_config(sim::ProtocolKind::Sgip, any_port());
    scfg.sgip.sp_addr = Some(sp_addr);
    scfg.sgip.sp_login = Some(SpLogin {
        name: "smg".into(),
        password: "smgpw".into(),
    });
    let sim = start_sim(scfg).await;
    let mut cfg = link_config(ProtocolKind::Sgip, sim.addr());
    cfg.sgip_server = Some(SgipServerConfig {
        listen: sp_addr,
        account: "smg".into(),
        secret: "smgpw".into(),
    });
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    assert_eq!(link.sgip_server_addr(), Some(sp_addr));
    let n = 100u64;
    let producer = produce(&link, n, true);
    let (mut all, mut reports) = (settled(n), reports_in(n));
    let evs = collect(&mut rx, Duration::from_secs(15), |e| all(e) && reports(e)).await;
    producer.await.unwrap();
    let res = results(&evs);
    assert_eq!(res.len() as u64, n);
    let mut ids: Vec<_> = res
        .values()
        .map(|e| match e {
            LinkEvent::Accepted { carrier_id, .. } => *carrier_id,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut reported: Vec<_> = evs
        .iter()
        .filter_map(|(_, e)| match e {
            LinkEvent::Report(r) => Some(r.carrier_id),
            _ => None,
        })
        .collect();
    ids.sort();
    reported.sort();
    assert_eq!(ids, reported, "each accepted submit got its report");
    // Our Report_Resp may still be on its way when the last event is out.
    let st = sim_stats_until(&sim, |st| st.reports_acknowledged >= n).await;
    assert!(st.sp_link_connects >= 1, "{st:?}");
    assert_eq!(
        st.reports_acknowledged, n,
        "we answered every report: {st:?}"
    );
    link.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeats_both_directions() {
    // (a) We test an idle connection: the simulator's own test is far off.
    let mut quiet = sim_config(sim::ProtocolKind::Cmpp3, any_port());
    quiet.heartbeat.interval = Duration::from_secs(30);
    let quiet = start_sim(quiet).await;
    let mut cfg = link_config(ProtocolKind::Cmpp3, quiet.addr());
    cfg.timers.heartbeat_idle = Duration::from_millis(100);
    cfg.timers.heartbeat_timeout = Duration::from_millis(300);
    let (ours, mut ours_rx) = Link::start(cfg).await.unwrap();

    // (b) The simulator tests us every 100 ms and drops us after 2 misses;
    // our own idle test is far off.
    let mut chatty = sim_config(sim::ProtocolKind::Cmpp3, any_port());
    chatty.heartbeat.interval = Duration::from_millis(100);
    chatty.heartbeat.max_missed = 2;
    let chatty = start_sim(chatty).await;
    let mut cfg = link_config(ProtocolKind::Cmpp3, chatty.addr());
    cfg.timers.heartbeat_idle = Duration::from_secs(30);
    let (theirs, mut theirs_rx) = Link::start(cfg).await.unwrap();

    let (a, b) = tokio::join!(
        collect(&mut ours_rx, Duration::from_millis(900), |_| false),
        collect(&mut theirs_rx, Duration::from_millis(900), |_| false),
    );
    let q = quiet.stats().totals;
    assert!(
        q.active_tests_received >= 3,
        "we sent ACTIVE_TEST when idle: {q:?}"
    );
    assert_eq!(q.heartbeat_timeouts, 0);
    let c = chatty.stats().totals;
    assert!(c.active_tests_sent >= 4, "the simulator tested us: {c:?}");
    assert_eq!(c.heartbeat_timeouts, 0, "we answered every test: {c:?}");
    for evs in [&a, &b] {
        assert_eq!(count(evs, |e| matches!(e, LinkEvent::Up { .. })), 1);
        assert_eq!(
            count(evs, |e| matches!(e, LinkEvent::Down { .. })),
            0,
            "{evs:?}"
        );
    }
    ours.shutdown().await;
    theirs.shutdown().await;
    quiet.shutdown().await;
    chatty.shutdown().await;
}

#[tokio::test]
async fn refused_login_backs_off_without_a_hot_loop() {
    let sim = start_sim(sim_config(sim::ProtocolKind::Cmpp3, any_port())).await;
    let mut cfg = link_config(ProtocolKind::Cmpp3, sim.addr());
    cfg.creds.secret = "wrong".into();
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let evs = collect(&mut rx, Duration::from_millis(1500), |_| false).await;
    let refused = count(&evs, |e| {
        matches!(
            e,
            LinkEvent::Down {
                reason: DownReason::LoginRefused { .. },
                ..
            }
        )
    });
    assert!(refused >= 2, "refusals reported and retried: {evs:?}");
    assert_eq!(count(&evs, |e| matches!(e, LinkEvent::Up { .. })), 0);
    // Backoff 50, 100, 200, 400, 400 ms (±20 %): at most ~7 tries in 1.5 s.
    let st = sim.stats().totals;
    assert!(
        (2..=8).contains(&st.logins_refused),
        "login attempts in 1.5 s: {st:?}"
    );
    // A queued submit is not lost: it comes back Unsent on shutdown.
    link.submit(req(1, false)).await.unwrap();
    let rest = shutdown_and_drain(link, &mut rx).await;
    assert!(
        rest.iter()
            .any(|e| matches!(e, LinkEvent::Unsent { token: 1 })),
        "{rest:?}"
    );
    sim.shutdown().await;
}

/// An urgent submit (otp) overtakes a backlog queued on the link: with the
/// link's rate capped at 100/s and 60 normal submits queued, the urgent one
/// is taken by the connection next, not after the backlog.
#[tokio::test]
async fn urgent_submits_overtake_the_queue() {
    let sim = start_sim(sim_config(sim::ProtocolKind::Cmpp3, any_port())).await;
    let mut cfg = link_config(ProtocolKind::Cmpp3, sim.addr());
    cfg.rate = RateConfig::capped(100.0).unwrap();
    cfg.queue_capacity = 256;
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let up = collect(&mut rx, Duration::from_secs(5), |evs| {
        evs.iter().any(|(_, e)| matches!(e, LinkEvent::Up { .. }))
    })
    .await;
    assert!(!up.is_empty(), "link never came up");
    for t in 1..=60 {
        link.submit(req(t, false)).await.unwrap();
    }
    link.submitter()
        .submit_urgent(req(1000, false))
        .await
        .unwrap();
    let evs = collect(&mut rx, Duration::from_secs(5), |evs| {
        evs.iter().any(|(_, e)| e.token() == Some(1000))
    })
    .await;
    let results: Vec<u64> = evs.iter().filter_map(|(_, e)| e.token()).collect();
    let pos = results
        .iter()
        .position(|&t| t == 1000)
        .expect("the urgent submit got a result");
    // at most what the window already held plus one rate tick
    assert!(pos <= 20, "urgent result came {pos}th: {results:?}");
    assert!(
        link.queued() >= 30,
        "the backlog was still queued: {}",
        link.queued()
    );
    link.shutdown().await;
    sim.shutdown().await;
}

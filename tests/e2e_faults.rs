//! `smsgw serve` (embedded queue, SQLite) against the CMPP 3.0 simulator on
//! its bad days: every report written *before* the submit response and on
//! the *other* connection of the account, and a per-account TPS limit the
//! link's own rate exceeds (throttle results). Every message must still be
//! delivered exactly once on the carrier side, with reports correlated.
#![cfg(feature = "sql")]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use smsgw_simulators::{start, AccountConfig, DelayRange, Faults, ProtocolKind, SimConfig};

const SIM_TPS: u32 = 150;

fn smsgw(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsgw"))
        .args(args)
        .env("SMSGW_STORE", store)
        .env("SMSGW_LINK_SECRET", "secret")
        .output()
        .expect("run smsgw")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_early_on_other_connection_and_throttling_lose_nothing() {
    let mut cfg = SimConfig::new(ProtocolKind::Cmpp3, "127.0.0.1:0".parse().unwrap())
        .account(AccountConfig::new("901234", "secret").with_tps(SIM_TPS));
    cfg.faults = Faults {
        report_before_response: true,
        report_on_other_connection: true,
        ..Faults::default()
    };
    let sim = start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/f.db", dir.path().display());
    let addr = sim.addr().to_string();

    let store2 = store.clone();
    let (stats, log) = tokio::task::spawn_blocking(move || {
        let add = smsgw(
            &store2,
            &[
                "link",
                "add",
                "cmcc",
                "--protocol",
                "cmpp3",
                "--addr",
                &addr,
                "--account",
                "901234",
                "--connections",
                "2",
                "--window",
                "16",
                "--tps",
                "400",
            ],
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let to: Vec<String> = (0..300).map(|i| format!("1380000{i:04}")).collect();
        let s = smsgw(
            &store2,
            &[
                "send",
                "--id",
                "bulk",
                "--to",
                &to.join(","),
                "--priority",
                "marketing",
                "--text",
                "sale",
            ],
        );
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
        let s = smsgw(
            &store2,
            &[
                "send",
                "--id",
                "long",
                "--to",
                "13900000000",
                "--text",
                &"长短信".repeat(50),
            ],
        );
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));

        let mut serve = Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .arg("serve")
            .env("SMSGW_STORE", &store2)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir_log(&store2)).unwrap(),
            ))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stats = serde_json::Value::Null;
        while Instant::now() < deadline {
            let o = smsgw(&store2, &["stats", "--json"]);
            stats = serde_json::from_slice(&o.stdout).unwrap_or_default();
            if stats["by_state"]["delivered"] == 301 {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status();
        serve.wait().unwrap();
        (
            stats,
            std::fs::read_to_string(dir_log(&store2)).unwrap_or_default(),
        )
    })
    .await
    .unwrap();

    let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    assert_eq!(
        stats["by_state"]["delivered"], 301,
        "stats: {stats}\nlog tail:\n{tail}"
    );
    let s = sim.stats().totals;
    // The carrier throttled some submits; the rest went through once each:
    // 300 single-segment messages + 3 segments of the long one.
    assert!(s.throttled > 0, "the TPS limit never fired: {s:?}");
    assert_eq!(s.submits_received - s.throttled, 303, "{s:?}");
    assert_eq!(s.reports_sent, 303);
    assert!(
        s.faults_report_early > 0 && s.faults_report_other_conn > 0,
        "{s:?}"
    );
}

/// Runs blocking work (the `smsgw` binary, sleeps) off the runtime, so the
/// in-process simulators keep being served meanwhile.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn stats_json(store: &str) -> serde_json::Value {
    let o = smsgw(store, &["stats", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

fn count(stats: &serde_json::Value, state: &str) -> u64 {
    stats["by_state"][state].as_u64().unwrap_or(0)
}

/// The carrier (simulator) is stopped while `smsgw serve` is sending into
/// its TPS limit — every connection drops with submits in flight — and a new
/// one comes up on the same address a second later. Every message must
/// still be delivered, once as far as the gateway knows; the only duplicates
/// allowed are the submits whose response the stop swallowed, at most the
/// link's total window, and each of them must be flagged
/// `possible_duplicate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_restart_mid_run_loses_nothing() {
    const N: usize = 2000;
    const CONNECTIONS: usize = 2;
    const WINDOW: usize = 16;
    const WINDOW_TOTAL: usize = CONNECTIONS * WINDOW;
    // The carrier accepts fewer submits per second than the link sends, so
    // throttle answers (and throttled submits waiting in the session for
    // their resend) are part of what the restart cuts through.
    const CARRIER_TPS: u32 = 300;
    const LINK_TPS: &str = "400";

    let sim_config = |listen: std::net::SocketAddr| {
        let mut cfg = SimConfig::new(ProtocolKind::Cmpp3, listen)
            .account(AccountConfig::new("901234", "secret").with_tps(CARRIER_TPS));
        // Each report is written as soon as its submit is read, ahead of the
        // submit response on the same connection. A submit the gateway saw
        // accepted therefore always had its report arrive first: a stopping
        // carrier cannot leave a message waiting for a report that will
        // never come. (With the default 100 ms report delay, reports still
        // queued in the stopped simulator are lost for good and their
        // messages would — correctly — stay `submitted` until their validity
        // ends, which no test can wait for.)
        // Responses take 30–120 ms, so the windows are busy when the
        // carrier stops: those submits are lost in flight (the carrier may
        // or may not have taken them) and must be resent.
        cfg.faults = Faults {
            report_before_response: true,
            response_delay: Some(DelayRange {
                min: Duration::from_millis(30),
                max: Duration::from_millis(120),
            }),
            ..Faults::default()
        };
        // Keep every submit (throttled ones included) for the carrier-side
        // count.
        cfg.ring_capacity = 1_000_000;
        cfg
    };
    // The first simulator takes a free port; the second one binds the same
    // address, as a restarted carrier gateway would.
    let mut sim1 = start(sim_config("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = sim1.addr();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/r.db", dir.path().display());

    let to: Vec<String> = (0..N).map(|i| format!("1380{i:07}")).collect();
    let chunks: Vec<String> = (0..N.div_ceil(500)).map(|k| format!("bulk-{k}")).collect();
    let (st, to2, chunks2, addr_s) = (store.clone(), to.clone(), chunks.clone(), addr.to_string());
    let mut serve = blocking(move || {
        let add = smsgw(
            &st,
            &[
                "link",
                "add",
                "cmcc",
                "--protocol",
                "cmpp3",
                "--addr",
                &addr_s,
                "--account",
                "901234",
                "--connections",
                &CONNECTIONS.to_string(),
                "--window",
                &WINDOW.to_string(),
                "--tps",
                LINK_TPS,
            ],
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        // At most 1,000 recipients per record: 500 a record. Half notify,
        // half marketing: a link's lane holds 1,024 messages per priority,
        // and a bigger backlog of one priority makes every claim beyond it
        // come back "lane full" one row at a time, which slows the serve
        // loop to well below the carrier's TPS (a throughput matter, not
        // this test's).
        for (k, (id, part)) in chunks2.iter().zip(to2.chunks(500)).enumerate() {
            let priority = if k < chunks2.len() / 2 {
                "notify"
            } else {
                "marketing"
            };
            let s = smsgw(
                &st,
                &[
                    "send",
                    "--id",
                    id,
                    "--to",
                    &part.join(","),
                    "--priority",
                    priority,
                    "--text",
                    "sale",
                ],
            );
            assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
        }
        // No sweep during the run: the sweeper would eventually resend a
        // message parked as retryable (its attempts used up), which would
        // hide a message stuck on the normal path behind a 30 s wait. Every
        // message must come through on its own retries.
        let config =
            std::path::Path::new(st.trim_start_matches("sqlite://")).with_extension("toml");
        std::fs::write(&config, "[engine]\nsweep_interval = \"1h\"\n").unwrap();
        Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .arg("serve")
            .env("SMSGW_STORE", &st)
            .env("SMSGW_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir_log(&st)).unwrap()))
            .spawn()
            .unwrap()
    })
    .await;
    let t0 = Instant::now();
    let log = || std::fs::read_to_string(dir_log(&store)).unwrap_or_default();
    let tail = |log: &str| log.lines().rev().take(40).collect::<Vec<_>>().join("\n");

    // Mid-run: a part delivered, the carrier already throttling, the rest
    // queued, waiting for a throttle resend or on the wire.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delivered_at_stop = 0;
    while Instant::now() < deadline {
        let st = store.clone();
        delivered_at_stop = count(&blocking(move || stats_json(&st)).await, "delivered");
        if delivered_at_stop >= 300 && sim1.stats().totals.throttled > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        delivered_at_stop >= 300 && sim1.stats().totals.throttled > 0,
        "never got going: {delivered_at_stop} delivered, {:?}\n{}",
        sim1.stats().totals,
        tail(&log())
    );
    let stopped_at = Instant::now();
    // Returns once every connection is closed: the counts are final.
    sim1.stop().await;
    let before = sim1.stats().totals;
    let received1 = sim1.received();
    drop(sim1);
    let after1 = before.submits_received;

    tokio::time::sleep(Duration::from_secs(1)).await;
    // Same address again (SO_REUSEADDR; retried in case the port is busy
    // for a moment).
    let mut sim2 = None;
    for _ in 0..50 {
        match start(sim_config(addr)).await {
            Ok(s) => {
                sim2 = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let sim2 = sim2.expect("restart the simulator on the same address");
    let restarted_at = Instant::now();

    // Both connections come back (reconnect backoff: 0.5–1 s, then 1–2 s,
    // 2–4 s, ... while the address refuses).
    let deadline = Instant::now() + Duration::from_secs(15);
    while sim2.stats().totals.logins_ok < CONNECTIONS as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let relogin = restarted_at.elapsed();
    assert!(
        sim2.stats().totals.logins_ok >= CONNECTIONS as u64,
        "the link did not come back: {:?}\n{}",
        sim2.stats().totals,
        tail(&log())
    );

    let deadline = Instant::now() + Duration::from_secs(40);
    let mut stats = serde_json::Value::Null;
    while Instant::now() < deadline {
        let st = store.clone();
        stats = blocking(move || stats_json(&st)).await;
        let settled: u64 = ["delivered", "failed", "expired"]
            .iter()
            .map(|s| count(&stats, s))
            .sum();
        if settled == N as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_done = t0.elapsed();

    let pid = serve.id();
    let status = blocking(move || {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        serve.wait().unwrap()
    })
    .await;
    let log = log();
    let st = store.clone();
    let histories: Vec<serde_json::Value> = blocking(move || {
        chunks
            .iter()
            .map(|id| {
                let o = smsgw(&st, &["msg", "show", id, "--json"]);
                serde_json::from_slice(&o.stdout).unwrap()
            })
            .collect()
    })
    .await;
    let received2 = sim2.received();
    let s2 = sim2.stats().totals;
    sim2.shutdown().await;

    // The gateway: everything delivered, nothing failed, lost or stuck.
    assert_eq!(
        count(&stats, "delivered"),
        N as u64,
        "stats: {stats}\nlog tail:\n{}",
        tail(&log)
    );
    assert_eq!(stats["messages"], N as u64, "{stats}");
    // ... each delivered once (one `delivered` event per recipient).
    let delivered: Vec<&str> = histories
        .iter()
        .flat_map(|h| h.as_array().unwrap())
        .filter(|e| e["state"] == "delivered")
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    let once: std::collections::HashSet<&str> = delivered.iter().copied().collect();
    assert_eq!((delivered.len(), once.len()), (N, N));
    assert!(
        status.success(),
        "serve exited with {status:?}\n{}",
        tail(&log)
    );
    // The restart really happened mid-run: both carriers took a share.
    let accepted =
        |r: &[smsgw_simulators::ReceivedMessage]| r.iter().filter(|m| m.status == 0).count();
    let (acc1, acc2) = (accepted(&received1), accepted(&received2));
    assert!(acc1 >= 300 && acc2 > 0, "sim1 {acc1}, sim2 {acc2}");
    // Both rings hold every submit they got (nothing evicted).
    assert_eq!(received1.len() as u64, after1);
    assert_eq!(received2.len() as u64, s2.submits_received);
    // Throttling was part of it.
    assert!(before.throttled + s2.throttled > 0, "{before:?} {s2:?}");
    // The gateway saw its connections drop and come back.
    assert!(
        log.contains("connection down"),
        "no link down in the log:\n{}",
        tail(&log)
    );
    let logins = log.matches("logged in").count();
    assert!(
        logins >= 2 * CONNECTIONS,
        "{logins} logins, want both connections twice\n{}",
        tail(&log)
    );

    // The carrier side: every recipient accepted at least once; a recipient
    // accepted twice is a submit the restart swallowed the response of.
    let mut times: std::collections::HashMap<&str, usize> = Default::default();
    for m in received1.iter().chain(&received2).filter(|m| m.status == 0) {
        for d in &m.dest {
            *times.entry(d.as_str()).or_default() += 1;
        }
    }
    let missing: Vec<&String> = to
        .iter()
        .filter(|t| !times.contains_key(t.as_str()))
        .collect();
    assert!(missing.is_empty(), "never reached the carrier: {missing:?}");
    assert_eq!(times.len(), N, "unknown recipients at the carrier");
    let carrier_dups: Vec<&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| *t)
        .collect();
    let extra: usize = times.values().map(|n| n - 1).sum();
    assert!(
        extra <= WINDOW_TOTAL,
        "{extra} duplicate submits at the carrier (window total {WINDOW_TOTAL})"
    );
    // The gateway's own count of possible duplicates is bounded the same
    // way, and covers every duplicate the carrier actually saw.
    let possible = stats["possible_duplicates"].as_u64().unwrap();
    assert!(
        (1..=WINDOW_TOTAL as u64).contains(&possible),
        "{possible} possible duplicates: want some (the stop cut submits in \
         flight) and at most the window total {WINDOW_TOTAL}"
    );
    assert!(
        log.contains("connection ended with submits in flight"),
        "the stop cut no submit in flight:\n{}",
        tail(&log)
    );
    let flagged: std::collections::HashSet<&str> = histories
        .iter()
        .flat_map(|h| h.as_array().unwrap())
        .filter(|e| e["possible_duplicate"] == true)
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    let unflagged: Vec<&&str> = carrier_dups
        .iter()
        .filter(|t| !flagged.contains(**t))
        .collect();
    assert!(
        unflagged.is_empty(),
        "sent twice without a possible_duplicate flag: {unflagged:?}"
    );

    eprintln!(
        "restart: {delivered_at_stop} delivered at the stop, sim1 accepted {acc1} \
         (of {after1} submits, {} throttled), sim2 accepted {acc2} (of {} submits, {} throttled); \
         carrier duplicates {extra}, possible_duplicates {possible}; \
         both connections back {relogin:?} after the restart ({:?} after the stop); \
         all settled {all_done:?} after serve started",
        before.throttled,
        s2.submits_received,
        s2.throttled,
        relogin + restarted_at.duration_since(stopped_at),
    );
}

/// Where a test's `smsgw serve` writes its log: a file beside the store (a
/// pipe nobody reads would fill up and block the gateway).
fn dir_log(store: &str) -> std::path::PathBuf {
    let db = store.trim_start_matches("sqlite://");
    std::path::Path::new(db).with_extension("serve.log")
}

//! End to end with a real broker: records produced to a Kafka topic (tansu)
//! → `smsgw serve --kafka` (the built binary, SQLite store) → CMPP 3.0 over
//! TCP to the in-test ISMG (reports before responses) → reports correlated →
//! status events on the status topic, dead letters on theirs, `stats`.
//!
//! Sizes: the main run sends 10,000 messages; the crash and broker-down
//! runs 2,000 (`SMSGW_E2E_FULL=1` runs 10,000 there too).
#![cfg(feature = "kafka")]

mod common;

use common::{smsgw, stats};

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ismg::{self, Seen};
use common::tansu::Tansu;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const MAIN_RUN: usize = 10_000;

fn n_messages() -> usize {
    if std::env::var("SMSGW_E2E_FULL").is_ok_and(|v| v == "1") {
        10_000
    } else {
        2_000
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: String,
    config: String,
    broker: Tansu,
    seen: Arc<Seen>,
}

/// Broker with topics `in` (3 partitions), `status`, `dlq`; ISMG; store with link `m1`.
async fn setup() -> Env {
    setup_on(None, &[]).await
}

/// [`setup`] on the store `store` (default: a fresh SQLite file), with
/// `link_args` added to `link add`.
async fn setup_on(store: Option<String>, link_args: &[&str]) -> Env {
    let broker = Tansu::start();
    broker.create_topics(&["in"], 3).await;
    broker.create_topics(&["status", "dlq"], 1).await;
    let seen = Arc::new(Seen::default());
    let addr = ismg::start(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store =
        store.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("e2e.db").display()));
    // short lease and small lanes: a crashed run's claims come back quickly
    let config = dir.path().join("smsgw.toml");
    std::fs::write(
        &config,
        "[engine]\nlease = \"30s\"\nclaim_batch = 64\nlane_capacity = 64\nsweep_interval = \"1s\"\n",
    )
    .unwrap();
    let mut args = vec![
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
        ismg::SECRET,
        "--window",
        "16",
    ];
    args.extend_from_slice(link_args);
    smsgw(&store, &args);
    Env {
        _dir: dir,
        store,
        config: config.display().to_string(),
        broker,
        seen,
    }
}

/// `smsgw serve`, killed if the test panics.
struct Serve(Option<Child>);

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn serve(env: &Env) -> Serve {
    Serve(Some(
        Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .args(["serve", "--store", &env.store, "--config", &env.config])
            .args(["--kafka", &env.broker.brokers()])
            .args(["--input-topic", "in", "--status-topic", "status"])
            .args(["--dead-letter-topic", "dlq", "--group", "gw"])
            // SMSGW_E2E_LOG: serve's log filter while debugging a test
            .env(
                "SMSGW_LOG",
                std::env::var("SMSGW_E2E_LOG")
                    .unwrap_or_else(|_| "warn,librdkafka=off,rdkafka=off".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    ))
}

fn term(mut s: Serve) -> std::process::ExitStatus {
    let mut child = s.0.take().unwrap();
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn record(id: &str, to: &str, text: &str, prio: &str) -> String {
    serde_json::json!({"id": id, "to": to, "text": text, "priority": prio}).to_string()
}

fn to_of(i: usize) -> String {
    format!("1380{:07}", i)
}

/// Produces all payloads pipelined (keyed by position).
async fn produce(brokers: &str, topic: &str, payloads: &[String]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let futs: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let key = i.to_string();
            let p = &p;
            async move {
                p.send(
                    FutureRecord::to(topic).key(&key).payload(payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
            }
        })
        .collect();
    for r in futures::future::join_all(futs).await {
        r.unwrap();
    }
}

/// Reads `topic` from the start until `want` records arrived or `wait` passed.
async fn consume(
    brokers: &str,
    topic: &str,
    want: usize,
    wait: Duration,
) -> Vec<serde_json::Value> {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "7000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), c.recv()).await {
            out.push(serde_json::from_slice(m.payload().unwrap()).unwrap());
        }
    }
    out
}

async fn wait_for(
    store: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
    secs: u64,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = stats(store);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_carrier_and_status_back() {
    let env = setup().await;
    let n = MAIN_RUN;
    let mut recs: Vec<String> = (0..n)
        .map(|i| {
            let prio = ["otp", "notify", "marketing"][i % 3];
            record(&format!("m{i}"), &to_of(i), &format!("k{i}"), prio)
        })
        .collect();
    // long messages: 2 and 3 segments (UCS2, 67 chars per part)
    recs.push(record("long2", "13900139000", &"长".repeat(100), "notify"));
    recs.push(record("long3", "13900139001", &"长".repeat(180), "notify"));
    // invalid records, each with its own reason
    let invalid = [
        "{not json".to_owned(),
        r#"{"to":"13800138000","text":"no id"}"#.to_owned(),
        record("bad-number", "12345", "x", "otp"),
        record("empty-text", "13800138000", "  ", "otp"),
        serde_json::json!({"id": "expired", "to": "13800138000", "text": "x",
            "expire_at": "2020-01-01T00:00:00Z"})
        .to_string(),
    ];
    recs.extend(invalid.iter().cloned());
    // redeliveries: the same ids again
    for i in 0..50 {
        recs.push(record(&format!("m{i}"), &to_of(i), &format!("k{i}"), "otp"));
    }
    let total = n + 2;
    let child = serve(&env);
    let t0 = Instant::now();
    produce(&env.broker.brokers(), "in", &recs).await;
    let s = wait_for(
        &env.store,
        "all delivered",
        |s| s["by_state"]["delivered"].as_u64() == Some(total as u64),
        300,
    )
    .await;
    let took = t0.elapsed();
    eprintln!("{total} messages delivered in {took:?}");
    let status = term(child);
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");

    // stats add up
    let s2 = stats(&env.store);
    assert_eq!(
        s2["by_state"], s["by_state"],
        "nothing changed after delivery"
    );
    let by_state: u64 = s["by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_state, total as u64, "{s}");
    assert_eq!(s["messages"], total as u64);
    let segments = n as u64 + 2 + 3;
    assert_eq!(s["segments"], segments);
    assert_eq!(s["by_link"]["m1"]["messages"], total as u64);
    assert_eq!(s["by_link"]["m1"]["segments"], segments);
    assert_eq!(s["dead_letters"], invalid.len() as u64);
    assert_eq!(s["reports_unmatched"], 0);
    assert_eq!(s["possible_duplicates"], 0);
    // one submit per segment: redeliveries were not resent
    assert_eq!(
        env.seen.submits.load(std::sync::atomic::Ordering::SeqCst) as u64,
        segments
    );
    assert!(env.seen.duplicates().is_empty());

    // status events: accepted, submitted, delivered for every message
    let evs = consume(
        &env.broker.brokers(),
        "status",
        3 * total,
        Duration::from_secs(60),
    )
    .await;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for e in &evs {
        *by_state
            .entry(e["state"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_state.get("accepted"), Some(&total), "{by_state:?}");
    assert_eq!(by_state.get("submitted"), Some(&total), "{by_state:?}");
    assert_eq!(by_state.get("delivered"), Some(&total), "{by_state:?}");
    let long3: Vec<_> = evs.iter().filter(|e| e["id"] == "long3").collect();
    assert_eq!(long3.len(), 3);
    assert!(long3.iter().all(|e| e["segments"] == 3));
    assert_eq!(long3[2]["state"], "delivered");
    assert_eq!(long3[2]["code"], "DELIVRD");
    assert_eq!(long3[2]["link"], "m1");

    // dead letters on their topic, with reasons
    let dead = consume(
        &env.broker.brokers(),
        "dlq",
        invalid.len(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(dead.len(), invalid.len(), "{dead:?}");
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    for want in ["bad json", "missing id", "bad number", "empty", "expired"] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "no dead letter for {want:?}: {reasons:?}"
        );
    }
    assert!(dead
        .iter()
        .all(|d| d["origin"].as_str().unwrap().starts_with("in/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_loses_nothing() {
    let env = setup().await;
    let n = n_messages();
    let recs: Vec<String> = (0..n)
        .map(|i| record(&format!("m{i}"), &to_of(i), &format!("k{i}"), "notify"))
        .collect();
    let mut child = serve(&env);
    produce(&env.broker.brokers(), "in", &recs).await;
    wait_for(
        &env.store,
        "a quarter delivered",
        |s| s["by_state"]["delivered"].as_u64().unwrap_or(0) >= n as u64 / 4,
        300,
    )
    .await;
    let mut c = child.0.take().unwrap();
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    let at_kill = stats(&env.store);
    eprintln!("killed at {}", at_kill["by_state"]);

    let child = serve(&env);
    let s = wait_for(
        &env.store,
        "every message final",
        |s| s["by_state"]["delivered"].as_u64() == Some(n as u64),
        300,
    )
    .await;
    assert!(term(child).success());
    assert_eq!(s["messages"], n as u64, "none lost, none doubled: {s}");
    // reports answered only once stored: the ones in flight at the kill
    // came again on the new connection, and every report got its answer
    eprintln!(
        "reports sent {}, resent {}, answered {}",
        env.seen.reports.load(Ordering::SeqCst),
        env.seen.report_resends.load(Ordering::SeqCst),
        env.seen.report_acks.load(Ordering::SeqCst)
    );
    assert_eq!(env.seen.unanswered(), 0, "every report answered");

    // real duplicates: at most what was in the window at the kill, each marked
    let dups = env.seen.duplicates();
    let window = 16;
    assert!(
        dups.len() <= window,
        "{} messages submitted twice, window {window}",
        dups.len()
    );
    for ((_, _, text), _) in &dups {
        let id = format!("m{}", String::from_utf8_lossy(text).trim_start_matches('k'));
        let h: serde_json::Value =
            serde_json::from_str(&smsgw(&env.store, &["msg", "show", &id, "--json"])).unwrap();
        let last = h.as_array().unwrap().last().unwrap();
        assert_eq!(
            last["possible_duplicate"], true,
            "{id} resent but not marked: {h}"
        );
    }
    let marked = s["possible_duplicates"].as_u64().unwrap();
    eprintln!(
        "actual resends {}, marked possible duplicates {marked} (claimed but unfinished at the kill)",
        dups.len()
    );
    assert!(marked >= dups.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_accepted_messages_still_go_out() {
    let mut env = setup().await;
    let n = 300;
    let recs: Vec<String> = (0..n)
        .map(|i| record(&format!("m{i}"), &to_of(i), &format!("k{i}"), "marketing"))
        .collect();
    // no links up yet? they are: slow the sender by producing first, then
    // killing the broker as soon as everything is accepted
    let child = serve(&env);
    produce(&env.broker.brokers(), "in", &recs).await;
    wait_for(
        &env.store,
        "all accepted",
        |s| s["messages"].as_u64() == Some(n as u64),
        120,
    )
    .await;
    // the broker goes away (memory storage: its topics are gone for good)
    drop(std::mem::replace(&mut env.broker, Tansu::start()));
    let s = wait_for(
        &env.store,
        "all delivered without the broker",
        |s| s["by_state"]["delivered"].as_u64() == Some(n as u64),
        120,
    )
    .await;
    assert_eq!(s["messages"], n as u64);
    let status = term(child);
    assert!(
        status.success(),
        "serve exits 0 with the broker down: {status:?}"
    );
}

/// Two gateway nodes in one consumer group on one PostgreSQL store: they
/// share the input, send each message once, and the status topic carries
/// each state change once (one node's relay publishes; the other stands by),
/// with none skipped although the nodes' transactions commit out of id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_share_the_work() {
    let Some(pg) = common::pg::fresh_database().await else {
        return;
    };
    let env = setup_on(Some(pg), &[]).await;
    let n = n_messages();
    let recs: Vec<String> = (0..n)
        .map(|i| {
            let prio = ["otp", "notify", "marketing"][i % 3];
            record(&format!("m{i}"), &to_of(i), &format!("k{i}"), prio)
        })
        .collect();
    let a = serve(&env);
    let b = serve(&env);
    produce(&env.broker.brokers(), "in", &recs).await;
    let s = wait_for(
        &env.store,
        "all delivered",
        |s| s["by_state"]["delivered"].as_u64() == Some(n as u64),
        300,
    )
    .await;
    assert!(term(a).success());
    assert!(term(b).success());
    assert_eq!(s["messages"], n as u64);
    assert_eq!(s["reports_unmatched"], 0);
    assert_eq!(
        env.seen.submits.load(Ordering::SeqCst) as usize,
        n,
        "each sent once"
    );
    assert!(env.seen.duplicates().is_empty());

    let evs = consume(
        &env.broker.brokers(),
        "status",
        3 * n,
        Duration::from_secs(60),
    )
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for e in &evs {
        let key = (
            e["id"].as_str().unwrap().to_owned(),
            e["state"].as_str().unwrap().to_owned(),
        );
        assert!(seen.insert(key.clone()), "published twice: {key:?}");
    }
    assert_eq!(evs.len(), 3 * n, "accepted, submitted, delivered for each");
}

/// A PostgreSQL server of the test's own (`scripts/pg.sh`), which the test
/// may stop and start: the shared one serves other tests meanwhile.
struct OwnPg {
    url: String,
    dir: String,
}

impl OwnPg {
    fn script() -> String {
        format!("{}/scripts/pg.sh", env!("CARGO_MANIFEST_DIR"))
    }

    /// `None` (skip) when PostgreSQL is not installed and CI did not ask for it.
    fn start() -> Option<OwnPg> {
        let out = Command::new("bash").arg(Self::script()).output().unwrap();
        if !out.status.success() {
            assert!(
                std::env::var_os("SMSGW_REQUIRE_PG").is_none(),
                "scripts/pg.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("no PostgreSQL here: skipped");
            return None;
        }
        let text = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_owned()
        };
        Some(OwnPg {
            url: var("SMSGW_TEST_PG_URL"),
            dir: var("SMSGW_PG_DIR"),
        })
    }

    fn run(&self, what: &str) {
        let st = Command::new("bash")
            .args([&Self::script(), what, &self.dir])
            .status()
            .unwrap();
        assert!(st.success(), "pg.sh {what} failed");
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([&Self::script(), "stop", &self.dir])
            .status();
    }
}

/// The database goes away mid-run (PostgreSQL stopped) and comes back:
/// the links keep sending what was already claimed, outcomes wait in
/// memory, intake waits in the broker, and once the database is back every
/// message reaches its final state, each sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_sending_continues_and_state_catches_up() {
    let Some(pg) = OwnPg::start() else {
        return;
    };
    // a link slow enough for the run to span the outage
    let env = setup_on(Some(pg.url.clone()), &["--tps", "300"]).await;
    let n = 1500;
    let recs: Vec<String> = (0..n)
        .map(|i| record(&format!("m{i}"), &to_of(i), &format!("k{i}"), "marketing"))
        .collect();
    let child = serve(&env);
    produce(&env.broker.brokers(), "in", &recs).await;
    wait_for(
        &env.store,
        "a first part delivered",
        |s| s["by_state"]["delivered"].as_u64().unwrap_or(0) >= 200,
        120,
    )
    .await;

    pg.run("pause");
    let at_stop = env.seen.submits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = env.seen.submits.load(Ordering::SeqCst) - at_stop;
    eprintln!("submits while the database was down: {during}");
    assert!(during > 0, "sending stopped with the database");
    pg.run("resume");

    let s = wait_for(
        &env.store,
        "every message delivered after the database came back",
        |s| s["by_state"]["delivered"].as_u64() == Some(n as u64),
        180,
    )
    .await;
    let status = term(child);
    assert!(status.success(), "serve exits 0: {status:?}");
    assert_eq!(s["messages"], n as u64, "none lost: {s}");
    assert_eq!(s["reports_unmatched"], 0, "{s}");
    assert!(env.seen.duplicates().is_empty(), "nothing sent twice");
    assert_eq!(env.seen.submits.load(Ordering::SeqCst) as usize, n);
    assert_eq!(env.seen.unanswered(), 0, "every report answered");
}

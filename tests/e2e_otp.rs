//! otp is never delayed behind a marketing backlog: 100,000 marketing
//! records produced to Kafka (tansu) are accepted by `smsgw serve` (SQLite)
//! and drain at the link's TPS; otp records produced one by one meanwhile
//! must each go out while the marketing backlog is still queued, with a low
//! accept→dispatch latency (read from serve's `/metrics`).
//!
//! The latency bound here is loose (CI machines are noisy); the figure
//! that matters is measured by `benches/otp_bench.sh`.
#![cfg(feature = "kafka")]

mod common;

use common::{free_port, smsgw, stats};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tansu::Tansu;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use smsgw_simulators::{start, AccountConfig, ProtocolKind, SimConfig};

const BACKLOG: usize = 100_000;
const OTP: usize = 40;
/// The link's rate: the backlog takes BACKLOG / LINK_TPS = 200 s to drain.
const LINK_TPS: &str = "500";

/// `smsgw serve`, killed if the test panics.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One sample of serve's `/metrics`: `name{labels…}` lines whose labels
/// contain every one of `labels`.
fn metric(port: u16, name: &str, labels: &[&str]) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
}

fn record(id: &str, to: &str, prio: &str) -> String {
    serde_json::json!({"id": id, "to": to, "text": format!("{prio} {id}"), "priority": prio})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_goes_out_ahead_of_100k_queued_marketing() {
    let broker = Tansu::start();
    broker.create_topics(&["in"], 3).await;
    broker.create_topics(&["status", "dlq"], 1).await;
    let sim = start(
        SimConfig::new(ProtocolKind::Cmpp3, "127.0.0.1:0".parse().unwrap())
            .account(AccountConfig::new("901234", "secret")),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("otp.db").display());
    smsgw(
        &store,
        &[
            "link",
            "add",
            "m1",
            "--protocol",
            "cmpp3",
            "--addr",
            &sim.addr().to_string(),
            "--account",
            "901234",
            "--secret",
            "secret",
            "--connections",
            "2",
            "--window",
            "16",
            "--tps",
            LINK_TPS,
        ],
    );
    let mport = free_port();
    let log = dir.path().join("serve.log");
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_smsgw"))
            .args(["serve", "--store", &store])
            .args(["--kafka", &broker.brokers()])
            .args(["--input-topic", "in", "--status-topic", "status"])
            .args(["--dead-letter-topic", "dlq", "--group", "gw"])
            .args(["--metrics", &format!("127.0.0.1:{mport}")])
            .env("SMSGW_LOG", "warn,librdkafka=off,rdkafka=off")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    // the backlog, pipelined
    let payloads: Vec<String> = (0..BACKLOG)
        .map(|i| record(&format!("m{i}"), &format!("1380{i:07}"), "marketing"))
        .collect();
    for chunk in payloads.chunks(20_000) {
        let futs = chunk.iter().map(|p| {
            producer.send(
                FutureRecord::<(), _>::to("in").payload(p),
                Duration::from_secs(30),
            )
        });
        for r in futures::future::join_all(futs).await {
            r.map_err(|(e, _)| e).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let before = loop {
        let s = stats(&store);
        if s["messages"].as_u64().unwrap_or(0) >= BACKLOG as u64 {
            break s;
        }
        assert!(Instant::now() < deadline, "backlog not accepted: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let queued_before = before["by_state"]["accepted"].as_u64().unwrap();
    assert!(
        queued_before > BACKLOG as u64 / 2,
        "the backlog drained before the otp phase: {before}"
    );

    // otp, one at a time
    for i in 0..OTP {
        producer
            .send(
                FutureRecord::<(), _>::to("in").payload(&record(
                    &format!("otp{i}"),
                    "13912345678",
                    "otp",
                )),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = metric(
            mport,
            "smsgw_messages_dispatched_total",
            &["priority=\"otp\""],
        )
        .unwrap_or(0.0);
        if n >= OTP as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {OTP} otp dispatched; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = stats(&store);
    let queued_after = after["by_state"]["accepted"].as_u64().unwrap();
    let q = |quantile: &str| {
        metric(
            mport,
            "smsgw_accept_to_dispatch_seconds",
            &["priority=\"otp\"", &format!("quantile=\"{quantile}\"")],
        )
        .expect("otp latency summary")
    };
    let (p50, p99, max) = (q("0.5"), q("0.99"), q("1"));
    // acceptance → the submit written to the carrier
    let s99 = metric(
        mport,
        "smsgw_accept_to_submit_seconds",
        &["priority=\"otp\"", "quantile=\"0.99\""],
    )
    .expect("otp accept→submit summary");
    eprintln!(
        "otp accept→dispatch: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; accept→submit p99 {:.3} ms; marketing queued {queued_before} → {queued_after}",
        p50 * 1e3,
        p99 * 1e3,
        max * 1e3,
        s99 * 1e3
    );
    // every otp went out while (most of) the marketing backlog still waited
    assert!(
        queued_after > BACKLOG as u64 / 4,
        "otp waited for the backlog: {after}"
    );
    assert!(
        p99 < 0.5,
        "otp p99 accept→dispatch {:.1} ms (bench target 5 ms)",
        p99 * 1e3
    );
    assert!(
        s99 < 0.5,
        "otp p99 accept→submit {:.1} ms (bench target 5 ms)",
        s99 * 1e3
    );
    // and they were delivered
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h: serde_json::Value =
            serde_json::from_str(&smsgw(&store, &["msg", "show", "otp0", "--json"])).unwrap();
        if h.to_string().contains("\"delivered\"") {
            break;
        }
        assert!(Instant::now() < deadline, "otp0 not delivered: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

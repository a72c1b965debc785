//! Produces N JSON message records to a Kafka topic as fast as the broker
//! takes them (pipelined: everything is enqueued, deliveries awaited in
//! bulk), for benches/e2e_bench.sh.
//!
//! `cargo run --release --example produce -- BROKERS TOPIC N [PRIORITY] [ID_PREFIX] [INTERVAL_MS]`
//! prints `{"produced": N, "secs": S, "per_sec": R}`. With INTERVAL_MS the
//! records trickle: one at a time, each delivered before the pause (the otp
//! latency bench).

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: produce BROKERS TOPIC N [PRIORITY] [ID_PREFIX] [INTERVAL_MS]");
        std::process::exit(2);
    }
    let (brokers, topic) = (&args[1], &args[2]);
    let n: usize = args[3].parse().expect("N");
    let prio = args.get(4).map_or("marketing", String::as_str);
    let prefix = args.get(5).map_or("b", String::as_str);
    let interval = args
        .get(6)
        .map(|s| Duration::from_millis(s.parse().expect("INTERVAL_MS")));
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    // topics: created with 3 partitions unless they exist (tansu does not auto-create)
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .expect("admin");
        let _ = admin
            .create_topics(
                &[NewTopic::new(topic, 3, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await;
    }
    let t0 = Instant::now();
    let mut pending = Vec::with_capacity(50_000);
    for i in 0..n {
        let payload = format!(
            r#"{{"id":"{prefix}{i}","to":"1380{:07}","text":"bench message {i}","priority":"{prio}"}}"#,
            i % 10_000_000
        );
        let key = format!("{prefix}{i}");
        loop {
            match p.send_result(FutureRecord::to(topic).key(&key).payload(&payload)) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((e, _)) => {
                    // queue full: wait for what is in flight
                    if pending.is_empty() {
                        panic!("produce: {e}");
                    }
                    for r in futures::future::join_all(pending.drain(..)).await {
                        r.expect("delivery").expect("delivery");
                    }
                }
            }
        }
        if let Some(iv) = interval {
            for r in futures::future::join_all(pending.drain(..)).await {
                r.expect("delivery").expect("delivery");
            }
            tokio::time::sleep(iv).await;
        }
        if pending.len() >= 50_000 {
            for r in futures::future::join_all(pending.drain(..)).await {
                r.expect("delivery").expect("delivery");
            }
        }
    }
    for r in futures::future::join_all(pending).await {
        r.expect("delivery").expect("delivery");
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"produced": n, "secs": secs, "per_sec": n as f64 / secs})
    );
}

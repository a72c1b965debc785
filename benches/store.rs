//! SQL store lifecycle benchmark on a temp-file SQLite database: one
//! iteration accepts 1,000 messages in one call (every tenth has 2 parts),
//! claims them with `claim_due`, binds every part with `bind_many` and
//! settles a delivered report per part with `settle_many`; i.e. the time per
//! 1,000 messages through the store's hot path (criterion also prints
//! messages/s).
//!
//! Run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 5`
//!
//! `lifecycle_4x250_concurrent_sqlite` runs the same as four concurrent
//! callers of 250 messages each (pool contention).
//!
//! One database per benchmark run: it grows by 1,000 delivered messages per
//! iteration (fresh upstream ids each time), like a serving store does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use smsgw::adapters::sql::SqlStore;
use smsgw::engine::*;

const N: usize = 1_000;
const T0: Timestamp = Timestamp(1_800_000_000_000);

fn batch(tag: &str, round: u64, n: usize) -> Vec<NewMessage> {
    (0..n)
        .map(|i| {
            let two = i % 10 == 0;
            NewMessage {
                upstream_id: format!("{tag}{round}-{i}"),
                to: format!("138{:08}", i),
                text: if two {
                    "验证码 123456，5 分钟内有效。".repeat(6)
                } else {
                    "验证码 123456，5 分钟内有效。".to_owned()
                },
                priority: Priority::Otp,
                biz: Some("login".into()),
                channel: ChannelKind::Sms,
                expire_at: T0.plus(Duration::from_secs(3600)),
                segments: if two { 2 } else { 1 },
                carrier: Some(Carrier::Mobile),
                accepted_at: T0,
                claimed_until: None,
            }
        })
        .collect()
}

async fn lifecycle(s: &SqlStore, round: u64) {
    let msgs = batch("up", round, N);
    let r = s.accept(&msgs, &[]).await.unwrap();
    assert_eq!(r.accepted.len(), N);
    let claimed = s
        .claim_due(T0, 2 * N, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), N);
    bind_and_settle(s, round, &claimed).await;
}

/// [`lifecycle`] as four concurrent callers of 250 messages each (what the
/// pool size matters for): each claims up to 250 due messages, whoever's.
async fn lifecycle_concurrent(s: &SqlStore, round: u64) {
    let tasks: Vec<_> = (0..4u64)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                let round = round * 4 + t;
                let msgs = batch("c", round, N / 4);
                s.accept(&msgs, &[]).await.unwrap();
                let claimed = s
                    .claim_due(T0, N / 4, Duration::from_secs(60))
                    .await
                    .unwrap();
                bind_and_settle(&s, round, &claimed).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn bind_and_settle(s: &SqlStore, round: u64, claimed: &[Dispatchable]) {
    let binds: Vec<Bind> = claimed
        .iter()
        .flat_map(|d| {
            (1..=d.segments).map(move |part| Bind {
                seg: SegmentRef {
                    message: d.id,
                    part,
                },
                link: "m1".into(),
                provider_id: ProviderMsgId::new(&format!("p{round}-{}-{part}", d.id.0)),
            })
        })
        .collect();
    let evs = s.bind_many(&binds, T0).await.unwrap();
    assert_eq!(evs.len(), claimed.len());
    let reports: Vec<Report> = binds
        .iter()
        .map(|b| Report {
            provider_id: b.provider_id.clone(),
            stat: "DELIVRD".into(),
            delivered: true,
            link: Some("m1".into()),
            received_at: T0.plus(Duration::from_secs(1)),
            ack: None,
        })
        .collect();
    let settled = s.settle_many(&reports).await.unwrap();
    assert_eq!(settled.len(), reports.len());
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let s = rt.block_on(SqlStore::open(&url)).unwrap();
    let round = AtomicU64::new(0);
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("lifecycle_1000_sqlite", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let r = round.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                rt.block_on(lifecycle(&s, r));
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("lifecycle_4x250_concurrent_sqlite", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let r = round.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                rt.block_on(lifecycle_concurrent(&s, r));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    rt.block_on(s.close());
}

criterion_group!(benches, store);
criterion_main!(benches);

//! Kafka adapter (rdkafka): the input topic as a [`MessageSource`] over a
//! consumer group, the status topic as a [`StatusSink`], and the outbox
//! [`Relay`] that publishes the store's status history and dead letters.
//!
//! * **Source**: `enable.auto.commit=false`; offsets are committed only when
//!   the engine calls [`MessageSource::commit`], i.e. after the store has
//!   accepted or dead-lettered the whole batch. A batch that was polled but
//!   not committed (the store was down) is handed out again by the next
//!   `poll` instead of new records, so nothing is skipped. Validation
//!   failures are dead letters, never errors: the partition moves on.
//! * **Sink**: one JSON object per status change, keyed by upstream id
//!   (per-message order within a partition); sends are pipelined (all
//!   enqueued, then the deliveries awaited together).
//! * **Relay** (outbox): the store's `events` and `dead_letters` tables are
//!   the source of truth; a relay task publishes rows after a persisted
//!   cursor and advances it only once the broker acknowledged them. With the
//!   broker down, status events wait in the store and go out when it is back
//!   (at least once: a crash between publish and cursor write repeats a few).
//!   One node of several publishes at a time (the store's relay lease), and
//!   the cursor never moves past an id whose transaction has not committed
//!   yet ([`GapGuard`]).

use std::time::Duration;

use futures::FutureExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::TopicPartitionList;

use crate::adapters::outbox::{GapGuard, GAP_WAIT};
use crate::adapters::sql::{RelayLease, SqlStore};
use crate::engine::ports::*;
use crate::engine::types::*;

/// Connection and topic settings (CLI flags or the config's `[kafka]`).
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    pub input_topic: String,
    pub status_topic: String,
    pub dead_letter_topic: String,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
    pub heartbeat_interval: Duration,
    /// `queued.max.messages.kbytes`: see `config::KafkaConfig::prefetch_kib`.
    pub prefetch_kib: u32,
    /// `fetch.wait.max.ms`: see `config::KafkaConfig::fetch_wait`.
    pub fetch_wait: Duration,
}

impl KafkaSettings {
    /// Defaults that let a consumer group join in ~3 s (librdkafka's own
    /// defaults stall ~23 s against tansu) and are valid for Apache Kafka.
    pub fn new(brokers: &str, input_topic: &str, status_topic: &str) -> Self {
        KafkaSettings {
            brokers: brokers.to_owned(),
            group_id: "smsgw".into(),
            input_topic: input_topic.to_owned(),
            status_topic: status_topic.to_owned(),
            dead_letter_topic: "sms-dead-letters".into(),
            session_timeout: Duration::from_millis(6000),
            max_poll_interval: Duration::from_millis(7000),
            heartbeat_interval: Duration::from_millis(1000),
            prefetch_kib: 2048,
            fetch_wait: Duration::from_millis(20),
        }
    }
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn source_err(e: impl std::fmt::Display) -> SourceError {
    SourceError {
        message: e.to_string(),
        retry: true,
    }
}

/// The input topic, consumed by group `group_id`.
pub struct KafkaSource {
    consumer: StreamConsumer,
    topic: String,
    /// Polled but not yet committed: handed out again until committed.
    uncommitted: Vec<SourceRecord>,
}

impl KafkaSource {
    pub fn new(s: &KafkaSettings) -> Result<Self, KafkaError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &s.brokers)
            .set("group.id", &s.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", ms(s.session_timeout))
            .set("max.poll.interval.ms", ms(s.max_poll_interval))
            .set("heartbeat.interval.ms", ms(s.heartbeat_interval))
            .set("enable.partition.eof", "false")
            // Prefetch bounded (librdkafka's default is 64 MB per
            // partition): the backlog waits in the broker, not in our
            // memory, and librdkafka's own per-record memory comes on top
            // (benches/otp_bench.sh, 1M backlog: peak RSS 83 MB with 2 or
            // 4 MB, 101-123 MB with 8 MB). 2 MB, ~20k records, keeps intake
            // of a burst about level with dispatch on 2 cores (e2e 20.5k
            // msg/s against 18.4-19.4k with 4 MB, which ingests faster).
            .set("queued.max.messages.kbytes", s.prefetch_kib.to_string())
            .set("queued.min.messages", "20000")
            // librdkafka's 500 ms default: otp records trickling in through
            // tansu arrived in bursts every ~250 ms, and a burst of otp
            // queues behind itself on a TPS-capped link (benches/otp_bench.sh
            // at 500 TPS: accept→submit p50 12.2 / p99 28.1 ms; 20 ms: see
            // README)
            .set("fetch.wait.max.ms", ms(s.fetch_wait))
            .create()?;
        consumer.subscribe(&[&s.input_topic])?;
        Ok(KafkaSource {
            consumer,
            topic: s.input_topic.clone(),
            uncommitted: Vec::new(),
        })
    }

    fn record(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> SourceRecord {
        SourceRecord {
            payload: m.payload().unwrap_or_default().to_vec(),
            origin: format!("{}/{}@{}", self.topic, m.partition(), m.offset()),
            position: SourcePosition {
                partition: m.partition(),
                offset: m.offset(),
            },
        }
    }
}

impl MessageSource for KafkaSource {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<SourceRecord>, SourceError> {
        if !self.uncommitted.is_empty() {
            return Ok(self.uncommitted.clone());
        }
        let mut out = Vec::new();
        // the first record: wait up to `wait` (a ready record is taken even with zero wait)
        match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(out),
            Ok(Err(e)) => return Err(source_err(e)),
            Ok(Ok(m)) => out.push(self.record(&m)),
        }
        // then whatever is already buffered, without waiting
        while out.len() < max {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => {
                    let r = self.record(&m);
                    out.push(r);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error");
                    break;
                }
                None => break,
            }
        }
        self.uncommitted = out.clone();
        Ok(out)
    }

    async fn commit(&mut self, records: &[SourceRecord]) -> Result<(), SourceError> {
        let mut next: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
        for r in records {
            let e = next.entry(r.position.partition).or_insert(0);
            *e = (*e).max(r.position.offset + 1);
        }
        self.uncommitted.clear();
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in next {
            tpl.add_partition_offset(&self.topic, p, rdkafka::Offset::Offset(o))
                .map_err(source_err)?;
        }
        // Async: a later commit supersedes a lost one; a crash before it
        // lands redelivers records the store already knows (dropped by id).
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(source_err)
    }
}

/// A producer for the status and dead-letter topics.
#[derive(Clone)]
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

/// Builds the shared producer (idempotent, acks=all, lz4-free defaults).
pub fn producer(brokers: &str) -> Result<FutureProducer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "10000")
        .set("queue.buffering.max.messages", "200000")
        .create()
}

impl KafkaSink {
    pub fn new(producer: FutureProducer, topic: &str) -> Self {
        KafkaSink {
            producer,
            topic: topic.to_owned(),
        }
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Sends `(key, payload)` records pipelined: everything is enqueued, then
    /// the deliveries are awaited together. Fails if any record failed.
    pub async fn send_all(&self, records: &[(String, String)]) -> Result<(), SinkError> {
        let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
        for (key, payload) in records {
            loop {
                let rec = FutureRecord::to(&self.topic).key(key).payload(payload);
                match self.producer.send_result(rec) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // local queue full: let what is queued drain first
                        check(futures::future::join_all(pending.drain(..)).await)?;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(SinkError(format!("{}: {e}", self.topic))),
                }
            }
        }
        check(futures::future::join_all(pending).await)
    }
}

fn check(
    results: Vec<
        Result<
            rdkafka::producer::future_producer::OwnedDeliveryResult,
            futures::channel::oneshot::Canceled,
        >,
    >,
) -> Result<(), SinkError> {
    for r in results {
        match r {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(SinkError(e.to_string())),
            Err(_) => return Err(SinkError("delivery cancelled".into())),
        }
    }
    Ok(())
}

/// The status-topic JSON of one event (the format).
pub fn status_json(e: &StatusEvent) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

/// The dead-letter-topic JSON: where the record came from, its raw payload
/// and why it was refused.
pub fn dead_letter_json(d: &DeadLetter) -> String {
    serde_json::json!({
        "origin": d.origin,
        "id": d.upstream_id,
        "payload": d.payload,
        "reason": d.reason,
        "at": d.at.to_rfc3339(),
    })
    .to_string()
}

impl StatusSink for KafkaSink {
    async fn publish(&self, events: &[StatusEvent]) -> Result<(), SinkError> {
        let recs: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.id.clone(), status_json(e)))
            .collect();
        self.send_all(&recs).await
    }
}

/// Publishes the store's status history and dead letters (outbox pattern).
pub struct Relay {
    pub store: SqlStore,
    pub status: KafkaSink,
    pub dead: KafkaSink,
    pub batch: usize,
}

/// Relay cursor names in `relay_cursors`.
pub const STATUS_CURSOR: &str = "kafka-status";
pub const DEAD_CURSOR: &str = "kafka-dead-letters";

impl Relay {
    /// Publishes one batch of each table after the guards' positions;
    /// returns how many rows went out. The caller persists the positions
    /// (seldom: on SQLite every write competes with the sender's).
    pub async fn once(&self, cur: &mut Cursors) -> Result<usize, String> {
        let evs = self
            .store
            .events_after(cur.status.position(), self.batch)
            .await
            .map_err(|e| e.to_string())?;
        let (next, evs) = admit(&cur.status, evs, "status events");
        if !evs.is_empty() {
            self.status.publish(&evs).await.map_err(|e| e.to_string())?;
        }
        cur.status = next;

        let dead = self
            .store
            .dead_letters_after(cur.dead.position(), self.batch)
            .await
            .map_err(|e| e.to_string())?;
        let (next, dead) = admit(&cur.dead, dead, "dead letters");
        if !dead.is_empty() {
            let recs: Vec<(String, String)> = dead
                .iter()
                .map(|d| {
                    (
                        d.upstream_id.clone().unwrap_or_else(|| d.origin.clone()),
                        dead_letter_json(d),
                    )
                })
                .collect();
            self.dead.send_all(&recs).await.map_err(|e| e.to_string())?;
        }
        cur.dead = next;
        Ok(evs.len() + dead.len())
    }

    async fn load(&self) -> Result<Cursors, String> {
        let s = self.store.relay_cursor(STATUS_CURSOR).await;
        let d = self.store.relay_cursor(DEAD_CURSOR).await;
        Ok(Cursors {
            status: GapGuard::new(s.map_err(|e| e.to_string())?, GAP_WAIT),
            dead: GapGuard::new(d.map_err(|e| e.to_string())?, GAP_WAIT),
        })
    }

    async fn save(&self, lease: &mut RelayLease, cur: (i64, i64)) -> Result<(), String> {
        self.store
            .set_relay_cursor(lease, STATUS_CURSOR, cur.0)
            .await
            .map_err(|e| e.to_string())?;
        self.store
            .set_relay_cursor(lease, DEAD_CURSOR, cur.1)
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs until `stop` is set, then publishes what is left (bounded by
    /// `final_wait`) and flushes the producer. Publishes only while it
    /// holds the store's relay lease (one node of several at a time); stands
    /// by otherwise.
    pub async fn run(
        self,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        final_wait: Duration,
    ) {
        let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
        let mut standing_by = false;
        while !stopped() {
            let mut lease = match self.store.try_relay_lease().await {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    if !standing_by {
                        tracing::info!("status relay: standing by, another node publishes");
                        standing_by = true;
                    }
                    pause(&stopped, Duration::from_secs(2)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "status relay: taking the lease");
                    pause(&stopped, Duration::from_millis(500)).await;
                    continue;
                }
            };
            if standing_by {
                tracing::info!("status relay: took over publishing");
                standing_by = false;
            }
            match self.lead(&mut lease, &stopped).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "status relay: lost the lease; stopped publishing")
                }
            }
        }
        let _ = self.status.producer().flush(final_wait);
    }

    /// Publishes while `lease` holds; `Ok` once stopped, `Err` when the
    /// lease is lost.
    async fn lead(
        &self,
        lease: &mut RelayLease,
        stopped: &impl Fn() -> bool,
    ) -> Result<(), String> {
        let mut cur = loop {
            match self.load().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "status relay: reading cursors");
                    if stopped() {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        let mut saved = cur.positions();
        let mut last_save = tokio::time::Instant::now();
        loop {
            let stopping = stopped();
            let res = self.once(&mut cur).await;
            let now = cur.positions();
            let due = stopping || last_save.elapsed() >= Duration::from_millis(500);
            let kept = if now != saved && due {
                Some(self.save(lease, now).await)
            } else if last_save.elapsed() >= LEASE_CHECK {
                let r = self.store.check_relay_lease(lease).await;
                Some(r.map_err(|e| e.to_string()))
            } else {
                None
            };
            match kept {
                Some(Ok(())) => {
                    saved = now;
                    last_save = tokio::time::Instant::now();
                }
                // the database is down, or the lease's session with it
                Some(Err(e)) => self
                    .store
                    .check_relay_lease(lease)
                    .await
                    .map_err(|_| format!("writing the cursors: {e}"))?,
                None => {}
            }
            match res {
                Ok(n) => {
                    if failing {
                        tracing::info!("status relay recovered");
                        failing = false;
                    }
                    backoff = Duration::from_millis(100);
                    if n == 0 {
                        if stopping {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "status relay: publish failed; events stay in the store and are retried");
                        failing = true;
                    }
                    if stopping {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if cur.positions() != saved {
            let _ = self.save(lease, cur.positions()).await;
        }
        Ok(())
    }
}

/// How often an idle relay checks that its lease still holds.
const LEASE_CHECK: Duration = Duration::from_secs(5);

/// Sleeps `d`, waking early once `stopped`.
async fn pause(stopped: &impl Fn() -> bool, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    while !stopped() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the relays stand in `events` and `dead_letters`.
#[derive(Debug)]
pub struct Cursors {
    pub status: GapGuard,
    pub dead: GapGuard,
}

impl Cursors {
    fn positions(&self) -> (i64, i64) {
        (self.status.position(), self.dead.position())
    }
}

/// The rows of a batch (id, row) that `guard` lets through, and the guard
/// as it stands once they are published (the caller keeps the old one if
/// publishing fails). Logs ids passed over as never committed.
fn admit<T>(guard: &GapGuard, rows: Vec<(i64, T)>, what: &'static str) -> (GapGuard, Vec<T>) {
    let mut next = guard.clone();
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let a = next.admit(&ids, std::time::Instant::now());
    for (first, last) in a.skipped {
        tracing::warn!(
            first,
            last,
            table = what,
            "status relay: ids never committed (rolled back?) after waiting; passed over"
        );
    }
    let rows = rows.into_iter().take(a.rows).map(|(_, r)| r).collect();
    (next, rows)
}

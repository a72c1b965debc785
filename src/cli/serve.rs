//! `smsgw serve`: runs the gateway.
//!
//! One loop: ingest (embedded queue → validation → durable acceptance),
//! channel events (results, reports, link state), claim → lanes → dispatch
//! over the carrier links (`smsgw link add` plus config `[[links]]`), and the
//! sweeper. Status events go to the log; metrics on `--metrics`. SIGTERM
//! stops between steps, gives queued claims back, shuts the links down
//! (in-flight results are applied) and exits 0. With `--kafka` (or the
//! config's `[kafka]`) input comes from a consumer group and status events
//! and dead letters are relayed from the store to their topics.

use std::net::SocketAddr;

use clap::Args;

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Kafka bootstrap servers (HOST:PORT,...); the embedded queue is used without it.
    #[arg(long, value_name = "BROKERS")]
    pub kafka: Option<String>,
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    pub input_topic: Option<String>,
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    pub status_topic: Option<String>,
    /// Topic for records that fail validation (also kept in the store's table).
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    pub dead_letter_topic: Option<String>,
    /// Consumer group (default `smsgw`): gateway nodes in one group share partitions.
    #[arg(long, value_name = "GROUP", requires = "kafka")]
    pub group: Option<String>,
    /// Serve Prometheus metrics on HOST:PORT (GET /metrics).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Exit once the queue is drained (for scripts and tests).
    #[arg(long)]
    pub drain: bool,
}

/// Publishes status events as `info` log lines (numbers masked).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

impl crate::engine::ports::StatusSink for LogSink {
    async fn publish(
        &self,
        events: &[crate::engine::StatusEvent],
    ) -> Result<(), crate::engine::ports::SinkError> {
        for e in events {
            tracing::info!(
                id = %e.id,
                to = %crate::engine::validate::mask_msisdn(&e.to),
                state = e.state.as_str(),
                code = e.code.as_deref().unwrap_or(""),
                segments = e.segments,
                link = e.link.as_deref().unwrap_or(""),
                "status"
            );
        }
        Ok(())
    }
}

/// Serves `GET /metrics` from the installed Prometheus recorder.
pub async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    crate::engine::metrics::describe();
    crate::session::metrics::describe();
    metrics::gauge!("smsgw_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                let body = handle.render();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    }))
}

/// Kafka settings from the flags, else the config's `[kafka]`; `None` = embedded queue.
#[cfg(feature = "kafka")]
fn kafka_settings(
    args: &ServeArgs,
    cfg: &crate::config::Config,
) -> anyhow::Result<Option<crate::adapters::kafka::KafkaSettings>> {
    use crate::adapters::kafka::KafkaSettings;
    let file = cfg.kafka.as_ref();
    let Some(brokers) = args
        .kafka
        .clone()
        .or_else(|| file.map(|k| k.brokers.clone()))
    else {
        return Ok(None);
    };
    let input = args
        .input_topic
        .clone()
        .or_else(|| file.map(|k| k.input_topic.clone()))
        .ok_or_else(|| anyhow::anyhow!("--kafka needs --input-topic"))?;
    let status = args
        .status_topic
        .clone()
        .or_else(|| file.map(|k| k.status_topic.clone()))
        .ok_or_else(|| anyhow::anyhow!("--kafka needs --status-topic"))?;
    let mut k = KafkaSettings::new(&brokers, &input, &status);
    if let Some(f) = file {
        k.group_id = f.group_id.clone();
        k.dead_letter_topic = f.dead_letter_topic.clone();
        k.session_timeout = f.session_timeout;
        k.max_poll_interval = f.max_poll_interval;
        k.heartbeat_interval = f.heartbeat_interval;
    }
    if let Some(g) = &args.group {
        k.group_id = g.clone();
    }
    if let Some(t) = &args.dead_letter_topic {
        k.dead_letter_topic = t.clone();
    }
    Ok(Some(k))
}

#[cfg(feature = "sql")]
pub async fn run(args: ServeArgs, store: &StoreArgs) -> anyhow::Result<()> {
    use crate::adapters::sql::QueueSource;

    let cfg = store.config()?;
    if let Some(addr) = args.metrics {
        serve_metrics(addr).await?;
    }
    let s = store.open().await?;
    tracing::info!(store = %super::redact_url(&store.url()?), "serving");

    // Shutdown is checked between steps: an ingest batch is never cut in
    // half (it is not cancel-safe between accept and commit).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }

    #[cfg(feature = "kafka")]
    if let Some(k) = kafka_settings(&args, &cfg)? {
        use crate::adapters::kafka::{producer, KafkaSink, KafkaSource, Relay};
        tracing::info!(brokers = %k.brokers, input = %k.input_topic, status = %k.status_topic,
            dead_letters = %k.dead_letter_topic, group = %k.group_id, "kafka input");
        let src = KafkaSource::new(&k)?;
        let prod = producer(&k.brokers)?;
        let relay = Relay {
            store: s.clone(),
            status: KafkaSink::new(prod.clone(), &k.status_topic),
            dead: KafkaSink::new(prod, &k.dead_letter_topic),
            batch: 5000,
        };
        let relay_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let relay_task = tokio::spawn(relay.run(relay_stop.clone(), Duration::from_secs(5)));
        let res = drive(&args, &cfg, &s, src, crate::engine::ports::NullSink, &stop).await;
        // the last state changes go out before exit (bounded: the broker may be down)
        relay_stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if tokio::time::timeout(Duration::from_secs(10), relay_task)
            .await
            .is_err()
        {
            tracing::warn!("status relay did not finish; the rest is published at the next start");
        }
        s.close().await;
        return res;
    }
    #[cfg(not(feature = "kafka"))]
    if args.kafka.is_some() {
        anyhow::bail!("--kafka: this smsgw was built without the `kafka` feature");
    }
    let res = drive(&args, &cfg, &s, QueueSource::new(s.clone()), LogSink, &stop).await;
    s.close().await;
    res
}

/// A store error the loop rides out (the database is unreachable or busy):
/// the step is retried later.
#[cfg(feature = "sql")]
fn transient(e: &crate::engine::ports::StoreError) -> bool {
    matches!(e, crate::engine::ports::StoreError::Unavailable(_))
}

#[cfg(feature = "sql")]
use std::time::Duration;

/// Drops dispatches from the in-flight map once their outcome is stored.
#[cfg(feature = "sql")]
fn settle_unsettled(
    unsettled: &mut std::collections::HashMap<crate::engine::ports::DispatchToken, (String, u16)>,
    ev: &crate::engine::ports::ChannelEvent,
) {
    use crate::engine::ports::ChannelEvent;
    match ev {
        ChannelEvent::Accepted { token, .. } => {
            if let Some(e) = unsettled.get_mut(token) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    unsettled.remove(token);
                }
            }
        }
        ChannelEvent::Rejected { token, .. } | ChannelEvent::Unknown { token, .. } => {
            unsettled.remove(token);
        }
        ChannelEvent::RouteState { route, up: false } => {
            unsettled.retain(|_, (r, _)| r != route);
        }
        _ => {}
    }
}

/// The serve loop over any source and sink.
///
/// Failure rules: a source error (broker down) is logged and polling backs
/// off — the sender keeps working from the store, so everything already
/// accepted still goes out. A transient store error (database down) is
/// logged and the step retried: lanes already filled keep dispatching, and
/// channel outcomes (submit responses, reports) are kept in memory in order
/// and applied once the store answers again.
#[cfg(feature = "sql")]
async fn drive<Src, K>(
    args: &ServeArgs,
    cfg: &crate::config::Config,
    s: &crate::adapters::sql::SqlStore,
    mut src: Src,
    sink: K,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()>
where
    Src: crate::engine::ports::MessageSource,
    K: crate::engine::StatusSink,
{
    use crate::adapters::carrier::{CarrierChannel, CarrierOptions};
    use crate::engine::correlate::Correlator;
    use crate::engine::dispatch::{Sender, SenderConfig};
    use crate::engine::ingest::{Ingest, IngestError};
    use crate::engine::ports::{Channel, ChannelEvent, LinkRegistry};
    use crate::engine::routing::NumberPlan;
    use crate::engine::sweeper;
    use crate::engine::types::Timestamp;
    use std::collections::VecDeque;
    use std::sync::atomic::Ordering;

    let ingest = Ingest {
        rules: cfg.engine.rules(),
        plan: NumberPlan::with_overrides(&cfg.routing.segments),
        batch: cfg.store.batch,
        wait: Duration::ZERO,
    };
    let correlator = Correlator::new(cfg.engine.park_ttl);

    // Links: the store's (`smsgw link add`) plus the config file's.
    let mut links = s.links().await?;
    for l in &cfg.links {
        links.push(l.resolve()?);
    }
    let (channel, mut events) = if links.is_empty() {
        tracing::warn!("no links configured: messages are accepted and kept, nothing is sent");
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        (None, rx)
    } else {
        let (c, rx) = CarrierChannel::start(&links, CarrierOptions::default()).await?;
        (Some(c), rx)
    };
    let sender_cfg = SenderConfig {
        claim_batch: cfg.engine.claim_batch,
        lease: cfg.engine.lease,
        lane_capacity: cfg.engine.lane_capacity,
        notify_weight: cfg.engine.notify_weight,
        marketing_weight: cfg.engine.marketing_weight,
        ..SenderConfig::default()
    };
    let mut sender = Sender::new(
        s.clone(),
        &links,
        cfg.retry.policy()?,
        correlator.clone(),
        sender_cfg,
    );
    let link_names = sender.links();
    // Outcomes not yet stored bound what a crash can resend: dispatch stops
    // while (dispatched − stored outcomes) reaches the links' total window,
    // so possible duplicates after a kill -9 stay within that window.
    let window_total: usize = links
        .iter()
        .map(|l| (l.window as usize) * (l.connections as usize))
        .sum::<usize>()
        .max(1);
    // token → (route, parts whose outcome is not stored yet)
    let mut unsettled: std::collections::HashMap<
        crate::engine::ports::DispatchToken,
        (String, u16),
    > = std::collections::HashMap::new();

    // channel outcomes not yet applied (the store was unavailable)
    let mut backlog: VecDeque<ChannelEvent> = VecDeque::new();
    let mut store_down = false;
    let mut source_down_until = tokio::time::Instant::now();
    let mut next_sweep = tokio::time::Instant::now();

    macro_rules! soft {
        ($e:expr, $what:literal) => {
            match $e {
                Ok(v) => Some(v),
                Err(e) if transient(&e) => {
                    if !store_down {
                        tracing::warn!(error = %e, concat!("store unavailable (", $what, "); sending continues, state catches up"));
                        store_down = true;
                    }
                    None
                }
                Err(e) => return Err(e.into()),
            }
        };
    }

    while !stop.load(Ordering::SeqCst) {
        let now = Timestamp::now();
        let mut busy = false;
        if tokio::time::Instant::now() >= next_sweep {
            if let Some(rep) = soft!(
                sweeper::sweep(s, &correlator, now, cfg.engine.park_ttl, cfg.store.batch).await,
                "sweep"
            ) {
                let _ = sink.publish(&rep.events).await;
            }
            next_sweep = tokio::time::Instant::now() + cfg.engine.sweep_interval;
        }
        let mut got = 0;
        if tokio::time::Instant::now() >= source_down_until {
            match ingest.once(&mut src, s, &sink, now).await {
                Ok(g) => got = g.records,
                Err(IngestError::Store(e)) => {
                    soft!(Err::<(), _>(e), "ingest");
                }
                Err(IngestError::Source(e)) => {
                    tracing::warn!(error = %e, "source unavailable; the sender keeps working from the store");
                    source_down_until = tokio::time::Instant::now() + Duration::from_secs(1);
                }
            }
        }
        busy |= got > 0;
        while let Ok(ev) = events.try_recv() {
            backlog.push_back(ev);
        }
        // apply the pending outcomes in order, batched (one transaction per
        // run of submit responses / reports); a batch the store refuses stays
        // queued whole and is applied again (binds and settles are idempotent)
        if !backlog.is_empty() {
            busy = true;
            let batch: Vec<ChannelEvent> = backlog.make_contiguous().to_vec();
            match sender.on_events(&batch, Timestamp::now()).await {
                Ok(evs) => {
                    store_down = false;
                    backlog.clear();
                    for ev in &batch {
                        settle_unsettled(&mut unsettled, ev);
                    }
                    let _ = sink.publish(&evs).await;
                }
                Err(e) if transient(&e) => {
                    soft!(Err::<(), _>(e), "outcomes");
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(ch) = &channel {
            if let Some(f) = soft!(sender.fill(now).await, "claim") {
                store_down = false;
                let _ = sink.publish(&f.events).await;
                busy |= f.claimed > 0;
            }
            for link in &link_names {
                while ch.ready(link) && unsettled.len() < window_total {
                    let Some(d) = sender.next_for(link) else {
                        break;
                    };
                    busy = true;
                    unsettled.insert(d.token, (link.clone(), ch.parts(&d.content)));
                    if let Err(e) = ch.dispatch(d.clone()).await {
                        unsettled.remove(&d.token);
                        soft!(
                            sender.on_dispatch_error(&d, &e, Timestamp::now()).await,
                            "dispatch error"
                        );
                    }
                }
            }
        }
        if args.drain && got == 0 && channel.is_none() {
            break;
        }
        if store_down {
            // SQLite "locked" clears in milliseconds; a down server takes longer
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else if !busy {
            // idle: wait for a channel event or the next poll
            if let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(20), events.recv()).await
            {
                backlog.push_back(ev);
            }
        }
    }
    let released = match sender.release_all(Timestamp::now()).await {
        Ok(n) => n,
        Err(e) if transient(&e) => {
            tracing::warn!(error = %e, "claims not given back; they are due again when their lease runs out");
            0
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ch) = channel {
        ch.shutdown().await;
        // results of what was in flight
        while let Ok(ev) = events.try_recv() {
            backlog.push_back(ev);
        }
        if !backlog.is_empty() {
            let batch: Vec<ChannelEvent> = backlog.drain(..).collect();
            match sender.on_events(&batch, Timestamp::now()).await {
                Ok(evs) => {
                    let _ = sink.publish(&evs).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, left = batch.len(),
                        "outcomes not stored at shutdown; their messages are resent as possible duplicates");
                }
            }
        }
    }
    tracing::info!(released, "claims given back");
    tracing::info!("stopping");
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: ServeArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}

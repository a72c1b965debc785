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
        k.prefetch_kib = f.prefetch_kib;
        k.fetch_wait = f.fetch_wait;
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
            // 2,000 events are ~300 KB of JSON in one result row
            batch: 2000,
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

#[cfg(feature = "sql")]
use std::time::Duration;

/// Wires the engine's runtime ([`crate::engine::run`]) over any source and
/// sink: the store, the carrier links (`smsgw link add` plus config
/// `[[links]]`) and the config's engine settings.
#[cfg(feature = "sql")]
async fn drive<Src, K>(
    args: &ServeArgs,
    cfg: &crate::config::Config,
    s: &crate::adapters::sql::SqlStore,
    src: Src,
    sink: K,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()>
where
    Src: crate::engine::ports::MessageSource + 'static,
    K: crate::engine::StatusSink + 'static,
{
    use crate::adapters::carrier::{CarrierChannel, CarrierOptions};
    use crate::engine::dispatch::SenderConfig;
    use crate::engine::ingest::Ingest;
    use crate::engine::ports::LinkRegistry;
    use crate::engine::routing::NumberPlan;
    use crate::engine::run::{ChannelSet, RunConfig};

    // Links: the store's (`smsgw link add`) plus the config file's.
    let mut links = s.links().await?;
    for l in &cfg.links {
        links.push(l.resolve()?);
    }
    let channel = if links.is_empty() {
        tracing::warn!("no links configured: messages are accepted and kept, nothing is sent");
        None
    } else {
        let (c, events) = CarrierChannel::start(&links, CarrierOptions::default()).await?;
        Some(ChannelSet {
            channel: Box::new(c),
            events,
        })
    };
    // Outcomes not yet stored bound what a crash can resend: dispatch stops
    // while (dispatched − stored outcomes) reaches the links' total window,
    // so possible duplicates after a kill -9 stay within that window.
    let window_total: usize = links
        .iter()
        .map(|l| (l.window as usize) * (l.connections as usize))
        .sum::<usize>()
        .max(1);
    let run_cfg = RunConfig {
        ingest: Ingest {
            rules: cfg.engine.rules(),
            plan: NumberPlan::with_overrides(&cfg.routing.segments),
            batch: cfg.store.batch,
            wait: Duration::from_millis(20),
        },
        sender: SenderConfig {
            claim_batch: cfg.engine.claim_batch,
            lease: cfg.engine.lease,
            lane_capacity: cfg.engine.lane_capacity,
            notify_weight: cfg.engine.notify_weight,
            marketing_weight: cfg.engine.marketing_weight,
            ..SenderConfig::default()
        },
        policy: cfg.retry.policy()?,
        park_ttl: cfg.engine.park_ttl,
        sweep_interval: cfg.engine.sweep_interval,
        sweep_batch: cfg.store.batch,
        window_total,
        otp_reserve: (window_total / 8)
            .max(1)
            .min(window_total.saturating_sub(1)),
        drain: args.drain,
    };
    crate::engine::run::run(s.clone(), src, sink, &links, channel, run_cfg, stop.clone()).await?;
    tracing::info!("stopping");
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: ServeArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}

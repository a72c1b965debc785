//! `smsgw serve`: runs the gateway.
//!
//! One loop: ingest (embedded queue → validation → durable acceptance),
//! channel events (results, reports, link state), claim → lanes → dispatch
//! over the carrier links (`smsgw link add` plus config `[[links]]`), and the
//! sweeper. Status events go to the log; metrics on `--metrics`. SIGTERM
//! stops between steps, gives queued claims back, shuts the links down
//! (in-flight results are applied) and exits 0. Kafka input and the status
//! topic wait for the `kafka` adapter.

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

#[cfg(feature = "sql")]
pub async fn run(args: ServeArgs, store: &StoreArgs) -> anyhow::Result<()> {
    use crate::adapters::carrier::{CarrierChannel, CarrierOptions};
    use crate::adapters::sql::QueueSource;
    use crate::engine::correlate::Correlator;
    use crate::engine::dispatch::{Sender, SenderConfig};
    use crate::engine::ingest::Ingest;
    use crate::engine::ports::{Channel, LinkRegistry};
    use crate::engine::routing::NumberPlan;
    use crate::engine::sweeper;
    use crate::engine::types::Timestamp;
    use crate::engine::StatusSink;
    use std::time::Duration;

    if args.kafka.is_some() {
        anyhow::bail!(
            "--kafka: this build has no Kafka adapter yet; omit it to use the embedded queue"
        );
    }
    let cfg = store.config()?;
    if let Some(addr) = args.metrics {
        serve_metrics(addr).await?;
    }
    let s = store.open().await?;
    tracing::info!(store = %super::redact_url(&store.url()?), "serving (ingest + sweeper; dispatch awaits the session layer)");
    let ingest = Ingest {
        rules: cfg.engine.rules(),
        plan: NumberPlan::with_overrides(&cfg.routing.segments),
        batch: cfg.store.batch,
        wait: Duration::ZERO,
    };
    let correlator = Correlator::new(cfg.engine.park_ttl);
    let mut src = QueueSource::new(s.clone());
    let sink = LogSink;

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
    let mut next_sweep = tokio::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let now = Timestamp::now();
        if tokio::time::Instant::now() >= next_sweep {
            let rep =
                sweeper::sweep(&s, &correlator, now, cfg.engine.park_ttl, cfg.store.batch).await?;
            let _ = sink.publish(&rep.events).await;
            next_sweep = tokio::time::Instant::now() + cfg.engine.sweep_interval;
        }
        let got = ingest.once(&mut src, &s, &sink, now).await?;
        let mut busy = got.records > 0;
        while let Ok(ev) = events.try_recv() {
            busy = true;
            let evs = sender.on_event(ev, Timestamp::now()).await?;
            let _ = sink.publish(&evs).await;
        }
        if let Some(ch) = &channel {
            let f = sender.fill(now).await?;
            let _ = sink.publish(&f.events).await;
            busy |= f.claimed > 0;
            for link in &link_names {
                while ch.ready(link) {
                    let Some(d) = sender.next_for(link) else {
                        break;
                    };
                    busy = true;
                    if let Err(e) = ch.dispatch(d.clone()).await {
                        sender.on_dispatch_error(&d, &e, Timestamp::now()).await?;
                    }
                }
            }
        }
        if args.drain && got.records == 0 && channel.is_none() {
            break;
        }
        if !busy {
            // idle: wait for a channel event or the next poll
            if let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(50), events.recv()).await
            {
                let evs = sender.on_event(ev, Timestamp::now()).await?;
                let _ = sink.publish(&evs).await;
            }
        }
    }
    let released = sender.release_all(Timestamp::now()).await?;
    if let Some(ch) = channel {
        ch.shutdown().await;
        // results of what was in flight
        while let Ok(ev) = events.try_recv() {
            let evs = sender.on_event(ev, Timestamp::now()).await?;
            let _ = sink.publish(&evs).await;
        }
    }
    tracing::info!(released, "claims given back");
    tracing::info!("stopping");
    s.close().await;
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: ServeArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}

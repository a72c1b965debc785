//! `smsgw serve`: runs the gateway.
//!
//! Today it runs ingest (embedded queue → validation → durable acceptance)
//! and the sweeper, publishes status events to the log, and serves metrics.
//! Dispatch to carrier links is wired once the session layer lands
//! (`adapters/carrier.rs` implementing the engine's `Channel`); Kafka input
//! and status topics once the `kafka` adapter exists.

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
    async fn publish(&self, events: &[crate::engine::StatusEvent]) -> Result<(), crate::engine::ports::SinkError> {
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
            let Ok((mut sock, _)) = listener.accept().await else { continue };
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
    use crate::adapters::sql::QueueSource;
    use crate::engine::correlate::Correlator;
    use crate::engine::ingest::Ingest;
    use crate::engine::routing::NumberPlan;
    use crate::engine::sweeper;
    use crate::engine::types::Timestamp;
    use crate::engine::StatusSink;
    use std::time::Duration;

    if args.kafka.is_some() {
        anyhow::bail!("--kafka: this build has no Kafka adapter yet; omit it to use the embedded queue");
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
        wait: Duration::from_millis(200),
    };
    let correlator = Correlator::new(cfg.engine.park_ttl);
    let mut src = QueueSource::new(s.clone());
    let sink = LogSink;
    // Shutdown is checked between batches: an ingest batch is never cut
    // in half (it is not cancel-safe between accept and commit).
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
        if tokio::time::Instant::now() >= next_sweep {
            let rep = sweeper::sweep(&s, &correlator, Timestamp::now(), cfg.engine.park_ttl, cfg.store.batch).await?;
            let _ = sink.publish(&rep.events).await;
            next_sweep = tokio::time::Instant::now() + cfg.engine.sweep_interval;
        }
        let got = ingest.once(&mut src, &s, &sink, Timestamp::now()).await?;
        if args.drain && got.records == 0 {
            break;
        }
    }
    tracing::info!("stopping");
    s.close().await;
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: ServeArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}

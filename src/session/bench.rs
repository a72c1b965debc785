//! `smsgw bench`: drive one link at a carrier (or simulator) and measure
//! throughput and submit→response latency.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use smsgw_codecs::text::{self, DataCoding, Family};
use smsgw_codecs::udh::ConcatRef;

use super::dialect::{Credentials, ProtocolKind};
use super::link::{Link, LinkConfig, SgipServerConfig};
use super::rate::RateConfig;
use super::types::{LinkEvent, Segment, SubmitRequest};
use super::window::WindowConfig;

/// Bench parameters (the CLI maps its flags onto these).
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub protocol: ProtocolKind,
    /// `host:port`.
    pub target: String,
    pub account: String,
    pub secret: String,
    /// Messages to send (a long text is several segments each).
    pub messages: u64,
    pub connections: u32,
    pub window: usize,
    /// 0 = unlimited.
    pub tps: u32,
    pub text: String,
    /// Ask for status reports (Registered_Delivery 1) and wait for them.
    pub reports: bool,
    /// Print one JSON object as the last line.
    pub json: bool,
    /// SGIP: where the link's SP-side server listens for the SMG's report
    /// connection, and the NAME:PASSWORD the SMG binds with.
    pub sp_listen: Option<std::net::SocketAddr>,
    pub sp_login: Option<(String, String)>,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            protocol: ProtocolKind::Cmpp3,
            target: "127.0.0.1:7890".into(),
            account: "901234".into(),
            secret: "secret".into(),
            messages: 1000,
            connections: 1,
            window: 16,
            tps: 0,
            text: "smsgw bench".into(),
            reports: true,
            json: false,
            sp_listen: None,
            sp_login: None,
        }
    }
}

/// What a bench run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub messages: u64,
    pub segments: u64,
    pub accepted: u64,
    /// Every non-accepted result by class: throttled, retryable, permanent,
    /// timeout, unknown, unsent, invalid.
    pub errors_by_class: BTreeMap<String, u64>,
    pub errors: u64,
    pub reports: u64,
    pub elapsed_s: f64,
    pub msgs_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// `write` syscalls on the carrier sockets and frames they carried
    /// (frames_per_write > 1: several submits per syscall).
    pub writes: u64,
    pub frames_out: u64,
    pub frames_per_write: f64,
    /// Print the JSON object as the last line of the `Display` output.
    #[serde(skip)]
    pub json: bool,
}

impl BenchReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "messages:   {} ({} segments) in {:.2} s",
            self.messages, self.segments, self.elapsed_s
        )?;
        writeln!(f, "throughput: {:.1} segments/s", self.msgs_per_s)?;
        writeln!(
            f,
            "latency:    p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms (submit -> response)",
            self.p50_ms, self.p99_ms, self.max_ms
        )?;
        writeln!(
            f,
            "writes:     {} frames in {} writes ({:.1} frames/write)",
            self.frames_out, self.writes, self.frames_per_write
        )?;
        writeln!(f, "accepted:   {}", self.accepted)?;
        writeln!(f, "reports:    {}", self.reports)?;
        write!(f, "errors:     {}", self.errors)?;
        for (class, n) in &self.errors_by_class {
            write!(f, "  {class}={n}")?;
        }
        writeln!(f)?;
        if self.json {
            write!(f, "{}", self.to_json())?;
        }
        Ok(())
    }
}

impl BenchReport {
    // Display prints JSON last when asked; carried here so `{report}` is all
    // the CLI needs.
    #[allow(clippy::wrong_self_convention)]
    fn json_flag(mut self, json: bool) -> Self {
        self.json = json;
        self
    }
}

fn family(p: ProtocolKind) -> Family {
    match p {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => Family::Cmpp,
        ProtocolKind::Smgp => Family::Smgp,
        ProtocolKind::Sgip => Family::Sgip,
    }
}

/// Builds the segments of the bench text for one message.
fn segments(args: &BenchArgs, reference: u8) -> anyhow::Result<Vec<Segment>> {
    let coding = if args.text.is_ascii() {
        DataCoding::ASCII
    } else {
        DataCoding::UCS2
    };
    let parts = text::split(
        &args.text,
        coding,
        family(args.protocol),
        ConcatRef::Eight(reference),
    )?;
    Ok(parts
        .into_iter()
        .map(|s| Segment {
            src_id: args.account.clone(),
            dest: "13800138000".into(),
            service_id: "bench".into(),
            msg_fmt: coding.0,
            udhi: s.concat.is_some(),
            pk_total: s.pk_total(),
            pk_number: s.pk_number(),
            content: Bytes::from(s.content.to_vec()),
            need_report: args.reports,
        })
        .collect())
}

/// Runs the bench and returns its report (the caller prints it).
pub async fn run_bench(args: BenchArgs) -> anyhow::Result<BenchReport> {
    let template = segments(&args, 0)?;
    let per_msg = template.len() as u64;
    let total = args.messages * per_msg;
    let mut cfg = LinkConfig::new(
        "bench",
        args.protocol,
        &args.target,
        Credentials {
            account: args.account.clone(),
            secret: args.secret.clone(),
            node_id: 3_000_000_001,
        },
    );
    cfg.connections = args.connections.max(1);
    cfg.window = WindowConfig::try_new(args.window.max(1), Duration::from_secs(60), 3)?;
    cfg.rate = RateConfig::from_tps(args.tps);
    cfg.queue_capacity = (args.window.max(1) * cfg.connections as usize * 4).max(64);
    cfg.events_capacity = 4096;
    match (&args.sp_listen, &args.sp_login) {
        (Some(listen), Some((account, secret))) => {
            if args.protocol != ProtocolKind::Sgip {
                anyhow::bail!("--sp-listen and --sp-login are for --protocol sgip only");
            }
            cfg.sgip_server = Some(SgipServerConfig {
                listen: *listen,
                account: account.clone(),
                secret: secret.clone(),
            });
        }
        (None, None) => {
            if args.protocol == ProtocolKind::Sgip && args.reports {
                tracing::warn!("sgip without --sp-listen/--sp-login: reports cannot arrive; not waiting for them");
            }
        }
        _ => anyhow::bail!("--sp-listen and --sp-login go together"),
    }
    // SGIP reports only arrive through the SP-side server.
    let wait_reports =
        args.reports && (args.protocol != ProtocolKind::Sgip || cfg.sgip_server.is_some());
    let (link, mut events) = Link::start(cfg).await?;

    let bar = if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            pb.set_style(style);
        }
        Some(pb)
    } else {
        None
    };

    let started = Instant::now();
    let submitter = {
        let args = args.clone();
        let link_tx = link.submitter();
        tokio::spawn(async move {
            let mut token = 0u64;
            for m in 0..args.messages {
                let segs = match segments(&args, (m % 256) as u8) {
                    Ok(s) => s,
                    Err(_) => break,
                };
                for segment in segs {
                    if link_tx
                        .submit(SubmitRequest { token, segment })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    token += 1;
                }
            }
        })
    };

    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut settled, mut accepted, mut reports) = (0u64, 0u64, 0u64);
    let mut last_settle = Instant::now();
    let mut results_done: Option<Instant> = None;
    let stall = Duration::from_secs(200);
    loop {
        if settled >= total
            && (!wait_reports
                || reports >= accepted
                || results_done.is_some_and(|t| t.elapsed() > Duration::from_secs(2)))
        {
            break;
        }
        if last_settle.elapsed() > stall {
            anyhow::bail!(
                "bench stalled: {settled} of {total} results after {stall:?} without progress"
            );
        }
        let ev = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(_) => continue,
        };
        let mut err = |class: &str| {
            *errors.entry(class.to_owned()).or_default() += 1;
        };
        match ev {
            LinkEvent::Accepted { latency, .. } => {
                accepted += 1;
                let _ = hist.record((latency.as_micros() as u64).max(1));
            }
            LinkEvent::Rejected { class, latency, .. } => {
                err(class.as_str());
                let _ = hist.record((latency.as_micros() as u64).max(1));
            }
            LinkEvent::TimedOut { .. } => err("timeout"),
            LinkEvent::Unknown { .. } => err("unknown"),
            LinkEvent::Unsent { .. } => err("unsent"),
            LinkEvent::Invalid { .. } => err("invalid"),
            LinkEvent::Report(r) => {
                // Nothing to store: answer the carrier right away.
                r.ack.ack();
                reports += 1;
            }
            LinkEvent::Down { reason, .. } => {
                tracing::warn!(reason = %reason, "bench connection down");
                continue;
            }
            LinkEvent::Mo(_) | LinkEvent::Up { .. } => continue,
        }
        settled = accepted + errors.values().sum::<u64>();
        last_settle = Instant::now();
        if settled >= total && results_done.is_none() {
            results_done = Some(Instant::now());
        }
        if let Some(pb) = &bar {
            pb.set_position(settled);
        }
    }
    let elapsed = results_done
        .unwrap_or_else(Instant::now)
        .duration_since(started);
    submitter.abort();
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let (writes, frames_out) = link.io_stats();
    link.shutdown().await;
    // Anything the shutdown reported after the loop is counted too.
    while let Ok(ev) = events.try_recv() {
        match ev {
            LinkEvent::Report(r) => {
                // Nothing to store: answer the carrier right away.
                r.ack.ack();
                reports += 1;
            }
            other if other.token().is_some() && settled < total => {
                *errors.entry("unsent".into()).or_default() += 1;
                settled += 1;
            }
            _ => {}
        }
    }
    let error_total: u64 = errors.values().sum();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(BenchReport {
        messages: args.messages,
        segments: total,
        accepted,
        errors: error_total,
        errors_by_class: errors,
        reports,
        elapsed_s: elapsed.as_secs_f64(),
        msgs_per_s: if elapsed.as_secs_f64() > 0.0 {
            settled as f64 / elapsed.as_secs_f64()
        } else {
            0.0
        },
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1000.0,
        writes,
        frames_out,
        frames_per_write: if writes > 0 {
            frames_out as f64 / writes as f64
        } else {
            0.0
        },
        json: false,
    }
    .json_flag(args.json))
}

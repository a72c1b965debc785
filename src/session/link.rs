//! A link: one carrier account reached over C connections that share a
//! bounded submit queue, a rate limit and an event stream. Each connection
//! is a supervisor task that runs the driver and reconnects with jittered
//! exponential backoff. SGIP links also run the SP-side server on which the
//! SMG delivers reports and MO messages.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use smsgw_codecs::reassembly::{self, Pushed, Reassembler};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::backoff::Backoff;
use super::conn::{run_conn, ConnParams, ConnShared, ConnTimers, IoStats, Retry, ThrottleRetry};
use super::dialect::{self, Credentials, Dialect, ProtocolKind};
use super::metrics as m;
use super::rate::{RateConfig, SharedRate};
use super::types::{DownReason, LinkEvent, Mo, MoSegment, SubmitRequest};
use super::window::WindowConfig;

/// The SP-side SGIP server: where the SMG connects (Bind login type 2) to
/// deliver reports and MO messages.
#[derive(Debug, Clone)]
pub struct SgipServerConfig {
    pub listen: SocketAddr,
    /// Credentials the SMG must present in its Bind.
    pub account: String,
    pub secret: String,
}

/// Everything about one link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Name used as the `carrier` label and in spans.
    pub name: String,
    pub protocol: ProtocolKind,
    /// `host:port` of the carrier gateway.
    pub addr: String,
    pub creds: Credentials,
    /// Connections C.
    pub connections: u32,
    pub window: WindowConfig,
    pub rate: RateConfig,
    pub timers: ConnTimers,
    /// Resending throttled submits (default: up to 10 times).
    pub throttle: ThrottleRetry,
    pub reconnect: Backoff,
    /// Submits waiting for a connection (backpressure beyond this).
    pub queue_capacity: usize,
    /// Events buffered before the driver waits for the consumer.
    pub events_capacity: usize,
    pub max_frame: usize,
    /// SGIP only.
    pub sgip_server: Option<SgipServerConfig>,
    /// How long partial MO segments wait for the rest.
    pub mo_reassembly_ttl: Duration,
    /// Notified each time a connection takes a submit off the queues: a
    /// feeder that keeps the queue shallow (to keep its own priorities)
    /// tops it up at once instead of polling. May be shared by links.
    pub room: Option<Arc<tokio::sync::Notify>>,
}

/// Why a link could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("link {link}: {reason}")]
    Config { link: String, reason: String },
    #[error("link {link}: cannot listen on {addr}: {source}")]
    Listen {
        link: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl LinkConfig {
    /// A config with spec defaults (C=1, W=16, T=60 s, N=3, unlimited TPS,
    /// heartbeat after 30 s idle).
    pub fn new(name: &str, protocol: ProtocolKind, addr: &str, creds: Credentials) -> Self {
        LinkConfig {
            name: name.to_owned(),
            protocol,
            addr: addr.to_owned(),
            creds,
            connections: 1,
            window: WindowConfig::default(),
            rate: RateConfig::unlimited(),
            timers: ConnTimers::default(),
            throttle: ThrottleRetry::default(),
            reconnect: Backoff::default(),
            queue_capacity: 1024,
            events_capacity: 1024,
            max_frame: smsgw_codecs::DEFAULT_MAX_FRAME_LEN,
            sgip_server: None,
            mo_reassembly_ttl: Duration::from_secs(300),
            room: None,
        }
    }

    pub fn validate(&self) -> Result<(), LinkError> {
        let bad = |reason: &str| {
            Err(LinkError::Config {
                link: self.name.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.connections == 0 {
            return bad("connections must be at least 1");
        }
        if self.addr.is_empty() {
            return bad("carrier address is empty");
        }
        if self.queue_capacity == 0 || self.events_capacity == 0 {
            return bad("queue and event capacities must be at least 1");
        }
        if self.timers.heartbeat_max_missed == 0 {
            return bad("heartbeat_max_missed must be at least 1");
        }
        if self.sgip_server.is_some() && self.protocol != ProtocolKind::Sgip {
            return bad("sgip_server is only for SGIP links");
        }
        Ok(())
    }
}

/// Why a submit was not queued; the request comes back.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("link is shut down")]
    Closed(SubmitRequest),
    #[error("submit queue is full")]
    Full(SubmitRequest),
}

/// Handle to a running link.
pub struct LinkHandle {
    name: Arc<str>,
    tx: async_channel::Sender<SubmitRequest>,
    rx: async_channel::Receiver<SubmitRequest>,
    /// The urgent queue: connections take from it before `rx`.
    utx: async_channel::Sender<SubmitRequest>,
    urx: async_channel::Receiver<SubmitRequest>,
    shutdown: watch::Sender<bool>,
    events: mpsc::Sender<LinkEvent>,
    tasks: Vec<JoinHandle<()>>,
    sgip_addr: Option<SocketAddr>,
    rate: SharedRate,
    io: Arc<IoStats>,
}

/// Submit-only handle; clone freely.
#[derive(Clone)]
pub struct Submitter {
    tx: async_channel::Sender<SubmitRequest>,
    utx: async_channel::Sender<SubmitRequest>,
    shutdown: watch::Receiver<bool>,
}

impl Submitter {
    /// Queues one segment; waits while the queue is full (backpressure).
    pub async fn submit(&self, req: SubmitRequest) -> Result<(), SubmitError> {
        if *self.shutdown.borrow() {
            return Err(SubmitError::Closed(req));
        }
        self.tx
            .send(req)
            .await
            .map_err(|e| SubmitError::Closed(e.into_inner()))
    }

    /// Queues one segment ahead of everything in the normal queue: the
    /// next connection with window room and a rate token takes it first
    /// (otp). Waits while the urgent queue is full.
    pub async fn submit_urgent(&self, req: SubmitRequest) -> Result<(), SubmitError> {
        if *self.shutdown.borrow() {
            return Err(SubmitError::Closed(req));
        }
        self.utx
            .send(req)
            .await
            .map_err(|e| SubmitError::Closed(e.into_inner()))
    }
}

/// Entry point.
pub struct Link;

impl Link {
    /// Starts the link's connections (and SGIP server). Results and other
    /// events come out of the returned receiver; keep draining it.
    pub async fn start(
        cfg: LinkConfig,
    ) -> Result<(LinkHandle, mpsc::Receiver<LinkEvent>), LinkError> {
        cfg.validate()?;
        let name: Arc<str> = Arc::from(cfg.name.as_str());
        let (tx, rx) = async_channel::bounded(cfg.queue_capacity);
        let (utx, urx) = async_channel::bounded(cfg.queue_capacity);
        let (ev_tx, ev_rx) = mpsc::channel(cfg.events_capacity);
        let (sd_tx, sd_rx) = watch::channel(false);
        let rate = SharedRate::new(cfg.rate, tokio::time::Instant::now().into_std());
        let mo = MoAssembler::new(cfg.mo_reassembly_ttl);
        let io = Arc::new(IoStats::default());
        let shared = ConnShared {
            io: io.clone(),
            queue: rx.clone(),
            urgent: urx.clone(),
            events: ev_tx.clone(),
            rate: rate.clone(),
            shutdown: sd_rx.clone(),
            mo: mo.clone(),
            room: cfg.room.clone(),
        };
        let mut tasks = Vec::new();
        let mut sgip_addr = None;
        if let Some(server) = &cfg.sgip_server {
            let listener =
                tokio::net::TcpListener::bind(server.listen)
                    .await
                    .map_err(|source| LinkError::Listen {
                        link: cfg.name.clone(),
                        addr: server.listen,
                        source,
                    })?;
            sgip_addr = listener.local_addr().ok();
            info!(carrier = %name, addr = ?sgip_addr, "sgip sp-side server listening");
            tasks.push(tokio::spawn(dialect::sgip::serve(
                listener,
                server.clone(),
                name.clone(),
                ev_tx.clone(),
                sd_rx.clone(),
                mo.clone(),
                cfg.max_frame,
            )));
        }
        for conn_id in 0..cfg.connections {
            let params = ConnParams {
                link: name.clone(),
                conn_id,
                addr: cfg.addr.clone(),
                creds: cfg.creds.clone(),
                window: cfg.window,
                timers: cfg.timers.clone(),
                max_frame: cfg.max_frame,
                throttle: cfg.throttle,
            };
            let task = match cfg.protocol {
                ProtocolKind::Cmpp2 => {
                    spawn_supervisor(params, shared.clone(), cfg.reconnect, || {
                        dialect::cmpp::CmppDialect::new(dialect::cmpp::CmppVersion::V20)
                    })
                }
                ProtocolKind::Cmpp3 => {
                    spawn_supervisor(params, shared.clone(), cfg.reconnect, || {
                        dialect::cmpp::CmppDialect::new(dialect::cmpp::CmppVersion::V30)
                    })
                }
                ProtocolKind::Smgp => spawn_supervisor(
                    params,
                    shared.clone(),
                    cfg.reconnect,
                    dialect::smgp::SmgpDialect::new,
                ),
                ProtocolKind::Sgip => {
                    let node = cfg.creds.node_id;
                    spawn_supervisor(params, shared.clone(), cfg.reconnect, move || {
                        dialect::sgip::SgipDialect::new(node)
                    })
                }
            };
            tasks.push(task);
        }
        Ok((
            LinkHandle {
                name,
                tx,
                rx,
                utx,
                urx,
                shutdown: sd_tx,
                events: ev_tx,
                tasks,
                sgip_addr,
                rate,
                io,
            },
            ev_rx,
        ))
    }
}

fn spawn_supervisor<D: Dialect, F>(
    p: ConnParams,
    sh: ConnShared,
    backoff: Backoff,
    make: F,
) -> JoinHandle<()>
where
    F: Fn() -> D + Send + 'static,
{
    tokio::spawn(async move {
        let mut rng = fastrand::Rng::with_seed(
            0x5eed_u64 ^ ((p.conn_id as u64) << 32) ^ u64::from(std::process::id()),
        );
        let reconnects = metrics::counter!(m::SESSION_RECONNECTS, "carrier" => p.link.to_string(), "protocol" => make().name());
        let mut attempt = 0u32;
        let mut shutdown = sh.shutdown.clone();
        // Throttled submits to send again; kept across reconnects.
        let mut retry: VecDeque<Retry> = VecDeque::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let started = Instant::now();
            let end = run_conn(make(), &p, &sh, &mut retry).await;
            let reason = end.reason;
            let _ = sh
                .events
                .send(LinkEvent::Down {
                    conn: p.conn_id,
                    reason: reason.clone(),
                })
                .await;
            if reason == DownReason::Shutdown || *shutdown.borrow() {
                break;
            }
            // A session that stayed up a while resets the backoff.
            if end.was_up && started.elapsed() > backoff.max() {
                attempt = 0;
            }
            let delay = backoff.delay(attempt, &mut rng);
            attempt = attempt.saturating_add(1);
            reconnects.increment(1);
            match &reason {
                DownReason::LoginRefused { code, class } => warn!(
                    carrier = %p.link, conn_id = p.conn_id, code, class = %class, retry_in = ?delay,
                    "login refused; check the account and secret; retrying after backoff"
                ),
                other => {
                    warn!(carrier = %p.link, conn_id = p.conn_id, reason = %other, retry_in = ?delay, "reconnecting after backoff")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => break,
            }
        }
        // Shut down with throttled submits still waiting: the carrier's last
        // word on them was "throttled"; the engine may resubmit.
        if !retry.is_empty() {
            warn!(carrier = %p.link, conn_id = p.conn_id, count = retry.len(), "shutting down with throttled submits not yet resent");
        }
        for r in retry.drain(..) {
            let _ = sh
                .events
                .send(LinkEvent::Rejected {
                    token: r.job.token,
                    code: r.code,
                    class: smsgw_codecs::StatusClass::Throttled,
                    latency: r.latency,
                })
                .await;
        }
    })
}

impl LinkHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues one segment; waits while the queue is full (backpressure).
    pub async fn submit(&self, req: SubmitRequest) -> Result<(), SubmitError> {
        if *self.shutdown.borrow() {
            return Err(SubmitError::Closed(req));
        }
        self.tx
            .send(req)
            .await
            .map_err(|e| SubmitError::Closed(e.into_inner()))
    }

    /// Queues without waiting.
    pub fn try_submit(&self, req: SubmitRequest) -> Result<(), SubmitError> {
        if *self.shutdown.borrow() {
            return Err(SubmitError::Closed(req));
        }
        self.tx.try_send(req).map_err(|e| match e {
            async_channel::TrySendError::Full(r) => SubmitError::Full(r),
            async_channel::TrySendError::Closed(r) => SubmitError::Closed(r),
        })
    }

    /// A cloneable submit-only handle (for producer tasks).
    pub fn submitter(&self) -> Submitter {
        Submitter {
            tx: self.tx.clone(),
            utx: self.utx.clone(),
            shutdown: self.shutdown.subscribe(),
        }
    }

    /// The adaptive submit rate now (`None` when unlimited).
    pub fn current_tps(&self) -> Option<f64> {
        self.rate.current_tps()
    }

    /// (write syscalls, frames written) over all connections so far.
    pub fn io_stats(&self) -> (u64, u64) {
        self.io.snapshot()
    }

    /// Submits waiting for a connection.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Urgent submits waiting for a connection.
    pub fn urgent_queued(&self) -> usize {
        self.utx.len()
    }

    /// Where the SGIP SP-side server listens (the real port when 0 was asked).
    pub fn sgip_server_addr(&self) -> Option<SocketAddr> {
        self.sgip_addr
    }

    /// Stops taking submits, lets in-flight ones settle (up to the grace
    /// period), terminates every session, and reports still-queued submits
    /// as `Unsent`. Every token gets its result before this returns, as long
    /// as the event receiver is drained.
    pub async fn shutdown(self) {
        info!(carrier = %self.name, "link shutting down");
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.tx.close();
        self.utx.close();
        while let Ok(req) = self.urx.try_recv().or_else(|_| self.rx.try_recv()) {
            let _ = self
                .events
                .send(LinkEvent::Unsent { token: req.token })
                .await;
        }
    }
}

/// Reassembles MO segments of a link (segments of one message may arrive
/// on different connections) with `smsgw_codecs::reassembly`. Keyed by
/// (sender, receiving number). Sets that stay incomplete past the TTL are
/// delivered with what arrived (logged), never dropped silently.
#[derive(Clone)]
pub struct MoAssembler {
    inner: Arc<Mutex<Reassembler<(String, String)>>>,
}

impl MoAssembler {
    pub fn new(ttl: Duration) -> Self {
        MoAssembler {
            inner: Arc::new(Mutex::new(Reassembler::new(ttl, 10_000))),
        }
    }

    /// Feeds one MO segment; returns every message completed (or expired)
    /// by it. A segment whose UDH cannot be read is passed through whole.
    pub fn push(&self, seg: MoSegment, now: Instant) -> Vec<Mo> {
        let mut out = Vec::new();
        let flag = if seg.udhi { 1 } else { 0 };
        let (concat, payload) = match reassembly::segment_of(flag, &seg.mo.content) {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "mo user data header unreadable; delivering the content as is");
                out.push(seg.mo);
                return out;
            }
        };
        let template = |content: Bytes| Mo {
            content,
            ..seg.mo.clone()
        };
        let Some(concat) = concat else {
            out.push(template(payload));
            return out;
        };
        let mut st = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let key = (seg.mo.src.clone(), seg.mo.dest.clone());
        let mut expired = st.expire(now);
        match st.push(key, concat, payload.clone(), now) {
            Pushed::Complete(parts) => out.push(template(reassembly::join(&parts))),
            Pushed::Ignored => out.push(template(payload)),
            Pushed::Duplicate => {}
            Pushed::Pending { evicted, .. } => expired.extend(evicted),
        }
        drop(st);
        for e in expired {
            warn!(missing = ?e.missing(), total = e.total, "incomplete mo delivered after ttl");
            out.push(Mo {
                src: e.key.0.clone(),
                dest: e.key.1.clone(),
                content: reassembly::join(&e.arrived()),
                ..seg.mo.clone()
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(content: &'static [u8], udhi: bool) -> MoSegment {
        MoSegment {
            udhi,
            mo: Mo {
                src: "13800138000".into(),
                dest: "1065".into(),
                service_id: String::new(),
                msg_fmt: 0,
                content: Bytes::from_static(content),
                link_id: String::new(),
            },
        }
    }

    #[test]
    fn mo_segments_reassemble_in_order() {
        let a = MoAssembler::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            a.push(seg(b"plain", false), t0)[0].content,
            Bytes::from_static(b"plain")
        );
        // 8-bit reference 7, two parts, arriving out of order.
        assert!(a
            .push(seg(&[5, 0, 3, 7, 2, 2, b'l', b'd'], true), t0)
            .is_empty());
        let done = a.push(seg(&[5, 0, 3, 7, 2, 1, b'w', b'o', b'r'], true), t0);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].content, Bytes::from_static(b"world"));
    }

    #[test]
    fn incomplete_mo_is_delivered_after_ttl_not_dropped() {
        let a = MoAssembler::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(a.push(seg(&[5, 0, 3, 9, 3, 1, b'a'], true), t0).is_empty());
        let later = a.push(seg(b"next", false), t0 + Duration::from_secs(5));
        assert_eq!(later.len(), 1, "non-udh passes straight through");
        let later = a.push(
            seg(&[5, 0, 3, 10, 2, 1, b'x'], true),
            t0 + Duration::from_secs(5),
        );
        assert_eq!(
            later.len(),
            1,
            "the expired set comes out with what arrived"
        );
        assert_eq!(later[0].content, Bytes::from_static(b"a"));
    }

    #[test]
    fn config_validation() {
        let creds = Credentials {
            account: "a".into(),
            secret: "b".into(),
            node_id: 0,
        };
        let mut c = LinkConfig::new("x", ProtocolKind::Cmpp3, "127.0.0.1:1", creds);
        assert!(c.validate().is_ok());
        c.connections = 0;
        assert!(c.validate().is_err());
        c.connections = 1;
        c.sgip_server = Some(SgipServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            account: "s".into(),
            secret: "p".into(),
        });
        assert!(c.validate().is_err(), "sgip server on a cmpp link");
    }
}

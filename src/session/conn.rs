//! One async driver per carrier connection.
//!
//! A single `tokio::select!` loop over: shutdown, inbound bytes, the shared
//! submit queue (only when logged in, the window has room and the rate
//! limiter allows) and ONE `Sleep` that is reset to the next deadline (the
//! window's, the heartbeat's, the rate limiter's or the shutdown grace's).
//! After every branch the window's events are drained and everything that is
//! ready to go out is written with a single `write_all` of one buffer.
//!
//! A status report is not answered on receipt: its reply is encoded and
//! handed out in the report's [`ReportAck`]; the consumer's `ack()` (after
//! storing it) comes back over a channel that is one more `select!` branch.
//!
//! All protocol knowledge comes from the [`Dialect`]; all window logic from
//! [`SendWindow`]. Nothing here panics; every submit pulled from the queue
//! ends in exactly one result event.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use smsgw_codecs::wire::{HexFmt, Timestamp};
use smsgw_codecs::{Framer, Inbound, Packet, Protocol, StatusClass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, info_span, trace, warn, Instrument};

use super::dialect::{Classified, Credentials, Dialect, LoginVerdict, SubmitOutcome};
use super::link::MoAssembler;
use super::metrics as m;
use super::rate::SharedRate;
use super::types::{DownReason, LinkEvent, ReportAck, SubmitRequest};
use super::window::{SendWindow, WindowConfig, WindowEvent};

/// Per-connection timers and limits.
#[derive(Debug, Clone)]
pub struct ConnTimers {
    pub connect_timeout: Duration,
    pub login_timeout: Duration,
    /// Send a heartbeat after this long without inbound traffic.
    pub heartbeat_idle: Duration,
    /// Wait this long for the heartbeat's answer.
    pub heartbeat_timeout: Duration,
    /// Drop the connection after this many unanswered heartbeats.
    pub heartbeat_max_missed: u32,
    /// On shutdown, wait at most this long for in-flight submits to settle
    /// and for the terminate response.
    pub shutdown_grace: Duration,
}

impl Default for ConnTimers {
    fn default() -> Self {
        ConnTimers {
            connect_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(10),
            heartbeat_idle: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(60),
            heartbeat_max_missed: 3,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything one connection needs that is fixed for its lifetime.
#[derive(Debug, Clone)]
pub(crate) struct ConnParams {
    pub link: Arc<str>,
    pub conn_id: u32,
    pub addr: String,
    pub creds: Credentials,
    pub window: WindowConfig,
    pub timers: ConnTimers,
    pub max_frame: usize,
    pub throttle: ThrottleRetry,
}

/// What the session does with a submit the carrier answered "throttled"
/// (CMPP result 8, SMGP 75, ...): after the shared rate has been cut, the
/// same segment is sent again (a new sequence) no sooner than
/// `delay × (throttles so far)`, capped at 10× `delay`, and at most
/// `max_resends` times; after that the engine gets `Rejected{Throttled}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRetry {
    /// 0 reports the first throttle straight away (the old behaviour).
    pub max_resends: u32,
    pub delay: Duration,
}

impl Default for ThrottleRetry {
    fn default() -> Self {
        ThrottleRetry {
            max_resends: 10,
            delay: Duration::from_millis(100),
        }
    }
}

/// Write-side counters of a link, summed over its connections: how many
/// frames went out in how many `write` syscalls (frames / writes > 1 means
/// batching works).
#[derive(Debug, Default)]
pub struct IoStats {
    pub writes: AtomicU64,
    pub frames: AtomicU64,
}

impl IoStats {
    /// (writes, frames) so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.writes.load(Ordering::Relaxed),
            self.frames.load(Ordering::Relaxed),
        )
    }
}

/// A throttled submit waiting to be sent again. Owned by the connection's
/// supervisor, so it survives a reconnect; reported as `Rejected` if the
/// link shuts down first.
#[derive(Debug)]
pub(crate) struct Retry {
    pub job: SubmitRequest,
    /// Throttle answers so far.
    pub throttles: u32,
    pub not_before: Instant,
    /// The last throttle answer, for the final `Rejected`.
    pub code: u32,
    pub latency: Duration,
}

/// What the connections of a link share.
#[derive(Clone)]
pub(crate) struct ConnShared {
    pub queue: async_channel::Receiver<SubmitRequest>,
    /// Taken before `queue` (otp).
    pub urgent: async_channel::Receiver<SubmitRequest>,
    pub events: mpsc::Sender<LinkEvent>,
    pub rate: SharedRate,
    pub shutdown: watch::Receiver<bool>,
    pub mo: MoAssembler,
    pub io: Arc<IoStats>,
    /// See `LinkConfig::room`.
    pub room: Option<Arc<tokio::sync::Notify>>,
}

/// A request in the window: the request itself (kept for a resend after a
/// throttle) and the encoded frame, kept for timeout resends (Bytes:
/// cloning is a reference count).
#[derive(Debug, Clone)]
struct InFlight {
    job: SubmitRequest,
    frame: Bytes,
    /// Throttle answers it already had.
    throttles: u32,
}

/// How the connection ended, and whether it ever logged in.
pub(crate) struct ConnEnd {
    pub reason: DownReason,
    pub was_up: bool,
}

/// The clock the driver uses: tokio's, so `tokio::time::pause` drives it
/// in tests. The sans-IO parts take it as a plain `Instant`.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The wall-clock timestamp for logins and SGIP sequences (`MMDDhhmmss`,
/// local time; see [`crate::clock`]).
pub fn wall_timestamp() -> Timestamp {
    crate::clock::carrier_timestamp()
}

/// `MMDDhhmmss` of a Unix time (already shifted to the wanted zone).
pub fn timestamp_from_unix(secs: u64) -> Timestamp {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Timestamp::from_parts(
        mo,
        d,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

struct ConnMetrics {
    sent_submit: Counter,
    sent_other: Counter,
    received: Counter,
    results: [Counter; 6],
    latency: Histogram,
    in_flight: Gauge,
    capacity: Gauge,
    sessions: Gauge,
    retries: Counter,
    throttle_resends: Counter,
    hb_missed: Counter,
    throttles: Counter,
    rate: Gauge,
    decode_body: Counter,
    decode_frame: Counter,
    reports_ok: Counter,
    reports_failed: Counter,
}

impl ConnMetrics {
    fn new(link: &str, protocol: &'static str) -> Self {
        let l = |name: &'static str| counter!(name, "carrier" => link.to_owned(), "protocol" => protocol);
        let result = |class: &'static str| counter!(m::SUBMIT_RESULTS, "carrier" => link.to_owned(), "protocol" => protocol, "status_class" => class);
        ConnMetrics {
            sent_submit: counter!(m::PDUS_SENT, "carrier" => link.to_owned(), "protocol" => protocol, "command" => "submit"),
            sent_other: counter!(m::PDUS_SENT, "carrier" => link.to_owned(), "protocol" => protocol, "command" => "other"),
            received: l(m::PDUS_RECEIVED),
            results: [
                result("ok"),
                result("throttled"),
                result("retryable"),
                result("permanent"),
                result("timeout"),
                result("unknown"),
            ],
            latency: histogram!(m::SUBMIT_RESPONSE_DURATION, "carrier" => link.to_owned(), "protocol" => protocol),
            in_flight: gauge!(m::WINDOW_IN_FLIGHT, "carrier" => link.to_owned(), "protocol" => protocol),
            capacity: gauge!(m::WINDOW_CAPACITY, "carrier" => link.to_owned(), "protocol" => protocol),
            sessions: gauge!(m::SESSIONS, "carrier" => link.to_owned(), "protocol" => protocol),
            retries: counter!(m::RETRIES, "carrier" => link.to_owned(), "protocol" => protocol, "reason" => "response_timeout"),
            throttle_resends: counter!(m::RETRIES, "carrier" => link.to_owned(), "protocol" => protocol, "reason" => "throttled"),
            hb_missed: l(m::HEARTBEATS_MISSED),
            throttles: l(m::THROTTLES),
            rate: gauge!(m::RATE_LIMIT_TPS, "carrier" => link.to_owned(), "protocol" => protocol),
            decode_body: counter!(m::DECODE_ERRORS, "carrier" => link.to_owned(), "protocol" => protocol, "kind" => "body"),
            decode_frame: counter!(m::DECODE_ERRORS, "carrier" => link.to_owned(), "protocol" => protocol, "kind" => "framing"),
            reports_ok: counter!(m::DELIVERY_REPORTS, "carrier" => link.to_owned(), "protocol" => protocol, "delivered" => "true"),
            reports_failed: counter!(m::DELIVERY_REPORTS, "carrier" => link.to_owned(), "protocol" => protocol, "delivered" => "false"),
        }
    }

    fn result(&self, class: StatusClass) -> &Counter {
        match class {
            StatusClass::Ok => &self.results[0],
            StatusClass::Throttled => &self.results[1],
            StatusClass::Retryable => &self.results[2],
            StatusClass::Permanent => &self.results[3],
        }
    }
}

/// Runs one connection from connect to close. Emits `Up` after login and
/// every per-submit result; the caller emits `Down` with the returned reason.
pub(crate) async fn run_conn<D: Dialect>(
    dialect: D,
    p: &ConnParams,
    sh: &ConnShared,
    retry: &mut VecDeque<Retry>,
) -> ConnEnd {
    let span =
        info_span!("session", carrier = %p.link, protocol = dialect.name(), conn_id = p.conn_id);
    async move {
        let metrics = ConnMetrics::new(&p.link, dialect.name());
        let stream =
            match tokio::time::timeout(p.timers.connect_timeout, TcpStream::connect(&p.addr)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return ConnEnd {
                        reason: DownReason::Connect(e.to_string()),
                        was_up: false,
                    }
                }
                Err(_) => {
                    return ConnEnd {
                        reason: DownReason::Connect(format!(
                            "timed out after {:?}",
                            p.timers.connect_timeout
                        )),
                        was_up: false,
                    }
                }
            };
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let (rd, wr) = stream.into_split();
        let framer = Framer::new(dialect.protocol()).with_max_len(p.max_frame);
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let mut conn = Conn {
            d: dialect,
            p,
            sh,
            framer,
            rd,
            wr,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(8 * 1024),
            scratch: BytesMut::with_capacity(1024),
            window: SendWindow::new(p.window),
            pending: Vec::new(),
            retry,
            wframes: 0,
            acks_tx,
            acks_rx,
            m: metrics,
        };
        if let Err(reason) = conn.login(peer).await {
            return ConnEnd {
                reason,
                was_up: false,
            };
        }
        conn.m.sessions.increment(1.0);
        conn.m.capacity.increment(p.window.capacity() as f64);
        let _ = sh.events.send(LinkEvent::Up { conn: p.conn_id }).await;
        let reason = conn.run().await;
        conn.m.sessions.decrement(1.0);
        conn.m.capacity.decrement(p.window.capacity() as f64);
        conn.lose_in_flight().await;
        match &reason {
            DownReason::Shutdown => info!("session closed"),
            other => warn!(reason = %other, "session lost"),
        }
        ConnEnd {
            reason,
            was_up: true,
        }
    }
    .instrument(span)
    .await
}

struct Conn<'a, D: Dialect> {
    d: D,
    p: &'a ConnParams,
    sh: &'a ConnShared,
    framer: Framer<D::P>,
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    rbuf: BytesMut,
    /// Everything to write this turn: one `write_all` per loop iteration.
    wbuf: BytesMut,
    scratch: BytesMut,
    window: SendWindow<<D::P as Protocol>::Seq, InFlight>,
    /// Events produced during a turn, sent after it.
    pending: Vec<LinkEvent>,
    /// Throttled submits waiting to be sent again (the supervisor's).
    retry: &'a mut VecDeque<Retry>,
    /// Frames in `wbuf` not yet written.
    wframes: u64,
    /// Report answers released by [`ReportAck::ack`]: the encoded reply
    /// frames, written in the next turn. Dropped with the connection (the
    /// carrier resends unanswered reports).
    acks_tx: mpsc::UnboundedSender<Bytes>,
    acks_rx: mpsc::UnboundedReceiver<Bytes>,
    m: ConnMetrics,
}

type Seq<D> = <<D as Dialect>::P as Protocol>::Seq;
type Pdu<D> = <<D as Dialect>::P as Protocol>::Pdu;

impl<D: Dialect> Conn<'_, D> {
    /// Appends a frame to the write buffer. An encode failure of one of our
    /// own replies is logged and skipped (nothing the peer did).
    fn queue_frame(&mut self, seq: Seq<D>, pdu: &Pdu<D>) {
        match self.framer.encode(seq, pdu, &mut self.wbuf) {
            Ok(()) => {
                self.wframes += 1;
                self.m.sent_other.increment(1);
            }
            Err(e) => warn!(error = %e, ?seq, "could not encode a reply"),
        }
    }

    /// A submit taken from a link queue: sends it and whatever else is
    /// queued right now. `None`: the queue closed, the link is going away.
    fn take_job(
        &mut self,
        job: Option<SubmitRequest>,
        closing: &mut Option<Instant>,
        grace: Duration,
    ) {
        match job {
            Some(job) => {
                let t = now();
                self.send_job(job, 0, wall_timestamp(), t);
                self.took_job();
                self.send_ready(t);
            }
            None => {
                closing.get_or_insert(now() + grace);
            }
        }
    }

    /// Batch: sends whatever else is queued right now (urgent first) while
    /// the window and the rate allow.
    fn send_ready(&mut self, t: Instant) {
        let ts = wall_timestamp();
        while self.window.can_send() && self.sh.rate.poll_ready(t).is_ok() {
            match self
                .sh
                .urgent
                .try_recv()
                .or_else(|_| self.sh.queue.try_recv())
            {
                Ok(job) => {
                    self.send_job(job, 0, ts, t);
                    self.took_job();
                }
                Err(_) => break,
            }
        }
    }

    /// A submit left the link's queues: tell the feeder there is room.
    fn took_job(&self) {
        if let Some(room) = &self.sh.room {
            room.notify_one();
        }
    }

    /// Appends a released report answer to the write buffer.
    fn queue_ack(&mut self, frame: Bytes) {
        trace!(bytes = frame.len(), "report answered");
        self.wbuf.extend_from_slice(&frame);
        self.wframes += 1;
        self.m.sent_other.increment(1);
    }

    fn queue_packet(&mut self, pkt: Packet<D::P>) {
        self.queue_frame(pkt.seq, &pkt.pdu);
    }

    async fn flush(&mut self) -> Result<(), DownReason> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        trace!(target: "smsgw::wire", bytes = self.wbuf.len(), hex = %HexFmt(&self.wbuf), "write");
        // `write` in a loop rather than `write_all` to count the syscalls.
        let mut off = 0;
        let mut writes = 0u64;
        let res = loop {
            if off == self.wbuf.len() {
                break Ok(());
            }
            match self.wr.write(&self.wbuf[off..]).await {
                Ok(0) => break Err(DownReason::Io("connection closed while writing".into())),
                Ok(n) => {
                    off += n;
                    writes += 1;
                }
                Err(e) => break Err(DownReason::Io(e.to_string())),
            }
        };
        self.wbuf.clear();
        self.sh.io.writes.fetch_add(writes, Ordering::Relaxed);
        self.sh.io.frames.fetch_add(self.wframes, Ordering::Relaxed);
        self.wframes = 0;
        res
    }

    async fn emit_pending(&mut self) {
        for ev in self.pending.drain(..) {
            // A dropped receiver means nobody listens any more; nothing to do.
            let _ = self.sh.events.send(ev).await;
        }
    }

    /// Reads until at least one more byte arrived. `Ok(false)` on EOF.
    async fn read_more(&mut self) -> Result<bool, DownReason> {
        match self.rd.read_buf(&mut self.rbuf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(DownReason::Io(e.to_string())),
        }
    }

    fn framing_error(&self, e: &dyn std::fmt::Display) -> DownReason {
        self.m.decode_frame.increment(1);
        let shown = &self.rbuf[..self.rbuf.len().min(64)];
        warn!(error = %e, "framing error, closing the connection");
        debug!(hex = %HexFmt(shown), "bytes at the framing error");
        DownReason::Framing(e.to_string())
    }

    async fn login(&mut self, peer: Option<SocketAddr>) -> Result<(), DownReason> {
        let ts = wall_timestamp();
        let seq = self.d.next_seq(ts);
        let pdu = self
            .d
            .login(&self.p.creds, ts)
            .map_err(|e| DownReason::Config(format!("cannot build the login: {e}")))?;
        self.queue_frame(seq, &pdu);
        self.flush().await?;
        let deadline = tokio::time::Instant::now() + self.p.timers.login_timeout;
        loop {
            while let Some(item) = self
                .framer
                .decode(&mut self.rbuf)
                .map_err(|e| self.framing_error(&e))?
            {
                self.m.received.increment(1);
                let Inbound::Packet(pkt) = item else {
                    self.m.decode_body.increment(1);
                    warn!("malformed packet before login");
                    continue;
                };
                match self.d.classify(&self.p.creds, pkt) {
                    Classified::LoginResp {
                        verdict,
                        auth_mismatch,
                    } => {
                        if auth_mismatch {
                            warn!("carrier authenticator did not verify; continuing as the reference implementations do");
                        }
                        return match verdict {
                            LoginVerdict::Ok => {
                                info!(peer = ?peer, account = %self.p.creds.account, "logged in");
                                Ok(())
                            }
                            LoginVerdict::Refused { code, class } => {
                                warn!(code, class = %class, "login refused by the carrier");
                                Err(DownReason::LoginRefused { code, class })
                            }
                        };
                    }
                    Classified::HeartbeatReq { reply } => self.queue_packet(reply),
                    other => debug!(?other, "ignoring packet before login"),
                }
            }
            self.flush().await?;
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    return Err(DownReason::Io(
                        "peer closed the connection during login".into(),
                    ))
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(DownReason::LoginTimeout),
            }
        }
    }

    /// Encodes and sends one submit into the window. `throttles`: throttle
    /// answers it already had (0 for a fresh submit).
    fn send_job(&mut self, job: SubmitRequest, throttles: u32, ts: Timestamp, now: Instant) {
        let pdu = match self.d.submit(&self.p.creds, &job.segment) {
            Ok(pdu) => pdu,
            Err(e) => {
                self.pending.push(LinkEvent::Invalid {
                    token: job.token,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let seq = self.d.next_seq(ts);
        self.scratch.clear();
        if let Err(e) = self.framer.encode(seq, &pdu, &mut self.scratch) {
            self.pending.push(LinkEvent::Invalid {
                token: job.token,
                reason: e.to_string(),
            });
            return;
        }
        let frame = self.scratch.split().freeze();
        let token = job.token;
        match self.window.on_sent(
            seq,
            InFlight {
                job,
                frame: frame.clone(),
                throttles,
            },
            now,
        ) {
            Ok(()) => {
                debug!(?seq, token, throttles, "submit");
                self.wbuf.extend_from_slice(&frame);
                self.wframes += 1;
                self.m.sent_submit.increment(1);
                self.m.in_flight.increment(1.0);
                self.sh.rate.consume(now);
            }
            Err(refused) => {
                // Not written: the engine may safely resubmit it.
                warn!(?seq, reason = %refused, "window refused a submit");
                self.pending.push(LinkEvent::Unsent {
                    token: refused.into_msg().job.token,
                });
            }
        }
    }

    fn drain_window_events(&mut self) {
        while let Some(ev) = self.window.poll_event() {
            match ev {
                WindowEvent::Resend { seq, msg, attempt } => {
                    warn!(?seq, attempt, timeout = ?self.p.window.timeout(), "no response, resending");
                    self.m.retries.increment(1);
                    self.m.sent_submit.increment(1);
                    self.wbuf.extend_from_slice(&msg.frame);
                    self.wframes += 1;
                }
                WindowEvent::TimedOut { seq, msg, sends } => {
                    warn!(?seq, sends, timeout = ?self.p.window.timeout(), "submit timed out");
                    self.m.in_flight.decrement(1.0);
                    self.m.results[4].increment(1);
                    self.pending.push(LinkEvent::TimedOut {
                        token: msg.job.token,
                    });
                }
            }
        }
    }

    /// Handles one decoded item. `Err` closes the connection.
    fn on_inbound(
        &mut self,
        item: Inbound<D::P>,
        now: Instant,
        terminating: bool,
    ) -> Result<(), DownReason> {
        self.m.received.increment(1);
        let pkt = match item {
            Inbound::Packet(pkt) => pkt,
            Inbound::Malformed {
                command_id,
                seq,
                error,
                frame,
            } => {
                self.m.decode_body.increment(1);
                warn!(?seq, command_id = format_args!("{command_id:#010x}"), error = %error, "malformed packet");
                debug!(hex = %HexFmt(&frame[..frame.len().min(256)]), "malformed frame");
                return match self.d.malformed_reply(command_id, seq, &error, &frame) {
                    Some(reply) => {
                        self.queue_packet(reply);
                        Ok(())
                    }
                    None if command_id & 0x8000_0000 == 0 => Err(DownReason::Framing(format!(
                        "malformed request {command_id:#010x}: {error}"
                    ))),
                    None => Ok(()),
                };
            }
        };
        match self.d.classify(&self.p.creds, pkt) {
            Classified::SubmitResp { seq, outcome } => {
                let Some(ans) = self.window.on_response(seq, outcome.class(), now) else {
                    debug!(?seq, "response for nothing in flight (late or duplicate)");
                    return Ok(());
                };
                self.m.in_flight.decrement(1.0);
                self.m.latency.record(ans.latency.as_secs_f64());
                self.m.result(outcome.class()).increment(1);
                let token = ans.msg.job.token;
                match outcome {
                    SubmitOutcome::Accepted(carrier_id) => {
                        debug!(?seq, token, %carrier_id, "accepted");
                        self.pending.push(LinkEvent::Accepted {
                            token,
                            carrier_id,
                            conn: self.p.conn_id,
                            latency: ans.latency,
                            answered_at: now,
                        });
                    }
                    SubmitOutcome::Rejected { code, class } => {
                        debug!(?seq, token, code, %class, "rejected");
                        if class == StatusClass::Throttled && self.sh.rate.on_throttled(now) {
                            self.m.throttles.increment(1);
                            let tps = self.sh.rate.current_tps().unwrap_or(0.0);
                            self.m.rate.set(tps);
                            warn!(code, tps, "carrier throttled us, slowing down");
                        }
                        let throttles = ans.msg.throttles + 1;
                        if class == StatusClass::Throttled
                            && throttles <= self.p.throttle.max_resends
                        {
                            // Send it again later, paced by the (cut) rate.
                            let wait = self.p.throttle.delay * throttles.min(10);
                            self.m.throttle_resends.increment(1);
                            self.retry.push_back(Retry {
                                job: ans.msg.job,
                                throttles,
                                not_before: now + wait,
                                code,
                                latency: ans.latency,
                            });
                            return Ok(());
                        }
                        self.pending.push(LinkEvent::Rejected {
                            token,
                            code,
                            class,
                            latency: ans.latency,
                        });
                    }
                }
            }
            Classified::Report { mut report, reply } => {
                // Answered only when the consumer acks (after storing it).
                self.scratch.clear();
                match self.framer.encode(reply.seq, &reply.pdu, &mut self.scratch) {
                    Ok(()) => {
                        let frame = self.scratch.split().freeze();
                        report.ack = ReportAck::new(self.acks_tx.clone(), frame);
                    }
                    Err(e) => {
                        warn!(error = %e, seq = ?reply.seq, "could not encode a report reply")
                    }
                }
                if report.delivered {
                    self.m.reports_ok.increment(1);
                } else {
                    self.m.reports_failed.increment(1);
                }
                debug!(carrier_id = %report.carrier_id, stat = %report.stat, "status report");
                self.pending.push(LinkEvent::Report(report));
            }
            Classified::Mo { mo, reply } => {
                self.queue_packet(reply);
                for mo in self.sh.mo.push(mo, now) {
                    self.pending.push(LinkEvent::Mo(mo));
                }
            }
            Classified::HeartbeatReq { reply } => {
                debug!("heartbeat from peer");
                self.queue_packet(reply);
            }
            Classified::HeartbeatResp => debug!("heartbeat answered"),
            Classified::CloseReq { reply } => {
                info!("peer asked to close the session");
                self.queue_packet(reply);
                return Err(DownReason::PeerClosed);
            }
            Classified::CloseResp => {
                if terminating {
                    return Err(DownReason::Shutdown);
                }
                debug!("unexpected terminate response");
            }
            Classified::Other { reply } => {
                if let Some(reply) = reply {
                    self.queue_packet(reply);
                }
            }
            Classified::LoginResp { .. } | Classified::Ignore => debug!("ignored packet"),
        }
        Ok(())
    }

    /// The main loop, after login. Returns why it ended.
    async fn run(&mut self) -> DownReason {
        let timers = self.p.timers.clone();
        let hb_supported = self.d.heartbeat().is_some();
        let mut shutdown = self.sh.shutdown.clone();
        let mut last_rx = now();
        let mut hb_deadline: Option<Instant> = None;
        let mut hb_missed = 0u32;
        // Set once shutdown starts: stop pulling, settle, then terminate.
        let mut closing: Option<Instant> = if *shutdown.borrow() {
            Some(now() + timers.shutdown_grace)
        } else {
            None
        };
        let mut terminate_deadline: Option<Instant> = None;
        let far = Duration::from_secs(3600);
        let sleep = tokio::time::sleep(far);
        tokio::pin!(sleep);

        // Whatever arrived right behind the login response (a DELIVER, a
        // heartbeat) is handled now, not after the next read.
        if !self.rbuf.is_empty() {
            let res = self.decode_all(now(), false);
            let flushed = self.flush().await;
            self.emit_pending().await;
            if let Err(reason) = res.and(flushed) {
                return reason;
            }
        }

        loop {
            let t = now();
            // Terminate once in-flight has settled or the grace ran out.
            if let Some(grace) = closing {
                if terminate_deadline.is_none() && (self.window.is_empty() || t >= grace) {
                    let ts = wall_timestamp();
                    let seq = self.d.next_seq(ts);
                    let pdu = self.d.terminate();
                    self.queue_frame(seq, &pdu);
                    if let Err(e) = self.flush().await {
                        return e;
                    }
                    info!(in_flight = self.window.in_flight(), "terminate sent");
                    terminate_deadline = Some(
                        t + timers
                            .shutdown_grace
                            .min(Duration::from_secs(5))
                            .max(Duration::from_millis(100)),
                    );
                }
            }
            if terminate_deadline.is_some_and(|d| t >= d) {
                return DownReason::Shutdown;
            }

            // Throttled submits whose time has come go first.
            if closing.is_none() && self.send_retries(t) {
                self.drain_window_events();
                let flushed = self.flush().await;
                self.emit_pending().await;
                if let Err(reason) = flushed {
                    return reason;
                }
            }

            // One wake-up: the earliest of every deadline.
            let mut wake = t + far;
            let mut arm = |at: Option<Instant>| {
                if let Some(at) = at {
                    wake = wake.min(at);
                }
            };
            arm(self.window.poll_timeout());
            if hb_supported {
                arm(Some(hb_deadline.unwrap_or(last_rx + timers.heartbeat_idle)));
            }
            arm(closing);
            arm(terminate_deadline);
            if closing.is_none() && self.window.can_send() {
                // A due retry held back by the rate waits on the rate's
                // deadline (armed below), never on a past instant.
                arm(self
                    .retry
                    .front()
                    .map(|r| r.not_before)
                    .filter(|&at| at > t));
            }
            let mut pull = closing.is_none() && self.window.can_send();
            if pull {
                if let Err(at) = self.sh.rate.poll_ready(t) {
                    pull = false;
                    arm(Some(at));
                }
            }
            sleep.as_mut().reset(tokio::time::Instant::from_std(wake));

            let step: Result<(), DownReason> = tokio::select! {
                biased;
                changed = shutdown.changed(), if closing.is_none() => {
                    let _ = changed; // sender gone counts as shutdown too
                    info!(in_flight = self.window.in_flight(), "shutting down the session");
                    closing = Some(now() + timers.shutdown_grace);
                    Ok(())
                }
                // Before reads: a busy socket must not starve the answers.
                Some(frame) = self.acks_rx.recv() => {
                    self.queue_ack(frame);
                    // Batch: every other ack already released.
                    while let Ok(frame) = self.acks_rx.try_recv() {
                        self.queue_ack(frame);
                    }
                    Ok(())
                }
                read = self.rd.read_buf(&mut self.rbuf) => {
                    match read {
                        Ok(0) => Err(DownReason::Io("peer closed the connection".into())),
                        Err(e) => Err(DownReason::Io(e.to_string())),
                        Ok(_) => {
                            let t = now();
                            last_rx = t;
                            hb_deadline = None;
                            hb_missed = 0;
                            self.decode_all(t, terminate_deadline.is_some())
                        }
                    }
                }
                // urgent (otp) first
                job = self.sh.urgent.recv(), if pull => {
                    self.take_job(job.ok(), &mut closing, timers.shutdown_grace);
                    Ok(())
                }
                job = self.sh.queue.recv(), if pull => {
                    self.take_job(job.ok(), &mut closing, timers.shutdown_grace);
                    Ok(())
                }
                () = &mut sleep => {
                    let t = now();
                    self.window.handle_timeout(t);
                    if hb_supported {
                        match hb_deadline {
                            Some(d) if t >= d => {
                                hb_missed += 1;
                                self.m.hb_missed.increment(1);
                                warn!(missed = hb_missed, max = timers.heartbeat_max_missed, "heartbeat unanswered");
                                if hb_missed >= timers.heartbeat_max_missed {
                                    return self.finish(DownReason::HeartbeatMissed).await;
                                }
                                self.send_heartbeat();
                                hb_deadline = Some(t + timers.heartbeat_timeout);
                            }
                            None if t >= last_rx + timers.heartbeat_idle => {
                                debug!("idle, sending heartbeat");
                                self.send_heartbeat();
                                hb_deadline = Some(t + timers.heartbeat_timeout);
                            }
                            _ => {}
                        }
                    }
                    Ok(())
                }
            };

            self.drain_window_events();
            let flushed = self.flush().await;
            self.emit_pending().await;
            if let Err(reason) = step.and(flushed) {
                return reason;
            }
        }
    }

    /// Handles every complete frame in the read buffer.
    fn decode_all(&mut self, now: Instant, terminating: bool) -> Result<(), DownReason> {
        loop {
            match self.framer.decode(&mut self.rbuf) {
                Ok(Some(item)) => self.on_inbound(item, now, terminating)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.framing_error(&e)),
            }
        }
    }

    /// Sends throttled submits that are due, as far as the window and the
    /// rate allow. True when anything was sent.
    fn send_retries(&mut self, now: Instant) -> bool {
        let mut sent = false;
        let ts = wall_timestamp();
        while self.window.can_send()
            && self.retry.front().is_some_and(|r| r.not_before <= now)
            && self.sh.rate.poll_ready(now).is_ok()
        {
            let Some(r) = self.retry.pop_front() else {
                break;
            };
            self.send_job(r.job, r.throttles, ts, now);
            sent = true;
        }
        sent
    }

    async fn finish(&mut self, reason: DownReason) -> DownReason {
        self.drain_window_events();
        let _ = self.flush().await;
        self.emit_pending().await;
        reason
    }

    fn send_heartbeat(&mut self) {
        if let Some(pdu) = self.d.heartbeat() {
            let seq = self.d.next_seq(wall_timestamp());
            self.queue_frame(seq, &pdu);
        }
    }

    /// Connection gone: every in-flight submit becomes unknown-outcome.
    async fn lose_in_flight(&mut self) {
        self.drain_window_events();
        let lost = self.window.drain_in_flight();
        if !lost.is_empty() {
            warn!(
                count = lost.len(),
                "connection ended with submits in flight; outcome unknown"
            );
        }
        for (_, msg) in lost {
            self.m.in_flight.decrement(1.0);
            self.m.results[5].increment(1);
            self.pending.push(LinkEvent::Unknown {
                token: msg.job.token,
            });
        }
        self.emit_pending().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_from_unix_table() {
        // 2026-12-04 15:07:30 UTC = 1796396850
        let table = [
            (1_796_396_850u64, 1204150730u32),
            (0, 101000000),
            (951_782_400, 229000000),    // 2000-02-29 00:00:00
            (1_767_225_599, 1231235959), // 2025-12-31 23:59:59
        ];
        for (secs, want) in table {
            assert_eq!(timestamp_from_unix(secs), Timestamp(want), "{secs}");
        }
    }
}

//! The accept loop and the per-connection driver, generic over a
//! [`Behavior`]. One task per connection: it reads with a large buffer,
//! decodes every complete frame, encodes all responses into one buffer and
//! writes once per batch. Reports, delayed responses, retries and
//! heartbeats are timers of that task (FIFO queues plus one `DelayQueue`),
//! never a task per message.

use bytes::{BufMut, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;
use tracing::{debug, info, info_span, trace, warn, Instrument};

use smsgw_codecs::wire::HexFmt;
use smsgw_codecs::{Framer, Inbound, Packet, Protocol};

use crate::behavior::{
    Behavior, Event, Job, LoginAttempt, PduOf, Refusal, ReportJob, SeqOf, SubmitInfo, SubmitStatus,
};
use crate::clock::{unix_millis, Civil};
use crate::config::SpLogin;
use crate::core::{AccountRt, ConnCmd, SimCore};
use crate::faults::{CorruptKind, FaultView};
use crate::rng::Rng;
use crate::stats::{Counters, ReceivedMessage};

const READ_BUF: usize = 64 * 1024;
/// How long a connection may stay without logging in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for connections to close (a peer that stopped
/// reading can hold the last write).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Accepts SP connections until shutdown, then waits for every connection
/// to close (their last responses written, their counters and received
/// messages recorded).
pub(crate) async fn serve<B: Behavior>(core: Arc<SimCore>, beh: Arc<B>, listener: TcpListener) {
    let mut shutdown = core.shutdown.clone();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let id = core.conn_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let conn = Conn::new(core.clone(), beh.clone(), id, peer, Mode::Server, None, VecDeque::new());
                    let span = info_span!("session", protocol = core.config.protocol.as_str(), conn_id = id, %peer);
                    let core2 = core.clone();
                    conns.spawn(async move {
                        let (_, leftover) = conn.run(stream).await;
                        for job in leftover {
                            core2.dispatch(job, Some(id), false);
                        }
                    }.instrument(span));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections as they go.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_WAIT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            left = conns.len(),
            "connections still open after {SHUTDOWN_WAIT:?}, aborting them"
        );
        conns.shutdown().await;
    }
}

/// SGIP: the SMG's own connection to the SP (Bind login type 2), carrying
/// Report and Deliver. Connects when there is something to send, re-binds
/// after a drop and resends what was not acknowledged.
pub(crate) async fn sp_link<B: Behavior>(
    core: Arc<SimCore>,
    beh: Arc<B>,
    addr: SocketAddr,
    login: SpLogin,
    mut rx: mpsc::UnboundedReceiver<ConnCmd>,
) {
    let mut shutdown = core.shutdown.clone();
    let mut carry: VecDeque<Job> = VecDeque::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        if carry.is_empty() {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(ConnCmd::Send(job)) => carry.push_back(job),
                    Some(ConnCmd::Corrupt(_)) => continue,
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
        let connect = tokio::select! {
            r = TcpStream::connect(addr) => r,
            _ = shutdown.changed() => return,
        };
        match connect {
            Ok(stream) => {
                Counters::inc(&core.counters.sp_link_connects);
                let id = core
                    .conn_seq
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                let conn = Conn::new(
                    core.clone(),
                    beh.clone(),
                    id,
                    addr,
                    Mode::SpLink(login.clone()),
                    Some(rx),
                    std::mem::take(&mut carry),
                );
                let span = info_span!("sp_link", protocol = core.config.protocol.as_str(), conn_id = id, peer = %addr);
                let (back, leftover) = conn.run(stream).instrument(span).await;
                rx = back;
                carry = leftover.into();
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                warn!(error = %e, %addr, "sp link connect failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {},
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        if *core.shutdown.borrow() {
            return;
        }
    }
}

#[derive(Debug, Clone)]
enum Mode {
    /// We are the gateway; the SP logs in to us.
    Server,
    /// We are the SGIP SMG binding to the SP.
    SpLink(SpLogin),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitLogin,
    AwaitBindResp,
    Ready,
}

struct Conn<B: Behavior> {
    core: Arc<SimCore>,
    beh: Arc<B>,
    framer: Framer<B::P>,
    id: u64,
    peer: SocketAddr,
    mode: Mode,
    state: State,
    rng: Rng,
    faults: FaultView,
    account: Option<Arc<AccountRt>>,
    can_receive: bool,
    cmd_tx: Option<mpsc::UnboundedSender<ConnCmd>>,
    cmd_rx: mpsc::UnboundedReceiver<ConnCmd>,
    out: BytesMut,
    /// Responses held back by the delay fault.
    delayed: DelayQueue<Packet<B::P>>,
    /// Reports waiting for their delay (constant delay, so FIFO is sorted).
    reports: VecDeque<(Instant, ReportJob)>,
    /// Jobs sent and not yet acknowledged, by the sequence they went under.
    inflight: HashMap<SeqOf<B>, Job>,
    /// Ack deadlines (constant timeout, so FIFO is sorted).
    retry_q: VecDeque<(Instant, SeqOf<B>)>,
    /// Jobs received before the link was ready.
    backlog: VecDeque<Job>,
    seq_counter: u32,
    pdus_in: u64,
    hb_due: Instant,
    tests_outstanding: u32,
    disconnect_at: Option<Instant>,
    corrupt: Option<CorruptKind>,
    closing: Option<&'static str>,
    now: Instant,
    now_secs: i64,
}

impl<B: Behavior> Conn<B> {
    fn new(
        core: Arc<SimCore>,
        beh: Arc<B>,
        id: u64,
        peer: SocketAddr,
        mode: Mode,
        rx: Option<mpsc::UnboundedReceiver<ConnCmd>>,
        backlog: VecDeque<Job>,
    ) -> Self {
        let (cmd_tx, cmd_rx) = match rx {
            Some(rx) => (None, rx),
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), rx)
            }
        };
        let framer = Framer::new(beh.protocol()).with_max_len(core.config.max_frame_len);
        let now = Instant::now();
        Conn {
            rng: Rng::derive(core.seed, id),
            faults: FaultView::new(&core.faults),
            framer,
            id,
            peer,
            state: match mode {
                Mode::Server => State::AwaitLogin,
                Mode::SpLink(_) => State::AwaitBindResp,
            },
            mode,
            account: None,
            can_receive: true,
            cmd_tx,
            cmd_rx,
            out: BytesMut::with_capacity(READ_BUF),
            delayed: DelayQueue::new(),
            reports: VecDeque::new(),
            inflight: HashMap::new(),
            retry_q: VecDeque::new(),
            backlog,
            seq_counter: 0,
            pdus_in: 0,
            hb_due: now + LOGIN_TIMEOUT,
            tests_outstanding: 0,
            disconnect_at: None,
            corrupt: None,
            closing: None,
            now,
            now_secs: 0,
            beh,
            core,
        }
    }

    fn account_name(&self) -> &str {
        self.account.as_ref().map_or("-", |a| &a.cfg.id)
    }

    fn tick(&mut self) {
        self.now = Instant::now();
        self.now_secs = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)) as i64
            + self.core.config.utc_offset_hours as i64 * 3600;
    }

    /// Runs the connection to its end; gives back the command receiver and
    /// every job that was not acknowledged.
    async fn run(mut self, mut stream: TcpStream) -> (mpsc::UnboundedReceiver<ConnCmd>, Vec<Job>) {
        let _ = stream.set_nodelay(true);
        Counters::inc(&self.core.counters.connections_open);
        Counters::inc(&self.core.counters.connections_total);
        debug!("connection opened");
        let mut inbuf = BytesMut::with_capacity(READ_BUF);
        let mut shutdown = self.core.shutdown.clone();
        self.tick();
        if let Mode::SpLink(login) = self.mode.clone() {
            match self.beh.sp_bind(&login.name, &login.password) {
                Some(bind) => {
                    let seq = self.next_seq();
                    self.write(seq, &bind);
                }
                None => self.closing = Some("protocol has no sp link"),
            }
        }
        let sleep = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(sleep);
        while self.closing.is_none() {
            if let Err(e) = self.flush(&mut stream).await {
                debug!(error = %e, "write failed");
                self.closing = Some("write failed");
                break;
            }
            sleep.as_mut().reset(self.next_deadline());
            if inbuf.capacity() - inbuf.len() < READ_BUF / 4 {
                inbuf.reserve(READ_BUF);
            }
            tokio::select! {
                r = stream.read_buf(&mut inbuf) => {
                    self.tick();
                    self.faults.refresh(&self.core.faults);
                    match r {
                        Ok(0) => {
                            if !inbuf.is_empty() {
                                debug!(account = self.account_name(), bytes = %HexFmt(&inbuf[..inbuf.len().min(64)]), "stream ended inside a frame");
                            }
                            self.closing = Some("peer closed");
                        }
                        Ok(_) => self.on_bytes(&mut inbuf),
                        Err(e) => {
                            debug!(error = %e, "read failed");
                            self.closing = Some("read failed");
                        }
                    }
                }
                Some(exp) = std::future::poll_fn(|cx| self.delayed.poll_expired(cx)), if !self.delayed.is_empty() => {
                    let pkt = exp.into_inner();
                    self.write(pkt.seq, &pkt.pdu);
                    Counters::inc(&self.core.counters.submit_responses_sent);
                }
                Some(cmd) = self.cmd_rx.recv() => {
                    self.tick();
                    self.faults.refresh(&self.core.faults);
                    match cmd {
                        ConnCmd::Send(job) => {
                            if self.state == State::Ready {
                                self.send_job(job);
                            } else {
                                self.backlog.push_back(job);
                            }
                        }
                        ConnCmd::Corrupt(kind) => self.corrupt = Some(kind),
                    }
                }
                _ = &mut sleep => {
                    self.tick();
                    self.faults.refresh(&self.core.faults);
                    self.on_timer();
                }
                _ = shutdown.changed() => self.closing = Some("shutdown"),
            }
        }
        // Best effort: responses already encoded (login refusal, terminate
        // response) still go out.
        let _ = self.flush(&mut stream).await;
        let _ = stream.shutdown().await;
        let reason = self.closing.unwrap_or("closed");
        info!(account = self.account_name(), peer = %self.peer, reason, "connection closed");
        self.core
            .counters
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(acct) = &self.account {
            acct.unregister(self.id);
        }
        let mut leftover: Vec<Job> = self.backlog.drain(..).collect();
        leftover.extend(self.reports.drain(..).map(|(_, r)| Job::Report(r)));
        leftover.extend(self.inflight.drain().map(|(_, j)| j));
        // Commands routed to us after we left the account's list.
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            if let ConnCmd::Send(job) = cmd {
                leftover.push(job);
            }
        }
        (self.cmd_rx, leftover)
    }

    fn next_deadline(&self) -> Instant {
        let mut d = self.hb_due;
        if let Some((t, _)) = self.reports.front() {
            d = d.min(*t);
        }
        if let Some((t, _)) = self.retry_q.front() {
            d = d.min(*t);
        }
        if let Some(t) = self.disconnect_at {
            d = d.min(t);
        }
        d
    }

    fn next_seq(&mut self) -> SeqOf<B> {
        self.seq_counter = self.seq_counter.wrapping_add(1);
        let civil = Civil::from_unix(self.now_secs);
        self.beh.seq(self.seq_counter, &civil)
    }

    fn write(&mut self, seq: SeqOf<B>, pdu: &PduOf<B>) {
        if let Err(e) = self.framer.encode(seq, pdu, &mut self.out) {
            warn!(account = self.account_name(), error = %e, "cannot encode pdu");
        }
    }

    async fn flush(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        if let Some(kind) = self.corrupt.take() {
            Counters::inc(&self.core.counters.faults_corrupt_frames);
            Counters::inc(&self.core.counters.faults_fired);
            self.put_corrupt(kind);
        }
        if self.out.is_empty() {
            return Ok(());
        }
        match self.faults.faults.fragment_writes {
            Some(frag) => {
                Counters::inc(&self.core.counters.faults_fragmented_writes);
                let mut at = 0;
                while at < self.out.len() {
                    let n = (1 + self.rng.below(frag.max_chunk as u64) as usize)
                        .min(self.out.len() - at);
                    stream.write_all(&self.out[at..at + n]).await?;
                    at += n;
                    tokio::task::yield_now().await;
                }
            }
            None => stream.write_all(&self.out).await?,
        }
        self.out.clear();
        Ok(())
    }

    fn put_corrupt(&mut self, kind: CorruptKind) {
        let h = <B::P as Protocol>::HEADER_LEN;
        match kind {
            CorruptKind::Length => {
                self.out.put_u32(4);
                self.out.put_bytes(0, h - 4);
            }
            CorruptKind::Garbage => {
                self.out.put_u8(0xFF);
                for _ in 0..15 {
                    self.out.put_u8(self.rng.next_u64() as u8);
                }
            }
            CorruptKind::Body => {
                self.out.put_u32(h as u32 + 3);
                self.out.put_u32(self.beh.deliver_command_id());
                self.out.put_bytes(0, h - 9);
                self.out.put_u8(1);
                self.out.put_slice(&[0x01, 0x02, 0x03]);
            }
        }
        info!(
            account = self.account_name(),
            ?kind,
            "corrupt frame written on demand"
        );
    }

    fn on_bytes(&mut self, inbuf: &mut BytesMut) {
        while self.closing.is_none() {
            match self.framer.split_frame(inbuf) {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => break,
                Err(e) => {
                    Counters::inc(&self.core.counters.framing_errors);
                    warn!(account = self.account_name(), peer = %self.peer, error = %e, "framing error, closing");
                    debug!(account = self.account_name(), peer = %self.peer, bytes = %HexFmt(&inbuf[..inbuf.len().min(64)]), "offending bytes");
                    self.closing = Some("framing error");
                }
            }
        }
    }

    fn on_frame(&mut self, frame: BytesMut) {
        self.pdus_in += 1;
        Counters::inc(&self.core.counters.pdus_received);
        trace!(target: "smsgw::wire", bytes = %HexFmt(&frame), "rx");
        match self.framer.decode_frame(frame.freeze()) {
            Inbound::Packet(pkt) => self.on_packet(pkt),
            Inbound::Malformed {
                command_id,
                seq,
                error,
                frame,
            } => {
                Counters::inc(&self.core.counters.malformed);
                debug!(
                    account = self.account_name(),
                    peer = %self.peer,
                    command_id = format_args!("{command_id:#010x}"),
                    error = %error,
                    bytes = %HexFmt(&frame[..frame.len().min(64)]),
                    "malformed pdu"
                );
                if let Some(resp) = self.beh.malformed_resp(command_id, &error) {
                    self.write(seq, &resp);
                }
                if self.state != State::Ready {
                    self.closing = Some("malformed pdu before login");
                }
            }
        }
        if let Some(n) = self.faults.faults.disconnect_after_pdus {
            if self.pdus_in >= n && self.closing.is_none() {
                Counters::inc(&self.core.counters.faults_disconnect);
                Counters::inc(&self.core.counters.faults_fired);
                self.closing = Some("fault: disconnect after n pdus");
            }
        }
    }

    fn on_packet(&mut self, pkt: Packet<B::P>) {
        self.tests_outstanding = 0;
        if self.state == State::Ready {
            self.hb_due = self.now + self.core.config.heartbeat.interval;
        }
        match self.state {
            State::AwaitLogin => self.on_login(pkt),
            State::AwaitBindResp => match self.beh.sp_bind_result(&pkt.pdu) {
                Some(true) => {
                    info!(peer = %self.peer, "sp link bound");
                    self.state = State::Ready;
                    self.hb_due = self.now + self.core.config.heartbeat.interval;
                    let backlog: Vec<Job> = self.backlog.drain(..).collect();
                    for job in backlog {
                        self.send_job(job);
                    }
                }
                Some(false) => self.closing = Some("sp refused our bind"),
                None => self.closing = Some("unexpected pdu before bind response"),
            },
            State::Ready => self.on_event(pkt),
        }
    }

    fn on_login(&mut self, pkt: Packet<B::P>) {
        let core = self.core.clone();
        match self.beh.login(&pkt.pdu, &*core) {
            LoginAttempt::NotLogin => {
                if let Some(resp) = self.beh.refuse_before_login(&pkt.pdu) {
                    self.write(pkt.seq, &resp);
                }
                info!(peer = %self.peer, "pdu before login, closing");
                self.closing = Some("pdu before login");
            }
            LoginAttempt::Refused {
                refusal,
                ctx,
                account,
            } => {
                self.refuse(pkt.seq, &ctx, refusal, account.as_deref());
            }
            LoginAttempt::Accepted {
                account,
                ctx,
                can_receive,
            } => {
                let tx = self.cmd_tx.clone();
                let registered = match tx {
                    Some(tx) => account.register(self.id, tx, can_receive),
                    None => false,
                };
                if !registered {
                    self.refuse(pkt.seq, &ctx, Refusal::TooManyConnections, Some(&account));
                    return;
                }
                let resp = self.beh.login_resp(&ctx, Ok(()));
                self.write(pkt.seq, &resp);
                Counters::inc(&self.core.counters.logins_ok);
                Counters::inc(&account.stats.logins_ok);
                info!(account = %account.cfg.id, peer = %self.peer, can_receive, "login accepted");
                self.state = State::Ready;
                self.can_receive = can_receive;
                self.account = Some(account.clone());
                self.hb_due = self.now + self.core.config.heartbeat.interval;
                self.disconnect_at = self.faults.faults.disconnect_every.map(|d| self.now + d);
                for job in account.take_pending() {
                    if can_receive && !self.beh.uses_sp_link() {
                        self.send_job(job);
                    } else {
                        self.core.dispatch(job, Some(self.id), false);
                    }
                }
            }
        }
    }

    fn refuse(
        &mut self,
        seq: SeqOf<B>,
        ctx: &B::LoginCtx,
        refusal: Refusal,
        account: Option<&AccountRt>,
    ) {
        let resp = self.beh.login_resp(ctx, Err(refusal));
        self.write(seq, &resp);
        Counters::inc(&self.core.counters.logins_refused);
        if let Some(a) = account {
            Counters::inc(&a.stats.logins_refused);
        }
        info!(peer = %self.peer, account = account.map_or("-", |a| a.cfg.id.as_str()), reason = refusal.as_str(), "login refused");
        self.closing = Some("login refused");
    }

    fn on_event(&mut self, pkt: Packet<B::P>) {
        let seq = pkt.seq;
        match self.beh.classify(pkt.pdu) {
            Event::Submit(info) => self.on_submit(seq, *info),
            Event::ActiveTest => {
                Counters::inc(&self.core.counters.active_tests_received);
                let resp = self.beh.active_test_resp();
                self.write(seq, &resp);
            }
            Event::ActiveTestResp => {}
            Event::Ack => {
                if let Some(job) = self.inflight.remove(&seq) {
                    match job {
                        Job::Report(r) => {
                            Counters::inc(&self.core.counters.reports_acknowledged);
                            if let Some(a) = self.core.accounts.get(&*r.account) {
                                Counters::inc(&a.stats.reports_acknowledged);
                            }
                        }
                        Job::Mo(_) => Counters::inc(&self.core.counters.mo_acknowledged),
                    }
                }
            }
            Event::Terminate => {
                let resp = self.beh.terminate_resp();
                self.write(seq, &resp);
                self.closing = Some("peer terminated");
            }
            Event::TerminateResp => self.closing = Some("terminate acknowledged"),
            Event::Other(Some(resp)) => self.write(seq, &resp),
            Event::Other(None) => {}
        }
    }

    fn on_submit(&mut self, seq: SeqOf<B>, info: SubmitInfo) {
        let Some(acct) = self.account.clone() else {
            return;
        };
        let core = self.core.clone();
        Counters::inc(&core.counters.submits_received);
        Counters::inc(&acct.stats.submits_received);
        let faults = self.faults.faults.clone();

        let status = if !acct.admit(core.tps_window()) {
            Counters::inc(&core.counters.throttled);
            Counters::inc(&acct.stats.throttled);
            SubmitStatus::Throttled
        } else if let Some(e) = faults.error.filter(|e| self.rng.chance(e.fraction)) {
            Counters::inc(&core.counters.faults_error_code);
            Counters::inc(&core.counters.faults_fired);
            SubmitStatus::Code(e.code)
        } else {
            SubmitStatus::Ok
        };

        let n = info.recipients.len().max(1) as u32;
        let (space, unit) = self.beh.id_space();
        let (secs, counter) = core
            .ids
            .reserve(self.now_secs, unit as i64, space as u64, n);
        let civil = Civil::from_unix(secs);
        let id = self.beh.submit_id(seq, counter, &civil);

        if core.ring.enabled() {
            core.ring.push(ReceivedMessage {
                index: 0,
                account: acct.cfg.id.clone(),
                msg_id: id.to_text(),
                status: match status {
                    SubmitStatus::Ok => 0,
                    SubmitStatus::Throttled => u32::MAX,
                    SubmitStatus::Code(c) => c,
                },
                src: info.src.to_str_lossy().into_owned(),
                dest: info
                    .recipients
                    .iter()
                    .map(|r| r.to_str_lossy().into_owned())
                    .collect(),
                text: crate::text::decode_content(info.coding, info.udhi, &info.content),
                coding: info.coding,
                pk_total: info.pk_total,
                pk_number: info.pk_number,
                report_requested: info.wants_report,
                received_at_ms: unix_millis(),
            });
        }

        if status == SubmitStatus::Ok && info.wants_report {
            let early = faults.report_before_response;
            if early {
                Counters::inc(&core.counters.faults_report_early);
                Counters::inc(&core.counters.faults_fired);
            }
            let now_civil = Civil::from_unix(self.now_secs);
            for (i, dest) in info.recipients.iter().enumerate() {
                let outcome = core.outcomes.draw(&mut self.rng);
                if info.report_failures_only && outcome == crate::behavior::Outcome::Delivrd {
                    continue;
                }
                let job = ReportJob {
                    msg_id: id.nth(i as u32),
                    dest: *dest,
                    src: info.src,
                    service_id: info.service_id,
                    outcome,
                    submit_time: now_civil,
                    attempts: 0,
                    account: acct.id.clone(),
                };
                if early {
                    self.deliver_report(job);
                } else {
                    self.reports
                        .push_back((self.now + core.config.reports.delay, job));
                }
            }
        }

        let resp = self.beh.submit_resp(id, status);
        if self.rng.chance(faults.drop_response) {
            Counters::inc(&core.counters.faults_dropped);
            Counters::inc(&core.counters.faults_fired);
            return;
        }
        if let Some(range) = faults.response_delay {
            let d = range.sample(&mut self.rng);
            if !d.is_zero() {
                Counters::inc(&core.counters.faults_delayed);
                Counters::inc(&core.counters.faults_fired);
                self.delayed.insert(Packet::new(seq, resp), d);
                return;
            }
        }
        self.write(seq, &resp);
        Counters::inc(&core.counters.submit_responses_sent);
    }

    /// A report is due: send it here, on another connection of the account
    /// (fault), or over the SGIP SP link.
    fn deliver_report(&mut self, job: ReportJob) {
        if self.beh.uses_sp_link() {
            self.core.dispatch(Job::Report(job), None, false);
            return;
        }
        let mut job = job;
        if self.faults.faults.report_on_other_connection {
            if let Some(acct) = self.account.clone() {
                match acct.route(ConnCmd::Send(Job::Report(job)), Some(self.id), false) {
                    Ok(_) => {
                        Counters::inc(&self.core.counters.faults_report_other_conn);
                        Counters::inc(&self.core.counters.faults_fired);
                        return;
                    }
                    Err(ConnCmd::Send(Job::Report(back))) => job = back,
                    Err(_) => return,
                }
            }
        }
        if self.can_receive {
            self.send_job(Job::Report(job));
        } else {
            self.core.dispatch(Job::Report(job), Some(self.id), false);
        }
    }

    /// Sends a report or MO here and waits for its acknowledgement.
    fn send_job(&mut self, mut job: Job) {
        *job.attempts_mut() += 1;
        let seq = self.next_seq();
        let (space, unit) = self.beh.id_space();
        let (secs, counter) = self
            .core
            .ids
            .reserve(self.now_secs, unit as i64, space as u64, 1);
        let id_civil = Civil::from_unix(secs);
        let did = self.beh.deliver_id(counter, &id_civil);
        let now_civil = Civil::from_unix(self.now_secs);
        let pdu = match &job {
            Job::Report(r) => {
                Counters::inc(&self.core.counters.reports_sent);
                if let Some(a) = self.core.accounts.get(&*r.account) {
                    Counters::inc(&a.stats.reports_sent);
                }
                self.beh.report_pdu(r, did, &now_civil)
            }
            Job::Mo(m) => {
                Counters::inc(&self.core.counters.mo_sent);
                if let Some(a) = self.core.accounts.get(&*m.account) {
                    Counters::inc(&a.stats.mo_sent);
                }
                self.beh.mo_pdu(m, did, &now_civil)
            }
        };
        self.write(seq, &pdu);
        self.inflight.insert(seq, job);
        self.retry_q
            .push_back((self.now + self.core.config.reports.retry_after, seq));
    }

    fn on_timer(&mut self) {
        let now = self.now;
        while self.reports.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, job)) = self.reports.pop_front() {
                self.deliver_report(job);
            }
        }
        while self.retry_q.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, seq)) = self.retry_q.pop_front() else {
                break;
            };
            let Some(job) = self.inflight.remove(&seq) else {
                continue;
            };
            let attempts = match &job {
                Job::Report(r) => r.attempts,
                Job::Mo(m) => m.attempts,
            };
            if attempts >= self.core.config.reports.max_attempts {
                Counters::inc(&self.core.counters.reports_dropped);
                debug!(
                    account = self.account_name(),
                    attempts, "giving up on unacknowledged job"
                );
            } else {
                Counters::inc(&self.core.counters.reports_retried);
                self.send_job(job);
            }
        }
        if self.disconnect_at.is_some_and(|t| t <= now) {
            Counters::inc(&self.core.counters.faults_disconnect);
            Counters::inc(&self.core.counters.faults_fired);
            self.closing = Some("fault: disconnect every t");
            return;
        }
        if self.hb_due <= now {
            match self.state {
                State::AwaitLogin | State::AwaitBindResp => {
                    self.closing = Some("no login in time");
                }
                State::Ready => {
                    let hb = &self.core.config.heartbeat;
                    if self.tests_outstanding >= hb.max_missed {
                        Counters::inc(&self.core.counters.heartbeat_timeouts);
                        warn!(
                            account = self.account_name(),
                            missed = self.tests_outstanding,
                            "peer stopped answering, closing"
                        );
                        self.closing = Some("heartbeat timeout");
                        return;
                    }
                    self.hb_due = now + hb.interval;
                    if let Some(test) = self.beh.active_test() {
                        let seq = self.next_seq();
                        self.write(seq, &test);
                        self.tests_outstanding += 1;
                        Counters::inc(&self.core.counters.active_tests_sent);
                    }
                }
            }
        }
    }
}

//! The engine's runtime: ingest, dispatch, outcome recording and the
//! sweeper as concurrent tasks over the ports.
//!
//! ```text
//!  source ──ingest──▶ store ◀──claim── dispatcher ──dispatch──▶ channel
//!                       ▲                 ▲   │                    │
//!                       └──── recorder ◀──┼───┼──── outcome events ┘
//!                                         └───┘ wake-ups, route state
//! ```
//!
//! Each task awaits only its own store calls, so a large acceptance batch
//! never holds up dispatch, and the recorder applies whatever outcomes
//! arrived while its previous transaction ran in one go (group commit).
//!
//! **Possible duplicates are bounded by the in-flight window.** A message
//! counts as in flight from dispatch until its outcome is stored; dispatch
//! pauses while `window_total` messages are in flight, so a crash can leave
//! at most that many messages whose fate is unknown (they are resent and
//! marked). `otp_reserve` slots of that window are kept for otp, so an otp
//! message never waits behind a full window of marketing.
//!
//! **Failure rules.** A source error (broker down) is logged and polling
//! backs off; dispatch keeps working from the store. A transient store
//! error (database down) is logged and the step retried: outcomes are kept
//! in memory, in order, and applied once the store answers. Any other store
//! error stops the runtime and is returned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::correlate::Correlator;
use super::dispatch::{Outcomes, Sender, SenderConfig};
use super::ingest::{Ingest, IngestError, PreClaim};
use super::metrics as m;
use super::ports::*;
use super::retry::RetryPolicy;
use super::sweeper;
use super::types::*;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub ingest: Ingest,
    pub sender: SenderConfig,
    pub policy: RetryPolicy,
    /// How long a report that beat its submit response waits to be matched.
    pub park_ttl: Duration,
    pub sweep_interval: Duration,
    pub sweep_batch: usize,
    /// Messages in flight (dispatched, outcome not stored) at most.
    pub window_total: usize,
    /// Part of `window_total` only otp may use.
    pub otp_reserve: usize,
    /// Stop once the source is drained (only when there is no channel).
    pub drain: bool,
}

/// A channel and the receiver of its outcome events.
pub struct ChannelSet {
    pub channel: Box<dyn Channel>,
    pub events: mpsc::Receiver<ChannelEvent>,
}

/// Dispatches whose outcome is not stored yet: token → (route, parts
/// still without an outcome).
#[derive(Debug, Default)]
struct Inflight {
    map: Mutex<std::collections::HashMap<DispatchToken, (String, u16)>>,
}

impl Inflight {
    fn len(&self) -> usize {
        self.map.lock().expect("poisoned").len()
    }

    fn add(&self, token: DispatchToken, route: &str, parts: u16) {
        self.map
            .lock()
            .expect("poisoned")
            .insert(token, (route.to_owned(), parts.max(1)));
    }

    fn remove(&self, token: &DispatchToken) {
        self.map.lock().expect("poisoned").remove(token);
    }

    /// Drops dispatches whose outcomes in `evs` are now stored.
    fn settle(&self, evs: &[ChannelEvent]) {
        let mut map = self.map.lock().expect("poisoned");
        for ev in evs {
            match ev {
                ChannelEvent::Accepted { token, .. } => {
                    if let Some(e) = map.get_mut(token) {
                        e.1 = e.1.saturating_sub(1);
                        if e.1 == 0 {
                            map.remove(token);
                        }
                    }
                }
                ChannelEvent::Rejected { token, .. } | ChannelEvent::Unknown { token, .. } => {
                    map.remove(token);
                }
                ChannelEvent::RouteState { route, up: false } => {
                    map.retain(|_, (r, _)| r != route);
                }
                _ => {}
            }
        }
        metrics::gauge!(m::IN_FLIGHT).set(map.len() as f64);
    }
}

/// What the tasks share.
struct Shared {
    stop: Arc<AtomicBool>,
    /// Wakes the dispatcher: new work accepted, window room, route change.
    wake: Notify,
    /// Accepted work may be waiting in the store.
    due: AtomicBool,
    inflight: Inflight,
    routes: Mutex<Vec<(String, bool)>>,
    /// Wakes the claimer.
    claim_wake: Notify,
    /// Claimed messages on their way into the dispatcher's lanes.
    feed: Mutex<Feed>,
}

/// Claimed messages not in a lane yet, and the lane room claims may still
/// take. One lock keeps the accounting exact: the dispatcher grants room as
/// (free lane room − `ready` − `reserved`), the claimer reserves before it
/// claims and releases when it delivers, so claims never overflow a lane.
#[derive(Debug, Default)]
struct Feed {
    ready: Vec<Dispatchable>,
    /// Room taken by a claim in progress.
    reserved: usize,
    /// Room the claimer may take.
    room: usize,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, returning early once stopped.
    async fn nap(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50).min(until - Instant::now())).await;
        }
    }
}

/// Publishes state changes (a sink failure is logged: the store keeps them
/// and the outbox relay catches up) and counts them by state.
pub(crate) async fn publish<K: StatusSink>(sink: &K, events: &[StatusEvent]) {
    if events.is_empty() {
        return;
    }
    count_changes(events);
    if let Err(e) = sink.publish(events).await {
        tracing::warn!(error = %e, "publishing status events failed");
    }
}

/// `smsgw_message_state_changes_total{state}`, one increment per state and batch.
pub(crate) fn count_changes(events: &[StatusEvent]) {
    let mut n: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for e in events {
        *n.entry(e.state.as_str()).or_default() += 1;
    }
    for (state, k) in n {
        metrics::counter!(m::STATE_CHANGES, "state" => state).increment(k);
    }
}

fn transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_))
}

/// Runs until `stop` is set (or, with `drain` and no channel, until the
/// source is empty), then shuts down in order: ingest finishes its batch,
/// queued claims are given back, the channel settles what is in flight and
/// the recorder stores those outcomes.
pub async fn run<S, Src, K>(
    store: S,
    src: Src,
    sink: K,
    links: &[LinkSpec],
    channel: Option<ChannelSet>,
    cfg: RunConfig,
    stop: Arc<AtomicBool>,
) -> StoreResult<()>
where
    S: MessageStore + ReportStore + Clone + 'static,
    Src: MessageSource + 'static,
    K: StatusSink + 'static,
{
    let sink = Arc::new(sink);
    let shared = Arc::new(Shared {
        stop,
        wake: Notify::new(),
        due: AtomicBool::new(true),
        inflight: Inflight::default(),
        routes: Mutex::new(Vec::new()),
        claim_wake: Notify::new(),
        feed: Mutex::new(Feed::default()),
    });
    let correlator = Correlator::new(cfg.park_ttl);

    let ingest = tokio::spawn(ingest_task(
        cfg.ingest.clone(),
        src,
        store.clone(),
        sink.clone(),
        shared.clone(),
        cfg.drain && channel.is_none(),
        // without a channel nothing would dispatch a pre-claimed message
        channel.as_ref().map(|_| cfg.sender.lease),
    ));
    let sweeper = tokio::spawn(sweeper_task(
        store.clone(),
        correlator.clone(),
        sink.clone(),
        shared.clone(),
        cfg.clone(),
    ));

    let mut result = Ok(());
    if let Some(ChannelSet { channel, events }) = channel {
        let mut sender = Sender::new(
            store.clone(),
            links,
            cfg.policy.clone(),
            correlator,
            cfg.sender.clone(),
        );
        let claimer = tokio::spawn(claimer_task(store.clone(), shared.clone(), cfg.clone()));
        let recorder = tokio::spawn(recorder_task(
            sender.outcomes(),
            events,
            sink.clone(),
            shared.clone(),
        ));
        result = dispatcher(&mut sender, channel.as_ref(), &*sink, &shared, &cfg).await;
        shared.stop.store(true, Ordering::SeqCst);
        shared.claim_wake.notify_one();
        match claimer.await {
            Ok(r) => result = result.and(r),
            Err(e) => tracing::error!(error = %e, "claimer task failed"),
        }
        // claimed but not queued yet: into the lanes, so they are given back below
        let left: Vec<Dispatchable> =
            std::mem::take(&mut shared.feed.lock().expect("poisoned").ready);
        let mut f = super::dispatch::Fill::default();
        for d in left {
            if let Err(e) = sender.queue(d, Timestamp::now(), &mut f).await {
                tracing::warn!(error = %e, "claim not given back; due again when its lease runs out");
            }
        }
        match sender.release_all(Timestamp::now()).await {
            Ok(n) => tracing::info!(released = n, "claims given back"),
            Err(e) => tracing::warn!(error = %e,
                "claims not given back; they are due again when their lease runs out"),
        }
        channel.close().await;
        // the recorder ends once the channel's event stream does
        match tokio::time::timeout(Duration::from_secs(30), recorder).await {
            Ok(Ok(r)) => result = result.and(r),
            Ok(Err(e)) => tracing::error!(error = %e, "recorder task failed"),
            Err(_) => tracing::warn!(
                "outcomes still unstored after 30 s; their messages are resent as possible duplicates"
            ),
        }
    } else {
        while !shared.stopped() {
            shared.nap(Duration::from_millis(200)).await;
        }
    }
    shared.stop.store(true, Ordering::SeqCst);
    for (what, t) in [("ingest", ingest), ("sweeper", sweeper)] {
        match t.await {
            Ok(r) => result = result.and(r),
            Err(e) => tracing::error!(error = %e, task = what, "task failed"),
        }
    }
    result
}

async fn ingest_task<S, Src, K>(
    ingest: Ingest,
    mut src: Src,
    store: S,
    sink: Arc<K>,
    shared: Arc<Shared>,
    stop_when_drained: bool,
    preclaim_lease: Option<Duration>,
) -> StoreResult<()>
where
    S: MessageStore,
    Src: MessageSource,
    K: StatusSink,
{
    let mut store_down = false;
    let mut source_down = false;
    // an ingest batch is never cut in half: it is not cancel-safe between
    // accept and commit, so `stop` is checked between batches only
    while !shared.stopped() {
        let t0 = Instant::now();
        match ingest
            .once(
                &mut src,
                &store,
                &*sink,
                None,
                preclaim_lease.map(|lease| PreClaim { lease }),
            )
            .await
        {
            Ok(mut g) => {
                if g.records > 0 {
                    tracing::debug!(
                        records = g.records,
                        accepted = g.accepted,
                        ms = t0.elapsed().as_secs_f64() * 1e3,
                        "ingest batch"
                    );
                }
                if store_down || source_down {
                    tracing::info!("ingest resumed");
                }
                store_down = false;
                source_down = false;
                if g.accepted > g.ready.len() {
                    shared.due.store(true, Ordering::SeqCst);
                    shared.claim_wake.notify_one();
                }
                if !g.ready.is_empty() {
                    shared
                        .feed
                        .lock()
                        .expect("poisoned")
                        .ready
                        .append(&mut g.ready);
                }
                if g.accepted > 0 {
                    shared.wake.notify_one();
                }
                if g.records == 0 {
                    if stop_when_drained {
                        shared.stop.store(true, Ordering::SeqCst);
                        break;
                    }
                    if ingest.wait.is_zero() {
                        shared.nap(Duration::from_millis(20)).await;
                    }
                }
            }
            Err(IngestError::Store(e)) if transient(&e) => {
                if !store_down {
                    tracing::warn!(error = %e, "store unavailable (ingest); accepted messages keep going out");
                    store_down = true;
                }
                shared.nap(Duration::from_millis(200)).await;
            }
            Err(IngestError::Store(e)) => {
                shared.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
            Err(IngestError::Source(e)) => {
                if !source_down {
                    tracing::warn!(error = %e, "source unavailable; the sender keeps working from the store");
                    source_down = true;
                }
                shared.nap(Duration::from_secs(1)).await;
            }
        }
    }
    Ok(())
}

async fn sweeper_task<S, K>(
    store: S,
    correlator: Correlator,
    sink: Arc<K>,
    shared: Arc<Shared>,
    cfg: RunConfig,
) -> StoreResult<()>
where
    S: MessageStore + ReportStore,
    K: StatusSink,
{
    while !shared.stopped() {
        let now = Timestamp::now();
        match sweeper::sweep(&store, &correlator, now, cfg.park_ttl, cfg.sweep_batch).await {
            Ok(rep) => {
                if rep.resent > 0 {
                    shared.due.store(true, Ordering::SeqCst);
                    shared.claim_wake.notify_one();
                }
                publish(&*sink, &rep.events).await;
            }
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, "store unavailable (sweep); retried at the next sweep");
            }
            Err(e) => {
                shared.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        shared.nap(cfg.sweep_interval).await;
    }
    Ok(())
}

/// Most outcome events applied in one store transaction.
const RECORD_BATCH: usize = 8192;

/// Takes outcomes that are known but held (not stored) out of the
/// in-flight window, and lets the dispatcher use the room.
fn release(shared: &Shared, evs: &[ChannelEvent]) {
    shared.inflight.settle(evs);
    shared.wake.notify_one();
}

/// A store attempt running this long counts as the store being down for
/// the in-flight window (see `recorder_task`).
const STORE_STALL: Duration = Duration::from_secs(1);

/// Outcome events held while the store is down beyond which delivery
/// reports are left to the carrier to resend.
const HELD_MAX: usize = 50_000;

async fn recorder_task<S, K>(
    mut outcomes: Outcomes<S>,
    mut events: mpsc::Receiver<ChannelEvent>,
    sink: Arc<K>,
    shared: Arc<Shared>,
) -> StoreResult<()>
where
    S: MessageStore + ReportStore,
    K: StatusSink,
{
    let mut backlog: Vec<ChannelEvent> = Vec::new();
    // backlog[..released] are outcomes held while the store was down whose
    // dispatches already left the in-flight window
    let mut released = 0;
    let mut closed = false;
    let mut store_down: Option<Instant> = None;
    let mut deferred = 0u64;
    let take = |ev: ChannelEvent,
                backlog: &mut Vec<ChannelEvent>,
                down: bool,
                deferred: &mut u64| {
        if let ChannelEvent::RouteState { route, up } = &ev {
            shared
                .routes
                .lock()
                .expect("poisoned")
                .push((route.clone(), *up));
            shared.wake.notify_one();
        }
        // A long outage must not grow memory (or stall the links) with
        // reports: past the cap they go unanswered, and the carrier
        // delivers them again later. Submit outcomes are never dropped;
        // they are bounded by what was claimed before the outage.
        if down && backlog.len() >= HELD_MAX && matches!(ev, ChannelEvent::Report(_)) {
            if *deferred == 0 {
                tracing::warn!(held = backlog.len(),
                    "store unavailable: further delivery reports left unanswered for the carrier to resend");
            }
            *deferred += 1;
            metrics::counter!(m::REPORTS, "result" => "deferred").increment(1);
            return;
        }
        backlog.push(ev);
    };
    loop {
        let down = store_down.is_some();
        if !closed && (backlog.is_empty() || down) {
            let wait = if down {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(200)
            };
            match tokio::time::timeout(wait, events.recv()).await {
                Ok(Some(ev)) => take(ev, &mut backlog, down, &mut deferred),
                Ok(None) => closed = true,
                Err(_) => {}
            }
        }
        // while the store is down, keep draining (the links must not stall)
        while backlog.len() < RECORD_BATCH || down {
            match events.try_recv() {
                Ok(ev) => take(ev, &mut backlog, down, &mut deferred),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if backlog.is_empty() {
            if closed {
                return Ok(());
            }
            continue;
        }
        // Held outcomes (the store is down, or this attempt stalls) are
        // known, only not stored: their dispatches leave the in-flight
        // window, so the links go on sending what is claimed.
        if down {
            release(&shared, &backlog[released..]);
            released = backlog.len();
        }
        let t0 = Instant::now();
        // While held, outcomes that arrive during the attempt are taken (for
        // the next one) and released as they come; otherwise they wait in
        // the channel and make the next group commit. Everything in
        // `incoming` is released.
        let mut incoming: Vec<ChannelEvent> = Vec::new();
        let mut stalled = down;
        let res = {
            let attempt = outcomes.apply(&backlog, Timestamp::now());
            tokio::pin!(attempt);
            // the server went away: the pool may try to connect for seconds
            let stall = tokio::time::sleep(STORE_STALL);
            tokio::pin!(stall);
            loop {
                tokio::select! {
                    biased;
                    res = &mut attempt => break res,
                    () = &mut stall, if !stalled => {
                        stalled = true;
                        tracing::warn!(held = backlog.len(),
                            "store not answering (outcomes); sending continues, state catches up");
                        release(&shared, &backlog[released..]);
                        released = backlog.len();
                    }
                    ev = events.recv(), if stalled && !closed => match ev {
                        Some(ev) => {
                            release(&shared, std::slice::from_ref(&ev));
                            take(ev, &mut incoming, true, &mut deferred);
                        }
                        None => closed = true,
                    },
                }
            }
        };
        match res {
            Ok(evs) => {
                metrics::histogram!(m::STORE_OP, "op" => "record")
                    .record(t0.elapsed().as_secs_f64());
                tracing::debug!(
                    outcomes = backlog.len(),
                    ms = t0.elapsed().as_secs_f64() * 1e3,
                    "outcomes stored"
                );
                if store_down.take().is_some() {
                    tracing::info!(
                        applied = backlog.len(),
                        deferred_reports = deferred,
                        "store back; held outcomes applied"
                    );
                    deferred = 0;
                }
                shared.inflight.settle(&backlog[released..]);
                // Stored (settled or parked): the carrier may have its answer.
                for ev in &backlog {
                    if let ChannelEvent::Report(r) = ev {
                        if let Some(a) = &r.ack {
                            a.ack();
                        }
                    }
                }
                backlog.clear();
                released = incoming.len();
                backlog.append(&mut incoming);
                shared.wake.notify_one();
                publish(&*sink, &evs).await;
            }
            Err(e) if transient(&e) => {
                let since = *store_down.get_or_insert_with(|| {
                    tracing::warn!(error = %e, held = backlog.len(),
                        "store unavailable (outcomes); sending continues, state catches up");
                    Instant::now()
                });
                // Held from now on (see above). A crash before the store is
                // back loses them; those messages are resent and marked.
                release(&shared, &backlog[released..]);
                backlog.append(&mut incoming);
                released = backlog.len();
                if closed && since.elapsed() > Duration::from_secs(10) {
                    tracing::warn!(error = %e, left = backlog.len(),
                        "outcomes not stored at shutdown; their messages are resent as possible duplicates");
                    return Ok(());
                }
            }
            Err(e) => {
                shared.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
    }
}

/// How often the claimer looks for due work without a hint (retries
/// scheduled for later, leases run out).
const CLAIM_EVERY: Duration = Duration::from_millis(100);

/// Claims due messages from the store into the dispatcher's ready queue,
/// within the lane room the dispatcher grants (`claim_room`). Kept apart
/// from the dispatcher so dispatch never waits on the store.
async fn claimer_task<S>(store: S, shared: Arc<Shared>, cfg: RunConfig) -> StoreResult<()>
where
    S: MessageStore,
{
    let claim_min = (cfg.sender.claim_batch / 4).max(1);
    let mut more_due = true;
    let mut store_down = false;
    while !shared.stopped() {
        let hinted = shared.due.swap(false, Ordering::SeqCst);
        let want = {
            let mut f = shared.feed.lock().expect("poisoned");
            if f.room >= claim_min || (hinted && f.room > 0) {
                let want = cfg.sender.claim_batch.min(f.room);
                f.room -= want;
                f.reserved += want;
                want
            } else {
                0
            }
        };
        if want > 0 {
            let t0 = Instant::now();
            let res = store
                .claim_due(Timestamp::now(), want, cfg.sender.lease)
                .await;
            let mut f = shared.feed.lock().expect("poisoned");
            f.reserved -= want;
            match res {
                Ok(claimed) => {
                    metrics::histogram!(m::STORE_OP, "op" => "claim")
                        .record(t0.elapsed().as_secs_f64());
                    tracing::debug!(
                        claimed = claimed.len(),
                        want,
                        ms = t0.elapsed().as_secs_f64() * 1e3,
                        "claim"
                    );
                    more_due = claimed.len() >= want;
                    // what the claim did not use goes back
                    f.room += want - claimed.len().min(want);
                    if !claimed.is_empty() {
                        f.ready.extend(claimed);
                        shared.wake.notify_one();
                    }
                    if store_down {
                        tracing::info!("store back (claim)");
                        store_down = false;
                    }
                }
                Err(e) if transient(&e) => {
                    f.room += want;
                    if !store_down {
                        tracing::warn!(error = %e, "store unavailable (claim); queued messages keep going out");
                        store_down = true;
                    }
                    more_due = false;
                }
                Err(e) => {
                    shared.stop.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        } else if hinted {
            // no room now: keep the hint for when there is
            shared.due.store(true, Ordering::SeqCst);
            more_due = true;
        }
        if more_due && shared.feed.lock().expect("poisoned").room >= claim_min {
            continue;
        }
        let wait = if store_down {
            CLAIM_EVERY * 2
        } else {
            CLAIM_EVERY
        };
        let _ = tokio::time::timeout(wait, shared.claim_wake.notified()).await;
    }
    Ok(())
}

/// Lanes → channel. Awaits the store only for the rare give-back (no route,
/// lane full, route down) and for expiring what ran out of validity.
async fn dispatcher<S, K>(
    sender: &mut Sender<S>,
    ch: &dyn Channel,
    sink: &K,
    shared: &Shared,
    cfg: &RunConfig,
) -> StoreResult<()>
where
    S: MessageStore + ReportStore + Clone,
    K: StatusSink,
{
    let links = sender.links();
    let readiness = ch.readiness();
    let window = cfg.window_total.max(1);
    let bulk_window = window.saturating_sub(cfg.otp_reserve).max(1);
    let mut store_down = false;
    macro_rules! soft {
        ($e:expr, $what:literal) => {
            match $e {
                Ok(v) => {
                    store_down = false;
                    Some(v)
                }
                Err(e) if transient(&e) => {
                    if !store_down {
                        tracing::warn!(error = %e, concat!("store unavailable (", $what, "); sending continues, state catches up"));
                        store_down = true;
                    }
                    None
                }
                Err(e) => return Err(e),
            }
        };
    }
    while !shared.stopped() {
        let now = Timestamp::now();
        let changes: Vec<(String, bool)> =
            std::mem::take(&mut *shared.routes.lock().expect("poisoned"));
        for (route, up) in changes {
            soft!(sender.on_route_state(&route, up, now).await, "route state");
            if up {
                shared.due.store(true, Ordering::SeqCst);
                shared.claim_wake.notify_one();
            }
        }
        // pre-claimed by ingest, claimed by the claimer: into the lanes
        let ready: Vec<Dispatchable> =
            std::mem::take(&mut shared.feed.lock().expect("poisoned").ready);
        if !ready.is_empty() {
            let mut f = super::dispatch::Fill::default();
            for d in ready {
                soft!(sender.queue(d, now, &mut f).await, "queue");
            }
            publish(sink, &f.events).await;
        }

        let mut blocked = false;
        for link in &links {
            loop {
                let otp_waiting = sender.backlog(link, Priority::Otp) > 0;
                // otp has its own way into the link (ahead of the FIFO)
                if !(ch.ready(link) || (otp_waiting && ch.ready_for(link, Priority::Otp))) {
                    blocked |= sender.backlog_total(link) > 0;
                    break;
                }
                let n = shared.inflight.len();
                if n >= window || (n >= bulk_window && sender.backlog(link, Priority::Otp) == 0) {
                    break;
                }
                let Some(d) = sender.next_for(link) else {
                    break;
                };
                shared.inflight.add(d.token, link, ch.parts(&d.content));
                if let Err(e) = ch.dispatch(d.clone()).await {
                    shared.inflight.remove(&d.token);
                    soft!(
                        sender.on_dispatch_error(&d, &e, Timestamp::now()).await,
                        "dispatch error"
                    );
                }
            }
        }
        // the room claims may take: free lane room less what is on its way
        // no link up yet (start-up) or any more: claims would only be given back
        let free = if sender.any_up() {
            sender.lane_room()
        } else {
            0
        };
        {
            let mut f = shared.feed.lock().expect("poisoned");
            let room = free.saturating_sub(f.ready.len() + f.reserved);
            if room > f.room {
                shared.claim_wake.notify_one();
            }
            f.room = room;
        }
        let wait = if store_down {
            Duration::from_millis(20)
        } else if blocked && readiness.is_none() {
            // a link's queue is full: it drains at the carrier's pace
            Duration::from_millis(1)
        } else {
            Duration::from_millis(50)
        };
        match (&readiness, blocked) {
            // a link's queue is full: woken as soon as it drains
            (Some(room), true) => {
                let _ = tokio::time::timeout(wait, async {
                    tokio::select! {
                        _ = shared.wake.notified() => {}
                        _ = room.notified() => {}
                    }
                })
                .await;
            }
            _ => {
                let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
            }
        }
    }
    Ok(())
}

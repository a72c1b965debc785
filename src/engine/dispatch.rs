//! The sender: claims due messages from the store, routes them to links,
//! queues them in per-link priority lanes, hands them to the channel and
//! turns channel outcome events into state changes.
//!
//! The sender is plain state plus async calls into the store; it never
//! spawns or sleeps and takes `now` as an argument, so a test (or the serve
//! driver) decides when things happen. A driver typically runs
//! `fill` → for each ready link `next_for` → `Channel::dispatch`, and feeds
//! every [`ChannelEvent`] to [`Sender::on_event`].

use std::collections::BTreeMap;
use std::time::Duration;

use super::correlate::Correlator;
use super::lanes::Lanes;
use super::metrics as m;
use super::ports::*;
use super::retry::{OutcomeClass, RetryDecision, RetryPolicy};
use super::routing::Router;
use super::types::*;

#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Most messages claimed per `fill`.
    pub claim_batch: usize,
    /// How long a claimed message stays invisible to other claims.
    pub lease: Duration,
    pub lane_capacity: usize,
    pub notify_weight: u32,
    pub marketing_weight: u32,
    /// Wait for later attempts when no link of the carrier is up.
    pub no_route_delay: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            claim_batch: 512,
            lease: Duration::from_secs(120),
            lane_capacity: 1024,
            notify_weight: 4,
            marketing_weight: 1,
            no_route_delay: Duration::from_secs(5),
        }
    }
}

/// Counts of one `fill`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fill {
    pub claimed: usize,
    pub queued: usize,
    pub unroutable: usize,
    pub events: Vec<StatusEvent>,
}

pub struct Sender<S> {
    store: S,
    router: Router,
    lanes: BTreeMap<String, Lanes<Dispatchable>>,
    outcomes: Outcomes<S>,
    cfg: SenderConfig,
}

/// Turns channel outcomes into stored state changes: binds and report
/// settlement through the [`Correlator`], retry decisions through the
/// [`RetryPolicy`]. Holds no routing or lane state, so a runtime can apply
/// outcomes in its own task while another one dispatches.
#[derive(Clone)]
pub struct Outcomes<S> {
    store: S,
    policy: RetryPolicy,
    correlator: Correlator,
    rng: u64,
}

impl<S: MessageStore + ReportStore + Clone> Sender<S> {
    /// Links start down: mark them with [`Sender::set_link_up`] (or a
    /// `RouteState` event) once their sessions are logged in.
    pub fn new(
        store: S,
        links: &[LinkSpec],
        policy: RetryPolicy,
        correlator: Correlator,
        cfg: SenderConfig,
    ) -> Self {
        let router = Router::new(
            links
                .iter()
                .map(|l| (l.name.clone(), l.carrier(), l.weight)),
        );
        let lanes = links
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    Lanes::new(cfg.lane_capacity, cfg.notify_weight, cfg.marketing_weight),
                )
            })
            .collect();
        Sender {
            outcomes: Outcomes::new(store.clone(), policy, correlator),
            store,
            router,
            lanes,
            cfg,
        }
    }

    /// The outcome half, for a runtime that applies outcomes in another task.
    pub fn outcomes(&self) -> Outcomes<S> {
        self.outcomes.clone()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn set_link_up(&mut self, link: &str, up: bool) {
        self.router.set_up(link, up);
    }

    /// Messages queued for `link` at `priority`.
    pub fn backlog(&self, link: &str, p: Priority) -> usize {
        self.lanes.get(link).map_or(0, |l| l.len(p))
    }

    /// Whether any link is up (claiming while none is only gives claims back).
    pub fn any_up(&self) -> bool {
        self.lanes.keys().any(|l| self.router.is_up(l))
    }

    /// Messages queued for `link`, all priorities.
    pub fn backlog_total(&self, link: &str) -> usize {
        self.lanes.get(link).map_or(0, |l| l.total())
    }

    /// Messages a claim may take: the least room of any lane, since a claim
    /// can come back all one priority for one link (a claim that finds its
    /// lane full is given back, one store call per message).
    fn room(&self) -> usize {
        self.lanes
            .values()
            .flat_map(|l| Priority::ALL.iter().map(move |p| l.room(*p)))
            .min()
            .unwrap_or(0)
    }

    /// Room left in the lanes (three per link) for claims.
    pub fn lane_room(&self) -> usize {
        self.room()
    }

    /// Claims due messages while lanes have room, expires the overdue ones
    /// and queues the rest on a link of their carrier.
    pub async fn fill(&mut self, now: Timestamp) -> StoreResult<Fill> {
        let mut out = Fill::default();
        let want = self.cfg.claim_batch.min(self.room());
        if want == 0 {
            return Ok(out);
        }
        let claimed = self.store.claim_due(now, want, self.cfg.lease).await?;
        out.claimed = claimed.len();
        for d in claimed {
            self.queue(d, now, &mut out).await?;
        }
        Ok(out)
    }

    /// Queues one claimed message on a link of its carrier (or expires it,
    /// or gives the claim back for later when no link can take it).
    pub async fn queue(
        &mut self,
        d: Dispatchable,
        now: Timestamp,
        out: &mut Fill,
    ) -> StoreResult<()> {
        if d.expire_at <= now {
            out.events.extend(self.store.expire(d.id, now).await?);
            return Ok(());
        }
        let link = d
            .carrier
            .and_then(|c| self.router.pick(c).map(str::to_owned));
        let Some(link) = link else {
            out.unroutable += 1;
            metrics::counter!(m::RETRIES, "reason" => "no_route").increment(1);
            self.store
                .give_back(d.id, now.plus(self.cfg.no_route_delay), "no_route")
                .await?;
            return Ok(());
        };
        let lanes = self
            .lanes
            .get_mut(&link)
            .expect("router only knows configured links");
        let p = d.priority;
        if let Err(d) = lanes.push(p, d) {
            // lane full: give the claim back right away
            self.store.give_back(d.id, now, "lane_full").await?;
            return Ok(());
        }
        metrics::gauge!(m::LANE_BACKLOG, "link" => link, "priority" => p.as_str())
            .set(lanes.len(p) as f64);
        out.queued += 1;
        Ok(())
    }

    /// The next message for `link` per the lane policy, as a channel dispatch.
    pub fn next_for(&mut self, link: &str) -> Option<Dispatch> {
        let lanes = self.lanes.get_mut(link)?;
        let (p, d) = lanes.pop()?;
        metrics::gauge!(m::LANE_BACKLOG, "link" => link.to_owned(), "priority" => p.as_str())
            .set(lanes.len(p) as f64);
        metrics::counter!(m::DISPATCHED, "priority" => p.as_str()).increment(1);
        metrics::histogram!(m::ACCEPT_TO_DISPATCH, "priority" => p.as_str())
            .record(m::seconds_since(d.accepted_at));
        Some(Dispatch {
            token: DispatchToken {
                message: d.id,
                attempt: d.attempts,
                priority: d.priority,
                accepted_at: d.accepted_at,
            },
            to: d.to,
            content: Content {
                text: d.text,
                ..Content::default()
            },
            options: DispatchOptions {
                priority: d.priority,
                route: Some(link.to_owned()),
                expire_at: d.expire_at,
                want_report: true,
            },
        })
    }

    /// Gives back the claims queued for `link` (it went down): due again at
    /// `now`, not counted as a lost attempt.
    pub async fn release(&mut self, link: &str, now: Timestamp) -> StoreResult<usize> {
        let Some(lanes) = self.lanes.get_mut(link) else {
            return Ok(0);
        };
        let mut items = Vec::new();
        while let Some((_, d)) = lanes.pop() {
            items.push(d);
        }
        for p in Priority::ALL {
            metrics::gauge!(m::LANE_BACKLOG, "link" => link.to_owned(), "priority" => p.as_str())
                .set(0.0);
        }
        for d in &items {
            self.store.give_back(d.id, now, "released").await?;
        }
        Ok(items.len())
    }

    /// Gives back every queued claim (shutdown).
    pub async fn release_all(&mut self, now: Timestamp) -> StoreResult<usize> {
        let links: Vec<String> = self.lanes.keys().cloned().collect();
        let mut n = 0;
        for l in links {
            n += self.release(&l, now).await?;
        }
        Ok(n)
    }

    /// Names of the configured links.
    pub fn links(&self) -> Vec<String> {
        self.lanes.keys().cloned().collect()
    }

    /// A route went up or down; down gives its queued claims back.
    pub async fn on_route_state(
        &mut self,
        route: &str,
        up: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.router.set_up(route, up);
        if !up {
            self.release(route, now).await?;
        }
        Ok(())
    }

    /// The channel refused a dispatch before sending (route down, closed).
    pub async fn on_dispatch_error(
        &mut self,
        d: &Dispatch,
        err: &DispatchError,
        now: Timestamp,
    ) -> StoreResult<()> {
        if let (DispatchError::RouteDown { route }, Some(_)) = (err, &d.options.route) {
            self.router.set_up(route, false);
        }
        let after = match err.retry() {
            Retry::Now => Duration::ZERO,
            Retry::After(a) => a,
            Retry::Never => self.cfg.no_route_delay,
        };
        metrics::counter!(m::RETRIES, "reason" => "no_route").increment(1);
        self.store
            .give_back(d.token.message, now.plus(after), "route_down")
            .await
    }

    /// Applies one channel outcome; returns the events to publish.
    pub async fn on_event(
        &mut self,
        ev: ChannelEvent,
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        self.on_events(std::slice::from_ref(&ev), now).await
    }

    /// Applies many channel outcomes in order (see [`Outcomes::apply`]);
    /// route state changes also update routing and lanes here.
    pub async fn on_events(
        &mut self,
        evs: &[ChannelEvent],
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, ev) in evs.iter().enumerate() {
            if let ChannelEvent::RouteState { route, up } = ev {
                out.extend(self.outcomes.apply(&evs[start..i], now).await?);
                self.on_route_state(route, *up, now).await?;
                start = i + 1;
            }
        }
        out.extend(self.outcomes.apply(&evs[start..], now).await?);
        Ok(out)
    }
}

impl<S: MessageStore + ReportStore> Outcomes<S> {
    pub fn new(store: S, policy: RetryPolicy, correlator: Correlator) -> Self {
        Outcomes {
            store,
            policy,
            correlator,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn jitter(&mut self) -> f64 {
        // xorshift64*: deterministic, good enough to spread retries
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Applies channel outcomes, in order, batching runs of submit
    /// responses and reports into one store call each (responses first, so
    /// a report in the same batch as its response matches without parking).
    /// Route state and inbound events are not outcomes and are skipped.
    /// Returns the events to publish. On error nothing may be assumed
    /// applied; re-applying the same outcomes is harmless (binds and
    /// settles are idempotent).
    pub async fn apply(
        &mut self,
        evs: &[ChannelEvent],
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        let mut out = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut reports: Vec<Report> = Vec::new();
        for ev in evs {
            match ev {
                ChannelEvent::Accepted {
                    token,
                    part,
                    provider_id,
                    route,
                } => binds.push(Bind {
                    seg: SegmentRef {
                        message: token.message,
                        part: *part,
                    },
                    link: route.clone(),
                    provider_id: provider_id.clone(),
                }),
                ChannelEvent::Report(r) => reports.push(r.clone()),
                ChannelEvent::Inbound { .. } | ChannelEvent::RouteState { .. } => {}
                ChannelEvent::Rejected {
                    token,
                    code,
                    class,
                    route,
                    ..
                } => {
                    self.flush(&mut binds, &mut reports, now, &mut out).await?;
                    out.extend(self.after_failure(*token, *class, code, route, now).await?);
                }
                ChannelEvent::Unknown { token, route, .. } => {
                    self.flush(&mut binds, &mut reports, now, &mut out).await?;
                    out.extend(
                        self.after_failure(*token, OutcomeClass::Unknown, "unknown", route, now)
                            .await?,
                    );
                }
            }
        }
        self.flush(&mut binds, &mut reports, now, &mut out).await?;
        Ok(out)
    }

    async fn flush(
        &mut self,
        binds: &mut Vec<Bind>,
        reports: &mut Vec<Report>,
        now: Timestamp,
        out: &mut Vec<StatusEvent>,
    ) -> StoreResult<()> {
        if !binds.is_empty() || !reports.is_empty() {
            out.extend(
                self.correlator
                    .on_outcomes(&self.store, binds, reports, now)
                    .await?,
            );
            binds.clear();
            reports.clear();
        }
        Ok(())
    }

    async fn after_failure(
        &mut self,
        token: DispatchToken,
        class: OutcomeClass,
        code: &str,
        route: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<StatusEvent>> {
        let unit = self.jitter();
        match self.policy.decide(token.attempt, class, unit) {
            RetryDecision::Retry {
                after,
                possible_duplicate,
            } => {
                metrics::counter!(m::RETRIES, "reason" => class.as_str()).increment(1);
                self.store
                    .schedule_retry(
                        token.message,
                        now.plus(after),
                        class.as_str(),
                        possible_duplicate,
                    )
                    .await?;
                Ok(Vec::new())
            }
            RetryDecision::Park { possible_duplicate } => {
                self.store
                    .park_retryable(token.message, class.as_str(), possible_duplicate, now)
                    .await?;
                Ok(Vec::new())
            }
            RetryDecision::Fail => Ok(self
                .store
                .fail(token.message, code, Some(route), now)
                .await?
                .into_iter()
                .collect()),
        }
    }
}

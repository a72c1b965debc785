//! The engine's ports: the traits adapters implement. Domain types only;
//! nothing here names a database, broker or wire protocol.
//!
//! Stores use `impl Future + Send` returns (static dispatch, no boxing on the
//! hot path). [`Channel`] returns boxed futures so one process can hold
//! several channel kinds (`sms`, `email`, `push`) as `Arc<dyn Channel>`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::retry::OutcomeClass;
use super::types::*;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether an operation that failed may be tried again, as pingora's `RetryType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Now,
    After(Duration),
    Never,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend is unreachable or busy; the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or a schema problem; retrying will not help.
    #[error("store error: {0}")]
    Backend(String),
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} {key:?} already exists")]
    Conflict { what: &'static str, key: String },
}

impl StoreError {
    pub fn retry(&self) -> Retry {
        match self {
            StoreError::Unavailable(_) => Retry::After(Duration::from_millis(200)),
            _ => Retry::Never,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

// ---------------------------------------------------------------- source

/// One raw upstream record (a Kafka record, an embedded-queue row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub payload: Vec<u8>,
    /// Human-readable origin for dead letters and logs, e.g. `queue:17`.
    pub origin: String,
    /// Opaque position the source uses to commit.
    pub position: SourcePosition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourcePosition {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("source error: {message}")]
pub struct SourceError {
    pub message: String,
    pub retry: bool,
}

/// Upstream records in. The engine calls [`MessageSource::commit`] only after
/// the store has durably accepted (or dead-lettered) every polled record, so a
/// crash redelivers and the store's idempotency drops the repeats.
pub trait MessageSource: Send {
    /// Up to `max` records, waiting at most `wait` for the first; empty when idle.
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<SourceRecord>, SourceError>> + Send;

    /// Everything polled so far up to these records is durable.
    fn commit(
        &mut self,
        records: &[SourceRecord],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

// ---------------------------------------------------------------- store

/// Result of a durable acceptance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptResult {
    /// New rows with their `accepted` event.
    pub accepted: Vec<(MessageId, StatusEvent)>,
    /// Recipients already known under the same upstream id (redeliveries).
    pub duplicates: u64,
}

/// A message waiting as retryable (after N attempts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryableMessage {
    pub id: MessageId,
    pub expire_at: Timestamp,
    pub attempts: u32,
}

/// Message lifecycle persistence: idempotent acceptance, claiming due work,
/// state transitions with history, retry scheduling, dead letters, stats.
///
/// Every state-changing call writes the state and its history row in one
/// transaction and returns the published [`StatusEvent`] (if the change is a
/// published one) for the [`StatusSink`].
pub trait MessageStore: Send + Sync {
    /// Durably accepts validated messages and dead letters in one
    /// transaction; idempotent by `(upstream_id, to)`.
    fn accept(
        &self,
        msgs: &[NewMessage],
        dead: &[DeadLetter],
    ) -> impl Future<Output = StoreResult<AcceptResult>> + Send;

    /// Claims up to `limit` messages in state `accepted` that are due at
    /// `now`, most urgent priority first, leasing them until `now + lease`
    /// (a crashed node's claims become due again when the lease runs out).
    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = StoreResult<Vec<Dispatchable>>> + Send;

    /// Schedules another attempt at `at` (state stays `accepted`).
    fn schedule_retry(
        &self,
        id: MessageId,
        at: Timestamp,
        reason: &str,
        possible_duplicate: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Gives back a claim that never reached a channel (its lane was full,
    /// no link of its carrier was up, its link went down while it was
    /// queued): due again at `at`, and the claim does not count as an
    /// attempt, so the retry policy's budget is spent only on real sends.
    fn give_back(
        &self,
        id: MessageId,
        at: Timestamp,
        reason: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The message used its attempts: it waits as `retryable` for the sweeper.
    fn park_retryable(
        &self,
        id: MessageId,
        reason: &str,
        possible_duplicate: bool,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Final failure with the carrier's code.
    fn fail(
        &self,
        id: MessageId,
        code: &str,
        link: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<StatusEvent>>> + Send;

    /// Validity ran out before delivery.
    fn expire(
        &self,
        id: MessageId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<StatusEvent>>> + Send;

    /// Up to `limit` messages waiting as retryable, oldest first.
    fn retryable(
        &self,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<RetryableMessage>>> + Send;

    /// A retryable message goes back to `accepted`, due at `now`, with a fresh attempt budget.
    fn requeue(
        &self,
        id: MessageId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Messages whose validity has run out: `accepted` ones at `expire_at`,
    /// `submitted` ones (waiting for reports) at `expire_at + submitted_grace`.
    fn overdue(
        &self,
        now: Timestamp,
        submitted_grace: Duration,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<MessageId>>> + Send;

    /// A message's history (all recipients of one upstream id), oldest first.
    fn history(
        &self,
        upstream_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<StatusEvent>>> + Send;

    fn stats(&self) -> impl Future<Output = StoreResult<Stats>> + Send;
}

/// A delivery report (status report) as received from a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub provider_id: ProviderMsgId,
    /// Carrier stat text, e.g. `DELIVRD`, `UNDELIV`, `EXPIRED`.
    pub stat: String,
    pub delivered: bool,
    /// Link / route it arrived on (may differ from the submit's).
    pub link: Option<String>,
    pub received_at: Timestamp,
    /// Tells the channel the report is stored (settled or parked), so it
    /// may answer the carrier; `None` when there is nobody to tell. Reports
    /// are at-least-once: an unacked report comes again. Ignored by `==`.
    pub ack: Option<Ack>,
}

/// A channel's "stored, you may answer now" callback for one report. Calling
/// [`ack`](Ack::ack) more than once is harmless (the channel answers once).
/// Every `Ack` compares equal to every other, so values carrying one keep
/// their derived `PartialEq`.
#[derive(Clone)]
pub struct Ack(Arc<dyn Fn() + Send + Sync>);

impl Ack {
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Ack(Arc::new(f))
    }

    pub fn ack(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ack")
    }
}

impl PartialEq for Ack {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Ack {}

/// Result of settling a report against the stored segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// No segment carries this provider id (yet).
    Unknown,
    /// Applied to a segment; `event` is set when the message changed state,
    /// `submitted_at` gives the submit→report latency.
    Settled {
        segment: SegmentRef,
        event: Option<StatusEvent>,
        submitted_at: Option<Timestamp>,
    },
}

/// One part accepted by the carrier, for [`ReportStore::bind_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub seg: SegmentRef,
    pub link: String,
    pub provider_id: ProviderMsgId,
}

/// A report parked because it beat the submit response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedReport {
    pub key: i64,
    pub report: Report,
    pub until: Timestamp,
}

/// Delivery-report correlation: provider id → segment → message.
pub trait ReportStore: Send + Sync {
    /// Part `seg` was accepted by the carrier on `link` with `provider_id`.
    /// Returns the `submitted` event once every part is accepted.
    fn bind(
        &self,
        seg: SegmentRef,
        link: &str,
        provider_id: &ProviderMsgId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<StatusEvent>>> + Send;

    /// Applies a report to the segment bound to its provider id. A segment
    /// takes one report; a repeated report is settled but changes nothing.
    fn settle(&self, report: &Report) -> impl Future<Output = StoreResult<Settle>> + Send;

    /// [`ReportStore::bind`] for many parts at once (one transaction where
    /// the store has them). Returns the `submitted` events, in order.
    fn bind_many(
        &self,
        binds: &[Bind],
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<StatusEvent>>> + Send {
        async move {
            let mut out = Vec::new();
            for b in binds {
                out.extend(self.bind(b.seg, &b.link, &b.provider_id, now).await?);
            }
            Ok(out)
        }
    }

    /// [`ReportStore::settle`] for many reports at once, applied in order
    /// (one transaction where the store has them); one [`Settle`] per report.
    fn settle_many(
        &self,
        reports: &[Report],
    ) -> impl Future<Output = StoreResult<Vec<Settle>>> + Send {
        async move {
            let mut out = Vec::with_capacity(reports.len());
            for r in reports {
                out.push(self.settle(r).await?);
            }
            Ok(out)
        }
    }

    /// [`ReportStore::bind_many`] then [`ReportStore::settle_many`] as one
    /// unit (one transaction where the store has them): what the recorder
    /// stores per batch of outcomes. The binds come first, so a report in
    /// the same batch as its part's submit response matches.
    fn record(
        &self,
        binds: &[Bind],
        reports: &[Report],
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<(Vec<StatusEvent>, Vec<Settle>)>> + Send {
        async move {
            let events = self.bind_many(binds, now).await?;
            let settled = self.settle_many(reports).await?;
            Ok((events, settled))
        }
    }

    /// [`ReportStore::park`] for many reports, each kept until its own deadline.
    fn park_many(
        &self,
        reports: &[(Report, Timestamp)],
    ) -> impl Future<Output = StoreResult<()>> + Send {
        async move {
            for (r, until) in reports {
                self.park(r, *until).await?;
            }
            Ok(())
        }
    }

    /// [`ReportStore::take_parked`] for many provider ids: removes and
    /// returns their parked reports, oldest first.
    fn take_parked_many(
        &self,
        provider_ids: &[ProviderMsgId],
    ) -> impl Future<Output = StoreResult<Vec<Report>>> + Send {
        async move {
            let mut out = Vec::new();
            for p in provider_ids {
                out.extend(self.take_parked(p).await?);
            }
            Ok(out)
        }
    }

    /// Keeps a report that matched nothing until `until`.
    fn park(
        &self,
        report: &Report,
        until: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes and returns parked reports for `provider_id`.
    fn take_parked(
        &self,
        provider_id: &ProviderMsgId,
    ) -> impl Future<Output = StoreResult<Vec<Report>>> + Send;

    /// Up to `limit` parked reports (any deadline), oldest first.
    fn parked(&self, limit: usize) -> impl Future<Output = StoreResult<Vec<ParkedReport>>> + Send;

    /// Removes a parked report; `unmatched` keeps it for inspection and counts it.
    fn unpark(&self, key: i64, unmatched: bool) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Operator-managed carrier links.
pub trait LinkRegistry: Send + Sync {
    fn add_link(&self, link: &LinkSpec) -> impl Future<Output = StoreResult<()>> + Send;
    fn links(&self) -> impl Future<Output = StoreResult<Vec<LinkSpec>>> + Send;
    /// `true` if a link was removed.
    fn remove_link(&self, name: &str) -> impl Future<Output = StoreResult<bool>> + Send;
}

// ---------------------------------------------------------------- channel

/// Identifies one dispatch attempt of one message; comes back on every outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DispatchToken {
    pub message: MessageId,
    pub attempt: u32,
    /// The message's lane, and when it was durably accepted: a channel
    /// times acceptance → submit with them
    /// ([`ACCEPT_TO_SUBMIT`](super::metrics::ACCEPT_TO_SUBMIT)).
    pub priority: Priority,
    pub accepted_at: Timestamp,
}

/// What to send, channel-agnostic. SMS uses `text`; email adds `subject`;
/// push adds `data` (and may use `subject` as the title).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    pub text: String,
    pub subject: Option<String>,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOptions {
    pub priority: Priority,
    /// Route chosen by the engine's router (link name for SMS); `None` lets
    /// the channel choose.
    pub route: Option<String>,
    pub expire_at: Timestamp,
    /// Ask for a delivery report.
    pub want_report: bool,
}

/// One message handed to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub token: DispatchToken,
    /// Recipient: MSISDN, email address, device token.
    pub to: String,
    pub content: Content,
    pub options: DispatchOptions,
}

/// Why an outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownReason {
    /// No response within the response timeout.
    TimedOut,
    /// The connection dropped with the request in flight.
    ConnectionLost,
}

/// Outcome events a channel emits (on the receiver its adapter hands out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Part `part` (1-based) was accepted with `provider_id`.
    Accepted {
        token: DispatchToken,
        part: u16,
        provider_id: ProviderMsgId,
        route: String,
    },
    Rejected {
        token: DispatchToken,
        part: u16,
        code: String,
        class: OutcomeClass,
        route: String,
    },
    /// The request may or may not have reached the provider.
    Unknown {
        token: DispatchToken,
        part: u16,
        reason: UnknownReason,
        route: String,
    },
    Report(Report),
    /// A mobile-originated message (SMS) or reply.
    Inbound {
        from: String,
        to: String,
        text: String,
        route: String,
    },
    /// A route went up or down (routing skips down routes).
    RouteState {
        route: String,
        up: bool,
    },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    #[error("route {route:?} is down")]
    RouteDown { route: String },
    #[error("no route for {to_class}")]
    NoRoute { to_class: String },
    #[error("channel closed")]
    Closed,
}

impl DispatchError {
    pub fn retry(&self) -> Retry {
        match self {
            DispatchError::RouteDown { .. } | DispatchError::NoRoute { .. } => {
                Retry::After(Duration::from_secs(1))
            }
            DispatchError::Closed => Retry::Never,
        }
    }
}

/// A delivery channel: SMS over carrier links first, email and push next.
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;

    /// Billable parts this content goes out as (SMS segments; 1 for email/push).
    fn parts(&self, content: &Content) -> u16;

    /// Whether `route` can take traffic now.
    fn ready(&self, route: &str) -> bool;

    /// Whether `route` can take a message of priority `p` now. A channel
    /// with a fast lane for otp may say yes here while `ready` says no.
    fn ready_for(&self, route: &str, p: Priority) -> bool {
        let _ = p;
        self.ready(route)
    }

    /// Signalled when a route that was not [`Channel::ready`] may have
    /// become ready (its queue drained), so the dispatcher waits on it
    /// instead of polling. `None`: the channel cannot tell; the dispatcher
    /// polls.
    fn readiness(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Hands a message to the channel; resolves once it is queued on its
    /// route (waits while the route's window is full). Outcomes arrive as
    /// [`ChannelEvent`]s.
    fn dispatch(&self, d: Dispatch) -> BoxFuture<'_, Result<(), DispatchError>>;

    /// Stops the channel: nothing new is taken, what is in flight settles
    /// (its outcome events still arrive), then the event stream ends.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

// ---------------------------------------------------------------- status

#[derive(Debug, thiserror::Error)]
#[error("status sink: {0}")]
pub struct SinkError(pub String);

/// Where status-change events are published (Kafka topic, log, nothing).
pub trait StatusSink: Send + Sync {
    fn publish(&self, events: &[StatusEvent])
        -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Discards events (the store keeps the history anyway).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl StatusSink for NullSink {
    async fn publish(&self, _events: &[StatusEvent]) -> Result<(), SinkError> {
        Ok(())
    }
}

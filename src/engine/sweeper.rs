//! The sweeper: on a schedule, resends messages that wait as retryable and
//! are still valid, expires the rest, expires overdue in-flight messages and
//! settles parked reports. A carrier outage therefore loses nothing: messages
//! pile up as retryable and go out again once the carrier is back.

use super::correlate::Correlator;
use super::metrics as m;
use super::ports::{MessageStore, ReportStore, RetryableMessage, StoreResult};
use super::types::{StatusEvent, Timestamp};

/// What the sweeper does with one retryable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAction {
    Resend,
    Expire,
}

/// Pure: resend while valid, expire once `expire_at` has passed.
pub fn plan(msg: &RetryableMessage, now: Timestamp) -> SweepAction {
    if msg.expire_at <= now {
        SweepAction::Expire
    } else {
        SweepAction::Resend
    }
}

/// Counts of one sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub resent: u64,
    pub expired: u64,
    pub reports_unmatched: u64,
    pub events: Vec<StatusEvent>,
}

/// One sweep over at most `limit` rows of each kind.
pub async fn sweep<S: MessageStore + ReportStore>(
    store: &S,
    correlator: &Correlator,
    now: Timestamp,
    submitted_grace: std::time::Duration,
    limit: usize,
) -> StoreResult<SweepReport> {
    let mut out = SweepReport::default();
    for msg in store.retryable(limit).await? {
        match plan(&msg, now) {
            SweepAction::Resend => {
                store.requeue(msg.id, now).await?;
                metrics::counter!(m::RETRIES, "reason" => "sweeper").increment(1);
                out.resent += 1;
            }
            SweepAction::Expire => {
                out.events.extend(store.expire(msg.id, now).await?);
                out.expired += 1;
            }
        }
    }
    for id in store.overdue(now, submitted_grace, limit).await? {
        out.events.extend(store.expire(id, now).await?);
        out.expired += 1;
    }
    let (events, unmatched) = correlator.sweep_parked(store, now, limit).await?;
    out.events.extend(events);
    out.reports_unmatched = unmatched;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::MessageId;

    #[test]
    fn plan_resends_valid_and_expires_the_rest() {
        let m = |exp| RetryableMessage {
            id: MessageId(1),
            expire_at: Timestamp(exp),
            attempts: 5,
        };
        assert_eq!(plan(&m(1_000), Timestamp(999)), SweepAction::Resend);
        assert_eq!(plan(&m(1_000), Timestamp(1_000)), SweepAction::Expire);
        assert_eq!(plan(&m(1_000), Timestamp(5_000)), SweepAction::Expire);
    }
}

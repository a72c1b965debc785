//! Metric names of the engine (STYLE B8). Described once at start-up by
//! [`describe`]; label values come from closed sets.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

use super::types::Timestamp;

/// `{priority}`
pub const ACCEPTED: &str = "smsgw_messages_accepted_total";
/// `{priority}`
pub const DISPATCHED: &str = "smsgw_messages_dispatched_total";
/// `{link, priority}`
pub const LANE_BACKLOG: &str = "smsgw_lane_backlog";
/// submit accepted → delivery report
pub const REPORT_DELAY: &str = "smsgw_delivery_report_delay_seconds";
/// `{result = matched | parked | unmatched}`
pub const REPORTS: &str = "smsgw_delivery_reports_total";
/// `{reason = throttled | transient | unknown | no_route | sweeper}`
pub const RETRIES: &str = "smsgw_retries_total";
/// `{reason}` — coarse reason class, never the free text.
pub const DEAD_LETTERS: &str = "smsgw_dead_letters_total";
/// `{state}`
pub const STATE_CHANGES: &str = "smsgw_message_state_changes_total";
/// redelivered upstream records dropped by idempotency
pub const DUPLICATES: &str = "smsgw_duplicate_records_total";

/// dispatched messages whose outcome is not stored yet
pub const IN_FLIGHT: &str = "smsgw_engine_in_flight";
/// `{priority}` durable acceptance → handed to a channel
pub const ACCEPT_TO_DISPATCH: &str = "smsgw_accept_to_dispatch_seconds";
/// `{priority}` durable acceptance → the (first part's) submit went out to
/// the provider; recorded by the channel once the provider accepted it
pub const ACCEPT_TO_SUBMIT: &str = "smsgw_accept_to_submit_seconds";

/// Wall-clock seconds since `t` (never negative). `t` has millisecond
/// resolution, so short spans read up to 1 ms long.
pub fn seconds_since(t: Timestamp) -> f64 {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    ((now_us - t.0 * 1000).max(0) as f64) / 1e6
}

/// `{op = accept | claim | record}` one store call of the engine's hot path
/// (a batch), waiting for the connection included
pub const STORE_OP: &str = "smsgw_store_op_seconds";

pub fn describe() {
    describe_histogram!(
        STORE_OP,
        Unit::Seconds,
        "one batch store call of the hot path (accept, claim, record outcomes), connection wait included"
    );
    describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "dispatched messages whose outcome is not stored yet (bounds resends after a crash)"
    );
    describe_histogram!(
        ACCEPT_TO_DISPATCH,
        Unit::Seconds,
        "durable acceptance to hand-off to a channel, by priority"
    );
    describe_histogram!(
        ACCEPT_TO_SUBMIT,
        Unit::Seconds,
        "durable acceptance to the submit written to the provider, by priority"
    );
    describe_counter!(
        ACCEPTED,
        Unit::Count,
        "messages durably accepted, by priority"
    );
    describe_counter!(
        DISPATCHED,
        Unit::Count,
        "messages handed to a channel, by priority"
    );
    describe_gauge!(
        LANE_BACKLOG,
        Unit::Count,
        "messages queued in a link's priority lane"
    );
    describe_histogram!(
        REPORT_DELAY,
        Unit::Seconds,
        "submit accepted to delivery report"
    );
    describe_counter!(
        REPORTS,
        Unit::Count,
        "delivery reports by correlation result"
    );
    describe_counter!(RETRIES, Unit::Count, "resends scheduled, by reason");
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "records dead-lettered, by reason class"
    );
    describe_counter!(
        STATE_CHANGES,
        Unit::Count,
        "published message state changes"
    );
    describe_counter!(
        DUPLICATES,
        Unit::Count,
        "redelivered records not sent again"
    );
}

/// Bounded label for a dead-letter reason: its first word(s) before any detail.
pub fn reason_class(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "bad json",
        "missing id",
        "bad id",
        "bad channel",
        "channel",
        "bad priority",
        "empty text",
        "text too long",
        "bad expire_at",
        "expired",
        "missing to",
        "too many recipients",
        "bad number",
        "no carrier",
    ];
    KNOWN
        .iter()
        .find(|k| reason.starts_with(*k))
        .copied()
        .unwrap_or("other")
}

//! Session metric names (STYLE B8) and their descriptions. Call
//! [`describe`] once at start-up. Labels: `carrier` (the link name),
//! `protocol`, `status_class`, `reason`, `command` — all bounded.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

pub const PDUS_SENT: &str = "smsgw_pdus_sent_total";
pub const PDUS_RECEIVED: &str = "smsgw_pdus_received_total";
pub const SUBMIT_RESULTS: &str = "smsgw_submit_results_total";
pub const SUBMIT_RESPONSE_DURATION: &str = "smsgw_submit_response_duration_seconds";
pub const WINDOW_IN_FLIGHT: &str = "smsgw_window_in_flight";
pub const WINDOW_CAPACITY: &str = "smsgw_window_capacity";
pub const RETRIES: &str = "smsgw_link_resends_total";
pub const SESSIONS: &str = "smsgw_sessions";
pub const SESSION_RECONNECTS: &str = "smsgw_session_reconnects_total";
pub const HEARTBEATS_MISSED: &str = "smsgw_heartbeats_missed_total";
pub const THROTTLES: &str = "smsgw_throttles_total";
pub const RATE_LIMIT_TPS: &str = "smsgw_rate_limit_tps";
pub const DECODE_ERRORS: &str = "smsgw_decode_errors_total";
pub const DELIVERY_REPORTS: &str = "smsgw_link_reports_total";

/// Registers descriptions and units with the installed recorder.
pub fn describe() {
    describe_counter!(
        PDUS_SENT,
        Unit::Count,
        "PDUs written to carrier connections, by command."
    );
    describe_counter!(
        PDUS_RECEIVED,
        Unit::Count,
        "PDUs read from carrier connections, by command."
    );
    describe_counter!(
        SUBMIT_RESULTS,
        Unit::Count,
        "Submit results by status class (ok, throttled, retryable, permanent, timeout, unknown)."
    );
    describe_histogram!(
        SUBMIT_RESPONSE_DURATION,
        Unit::Seconds,
        "Time from sending a submit to its response."
    );
    describe_gauge!(
        WINDOW_IN_FLIGHT,
        Unit::Count,
        "Requests sent and not yet answered, per link."
    );
    describe_gauge!(
        WINDOW_CAPACITY,
        Unit::Count,
        "Window capacity summed over logged-in connections, per link."
    );
    describe_counter!(
        RETRIES,
        Unit::Count,
        "Resends after a response timeout, by reason."
    );
    describe_gauge!(
        SESSIONS,
        Unit::Count,
        "Logged-in carrier sessions, per link."
    );
    describe_counter!(
        SESSION_RECONNECTS,
        Unit::Count,
        "Connection losses followed by a reconnect attempt, by reason."
    );
    describe_counter!(
        HEARTBEATS_MISSED,
        Unit::Count,
        "Heartbeats that got no response in time."
    );
    describe_counter!(
        THROTTLES,
        Unit::Count,
        "Throttled submit results that cut the adaptive rate."
    );
    describe_gauge!(
        RATE_LIMIT_TPS,
        Unit::Count,
        "Current adaptive submit rate limit per link (submits per second)."
    );
    describe_counter!(
        DECODE_ERRORS,
        Unit::Count,
        "Inbound frames that failed to decode, by kind (body, framing)."
    );
    describe_counter!(
        DELIVERY_REPORTS,
        Unit::Count,
        "Status reports received, by delivered (true/false)."
    );
}

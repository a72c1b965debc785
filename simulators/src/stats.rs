//! Counters (atomics, relaxed) and the bounded ring of received messages.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

macro_rules! counters {
    ($(#[$m:meta])* $name:ident, $snap:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fm])* pub $field: AtomicU64,)*
        }

        /// A point-in-time copy of the counters.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
        pub struct $snap {
            $($(#[$fm])* pub $field: u64,)*
        }

        impl $name {
            pub fn snapshot(&self) -> $snap {
                $snap { $($field: self.$field.load(Relaxed),)* }
            }
        }
    };
}

counters!(
    /// Simulator-wide counters.
    Counters, CountersSnapshot {
        /// Connections currently open (logged in or not).
        connections_open,
        /// Connections accepted since start.
        connections_total,
        logins_ok,
        logins_refused,
        /// PDUs received from clients (all kinds).
        pdus_received,
        submits_received,
        submit_responses_sent,
        throttled,
        /// Well-framed PDUs whose body did not decode.
        malformed,
        /// Connections closed for a framing error.
        framing_errors,
        reports_sent,
        reports_acknowledged,
        reports_retried,
        /// Reports given up after the last attempt, or with no connection.
        reports_dropped,
        mo_sent,
        mo_acknowledged,
        active_tests_sent,
        active_tests_received,
        /// Connections dropped for unanswered heartbeats.
        heartbeat_timeouts,
        /// Every fault decision that changed behaviour.
        faults_fired,
        faults_delayed,
        faults_dropped,
        faults_error_code,
        faults_disconnect,
        faults_report_early,
        faults_report_other_conn,
        faults_fragmented_writes,
        faults_corrupt_frames,
        /// SGIP: connections the SMG opened to the SP.
        sp_link_connects,
    }
);

counters!(
    /// Per-account counters.
    AccountCounters, AccountSnapshot {
        connections_open,
        logins_ok,
        logins_refused,
        submits_received,
        throttled,
        reports_sent,
        reports_acknowledged,
        mo_sent,
    }
);

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}

/// Counters for the admin endpoint and `SimHandle::stats()`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    #[serde(flatten)]
    pub totals: CountersSnapshot,
    pub accounts: BTreeMap<String, AccountSnapshot>,
}

/// One submit as the simulator saw it (for QA assertions).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReceivedMessage {
    /// Arrival order since start, from 1.
    pub index: u64,
    pub account: String,
    /// The id given in the submit response, in the protocol's usual text
    /// form (CMPP: decimal u64; SMGP: 20 BCD digits; SGIP: node-time-counter).
    pub msg_id: String,
    /// Status written in the submit response (0 = accepted).
    pub status: u32,
    pub src: String,
    pub dest: Vec<String>,
    /// Content decoded by its coding, UDH removed.
    pub text: String,
    pub coding: u8,
    pub pk_total: u8,
    pub pk_number: u8,
    pub report_requested: bool,
    pub received_at_ms: u64,
}

/// A bounded ring of received messages.
#[derive(Debug)]
pub struct Ring {
    cap: usize,
    next: AtomicU64,
    items: Mutex<VecDeque<ReceivedMessage>>,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Ring {
            cap,
            next: AtomicU64::new(1),
            items: Mutex::new(VecDeque::with_capacity(cap.min(4096))),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cap > 0
    }

    pub fn push(&self, mut m: ReceivedMessage) {
        if self.cap == 0 {
            return;
        }
        m.index = self.next.fetch_add(1, Relaxed);
        if let Ok(mut q) = self.items.lock() {
            if q.len() == self.cap {
                q.pop_front();
            }
            q.push_back(m);
        }
    }

    pub fn list(&self) -> Vec<ReceivedMessage> {
        self.items
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut q) = self.items.lock() {
            q.clear();
        }
    }
}

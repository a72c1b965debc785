//! State shared by every connection of one simulator: accounts and their
//! live connections, counters, the received ring, faults, id generation.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

use crate::behavior::{Accounts, Job, OutcomeTable};
use crate::config::{AccountConfig, SimConfig};
use crate::faults::{CorruptKind, FaultState};
use crate::stats::{AccountCounters, Counters, Ring, StatsSnapshot};

/// A command sent to a connection task from outside it.
#[derive(Debug)]
pub enum ConnCmd {
    /// Send this report / MO on the connection.
    Send(Job),
    /// Write one corrupt frame.
    Corrupt(CorruptKind),
}

#[derive(Debug)]
struct ConnEntry {
    id: u64,
    tx: mpsc::UnboundedSender<ConnCmd>,
    can_receive: bool,
}

/// An account at run time.
#[derive(Debug)]
pub struct AccountRt {
    pub cfg: AccountConfig,
    pub id: Arc<str>,
    pub stats: AccountCounters,
    conns: Mutex<Vec<ConnEntry>>,
    /// Jobs that found no connection; the next login takes them.
    pending: Mutex<VecDeque<Job>>,
    /// `(window << 32) | count` for the TPS limit.
    throttle: AtomicU64,
    /// Round-robin cursor for routing.
    cursor: AtomicU64,
}

impl AccountRt {
    pub fn new(cfg: AccountConfig) -> Self {
        AccountRt {
            id: Arc::from(cfg.id.as_str()),
            cfg,
            stats: AccountCounters::default(),
            conns: Mutex::new(Vec::new()),
            pending: Mutex::new(VecDeque::new()),
            throttle: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
        }
    }

    /// Registers a logged-in connection unless the account is full.
    pub(crate) fn register(
        &self,
        id: u64,
        tx: mpsc::UnboundedSender<ConnCmd>,
        can_receive: bool,
    ) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        if conns.len() >= self.cfg.max_connections {
            return false;
        }
        conns.push(ConnEntry {
            id,
            tx,
            can_receive,
        });
        Counters::inc(&self.stats.connections_open);
        true
    }

    pub(crate) fn unregister(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            let before = conns.len();
            conns.retain(|c| c.id != id);
            if conns.len() != before {
                self.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Sends a command to a receiving connection other than `exclude`
    /// (round robin); falls back to `exclude` itself when `allow_self`.
    /// Gives the command back when no connection took it.
    // The command comes back by value on failure so it can be parked.
    #[allow(clippy::result_large_err)]
    pub(crate) fn route(
        &self,
        cmd: ConnCmd,
        exclude: Option<u64>,
        allow_self: bool,
    ) -> Result<u64, ConnCmd> {
        let Ok(conns) = self.conns.lock() else {
            return Err(cmd);
        };
        let n = conns.len();
        if n == 0 {
            return Err(cmd);
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) as usize;
        let mut cmd = cmd;
        let mut fallback = None;
        for k in 0..n {
            let c = &conns[(start + k) % n];
            if !c.can_receive {
                continue;
            }
            if Some(c.id) == exclude {
                fallback = Some(c);
                continue;
            }
            match c.tx.send(cmd) {
                Ok(()) => return Ok(c.id),
                Err(mpsc::error::SendError(back)) => cmd = back,
            }
        }
        if allow_self {
            if let Some(c) = fallback {
                return match c.tx.send(cmd) {
                    Ok(()) => Ok(c.id),
                    Err(mpsc::error::SendError(back)) => Err(back),
                };
            }
        }
        Err(cmd)
    }

    /// Sends all `jobs` to one receiving connection (so the segments of an
    /// MO keep their order); gives them back when there is none.
    pub(crate) fn route_all(&self, jobs: Vec<Job>) -> Result<(), Vec<Job>> {
        let Ok(conns) = self.conns.lock() else {
            return Err(jobs);
        };
        let receiving: Vec<&ConnEntry> = conns.iter().filter(|c| c.can_receive).collect();
        if receiving.is_empty() {
            return Err(jobs);
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) as usize;
        let c = receiving[start % receiving.len()];
        let mut back = Vec::new();
        for job in jobs {
            if let Err(mpsc::error::SendError(ConnCmd::Send(j))) = c.tx.send(ConnCmd::Send(job)) {
                back.push(j);
            }
        }
        if back.is_empty() {
            Ok(())
        } else {
            Err(back)
        }
    }

    /// Sends a command to every connection; returns how many took it.
    pub(crate) fn broadcast(&self, cmd: impl Fn() -> ConnCmd) -> usize {
        let Ok(conns) = self.conns.lock() else {
            return 0;
        };
        conns.iter().filter(|c| c.tx.send(cmd()).is_ok()).count()
    }

    pub(crate) fn park(&self, job: Job) {
        if let Ok(mut p) = self.pending.lock() {
            // Bounded: a simulator with nobody to deliver to must not grow
            // without limit.
            if p.len() >= 100_000 {
                p.pop_front();
            }
            p.push_back(job);
        }
    }

    pub(crate) fn take_pending(&self) -> VecDeque<Job> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    /// Counts one submit against the TPS limit; false when over it.
    pub(crate) fn admit(&self, window: u64) -> bool {
        let Some(tps) = self.cfg.tps else {
            return true;
        };
        let mut cur = self.throttle.load(Ordering::Relaxed);
        loop {
            let (w, count) = (cur >> 32, cur & 0xFFFF_FFFF);
            let next = if w == window & 0xFFFF_FFFF {
                if count >= tps as u64 {
                    return false;
                }
                cur + 1
            } else {
                (window & 0xFFFF_FFFF) << 32 | 1
            };
            match self.throttle.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// Hands out id counters that never repeat within their time unit. When a
/// unit's space is used up the unit is advanced (ids run ahead of the
/// clock under extreme load rather than repeat).
#[derive(Debug)]
pub(crate) struct IdGen {
    state: Mutex<(i64, u64)>,
}

impl IdGen {
    fn new() -> Self {
        IdGen {
            state: Mutex::new((i64::MIN, 0)),
        }
    }

    /// Reserves `n` consecutive counters. `space` is how many fit in one
    /// unit of `unit_secs` seconds (0 = unbounded). Returns the unix second
    /// to stamp the id with and the first counter.
    pub fn reserve(&self, now_secs: i64, unit_secs: i64, space: u64, n: u32) -> (i64, u32) {
        let Ok(mut st) = self.state.lock() else {
            return (now_secs, 0);
        };
        let unit = now_secs.div_euclid(unit_secs.max(1));
        if unit > st.0 {
            *st = (unit, 0);
        }
        if space > 0 && st.1 + n as u64 > space {
            st.0 += 1;
            st.1 = 0;
        }
        let first = st.1;
        st.1 += n as u64;
        (st.0 * unit_secs.max(1), first as u32)
    }
}

/// Everything a connection task, the admin endpoint and the handle share.
#[derive(Debug)]
pub struct SimCore {
    pub config: SimConfig,
    pub accounts: HashMap<String, Arc<AccountRt>>,
    pub counters: Counters,
    pub ring: Ring,
    pub faults: FaultState,
    pub outcomes: OutcomeTable,
    pub seed: u64,
    pub started: Instant,
    pub(crate) ids: IdGen,
    pub(crate) conn_seq: AtomicU64,
    /// SGIP: jobs for the SMG → SP connection.
    pub(crate) sp_link: Mutex<Option<mpsc::UnboundedSender<ConnCmd>>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) mo_ref: AtomicU64,
}

impl SimCore {
    pub(crate) fn new(config: SimConfig, shutdown: watch::Receiver<bool>) -> Self {
        let seed = config.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        let accounts = config
            .accounts
            .iter()
            .map(|a| (a.id.clone(), Arc::new(AccountRt::new(a.clone()))))
            .collect();
        SimCore {
            ring: Ring::new(config.ring_capacity),
            faults: FaultState::new(config.faults.clone()),
            outcomes: OutcomeTable::new(&config.reports.outcomes),
            accounts,
            counters: Counters::default(),
            seed,
            started: Instant::now(),
            ids: IdGen::new(),
            conn_seq: AtomicU64::new(0),
            sp_link: Mutex::new(None),
            shutdown,
            mo_ref: AtomicU64::new(0),
            config,
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            totals: self.counters.snapshot(),
            accounts: self
                .accounts
                .iter()
                .map(|(k, a)| (k.clone(), a.stats.snapshot()))
                .collect(),
        }
    }

    /// The TPS window index (whole seconds since start).
    pub(crate) fn tps_window(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Delivers a job: over the SGIP SP link, or to a receiving connection
    /// of its account; parked for the next login otherwise.
    pub(crate) fn dispatch(&self, job: Job, exclude: Option<u64>, allow_self: bool) {
        if let Ok(guard) = self.sp_link.lock() {
            if let Some(tx) = guard.as_ref() {
                match tx.send(ConnCmd::Send(job)) {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(ConnCmd::Send(back))) => {
                        Counters::inc(&self.counters.reports_dropped);
                        drop(back);
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
        let Some(acct) = self.accounts.get(&*job.account().clone()) else {
            Counters::inc(&self.counters.reports_dropped);
            return;
        };
        match acct.route(ConnCmd::Send(job), exclude, allow_self) {
            Ok(_) => {}
            Err(ConnCmd::Send(job)) => acct.park(job),
            Err(_) => {}
        }
    }
}

impl SimCore {
    /// Like [`SimCore::dispatch`] for jobs that must stay together and in
    /// order (the segments of one MO).
    pub(crate) fn dispatch_batch(&self, jobs: Vec<Job>) {
        let Some(first) = jobs.first() else { return };
        if let Ok(guard) = self.sp_link.lock() {
            if let Some(tx) = guard.as_ref() {
                for job in jobs {
                    let _ = tx.send(ConnCmd::Send(job));
                }
                return;
            }
        }
        let Some(acct) = self.accounts.get(&**first.account()).cloned() else {
            Counters::inc(&self.counters.reports_dropped);
            return;
        };
        if let Err(back) = acct.route_all(jobs) {
            for j in back {
                acct.park(j);
            }
        }
    }
}

impl Accounts for SimCore {
    fn get(&self, id: &str) -> Option<Arc<AccountRt>> {
        self.accounts.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_gen_advances_unit_when_space_used() {
        let g = IdGen::new();
        assert_eq!(g.reserve(100, 1, 3, 1), (100, 0));
        assert_eq!(g.reserve(100, 1, 3, 2), (100, 1));
        assert_eq!(g.reserve(100, 1, 3, 1), (101, 0));
        // The clock catching up does not go back.
        assert_eq!(g.reserve(101, 1, 3, 1), (101, 1));
        assert_eq!(g.reserve(105, 1, 3, 1), (105, 0));
    }

    #[test]
    fn throttle_counts_per_window() {
        let a = AccountRt::new(AccountConfig::new("a", "b").with_tps(2));
        assert!(a.admit(0));
        assert!(a.admit(0));
        assert!(!a.admit(0));
        assert!(a.admit(1));
    }
}

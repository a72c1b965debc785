//! Sans-IO sliding window for pipelined requests (CMPP 3.0 §7.1/§7.2; SMGP
//! and SGIP use the same scheme).
//!
//! At most `W` requests are outstanding; each waits `T` for its response and
//! is sent at most `N` times in total before it is given up. All entries share
//! the same timeout, so one deque in send order holds every deadline and the
//! connection has exactly one timer: [`SendWindow::poll_timeout`]. Nothing in
//! here reads a clock, spawns or awaits; `now` is always an argument.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use smsgw_codecs::StatusClass;

/// Spec defaults: W=16, T=60 s, N=3.
pub const DEFAULT_CAPACITY: usize = 16;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_SENDS: u32 = 3;

/// Window parameters, validated at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    capacity: usize,
    timeout: Duration,
    max_sends: u32,
}

/// Why a [`WindowConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowConfigError {
    #[error("window capacity must be at least 1")]
    ZeroCapacity,
    #[error("response timeout must be above zero")]
    ZeroTimeout,
    #[error("max sends must be at least 1")]
    ZeroSends,
}

impl WindowConfig {
    pub fn try_new(
        capacity: usize,
        timeout: Duration,
        max_sends: u32,
    ) -> Result<Self, WindowConfigError> {
        if capacity == 0 {
            return Err(WindowConfigError::ZeroCapacity);
        }
        if timeout.is_zero() {
            return Err(WindowConfigError::ZeroTimeout);
        }
        if max_sends == 0 {
            return Err(WindowConfigError::ZeroSends);
        }
        Ok(WindowConfig {
            capacity,
            timeout,
            max_sends,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    pub fn max_sends(&self) -> u32 {
        self.max_sends
    }
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            capacity: DEFAULT_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
            max_sends: DEFAULT_MAX_SENDS,
        }
    }
}

/// Something the driver must act on after [`SendWindow::handle_timeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowEvent<S, M> {
    /// No response within T; send the same request again under the same
    /// sequence. `attempt` is the number of this send (2..=N).
    Resend { seq: S, msg: M, attempt: u32 },
    /// N sends went unanswered; the request has left the window.
    TimedOut { seq: S, msg: M, sends: u32 },
}

/// Why [`SendWindow::on_sent`] refused a request. The message comes back, so
/// nothing is lost.
#[derive(Debug, PartialEq, Eq)]
pub enum SendRefused<M> {
    /// The window already holds W requests.
    Full(M),
    /// The sequence is already outstanding.
    DuplicateSeq(M),
}

impl<M> SendRefused<M> {
    pub fn into_msg(self) -> M {
        match self {
            SendRefused::Full(m) | SendRefused::DuplicateSeq(m) => m,
        }
    }
}

impl<M> fmt::Display for SendRefused<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendRefused::Full(_) => f.write_str("window is full"),
            SendRefused::DuplicateSeq(_) => f.write_str("sequence is already in flight"),
        }
    }
}

/// A request that got its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered<M> {
    pub msg: M,
    pub class: StatusClass,
    /// Time since the most recent send of this request.
    pub latency: Duration,
    /// How many times it was sent.
    pub sends: u32,
}

#[derive(Debug)]
struct Entry<M> {
    msg: M,
    sends: u32,
    last_sent: Instant,
    /// Matches the deque slot that currently carries this entry's deadline.
    gen: u64,
}

/// The window. `S` is the protocol's sequence type, `M` whatever the driver
/// needs back (a token and the encoded frame, typically).
#[derive(Debug)]
pub struct SendWindow<S, M> {
    cfg: WindowConfig,
    in_flight: HashMap<S, Entry<M>>,
    /// Deadlines in send order: (deadline, seq, gen). Answered or re-armed
    /// entries leave stale slots here, skipped by generation.
    deadlines: VecDeque<(Instant, S, u64)>,
    events: VecDeque<WindowEvent<S, M>>,
    next_gen: u64,
}

impl<S: Copy + Eq + Hash, M: Clone> SendWindow<S, M> {
    pub fn new(cfg: WindowConfig) -> Self {
        SendWindow {
            cfg,
            in_flight: HashMap::with_capacity(cfg.capacity),
            deadlines: VecDeque::with_capacity(cfg.capacity * 2),
            events: VecDeque::new(),
            next_gen: 0,
        }
    }

    pub fn config(&self) -> &WindowConfig {
        &self.cfg
    }

    /// Number of requests sent and not yet answered or given up.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    pub fn can_send(&self) -> bool {
        self.in_flight.len() < self.cfg.capacity
    }

    pub fn contains(&self, seq: &S) -> bool {
        self.in_flight.contains_key(seq)
    }

    /// Records a request as sent at `now`.
    pub fn on_sent(&mut self, seq: S, msg: M, now: Instant) -> Result<(), SendRefused<M>> {
        if !self.can_send() {
            return Err(SendRefused::Full(msg));
        }
        if self.in_flight.contains_key(&seq) {
            return Err(SendRefused::DuplicateSeq(msg));
        }
        let gen = self.arm(seq, now);
        self.in_flight.insert(
            seq,
            Entry {
                msg,
                sends: 1,
                last_sent: now,
                gen,
            },
        );
        Ok(())
    }

    /// Matches a response. `None` for an unknown or already-settled sequence
    /// (a late response after a timeout, say): the caller just ignores it.
    pub fn on_response(&mut self, seq: S, class: StatusClass, now: Instant) -> Option<Answered<M>> {
        let e = self.in_flight.remove(&seq)?;
        self.clean_front();
        self.maybe_compact();
        Some(Answered {
            msg: e.msg,
            class,
            latency: now.saturating_duration_since(e.last_sent),
            sends: e.sends,
        })
    }

    /// The earliest deadline, if anything is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The front is kept live by `clean_front`, but stay correct if not.
        self.deadlines
            .iter()
            .find(|(_, seq, gen)| self.is_live(seq, *gen))
            .map(|(d, _, _)| *d)
    }

    /// Expires every deadline at or before `now`: a resend while sends < N,
    /// otherwise the request is given up. Results come out of
    /// [`SendWindow::poll_event`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, seq, gen)) = self.deadlines.front() {
            if !self.is_live(&seq, gen) {
                self.deadlines.pop_front();
                continue;
            }
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let sends = self.in_flight.get(&seq).map_or(0, |e| e.sends);
            if sends < self.cfg.max_sends {
                let gen = self.arm(seq, now);
                if let Some(e) = self.in_flight.get_mut(&seq) {
                    e.sends += 1;
                    e.gen = gen;
                    e.last_sent = now;
                    self.events.push_back(WindowEvent::Resend {
                        seq,
                        msg: e.msg.clone(),
                        attempt: e.sends,
                    });
                }
            } else if let Some(e) = self.in_flight.remove(&seq) {
                self.events.push_back(WindowEvent::TimedOut {
                    seq,
                    msg: e.msg,
                    sends: e.sends,
                });
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<WindowEvent<S, M>> {
        self.events.pop_front()
    }

    /// Empties the window (connection lost): every outstanding request comes
    /// back in send order so the caller can report it as unknown-outcome.
    /// Pending events are kept; drain them with `poll_event` too.
    pub fn drain_in_flight(&mut self) -> Vec<(S, M)> {
        let mut out = Vec::with_capacity(self.in_flight.len());
        for (_, seq, gen) in self.deadlines.drain(..) {
            if self.in_flight.get(&seq).is_some_and(|e| e.gen == gen) {
                if let Some(e) = self.in_flight.remove(&seq) {
                    out.push((seq, e.msg));
                }
            }
        }
        // Unreachable in practice; keeps the "nothing lost" promise regardless.
        out.extend(self.in_flight.drain().map(|(s, e)| (s, e.msg)));
        out
    }

    fn is_live(&self, seq: &S, gen: u64) -> bool {
        self.in_flight.get(seq).is_some_and(|e| e.gen == gen)
    }

    /// Pushes a deadline, keeping the deque sorted even if `now` goes back.
    fn arm(&mut self, seq: S, now: Instant) -> u64 {
        let mut deadline = now + self.cfg.timeout;
        if let Some(&(last, _, _)) = self.deadlines.back() {
            deadline = deadline.max(last);
        }
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        self.deadlines.push_back((deadline, seq, gen));
        gen
    }

    fn clean_front(&mut self) {
        while let Some(&(_, seq, gen)) = self.deadlines.front() {
            if self.is_live(&seq, gen) {
                break;
            }
            self.deadlines.pop_front();
        }
    }

    /// Stale slots behind a live front can pile up when answers come out of
    /// order; drop them once they outnumber the window a few times over.
    fn maybe_compact(&mut self) {
        if self.deadlines.len() > 4 * self.cfg.capacity + 64 {
            let map = &self.in_flight;
            self.deadlines
                .retain(|(_, seq, gen)| map.get(seq).is_some_and(|e| e.gen == *gen));
        }
    }

    #[cfg(test)]
    fn deadline_slots(&self) -> usize {
        self.deadlines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn cfg(w: usize, t: u64, n: u32) -> WindowConfig {
        WindowConfig::try_new(w, Duration::from_secs(t), n).unwrap()
    }

    fn secs(base: Instant, s: u64) -> Instant {
        base + Duration::from_secs(s)
    }

    #[test]
    fn config_rejects_zeroes() {
        assert_eq!(
            WindowConfig::try_new(0, Duration::from_secs(1), 1),
            Err(WindowConfigError::ZeroCapacity)
        );
        assert_eq!(
            WindowConfig::try_new(1, Duration::ZERO, 1),
            Err(WindowConfigError::ZeroTimeout)
        );
        assert_eq!(
            WindowConfig::try_new(1, Duration::from_secs(1), 0),
            Err(WindowConfigError::ZeroSends)
        );
        let d = WindowConfig::default();
        assert_eq!(
            (d.capacity(), d.timeout(), d.max_sends()),
            (16, Duration::from_secs(60), 3)
        );
    }

    #[test]
    fn window_refuses_past_capacity_and_returns_msg() {
        let t0 = Instant::now();
        let mut w: SendWindow<u32, &str> = SendWindow::new(cfg(2, 60, 3));
        assert!(w.on_sent(1, "a", t0).is_ok());
        assert_eq!(
            w.on_sent(1, "dup", t0),
            Err(SendRefused::DuplicateSeq("dup"))
        );
        assert!(w.on_sent(2, "b", t0).is_ok());
        assert!(!w.can_send());
        assert_eq!(w.on_sent(3, "c", t0), Err(SendRefused::Full("c")));
        let a = w.on_response(1, StatusClass::Ok, secs(t0, 2)).unwrap();
        assert_eq!(
            (a.msg, a.latency, a.sends),
            ("a", Duration::from_secs(2), 1)
        );
        assert!(w.can_send());
        assert!(
            w.on_response(1, StatusClass::Ok, t0).is_none(),
            "second answer is ignored"
        );
        assert!(w.on_response(99, StatusClass::Ok, t0).is_none());
    }

    /// Table: (label, W, T, N, script) where the script is a list of steps
    /// and each step asserts what comes out.
    #[test]
    fn timeout_table() {
        #[derive(Debug)]
        enum Step {
            Send(u32, u64),
            Answer(u32, u64, bool),
            Tick(u64, &'static [(&'static str, u32)]),
            Deadline(Option<u64>),
        }
        use Step::*;
        let cases: &[(&str, u32, &[Step])] = &[
            (
                "answered before T never times out",
                3,
                &[
                    Send(1, 0),
                    Deadline(Some(60)),
                    Answer(1, 30, true),
                    Deadline(None),
                    Tick(120, &[]),
                ],
            ),
            (
                "resend up to N-1 times then give up",
                3,
                &[
                    Send(1, 0),
                    Tick(59, &[]),
                    Tick(60, &[("resend", 1)]),
                    Deadline(Some(120)),
                    Tick(120, &[("resend", 1)]),
                    Tick(180, &[("timeout", 1)]),
                    Deadline(None),
                    Answer(1, 181, false),
                ],
            ),
            (
                "N=1 gives up at the first timeout",
                1,
                &[Send(7, 0), Tick(60, &[("timeout", 7)])],
            ),
            (
                "answer after a resend still settles it",
                3,
                &[
                    Send(1, 0),
                    Tick(60, &[("resend", 1)]),
                    Answer(1, 61, true),
                    Tick(500, &[]),
                ],
            ),
            (
                "deadlines in send order; answered head is skipped",
                3,
                &[
                    Send(1, 0),
                    Send(2, 10),
                    Send(3, 20),
                    Answer(1, 15, true),
                    Deadline(Some(70)),
                    Answer(3, 25, true),
                    Deadline(Some(70)),
                    Tick(100, &[("resend", 2)]),
                    Deadline(Some(160)),
                ],
            ),
            (
                "a late tick expires everything due, oldest first",
                2,
                &[
                    Send(1, 0),
                    Send(2, 1),
                    Tick(1000, &[("resend", 1), ("resend", 2)]),
                ],
            ),
        ];
        for (label, n, steps) in cases {
            let t0 = Instant::now();
            let mut w: SendWindow<u32, u32> = SendWindow::new(cfg(4, 60, *n));
            for step in steps.iter() {
                match step {
                    Send(seq, at) => w.on_sent(*seq, *seq, secs(t0, *at)).unwrap(),
                    Answer(seq, at, expect) => assert_eq!(
                        w.on_response(*seq, StatusClass::Ok, secs(t0, *at))
                            .is_some(),
                        *expect,
                        "{label}: {step:?}"
                    ),
                    Tick(at, expect) => {
                        w.handle_timeout(secs(t0, *at));
                        let got: Vec<(&str, u32)> = std::iter::from_fn(|| w.poll_event())
                            .map(|e| match e {
                                WindowEvent::Resend { seq, .. } => ("resend", seq),
                                WindowEvent::TimedOut { seq, .. } => ("timeout", seq),
                            })
                            .collect();
                        assert_eq!(&got[..], *expect, "{label}: {step:?}");
                    }
                    Deadline(d) => {
                        assert_eq!(
                            w.poll_timeout(),
                            d.map(|s| secs(t0, s)),
                            "{label}: {step:?}"
                        )
                    }
                }
            }
        }
    }

    #[test]
    fn drain_returns_everything_in_send_order() {
        let t0 = Instant::now();
        let mut w: SendWindow<u32, u32> = SendWindow::new(cfg(8, 60, 3));
        for s in 1..=5 {
            w.on_sent(s, s * 10, secs(t0, s as u64)).unwrap();
        }
        w.on_response(3, StatusClass::Ok, secs(t0, 6));
        w.handle_timeout(secs(t0, 61)); // seq 1 re-armed: now last in order
        assert!(matches!(
            w.poll_event(),
            Some(WindowEvent::Resend { seq: 1, .. })
        ));
        let drained: Vec<u32> = w.drain_in_flight().into_iter().map(|(s, _)| s).collect();
        assert_eq!(drained, vec![2, 4, 5, 1]);
        assert!(w.is_empty() && w.poll_timeout().is_none());
    }

    #[test]
    fn out_of_order_answers_do_not_grow_deadlines_unbounded() {
        let t0 = Instant::now();
        let mut w: SendWindow<u32, ()> = SendWindow::new(cfg(4, 60, 3));
        w.on_sent(0, (), t0).unwrap(); // never answered: pins the front
        for s in 1..10_000u32 {
            w.on_sent(s, (), t0).unwrap();
            w.on_response(s, StatusClass::Ok, t0).unwrap();
        }
        assert!(w.deadline_slots() <= 4 * 4 + 64 + 1);
        assert_eq!(w.poll_timeout(), Some(secs(t0, 60)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send,
        Answer(usize),
        Advance(u64),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Send),
            3 => (0usize..64).prop_map(Op::Answer),
            2 => (0u64..40).prop_map(Op::Advance),
            1 => Just(Op::Drain),
        ]
    }

    proptest! {
        /// The window never holds more than W, and every message handed to
        /// on_sent comes back exactly once: answered, timed out or drained.
        #[test]
        fn never_exceeds_w_never_loses(w_cap in 1usize..8, n in 1u32..4, ops in proptest::collection::vec(op(), 1..300)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut w: SendWindow<u32, u64> = SendWindow::new(cfg(w_cap, 10, n));
            let mut next_msg = 0u64;
            let mut seq = 0u32;
            let mut accepted: HashSet<u64> = HashSet::new();
            let mut settled: HashSet<u64> = HashSet::new();
            let mut outstanding: Vec<u32> = Vec::new();
            let settle = |m: u64, settled: &mut HashSet<u64>| {
                assert!(settled.insert(m), "message {m} settled twice");
            };
            for op in ops {
                match op {
                    Op::Send => {
                        seq = seq.wrapping_add(1);
                        next_msg += 1;
                        match w.on_sent(seq, next_msg, now) {
                            Ok(()) => { accepted.insert(next_msg); outstanding.push(seq); }
                            Err(SendRefused::Full(m)) => prop_assert_eq!(m, next_msg),
                            Err(SendRefused::DuplicateSeq(_)) => prop_assert!(false, "fresh seq refused"),
                        }
                    }
                    Op::Answer(i) => {
                        if !outstanding.is_empty() {
                            let s = outstanding[i % outstanding.len()];
                            if let Some(a) = w.on_response(s, StatusClass::Ok, now) { settle(a.msg, &mut settled); }
                        }
                    }
                    Op::Advance(d) => {
                        now += Duration::from_secs(d);
                        if let Some(dl) = w.poll_timeout() { prop_assert!(dl >= t0); }
                        w.handle_timeout(now);
                    }
                    Op::Drain => {
                        for (_, m) in w.drain_in_flight() { settle(m, &mut settled); }
                    }
                }
                while let Some(ev) = w.poll_event() {
                    if let WindowEvent::TimedOut { msg, sends, .. } = ev {
                        prop_assert_eq!(sends, n);
                        settle(msg, &mut settled);
                    }
                }
                prop_assert!(w.in_flight() <= w_cap);
                if let Some(dl) = w.poll_timeout() { prop_assert!(dl > now || w.in_flight() > 0); }
            }
            for (_, m) in w.drain_in_flight() { settle(m, &mut settled); }
            prop_assert_eq!(accepted, settled);
        }
    }
}

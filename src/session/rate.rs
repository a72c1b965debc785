//! Per-link submit rate: a token bucket capped at the configured TPS, with
//! AIMD adaptation to the carrier's flow control. A Throttled result cuts the
//! current rate multiplicatively (at most once per cool-down, since one
//! overload usually answers a whole window with "throttled"); the rate then
//! recovers additively over time toward the cap.
//!
//! Sans-IO: `now` is always passed in. A link shares one limiter between its
//! connections through [`SharedRate`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rate parameters, validated at construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Configured cap in submits per second; `None` means unlimited (and no
    /// adaptation: there is no rate to cut from).
    cap_tps: Option<f64>,
    /// Floor the adaptive rate never goes below.
    min_tps: f64,
    /// Multiplier applied on a throttle (0 < decrease < 1).
    decrease: f64,
    /// TPS regained per second after a cut.
    recover_per_sec: f64,
    /// Bucket depth in submits.
    burst: f64,
    /// Throttles within this long of a cut do not cut again.
    cooldown: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateConfigError {
    #[error("tps cap {0} must be finite and above zero")]
    BadCap(f64),
    #[error("minimum tps {min} must be above zero and at most the cap {cap}")]
    BadMin { min: f64, cap: f64 },
    #[error("decrease factor {0} must be within (0, 1)")]
    BadDecrease(f64),
    #[error("recovery {0} tps/s must be finite and non-negative")]
    BadRecovery(f64),
    #[error("burst {0} must be at least 1")]
    BadBurst(f64),
}

impl RateConfig {
    /// A cap of `tps` with defaults: floor max(1, cap/50), halve on throttle,
    /// regain cap/20 per second, burst of max(1, cap/10), 1 s cool-down.
    pub fn capped(tps: f64) -> Result<Self, RateConfigError> {
        if !tps.is_finite() || tps <= 0.0 {
            return Err(RateConfigError::BadCap(tps));
        }
        Self::try_new(
            Some(tps),
            (tps / 50.0).max(1.0).min(tps),
            0.5,
            tps / 20.0,
            (tps / 10.0).max(1.0),
            Duration::from_secs(1),
        )
    }

    pub fn unlimited() -> Self {
        RateConfig {
            cap_tps: None,
            min_tps: 1.0,
            decrease: 0.5,
            recover_per_sec: 0.0,
            burst: 1.0,
            cooldown: Duration::from_secs(1),
        }
    }

    /// `0` means unlimited, as on the command line.
    pub fn from_tps(tps: u32) -> Self {
        if tps == 0 {
            Self::unlimited()
        } else {
            Self::capped(tps as f64).unwrap_or_else(|_| Self::unlimited())
        }
    }

    pub fn try_new(
        cap_tps: Option<f64>,
        min_tps: f64,
        decrease: f64,
        recover_per_sec: f64,
        burst: f64,
        cooldown: Duration,
    ) -> Result<Self, RateConfigError> {
        if let Some(cap) = cap_tps {
            if !cap.is_finite() || cap <= 0.0 {
                return Err(RateConfigError::BadCap(cap));
            }
            if !(min_tps > 0.0 && min_tps <= cap) {
                return Err(RateConfigError::BadMin { min: min_tps, cap });
            }
        }
        if !(decrease > 0.0 && decrease < 1.0) {
            return Err(RateConfigError::BadDecrease(decrease));
        }
        if !recover_per_sec.is_finite() || recover_per_sec < 0.0 {
            return Err(RateConfigError::BadRecovery(recover_per_sec));
        }
        if !burst.is_finite() || burst < 1.0 {
            return Err(RateConfigError::BadBurst(burst));
        }
        Ok(RateConfig {
            cap_tps,
            min_tps,
            decrease,
            recover_per_sec,
            burst,
            cooldown,
        })
    }

    pub fn cap_tps(&self) -> Option<f64> {
        self.cap_tps
    }
}

/// The limiter state.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    cfg: RateConfig,
    /// Current adaptive rate (== cap when not throttled).
    rate: f64,
    tokens: f64,
    last: Instant,
    last_cut: Option<Instant>,
}

impl RateLimiter {
    pub fn new(cfg: RateConfig, now: Instant) -> Self {
        let rate = cfg.cap_tps.unwrap_or(f64::INFINITY);
        RateLimiter {
            cfg,
            rate,
            tokens: cfg.burst,
            last: now,
            last_cut: None,
        }
    }

    /// The current adaptive rate; `None` when unlimited.
    pub fn current_tps(&self) -> Option<f64> {
        self.cfg.cap_tps.map(|_| self.rate)
    }

    fn advance(&mut self, now: Instant) {
        let Some(cap) = self.cfg.cap_tps else { return };
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        self.last = now;
        let before = self.rate;
        self.rate = (self.rate + self.cfg.recover_per_sec * dt).min(cap);
        // Tokens accrue at the average rate over the interval.
        let avg = (before + self.rate) / 2.0;
        self.tokens = (self.tokens + avg * dt).min(self.cfg.burst);
    }

    /// `Ok` if a submit may go now, else the instant it may.
    pub fn poll_ready(&mut self, now: Instant) -> Result<(), Instant> {
        if self.cfg.cap_tps.is_none() {
            return Ok(());
        }
        self.advance(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate.max(self.cfg.min_tps);
            Err(now + Duration::from_secs_f64(wait.min(3600.0)))
        }
    }

    /// Takes a token. The bucket may go into debt (connections sharing a
    /// link can race between `poll_ready` and `consume`); the debt delays
    /// the next `poll_ready`.
    pub fn consume(&mut self, now: Instant) {
        if self.cfg.cap_tps.is_none() {
            return;
        }
        self.advance(now);
        self.tokens -= 1.0;
    }

    /// `poll_ready` then `consume`.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Instant> {
        self.poll_ready(now)?;
        self.consume(now);
        Ok(())
    }

    /// The carrier said "slow down". Returns true when the rate was cut.
    pub fn on_throttled(&mut self, now: Instant) -> bool {
        if self.cfg.cap_tps.is_none() {
            return false;
        }
        self.advance(now);
        if let Some(cut) = self.last_cut {
            if now.saturating_duration_since(cut) < self.cfg.cooldown {
                return false;
            }
        }
        self.rate = (self.rate * self.cfg.decrease).max(self.cfg.min_tps);
        self.tokens = self.tokens.min(0.0);
        self.last_cut = Some(now);
        true
    }
}

/// One limiter shared by the connections of a link. The lock is held only
/// for a few float operations.
#[derive(Debug, Clone)]
pub struct SharedRate(Arc<Mutex<RateLimiter>>);

impl SharedRate {
    pub fn new(cfg: RateConfig, now: Instant) -> Self {
        SharedRate(Arc::new(Mutex::new(RateLimiter::new(cfg, now))))
    }

    fn with<R>(&self, f: impl FnOnce(&mut RateLimiter) -> R) -> R {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    pub fn poll_ready(&self, now: Instant) -> Result<(), Instant> {
        self.with(|r| r.poll_ready(now))
    }
    pub fn consume(&self, now: Instant) {
        self.with(|r| r.consume(now))
    }
    pub fn on_throttled(&self, now: Instant) -> bool {
        self.with(|r| r.on_throttled(now))
    }
    pub fn current_tps(&self) -> Option<f64> {
        self.with(|r| r.current_tps())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(RateConfig::capped(0.0).is_err());
        assert!(RateConfig::capped(f64::NAN).is_err());
        assert!(matches!(
            RateConfig::try_new(Some(10.0), 20.0, 0.5, 1.0, 1.0, Duration::ZERO),
            Err(RateConfigError::BadMin { .. })
        ));
        assert!(matches!(
            RateConfig::try_new(Some(10.0), 1.0, 1.0, 1.0, 1.0, Duration::ZERO),
            Err(RateConfigError::BadDecrease(_))
        ));
        assert!(matches!(
            RateConfig::try_new(Some(10.0), 1.0, 0.5, 1.0, 0.5, Duration::ZERO),
            Err(RateConfigError::BadBurst(_))
        ));
        assert_eq!(RateConfig::from_tps(0).cap_tps(), None);
    }

    #[test]
    fn unlimited_is_always_ready() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(RateConfig::unlimited(), t0);
        for _ in 0..10_000 {
            assert!(r.try_acquire(t0).is_ok());
        }
        assert!(!r.on_throttled(t0));
    }

    /// Counts submits allowed over `secs` seconds stepping 1 ms.
    fn run(r: &mut RateLimiter, t0: Instant, from_ms: u64, to_ms: u64) -> u64 {
        let mut sent = 0;
        for ms in from_ms..to_ms {
            let now = t0 + Duration::from_millis(ms);
            while r.try_acquire(now).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    #[test]
    fn steady_rate_matches_cap() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(RateConfig::capped(100.0).unwrap(), t0);
        let sent = run(&mut r, t0, 0, 10_000);
        // 10 s at 100/s plus the initial burst of 10.
        assert!((1000..=1011).contains(&sent), "sent {sent}");
    }

    #[test]
    fn poll_ready_says_when() {
        let t0 = Instant::now();
        let cfg =
            RateConfig::try_new(Some(10.0), 1.0, 0.5, 0.0, 1.0, Duration::from_secs(1)).unwrap();
        let mut r = RateLimiter::new(cfg, t0);
        assert!(r.try_acquire(t0).is_ok());
        let at = r.poll_ready(t0).unwrap_err();
        assert_eq!(at, t0 + Duration::from_millis(100));
        assert!(r.poll_ready(at).is_ok());
    }

    #[test]
    fn throttle_cuts_once_per_cooldown_and_recovers() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(RateConfig::capped(100.0).unwrap(), t0);
        assert!(r.on_throttled(t0));
        assert!(
            !r.on_throttled(t0 + Duration::from_millis(500)),
            "within cool-down"
        );
        assert_eq!(r.current_tps(), Some(50.0 + 5.0 * 0.5));
        assert!(r.on_throttled(t0 + Duration::from_secs(1)));
        // Recovers 5 tps/s back to the cap and no further.
        let _ = r.poll_ready(t0 + Duration::from_secs(100));
        assert_eq!(r.current_tps(), Some(100.0));
    }

    /// A carrier that admits at most `limit` per second (its own 1 s window)
    /// and throttles the rest. Our cap is far above it; AIMD must settle
    /// below the limit with few throttles, and lose nothing (every attempt is
    /// either admitted or throttled and retried).
    #[test]
    fn converges_under_carrier_limit() {
        let t0 = Instant::now();
        let limit = 50u32;
        let mut r = RateLimiter::new(RateConfig::capped(400.0).unwrap(), t0);
        let mut admitted_in_sec = 0u32;
        let mut sec = 0u64;
        let (mut admitted, mut throttled) = (0u64, 0u64);
        let (mut late_admitted, mut late_throttled) = (0u64, 0u64);
        let mut backlog = 0u64; // throttled messages waiting to be resent
        for ms in 0..120_000u64 {
            let now = t0 + Duration::from_millis(ms);
            if ms / 1000 != sec {
                sec = ms / 1000;
                admitted_in_sec = 0;
            }
            while r.try_acquire(now).is_ok() {
                if admitted_in_sec < limit {
                    admitted_in_sec += 1;
                    admitted += 1;
                    backlog = backlog.saturating_sub(1);
                    if ms >= 60_000 {
                        late_admitted += 1;
                    }
                } else {
                    throttled += 1;
                    backlog += 1;
                    if ms >= 60_000 {
                        late_throttled += 1;
                    }
                    r.on_throttled(now);
                }
            }
        }
        let late_tps = late_admitted as f64 / 60.0;
        assert!(late_tps <= limit as f64 + 0.5, "late tps {late_tps}");
        assert!(
            late_tps >= 0.6 * limit as f64,
            "late tps {late_tps} too low"
        );
        assert!(
            (late_throttled as f64) < 0.1 * late_admitted as f64,
            "late throttles {late_throttled} vs admitted {late_admitted}"
        );
        assert!(r.current_tps().unwrap() < 400.0);
        assert!(admitted + throttled > 0 && throttled < admitted);
    }
}

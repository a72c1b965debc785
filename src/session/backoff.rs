//! Reconnect and retry delays: jittered exponential backoff as a pure
//! function of the attempt number, validated at construction (linkerd's
//! `ExponentialBackoff::try_new`). The jitter source is passed in, so tests
//! are deterministic.

use std::time::Duration;

use smsgw_codecs::StatusClass;

/// Why a [`Backoff`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackoffError {
    #[error("minimum backoff {min:?} is above the maximum {max:?}")]
    MinAboveMax { min: Duration, max: Duration },
    #[error("maximum backoff must be above zero")]
    ZeroMax,
    #[error("backoff factor {0} must be finite and at least 1")]
    BadFactor(f64),
    #[error("jitter {0} must be within 0..=1")]
    BadJitter(f64),
}

/// `delay(attempt) = min(max, min * factor^attempt)`, then reduced by a
/// random fraction of up to `jitter` of itself (so reconnecting connections
/// spread out instead of arriving together).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
}

impl Backoff {
    pub fn try_new(
        min: Duration,
        max: Duration,
        factor: f64,
        jitter: f64,
    ) -> Result<Self, BackoffError> {
        if max.is_zero() {
            return Err(BackoffError::ZeroMax);
        }
        if min > max {
            return Err(BackoffError::MinAboveMax { min, max });
        }
        if !factor.is_finite() || factor < 1.0 {
            return Err(BackoffError::BadFactor(factor));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(BackoffError::BadJitter(jitter));
        }
        Ok(Backoff {
            min,
            max,
            factor,
            jitter,
        })
    }

    pub fn min(&self) -> Duration {
        self.min
    }
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before retry number `attempt` (0 = first retry) without
    /// jitter.
    pub fn base(&self, attempt: u32) -> Duration {
        let exp = self.factor.powi(attempt.min(1024) as i32);
        let secs = self.min.as_secs_f64() * exp;
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs).max(self.min)
        }
    }

    /// The jittered delay; `rng` supplies the randomness.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let base = self.base(attempt);
        if self.jitter == 0.0 {
            return base;
        }
        let cut = self.jitter * rng.f64();
        base.mul_f64(1.0 - cut)
    }

    /// Retry policy for one message: `None` when resending cannot help.
    pub fn retry_after(
        &self,
        attempt: u32,
        class: StatusClass,
        rng: &mut fastrand::Rng,
    ) -> Option<Duration> {
        match class {
            StatusClass::Permanent | StatusClass::Ok => None,
            StatusClass::Throttled | StatusClass::Retryable => Some(self.delay(attempt, rng)),
        }
    }
}

impl Default for Backoff {
    /// 1 s doubling to 60 s with up to 50 % jitter.
    fn default() -> Self {
        Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn try_new_rejects_bad_parameters() {
        assert!(matches!(
            Backoff::try_new(ms(10), ms(5), 2.0, 0.0),
            Err(BackoffError::MinAboveMax { .. })
        ));
        assert_eq!(
            Backoff::try_new(ms(0), ms(0), 2.0, 0.0),
            Err(BackoffError::ZeroMax)
        );
        assert!(matches!(
            Backoff::try_new(ms(1), ms(5), 0.0, 0.0),
            Err(BackoffError::BadFactor(_))
        ));
        assert!(matches!(
            Backoff::try_new(ms(1), ms(5), f64::NAN, 0.0),
            Err(BackoffError::BadFactor(_))
        ));
        assert!(matches!(
            Backoff::try_new(ms(1), ms(5), 2.0, 1.5),
            Err(BackoffError::BadJitter(_))
        ));
        assert!(Backoff::try_new(ms(5), ms(5), 1.0, 1.0).is_ok());
    }

    #[test]
    fn base_grows_exponentially_and_caps() {
        let b = Backoff::try_new(ms(100), ms(1000), 2.0, 0.0).unwrap();
        let table = [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (50, 1000),
            (u32::MAX, 1000),
        ];
        for (attempt, want) in table {
            assert_eq!(b.base(attempt), ms(want), "attempt {attempt}");
        }
    }

    #[test]
    fn jitter_stays_in_range_and_is_deterministic() {
        let b = Backoff::try_new(ms(100), ms(10_000), 2.0, 0.5).unwrap();
        let mut r1 = fastrand::Rng::with_seed(7);
        let mut r2 = fastrand::Rng::with_seed(7);
        for attempt in 0..20 {
            let d = b.delay(attempt, &mut r1);
            assert_eq!(d, b.delay(attempt, &mut r2));
            let base = b.base(attempt);
            assert!(
                d <= base && d >= base / 2,
                "attempt {attempt}: {d:?} vs {base:?}"
            );
        }
    }

    #[test]
    fn permanent_is_not_retried() {
        let b = Backoff::default();
        let mut r = fastrand::Rng::with_seed(1);
        assert_eq!(b.retry_after(0, StatusClass::Permanent, &mut r), None);
        assert!(b.retry_after(0, StatusClass::Throttled, &mut r).is_some());
    }
}

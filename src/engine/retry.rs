//! Retry policy: a pure function from (attempts so far, outcome class) to a
//! decision. No clocks; jitter comes in as a number so tests are exact.

use std::time::Duration;

use super::ports::Retry;

/// How an attempt ended, channel-agnostic (the carrier adapter maps the
/// codecs' `StatusClass` onto it; email/push map SMTP/HTTP codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// Flow control (e.g. CMPP result 8): the message is fine, slow down.
    Throttled,
    /// A transient failure: the same message may succeed later.
    Transient,
    /// Resending will not help; the message fails with the carrier's code.
    Permanent,
    /// Connection lost or timed out in flight: it may have been delivered.
    Unknown,
}

impl OutcomeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Throttled => "throttled",
            OutcomeClass::Transient => "transient",
            OutcomeClass::Permanent => "permanent",
            OutcomeClass::Unknown => "unknown",
        }
    }

    /// The B6 view: may this be tried again, and when?
    pub fn retry(self, policy: &RetryPolicy, attempts: u32) -> Retry {
        match policy.decide(attempts, self, 0.5) {
            RetryDecision::Retry { after, .. } if after.is_zero() => Retry::Now,
            RetryDecision::Retry { after, .. } => Retry::After(after),
            RetryDecision::Park { .. } | RetryDecision::Fail => Retry::Never,
        }
    }
}

/// What to do with a message after an attempt that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after `after`.
    Retry {
        after: Duration,
        possible_duplicate: bool,
    },
    /// Attempts used up: wait as retryable for the sweeper.
    Park { possible_duplicate: bool },
    /// Final failure with the carrier's code.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryPolicyError {
    #[error("retry base delay must be > 0")]
    ZeroBase,
    #[error("retry max delay {max:?} is below base {base:?}")]
    MaxBelowBase { base: Duration, max: Duration },
    #[error("max_attempts must be at least 1")]
    ZeroAttempts,
    #[error("jitter must be within 0.0..=1.0, got {0}")]
    Jitter(String),
}

/// Jittered exponential backoff, validated at construction (linkerd's `try_new`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    base: Duration,
    max: Duration,
    max_attempts: u32,
    jitter: f64,
    resend_unknown: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_attempts: 5,
            jitter: 0.2,
            resend_unknown: true,
        }
    }
}

impl RetryPolicy {
    /// * `base`: delay after the first failed attempt; doubles per attempt up to `max`.
    /// * `max_attempts`: attempts before a message waits as retryable.
    /// * `jitter`: fraction of the delay randomised (0.2 → ±20 %).
    /// * `resend_unknown`: resend when the outcome is unknown (marking a
    ///   possible duplicate) instead of failing it.
    pub fn try_new(
        base: Duration,
        max: Duration,
        max_attempts: u32,
        jitter: f64,
        resend_unknown: bool,
    ) -> Result<Self, RetryPolicyError> {
        if base.is_zero() {
            return Err(RetryPolicyError::ZeroBase);
        }
        if max < base {
            return Err(RetryPolicyError::MaxBelowBase { base, max });
        }
        if max_attempts == 0 {
            return Err(RetryPolicyError::ZeroAttempts);
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(RetryPolicyError::Jitter(jitter.to_string()));
        }
        Ok(RetryPolicy {
            base,
            max,
            max_attempts,
            jitter,
            resend_unknown,
        })
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Backoff before attempt `attempts + 1`; `unit` in `0.0..1.0` picks the
    /// jitter (0.5 = no jitter).
    pub fn backoff(&self, attempts: u32, unit: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        let factor = 1.0 + self.jitter * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
        raw.mul_f64(factor).min(self.max)
    }

    /// The decision after attempt number `attempts` (1-based) ended with `class`.
    pub fn decide(&self, attempts: u32, class: OutcomeClass, unit: f64) -> RetryDecision {
        let possible_duplicate = class == OutcomeClass::Unknown;
        match class {
            OutcomeClass::Permanent => RetryDecision::Fail,
            OutcomeClass::Unknown if !self.resend_unknown => RetryDecision::Fail,
            OutcomeClass::Throttled | OutcomeClass::Transient | OutcomeClass::Unknown => {
                if attempts >= self.max_attempts {
                    RetryDecision::Park { possible_duplicate }
                } else {
                    RetryDecision::Retry {
                        after: self.backoff(attempts, unit),
                        possible_duplicate,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::try_new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            3,
            0.0,
            true,
        )
        .unwrap()
    }

    #[test]
    fn try_new_rejects_bad_values() {
        let s = Duration::from_secs(1);
        assert_eq!(
            RetryPolicy::try_new(Duration::ZERO, s, 3, 0.1, true),
            Err(RetryPolicyError::ZeroBase)
        );
        assert!(matches!(
            RetryPolicy::try_new(s, Duration::from_millis(10), 3, 0.1, true),
            Err(RetryPolicyError::MaxBelowBase { .. })
        ));
        assert_eq!(
            RetryPolicy::try_new(s, s, 0, 0.1, true),
            Err(RetryPolicyError::ZeroAttempts)
        );
        assert!(matches!(
            RetryPolicy::try_new(s, s, 1, 1.5, true),
            Err(RetryPolicyError::Jitter(_))
        ));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert_eq!(p.backoff(10, 0.5), Duration::from_secs(1));
        assert_eq!(p.backoff(40, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy::try_new(
            Duration::from_millis(100),
            Duration::from_secs(10),
            3,
            0.2,
            true,
        )
        .unwrap();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(80));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(120));
    }

    #[test]
    fn decision_table() {
        let p = policy();
        use OutcomeClass::*;
        let cases = [
            (
                1,
                Throttled,
                RetryDecision::Retry {
                    after: Duration::from_millis(100),
                    possible_duplicate: false,
                },
            ),
            (
                2,
                Transient,
                RetryDecision::Retry {
                    after: Duration::from_millis(200),
                    possible_duplicate: false,
                },
            ),
            (
                1,
                Unknown,
                RetryDecision::Retry {
                    after: Duration::from_millis(100),
                    possible_duplicate: true,
                },
            ),
            (
                3,
                Transient,
                RetryDecision::Park {
                    possible_duplicate: false,
                },
            ),
            (
                3,
                Throttled,
                RetryDecision::Park {
                    possible_duplicate: false,
                },
            ),
            (
                5,
                Unknown,
                RetryDecision::Park {
                    possible_duplicate: true,
                },
            ),
            (1, Permanent, RetryDecision::Fail),
        ];
        for (attempts, class, want) in cases {
            assert_eq!(p.decide(attempts, class, 0.5), want, "{attempts} {class:?}");
        }
    }

    #[test]
    fn unknown_fails_when_policy_forbids_resend() {
        let p = RetryPolicy::try_new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            3,
            0.0,
            false,
        )
        .unwrap();
        assert_eq!(p.decide(1, OutcomeClass::Unknown, 0.5), RetryDecision::Fail);
    }

    #[test]
    fn retry_view_matches_decision() {
        let p = policy();
        assert_eq!(OutcomeClass::Permanent.retry(&p, 1), Retry::Never);
        assert_eq!(
            OutcomeClass::Throttled.retry(&p, 1),
            Retry::After(Duration::from_millis(100))
        );
        assert_eq!(OutcomeClass::Throttled.retry(&p, 3), Retry::Never);
    }
}

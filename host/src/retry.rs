//! One retry policy for everything the host retries over the network (model
//! calls in [`crate::llm`], event callbacks in [`crate::outbox`]):
//! exponential backoff with full jitter, and the `Retry-After` header. A
//! leaf: it imports nothing from the crate, so both users can share it
//! without depending on each other.

use std::time::{Duration, SystemTime};

/// How often, and how patiently, a failed request is retried.
///
/// The wait before retry `n` (1 for the first retry) is a uniformly random
/// duration in `[0, min(max_backoff, initial_backoff × multiplier^(n-1))]`
/// ("full jitter"), unless the server sent `Retry-After`, which is then
/// waited exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = never retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Doubling backoff from `base` up to `cap`, `max_attempts` in all: the
    /// event outbox's policy. Its ceiling stops growing after 30 doublings,
    /// as the outbox has always computed it, so `max_backoff` is `cap` or
    /// `base × 2^30`, whichever is shorter (over 12 days even for a 1 ms
    /// base, so only an absurd `cap` is affected).
    pub fn doubling(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        Self {
            max_attempts,
            initial_backoff: base,
            max_backoff: cap.min(base.saturating_mul(1 << 30)),
            multiplier: 2.0,
        }
    }

    /// The cap of the jittered wait before retry `retry` (1-based).
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(1_000) as i32;
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let secs = self.initial_backoff.as_secs_f64() * multiplier.powi(exponent);
        match Duration::try_from_secs_f64(secs) {
            Ok(d) => d.min(self.max_backoff),
            Err(_) => self.max_backoff,
        }
    }

    /// The wait before retry `retry` (1-based) for a random `unit` in
    /// `[0, 1)` (full jitter).
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.backoff_ceiling(retry).mul_f64(unit)
    }

    /// The wait before retry `retry`: the server's `retry_after` if given,
    /// else a jittered backoff.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait,
            None => self.backoff(retry, fastrand::f64()),
        }
    }
}

/// Parses a `Retry-After` value: delay seconds (`"2"`, also `"1.5"`) or an
/// HTTP date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, relative to `now`; a date in
/// the past means no wait). `None` if it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Duration::try_from_secs_f64(secs).ok()
        } else {
            None
        };
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(500));
        assert_eq!(policy.backoff_ceiling(2), Duration::from_secs(1));
        assert_eq!(policy.backoff_ceiling(3), Duration::from_secs(2));
        assert_eq!(policy.backoff_ceiling(5), Duration::from_secs(8));
        assert_eq!(policy.backoff_ceiling(6), Duration::from_secs(8));
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 0.5), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(3, 7.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(3, f64::NAN), Duration::ZERO);
        for _ in 0..100 {
            let d = policy.delay(2, None);
            assert!(d <= Duration::from_secs(1), "{d:?}");
        }
    }

    #[test]
    fn odd_multipliers_are_tamed() {
        let policy = RetryPolicy {
            multiplier: f64::INFINITY,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff_ceiling(4), Duration::from_millis(500));
        let policy = RetryPolicy {
            multiplier: 1e300,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff_ceiling(4), Duration::from_secs(8));
    }

    #[test]
    fn doubling_matches_the_outbox_integer_formula() {
        // The outbox computed `min(cap, base × 2^min(n - 1, 30))` in integer
        // arithmetic; the shared float computation must give the same waits
        // (to the nanosecond while the ceiling is under ~50 days, beyond
        // which an f64 of seconds no longer resolves nanoseconds).
        let old = |base: Duration, cap: Duration, n: u32| {
            base.saturating_mul(1u32 << n.saturating_sub(1).min(30))
                .min(cap)
        };
        let ms = Duration::from_millis;
        let configs = [
            (ms(500), ms(60_000)),
            (ms(100), ms(1_000)),
            (ms(20), ms(80)),
            (ms(300), ms(7_000)),
            (ms(1), Duration::MAX),
            (ms(7), ms(u64::MAX)),
            (Duration::ZERO, ms(5)),
        ];
        for (base, cap) in configs {
            let policy = RetryPolicy::doubling(8, base, cap);
            for n in (1..40).chain([100, u32::MAX]) {
                assert_eq!(
                    policy.backoff_ceiling(n),
                    old(base, cap, n),
                    "{base:?} {cap:?} {n}"
                );
            }
        }
    }

    #[test]
    fn retry_after_overrides_backoff() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}

//! Delivery settings of the outbox, and the one decision they drive: after
//! a failed attempt, when to try an entry again, or whether to give up.

use crate::egress::Egress;
use crate::retry::RetryPolicy;
use crate::store::StoreError;
use crate::util::millis;
use std::time::Duration;

/// What can go wrong setting a deliverer up.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("{var}: expected a whole number, got `{value}`")]
    BadEnv { var: &'static str, value: String },
    #[error("cannot create the HTTP client for event callbacks")]
    Client(#[source] reqwest::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Delivery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// The first retry waits up to this long; each further one up to twice
    /// as long as the one before, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long an event is retried, counted from when it was enqueued:
    /// the retry horizon. A failure after it makes the entry dead.
    pub give_up_after: Duration,
    /// Attempts (the first one included) before an entry is dead, on top
    /// of the horizon; `None`: no limit but the horizon.
    pub max_attempts: Option<u32>,
    /// One request, connection included.
    pub timeout: Duration,
    /// How often to look for entries enqueued by other processes.
    pub poll: Duration,
    /// Where callbacks may go (the operator's allowances).
    pub egress: Egress,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(5 * 60),
            give_up_after: Duration::from_secs(24 * 60 * 60),
            max_attempts: None,
            timeout: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            egress: Egress::default(),
        }
    }
}

/// After a failed attempt: try again at a time, or give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAttempt {
    /// Try again at this time (Unix milliseconds).
    At(u64),
    /// Give up: the entry is dead, for this reason (appended to its error).
    GiveUp(String),
}

impl OutboxConfig {
    /// The defaults, overridden by `HOST_OUTBOX_BASE_MS`, `HOST_OUTBOX_CAP_MS`,
    /// `HOST_OUTBOX_GIVE_UP_AFTER_SECS`, `HOST_OUTBOX_MAX_ATTEMPTS` and
    /// `HOST_OUTBOX_TIMEOUT_MS` when set.
    pub fn from_env() -> Result<Self, OutboxError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// [`OutboxConfig::from_env`] with another source of variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, OutboxError> {
        let number = |var: &'static str| -> Result<Option<u64>, OutboxError> {
            match get(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(value) => value
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| OutboxError::BadEnv { var, value }),
            }
        };
        let mut config = OutboxConfig::default();
        if let Some(ms) = number("HOST_OUTBOX_BASE_MS")? {
            config.backoff_base = Duration::from_millis(ms);
        }
        if let Some(ms) = number("HOST_OUTBOX_CAP_MS")? {
            config.backoff_cap = Duration::from_millis(ms);
        }
        if let Some(secs) = number("HOST_OUTBOX_GIVE_UP_AFTER_SECS")? {
            config.give_up_after = Duration::from_secs(secs);
        }
        if let Some(n) = number("HOST_OUTBOX_MAX_ATTEMPTS")? {
            config.max_attempts = Some(u32::try_from(n).unwrap_or(u32::MAX).max(1));
        }
        if let Some(ms) = number("HOST_OUTBOX_TIMEOUT_MS")? {
            config.timeout = Duration::from_millis(ms.max(1));
        }
        Ok(config)
    }

    /// The backoff of these settings: doubling from `backoff_base` up to
    /// `backoff_cap` (the horizon, not this policy's attempt count, ends
    /// the retries).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::doubling(
            self.max_attempts.unwrap_or(u32::MAX),
            self.backoff_base,
            self.backoff_cap,
        )
    }

    /// After the failed attempt number `attempts` (1 for the first) at
    /// `now_ms` of an entry enqueued at `created_at_ms`, with `unit` a random
    /// number in `[0, 1)` for the jitter: when to try again, or to give up.
    /// An entry is retried until the horizon (`give_up_after` after it was
    /// enqueued); the last wait is shortened to end at the horizon, so the
    /// last attempt is made there.
    pub fn after_failure(
        &self,
        attempts: u32,
        created_at_ms: u64,
        now_ms: u64,
        unit: f64,
    ) -> NextAttempt {
        if let Some(max) = self.max_attempts
            && attempts >= max
        {
            return NextAttempt::GiveUp(format!("gave up after {attempts} attempts"));
        }
        let horizon = created_at_ms.saturating_add(millis(self.give_up_after));
        if now_ms >= horizon {
            return NextAttempt::GiveUp(format!(
                "gave up after {attempts} attempts over {}",
                span_text(self.give_up_after)
            ));
        }
        let wait = millis(self.retry_policy().backoff(attempts, unit));
        NextAttempt::At(now_ms.saturating_add(wait).min(horizon))
    }

    /// How long a claimed entry stays leased: longer than any request.
    pub(super) fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(10)
    }
}

/// `24 h`, `90 min`, `10 s`, `250 ms`: a horizon as an operator set it.
fn span_text(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        format!("{} ms", d.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn backoff_grows_exponentially_under_a_cap_with_full_jitter() {
        let config = OutboxConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1000),
            ..OutboxConfig::default()
        };
        let backoff = |attempts, unit| config.retry_policy().backoff(attempts, unit);
        assert_eq!(backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(4, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(5, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(60, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(3, 0.0), Duration::ZERO);
        assert_eq!(backoff(3, 0.5), Duration::from_millis(200));
    }

    #[test]
    fn the_defaults_retry_for_a_day_waiting_at_most_minutes() {
        let config = OutboxConfig::default();
        assert_eq!(config.give_up_after, Duration::from_secs(86_400));
        assert_eq!(config.backoff_cap, Duration::from_secs(300));
        assert_eq!(config.max_attempts, None);
        // The 8th failure an hour in (which used to make an entry dead)
        // is retried after up to 500 ms × 2^7; the 100th and the 1000th
        // after up to the cap.
        let hour = 3_600_000;
        assert_eq!(
            config.after_failure(8, 0, hour, 1.0),
            NextAttempt::At(hour + 64_000)
        );
        for attempts in [100, 1000] {
            assert_eq!(
                config.after_failure(attempts, 0, hour, 1.0),
                NextAttempt::At(hour + 300_000)
            );
        }
    }

    #[test]
    fn an_entry_is_retried_until_its_horizon_then_given_up() {
        let config = OutboxConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1000),
            give_up_after: Duration::from_secs(10),
            ..OutboxConfig::default()
        };
        let created = 1_000_000;
        assert_eq!(
            config.after_failure(1, created, created, 1.0),
            NextAttempt::At(created + 100)
        );
        // The wait is cut to end at the horizon: one last attempt there.
        assert_eq!(
            config.after_failure(50, created, created + 9_500, 1.0),
            NextAttempt::At(created + 10_000)
        );
        assert_eq!(
            config.after_failure(51, created, created + 10_000, 1.0),
            NextAttempt::GiveUp("gave up after 51 attempts over 10 s".into())
        );
    }

    #[test]
    fn an_attempt_cap_still_ends_retries_early_when_set() {
        let config = OutboxConfig {
            max_attempts: Some(3),
            ..OutboxConfig::default()
        };
        assert!(matches!(
            config.after_failure(2, 0, 0, 0.5),
            NextAttempt::At(_)
        ));
        assert_eq!(
            config.after_failure(3, 0, 0, 0.5),
            NextAttempt::GiveUp("gave up after 3 attempts".into())
        );
    }

    #[test]
    fn horizons_read_as_set() {
        assert_eq!(span_text(Duration::from_secs(86_400)), "24 h");
        assert_eq!(span_text(Duration::from_secs(5_400)), "90 min");
        assert_eq!(span_text(Duration::from_secs(10)), "10 s");
        assert_eq!(span_text(Duration::from_millis(1_500)), "1500 ms");
    }

    #[test]
    fn config_from_variables() {
        let vars = HashMap::from([
            ("HOST_OUTBOX_BASE_MS", "20"),
            ("HOST_OUTBOX_CAP_MS", "80"),
            ("HOST_OUTBOX_MAX_ATTEMPTS", "3"),
            ("HOST_OUTBOX_GIVE_UP_AFTER_SECS", "90"),
        ]);
        let config =
            OutboxConfig::from_lookup(|v| vars.get(v).map(|s| s.to_string())).expect("config");
        assert_eq!(config.backoff_base, Duration::from_millis(20));
        assert_eq!(config.backoff_cap, Duration::from_millis(80));
        assert_eq!(config.max_attempts, Some(3));
        assert_eq!(config.give_up_after, Duration::from_secs(90));
        assert_eq!(config.timeout, OutboxConfig::default().timeout);
        let bad = OutboxConfig::from_lookup(|v| (v == "HOST_OUTBOX_CAP_MS").then(|| "soon".into()));
        assert_eq!(
            bad.map(|_| ()).map_err(|e| e.to_string()),
            Err("HOST_OUTBOX_CAP_MS: expected a whole number, got `soon`".to_owned())
        );
    }
}

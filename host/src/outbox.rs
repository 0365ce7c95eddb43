//! HTTP delivery of run events from the durable outbox in the [`Store`].
//!
//! The `http` sink ([`crate::sinks::HttpSink`]) only *enqueues* events (in
//! batches, from its own thread); a [`Deliverer`] sends them. Guarantees:
//!
//! - **In order per lane.** A lane is one run's events for one URL. Its
//!   entry `n + 1` is not sent before `n` is delivered or dead: later
//!   events of a run wait behind a failing one. Lanes run in parallel, so
//!   one run's failing endpoint holds no other run. A lease in the store ([`Store::outbox_claim`]) keeps two
//!   deliverers (two `host` processes on one database) off the same lane.
//! - **At least once.** An entry is marked delivered only after a 2xx; a
//!   process that dies mid-request leaves it pending, and it is sent again
//!   with the same body and `Idempotency-Key: RUN_ID:SEQ`.
//! - **Retries.** Connection errors, timeouts, 408, 429 and 5xx are retried
//!   with exponential backoff and full jitter (the shared
//!   [`crate::retry::RetryPolicy`], see [`OutboxConfig::retry_policy`])
//!   capped at [`OutboxConfig::backoff_cap`] (default 5 min), until
//!   [`OutboxConfig::give_up_after`] (default 24 h) has passed since the
//!   event was enqueued; a failure after that makes the entry dead
//!   ([`OutboxConfig::after_failure`]). Any other
//!   status (a 4xx: the endpoint refuses this request, and would refuse it
//!   again) makes it dead at once. A dead entry stays in the store with its
//!   last error (`host runs show`).
//! - **Signatures.** With a secret (the environment variable named by the
//!   target's `secret_env`, or the Go request's inline secret held in this
//!   process), `X-Host-Signature: t=UNIX_SECONDS,v1=HEX` carries the send
//!   time and the HMAC-SHA256 of `t.body` (the time, a dot, the exact
//!   body): a receiver refuses a stale `t`, so a captured request cannot be
//!   replayed later. An inline secret belongs to one run: this deliverer
//!   signs only the runs it was given secrets for, and leaves other runs'
//!   inline-secret entries pending for the process that holds theirs.
//! - **Egress.** Each destination gets a client that follows no redirect
//!   (a 3xx is a refusal) and connects only where the operator's
//!   [`crate::egress::Egress`] policy allows; a refused destination makes the entry dead
//!   at once. URLs are logged by origin only (webhook URLs are secrets).

mod config;

pub use config::{NextAttempt, OutboxConfig, OutboxError};

use crate::egress::{display_url, is_reserved_header, refusal};
use crate::secret::Secret;
use crate::store::{OutboxClaim, OutboxRecord, OutboxTarget, Scope, Store};
use crate::util::{error_chain, millis, now_ms};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The header carrying the send time and the HMAC-SHA256 of `t.body`.
pub const SIGNATURE_HEADER: &str = "X-Host-Signature";
/// The header carrying `RUN_ID:SEQ`, equal on every attempt of an event.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// `t=TIMESTAMP,v1=HEX`: the HMAC-SHA256 with `secret` of the timestamp
/// (Unix seconds), a dot and `body`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Worth trying again (connection, timeout, 408, 429, 5xx).
    Retry(String),
    /// The endpoint refused it; trying again would not help.
    Refused(String),
}

/// Sorts a response status.
pub fn classify(status: u16) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered,
        408 | 429 | 500..=599 => Attempt::Retry(format!("HTTP {status}")),
        _ => Attempt::Refused(format!("HTTP {status}")),
    }
}

/// When a delivery pass stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// Never (a background task, aborted by its owner).
    Forever,
    /// Nothing is due now and nothing is in flight (entries waiting for a
    /// retry stay pending).
    Idle,
    /// Nothing is pending any more: every entry delivered or dead.
    Empty,
}

/// Counts of what this deliverer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead: u64,
}

/// Sends outbox entries; cheap to clone (all clones share one state).
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// One client per destination (scheme, host, port), each resolving
    /// under the egress policy for that port.
    clients: Mutex<HashMap<String, reqwest::Client>>,
    config: OutboxConfig,
    /// This deliverer's name in leases.
    owner: String,
    /// New entries were enqueued.
    wake: Arc<Notify>,
    /// An entry was delivered or failed.
    progress: Notify,
    /// Inline secrets by run and URL (never stored).
    secrets: Mutex<HashMap<Lane, Secret>>,
    /// Custom header values by (run, URL) (never stored).
    headers: Mutex<HashMap<Lane, Vec<(String, Secret)>>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
}

type Lane = (String, String);

/// Most per-destination clients kept at once.
const MAX_CLIENTS: usize = 64;

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, config: OutboxConfig) -> Result<Self, OutboxError> {
        Ok(Deliverer {
            inner: Arc::new(Inner {
                store,
                clients: Mutex::new(HashMap::new()),
                config,
                owner: ulid::Ulid::generate().to_string(),
                wake: Arc::new(Notify::new()),
                progress: Notify::new(),
                secrets: Mutex::new(HashMap::new()),
                headers: Mutex::new(HashMap::new()),
                delivered: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                dead: AtomicU64::new(0),
            }),
        })
    }

    /// Signs the entries of run `run_id` for `url` whose target has an
    /// inline secret (no other run's).
    pub fn add_secret(&self, run_id: impl Into<String>, url: impl Into<String>, secret: Secret) {
        self.inner
            .secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((run_id.into(), url.into()), secret);
    }

    /// Whether this deliverer holds the inline secret of a lane.
    fn holds_secret(&self, run_id: &str, url: &str) -> bool {
        self.inner
            .secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(run_id.to_owned(), url.to_owned()))
    }

    fn holds_headers(&self, run_id: &str, url: &str) -> bool {
        self.inner
            .headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(run_id.to_owned(), url.to_owned()))
    }

    /// Sends `headers` with run `run_id`'s entries for `url` whose target
    /// names them ([`OutboxTarget::inline_headers`]).
    pub fn add_headers(
        &self,
        run_id: &str,
        url: &str,
        headers: impl IntoIterator<Item = (String, String)>,
    ) {
        let values = headers
            .into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect();
        self.inner
            .headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((run_id.to_owned(), url.to_owned()), values);
    }

    /// Notified (by the `http` sink) after it enqueued entries.
    pub fn waker(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    pub fn tally(&self) -> Tally {
        Tally {
            delivered: self.inner.delivered.load(Ordering::Relaxed),
            failed_attempts: self.inner.failed.load(Ordering::Relaxed),
            dead: self.inner.dead.load(Ordering::Relaxed),
        }
    }

    /// Lets go of this deliverer's leases: call it after stopping [`Deliverer::run`]
    /// (requests then in flight were dropped; another deliverer resends them).
    pub async fn release(&self) {
        if let Err(e) = self.inner.store.outbox_release(&self.inner.owner).await {
            tracing::warn!(error = %e, "cannot release outbox leases");
        }
    }

    /// Waits until the next entry is delivered or fails, or `timeout`.
    pub async fn progressed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.progress.notified()).await;
    }

    /// Delivers pending entries of every run until `until` holds or the
    /// deadline passes (requests in flight then are dropped; their entries
    /// stay pending). Store errors are logged and retried after the poll
    /// interval.
    pub async fn run(&self, until: Until, deadline: Option<Instant>) {
        let config = &self.inner.config;
        let mut lanes: JoinSet<(Lane, Option<u64>)> = JoinSet::new();
        let mut active: HashSet<Lane> = HashSet::new();
        // Lanes not to try before a time (waiting for a retry, or leased by
        // another process).
        let mut later: HashMap<Lane, u64> = HashMap::new();
        loop {
            let now = now_ms();
            // The operator's deliverer: every account's lanes.
            let heads = match self.inner.store.outbox_heads(&Scope::Operator).await {
                Ok(heads) => heads,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the event outbox");
                    Vec::new()
                }
            };
            let mut next = now + millis(config.poll);
            let mut due_now = false;
            // Another process's inline secret or header values (never
            // stored): its entries are not ours to send (or to count as
            // waiting); they stay pending for a process that holds them.
            let heads: Vec<_> = heads
                .into_iter()
                .filter(|h| !h.target.inline_secret || self.holds_secret(&h.run_id, &h.target.url))
                .filter(|h| {
                    h.target.inline_headers.is_empty()
                        || self.holds_headers(&h.run_id, &h.target.url)
                })
                .collect();
            for head in &heads {
                let lane = (head.run_id.clone(), head.target.url.clone());
                if active.contains(&lane) {
                    continue;
                }
                let at = later
                    .get(&lane)
                    .copied()
                    .unwrap_or(0)
                    .max(head.next_attempt_at_ms);
                if at > now {
                    next = next.min(at);
                    continue;
                }
                due_now = true;
                later.remove(&lane);
                active.insert(lane.clone());
                let this = self.clone();
                lanes.spawn(async move {
                    let retry_at = this.lane(&lane.0, &lane.1).await;
                    (lane, retry_at)
                });
            }
            let done = match until {
                Until::Forever => false,
                Until::Idle => !due_now && lanes.is_empty(),
                Until::Empty => heads.is_empty() && lanes.is_empty(),
            };
            if done {
                return;
            }
            let mut sleep_for = Duration::from_millis(next.saturating_sub(now));
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                sleep_for = sleep_for.min(left);
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(sleep_for) => {}
                Some(joined) = lanes.join_next(), if !lanes.is_empty() => {
                    if let Ok((lane, retry_at)) = joined {
                        active.remove(&lane);
                        if let Some(at) = retry_at {
                            later.insert(lane, at);
                        }
                    }
                }
            }
            // A lane that panicked is gone from the set; let it be retried.
            if lanes.is_empty() {
                active.clear();
            }
        }
    }

    /// Delivers one lane's entries in order until it is empty or its head
    /// must wait; returns the time to try it again.
    async fn lane(&self, run_id: &str, url: &str) -> Option<u64> {
        let inner = &self.inner;
        let config = &inner.config;
        // For logs: webhook URLs often carry a secret in their path or query.
        let url_shown = display_url(url);
        let shown = url_shown.as_str();
        loop {
            let now = now_ms();
            let claim = inner
                .store
                .outbox_claim(
                    &Scope::Operator,
                    run_id,
                    url,
                    &inner.owner,
                    now,
                    now + millis(config.lease()),
                )
                .await;
            let record = match claim {
                Ok(OutboxClaim::Claimed(record)) => record,
                Ok(OutboxClaim::Empty) => return None,
                Ok(OutboxClaim::NotDue(at)) => return Some(at),
                // Look again soon: the other deliverer may finish or stop
                // (and release its lease) long before the lease expires.
                Ok(OutboxClaim::Busy(until)) => return Some(until.min(now + millis(config.poll))),
                Err(e) => {
                    tracing::warn!(run_id, url = shown, error = %e, "cannot claim an outbox entry");
                    return Some(now + millis(config.poll));
                }
            };
            let attempt = self.send(&record).await;
            let seq = record.seq;
            let recorded = match attempt {
                Attempt::Delivered => {
                    inner.delivered.fetch_add(1, Ordering::Relaxed);
                    inner.store.outbox_delivered(run_id, url, seq).await
                }
                Attempt::Retry(error) => {
                    inner.failed.fetch_add(1, Ordering::Relaxed);
                    let attempts = record.attempts.saturating_add(1);
                    let (error, retry_at) = match config.after_failure(
                        attempts,
                        record.created_at_ms,
                        now_ms(),
                        fastrand::f64(),
                    ) {
                        NextAttempt::At(at) => (error, Some(at)),
                        NextAttempt::GiveUp(why) => {
                            inner.dead.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(run_id, url = shown, seq, %error, attempts, "event callback dead");
                            (format!("{error} ({why})"), None)
                        }
                    };
                    inner
                        .store
                        .outbox_failed(run_id, url, seq, error, retry_at)
                        .await
                }
                Attempt::Refused(error) => {
                    inner.failed.fetch_add(1, Ordering::Relaxed);
                    inner.dead.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(run_id, url = shown, seq, %error, "event callback refused");
                    inner
                        .store
                        .outbox_failed(run_id, url, seq, error, None)
                        .await
                }
            };
            inner.progress.notify_waiters();
            if let Err(e) = recorded {
                tracing::warn!(run_id, url = shown, seq, error = %e, "cannot record an outbox attempt");
                return Some(now_ms() + millis(config.poll));
            }
        }
    }

    /// The client for `url`'s destination, built on first use; a refused
    /// destination is an error.
    fn client(&self, url: &reqwest::Url) -> Result<reqwest::Client, String> {
        // Checked on every request, not only when the client is built: the
        // literal address of a URL never reaches the resolver.
        let policy = &self.inner.config.egress;
        policy.check_url(url).map_err(|e| e.to_string())?;
        let origin = url.origin().ascii_serialization();
        let mut clients = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&origin) {
            return Ok(client.clone());
        }
        let client = policy
            .client(url)
            .map_err(|e| e.to_string())?
            .user_agent(concat!("host/", env!("CARGO_PKG_VERSION")))
            .timeout(self.inner.config.timeout)
            .connect_timeout(self.inner.config.timeout)
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {}", error_chain(&e)))?;
        // Destinations are few; a flood of distinct ones only costs a
        // rebuild.
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(origin, client.clone());
        Ok(client)
    }

    /// One POST of one entry.
    async fn send(&self, record: &OutboxRecord) -> Attempt {
        let target = &record.target;
        let secret = match self.secret(&record.run_id, target) {
            Ok(secret) => secret,
            Err(e) => return Attempt::Retry(e),
        };
        let url = match reqwest::Url::parse(&target.url) {
            Ok(url) => url,
            Err(e) => return Attempt::Refused(format!("not a URL: {e}")),
        };
        // Stored before validation refused them (or by an older version):
        // never sent.
        if let Some(name) = target.headers.keys().find(|n| is_reserved_header(n)) {
            return Attempt::Refused(format!("header `{name}` is reserved"));
        }
        let client = match self.client(&url) {
            Ok(client) => client,
            Err(e) => return Attempt::Refused(e),
        };
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                IDEMPOTENCY_HEADER,
                format!("{}:{}", record.run_id, record.seq),
            );
        for (name, value) in &target.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match self.inline_headers(record) {
            Ok(headers) => {
                for (name, value) in headers {
                    let mut value = match reqwest::header::HeaderValue::from_str(value.expose()) {
                        Ok(value) => value,
                        Err(_) => {
                            return Attempt::Refused(format!("header {name}: not a valid value"));
                        }
                    };
                    value.set_sensitive(true);
                    request = request.header(name.as_str(), value);
                }
            }
            Err(e) => return Attempt::Retry(e),
        }
        if let Some(secret) = secret {
            let now = now_ms() / 1000;
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.as_bytes(), now, record.body.as_bytes()),
            );
        }
        match request.body(record.body.clone()).send().await {
            Ok(response) => classify(response.status().as_u16()),
            // A name that resolved to a refused address.
            Err(e) if refusal(&e).is_some() => {
                Attempt::Refused(refusal(&e).map(|r| r.to_string()).unwrap_or_default())
            }
            Err(e) => Attempt::Retry(error_chain(&e.without_url())),
        }
    }

    /// The values of the custom headers the entry's target names.
    fn inline_headers(&self, record: &OutboxRecord) -> Result<Vec<(String, Secret)>, String> {
        let names = &record.target.inline_headers;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.inner
            .headers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(record.run_id.clone(), record.target.url.clone()))
            .filter(|held| names.iter().all(|n| held.iter().any(|(h, _)| h == n)))
            .cloned()
            .ok_or_else(|| {
                "the callback's header values are held only by the process that ran the run \
                 (or resumes it, or `host outbox deliver` given its spec file); they are never stored"
                    .to_owned()
            })
    }

    /// The target's signing secret: `Ok(None)` when it has none.
    fn secret(&self, run_id: &str, target: &OutboxTarget) -> Result<Option<String>, String> {
        if let Some(var) = &target.secret_env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                _ => Err(format!(
                    "the signing secret's environment variable {var} is not set"
                )),
            };
        }
        if target.inline_secret {
            return self
                .inner
                .secrets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(run_id.to_owned(), target.url.clone()))
                .map(|s| Some(s.expose().to_owned()))
                .ok_or_else(|| {
                    "the request's inline callback secret is known only to the process that ran it; \
                     use secret_env to deliver from another process"
                        .to_owned()
                });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2's key; the message behind `t.` (checked
        // with Python's hmac module).
        assert_eq!(
            signature(b"Jefe", 1_700_000_000, b"what do ya want for nothing?"),
            "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
        );
    }

    #[test]
    fn statuses_are_sorted() {
        assert_eq!(classify(200), Attempt::Delivered);
        assert_eq!(classify(204), Attempt::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert!(matches!(classify(s), Attempt::Retry(_)), "{s}");
        }
        for s in [301, 400, 401, 404, 410] {
            assert!(matches!(classify(s), Attempt::Refused(_)), "{s}");
        }
    }
}

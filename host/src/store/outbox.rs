//! The outbox of events waiting for HTTP delivery (docs/EVENTS.md): the
//! record types and [`OutboxStore`].

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Scope, StoreError, UnknownName, all_variants, parse_name};

/// Where an outbox entry goes: an HTTP callback's settings, kept with each
/// entry so any later `host` process can deliver it. Secrets are never
/// stored: only the name of the environment variable holding one, or the
/// fact that the process that enqueued it had one inline (the Go runner's
/// `callback.secret`). A spec's custom header values may be secrets too
/// (`Authorization`), so only their names are stored
/// ([`OutboxTarget::inline_headers`]); the values stay in the memory of the
/// process that runs (or resumes) the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxTarget {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Headers sent as stored: only rows written before header values
    /// were held in memory have any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Names of the spec's custom headers; their values are held by the
    /// process that enqueued the entry, never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline_headers: Vec<String>,
    /// Signed with a secret given inline to the enqueuing process.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline_secret: bool,
}

/// An outbox entry's delivery state. The names (`snake_case`) are stored and
/// shown: strum's and serde's must stay the same.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OutboxState {
    /// Not delivered yet; tried again at `next_attempt_at_ms`.
    Pending,
    /// The endpoint accepted it.
    Delivered,
    /// Given up on: the retry cap was reached or the endpoint refused it.
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 3] = all_variants(<Self as strum::VariantArray>::VARIANTS);

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for OutboxState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name("outbox state", s)
    }
}

/// One event to deliver, as [`OutboxStore::outbox_enqueue`] takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOutboxEntry {
    pub run_id: String,
    pub target: OutboxTarget,
    /// The event's `seq` as delivered (also in `body`).
    pub seq: u64,
    /// The event's type, for listings.
    pub event_type: String,
    /// The request body, exactly as it will be POSTed (and signed).
    pub body: String,
}

/// A stored outbox entry. Entries are keyed by (run, target URL, seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub run_id: String,
    /// The run's account and user, copied from the run when the entry was
    /// enqueued (empty when the run was unknown then).
    pub account_id: String,
    pub user_id: String,
    pub target: OutboxTarget,
    pub seq: u64,
    pub event_type: String,
    pub body: String,
    pub state: OutboxState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When a pending entry may be tried (again).
    pub next_attempt_at_ms: u64,
    pub last_error: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// What [`OutboxStore::outbox_claim`] found at the head of a lane (one run's
/// entries for one target, delivered strictly in `seq` order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxClaim {
    /// The lane's oldest pending entry, now leased to the caller.
    Claimed(Box<OutboxRecord>),
    /// The head is waiting for its next attempt at this time.
    NotDue(u64),
    /// Another deliverer holds the head's lease until this time.
    Busy(u64),
    /// Nothing pending in the lane.
    Empty,
}

impl OutboxClaim {
    /// Why a lane's head, leased as `lease` (owner, until) and due at
    /// `next_attempt_at_ms`, cannot be leased to `owner` at `now_ms`; `None`
    /// when it can. Every store decides with this one rule.
    pub(crate) fn refusal(
        lease: Option<(&str, u64)>,
        next_attempt_at_ms: u64,
        owner: &str,
        now_ms: u64,
    ) -> Option<OutboxClaim> {
        match lease {
            Some((other, until)) if other != owner && until > now_ms => {
                Some(OutboxClaim::Busy(until))
            }
            _ if next_attempt_at_ms > now_ms => Some(OutboxClaim::NotDue(next_attempt_at_ms)),
            _ => None,
        }
    }
}

/// A run's outbox at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxSummary {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// The dead entries, by target and `seq`.
    pub dead_entries: Vec<OutboxRecord>,
}

/// HTTP events waiting for delivery (docs/EVENTS.md). Object-safe.
pub trait OutboxStore: Send + Sync + 'static {
    /// Adds events to the outbox as `pending`, due now, in one transaction,
    /// each with its run's account and user. An entry whose (run, target
    /// URL, seq) exists already is left as it is, so enqueueing twice is
    /// harmless.
    fn outbox_enqueue<'a>(
        &'a self,
        entries: Vec<NewOutboxEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The highest `seq` enqueued for the run and target URL (0: none), so
    /// a resumed run's events continue the numbering.
    fn outbox_last_seq<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The head (oldest pending entry) of every lane of `scope` with pending
    /// entries, whether due or not, oldest lane first.
    fn outbox_heads<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>>;

    /// Leases the head of the lane (run, target URL) to `owner` until
    /// `lease_until_ms` if it is due at `now_ms` and not leased to another
    /// owner (an expired lease counts as none). Atomic, so two deliverers
    /// (two processes) never send one lane's entries at once. A lane that
    /// `scope` does not admit is [`OutboxClaim::Empty`].
    fn outbox_claim<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        url: &'a str,
        owner: &'a str,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> BoxFuture<'a, Result<OutboxClaim, StoreError>>;

    /// Drops every lease `owner` holds (a deliverer stopping with requests
    /// in flight), so other deliverers need not wait for them to expire.
    fn outbox_release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Marks an entry delivered (counting the attempt) and drops its lease.
    fn outbox_delivered<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records a failed attempt: the entry stays pending until
    /// `retry_at_ms`, or becomes dead when that is `None`. Drops the lease.
    fn outbox_failed<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
        error: String,
        retry_at_ms: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Entries of `scope`, optionally of one run and in one state, by run,
    /// target and `seq`; at most `limit`.
    fn outbox_entries<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>>;

    /// The run's entries counted by state, and its dead entries (all zero
    /// when `scope` does not admit the run's account).
    fn outbox_summary<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>>;
}

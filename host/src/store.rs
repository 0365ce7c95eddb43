//! Durable state: runs, their append-only journals, conversation sessions,
//! and the outbox of events waiting for HTTP delivery.
//!
//! [`Store`] is the one interface the engine talks to. It is deliberately free
//! of SQL: ids are strings, payloads are JSON values, timestamps are unix
//! milliseconds, and ordering (`seq`) is assigned by the store. Two
//! implementations ship:
//!
//! - [`SqliteStore`]: the embedded default, one file (`--db`, by default
//!   [`default_db_path`]) in WAL mode with versioned schema migrations;
//! - [`MemoryStore`]: in-process, for library users and tests.
//!
//! A PostgreSQL implementation for many workers can implement the same trait.
//!
//! Guarantees every implementation keeps:
//! - runs are keyed by run id, never by session id;
//! - a journal entry and the run update given with it
//!   ([`Store::append_with_update`]) are committed together or not at all, and
//!   journal sequence numbers are 1, 2, 3… per run with no gaps;
//! - every session query filters on account, user *and* session id, so one
//!   account never sees another's session even when the session ids collide;
//! - a terminal run ([`RunStatus::is_terminal`]) never changes status again
//!   (such an update is a [`StoreError::Conflict`]).
//!
//! Timestamps (`*_at_ms`) are unix epoch milliseconds (UTC).

mod memory;
mod sqlite;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to a store. `db` names the database
/// (a file path, `:memory:`, or a backend's address) so messages are actionable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run database {db}: {source}")]
    Open {
        db: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "the run database {db} is corrupt or not a SQLite database ({detail}); \
         move it aside or choose another file with --db"
    )]
    Corrupt { db: String, detail: String },
    #[error(
        "the run database {db} is locked by another process (still busy after the busy timeout); \
         is another `host` using it?"
    )]
    Locked { db: String },
    #[error(
        "the run database {db} has schema version {found}, newer than this host supports \
         ({supported}); upgrade host or use another --db"
    )]
    Schema {
        db: String,
        found: u64,
        supported: u64,
    },
    #[error("no run with id {run_id:?}")]
    NotFound { run_id: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot (de)serialize {what}: {source}")]
    Serialization {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("run database {db}: {source}")]
    Backend {
        db: String,
        #[source]
        source: BoxError,
    },
    /// One failure reported to each of several waiters (e.g. the barriers
    /// of a run's parallel branches that waited for the same write).
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

/// A run's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    WaitingApproval,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::WaitingApproval,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::WaitingApproval => "waiting_approval",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled: the run will never move again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status or journal-kind string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

impl FromStr for RunStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "run status",
                value: s.to_owned(),
            })
    }
}

/// Tokens used by one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Who a session belongs to. Every session query filters on all three
/// fields; empty strings stand for an absent account or user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionScope {
    pub account_id: String,
    pub user_id: String,
    pub session_id: String,
}

impl SessionScope {
    pub fn new(
        account_id: impl Into<String>,
        user_id: impl Into<String>,
        session_id: impl Into<String>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            user_id: user_id.into(),
            session_id: session_id.into(),
        }
    }
}

/// What [`Store::create_run`] needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    pub run_id: String,
    /// Usually [`RunStatus::Queued`] or [`RunStatus::Running`].
    pub status: RunStatus,
    pub workflow_key: String,
    pub spec_digest: String,
    /// Empty when absent.
    pub account_id: String,
    /// Empty when absent.
    pub user_id: String,
    pub session_id: Option<String>,
    /// The run's input, kept so an interrupted run can be resumed.
    pub input: serde_json::Value,
}

impl NewRun {
    /// The record of a run just created at `now_ms`.
    pub fn into_record(self, now_ms: u64) -> RunRecord {
        RunRecord {
            run_id: self.run_id,
            status: self.status,
            workflow_key: self.workflow_key,
            spec_digest: self.spec_digest,
            account_id: self.account_id,
            user_id: self.user_id,
            session_id: self.session_id,
            input: self.input,
            last_agent: None,
            last_response_id: None,
            output: None,
            error: None,
            usage: Default::default(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub status: RunStatus,
    pub workflow_key: String,
    pub spec_digest: String,
    pub account_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub input: serde_json::Value,
    pub last_agent: Option<String>,
    pub last_response_id: Option<String>,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    /// Per model name.
    pub usage: BTreeMap<String, Usage>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl RunRecord {
    /// The session this run belongs to, if any.
    pub fn session_scope(&self) -> Option<SessionScope> {
        self.session_id
            .as_ref()
            .map(|s| SessionScope::new(&self.account_id, &self.user_id, s))
    }
}

/// A partial update of a run: only `Some` fields change; `updated_at_ms`
/// always does. `usage` replaces the whole per-model map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub last_agent: Option<String>,
    pub last_response_id: Option<String>,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub usage: Option<BTreeMap<String, Usage>>,
}

impl RunUpdate {
    pub fn status(status: RunStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Applies this update to `run` (shared by the implementations so they
    /// agree on the rules). Fails, changing nothing, when it would move a
    /// terminal run to another status.
    pub(crate) fn apply_to(&self, run: &mut RunRecord, now_ms: u64) -> Result<(), StoreError> {
        if let Some(status) = self.status
            && run.status.is_terminal()
            && status != run.status
        {
            return Err(StoreError::Conflict(format!(
                "run {} is {} and cannot become {status}",
                run.run_id, run.status
            )));
        }
        if let Some(v) = self.status {
            run.status = v;
        }
        if let Some(v) = &self.last_agent {
            run.last_agent = Some(v.clone());
        }
        if let Some(v) = &self.last_response_id {
            run.last_response_id = Some(v.clone());
        }
        if let Some(v) = &self.output {
            run.output = Some(v.clone());
        }
        if let Some(v) = &self.error {
            run.error = Some(v.clone());
        }
        if let Some(v) = &self.usage {
            run.usage = v.clone();
        }
        run.updated_at_ms = now_ms;
        Ok(())
    }
}

/// Which runs [`Store::list_runs`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub session: Option<SessionScope>,
    pub limit: Option<usize>,
}

/// What a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    RunStarted,
    StepStarted,
    ModelResponse,
    ToolResult,
    PluginOutput,
    GuardrailVerdict,
    ApprovalRequested,
    ApprovalDecision,
    StepCompleted,
    StepFailed,
    StageCompleted,
    RunFinished,
    /// The session history a step's agent received.
    SessionRead,
    /// Items a step (or a parallel stage) appended to the session.
    SessionWrite,
}

impl JournalKind {
    pub const ALL: [JournalKind; 14] = [
        JournalKind::RunStarted,
        JournalKind::StepStarted,
        JournalKind::ModelResponse,
        JournalKind::ToolResult,
        JournalKind::PluginOutput,
        JournalKind::GuardrailVerdict,
        JournalKind::ApprovalRequested,
        JournalKind::ApprovalDecision,
        JournalKind::StepCompleted,
        JournalKind::StepFailed,
        JournalKind::StageCompleted,
        JournalKind::RunFinished,
        JournalKind::SessionRead,
        JournalKind::SessionWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::RunStarted => "run_started",
            JournalKind::StepStarted => "step_started",
            JournalKind::ModelResponse => "model_response",
            JournalKind::ToolResult => "tool_result",
            JournalKind::PluginOutput => "plugin_output",
            JournalKind::GuardrailVerdict => "guardrail_verdict",
            JournalKind::ApprovalRequested => "approval_requested",
            JournalKind::ApprovalDecision => "approval_decision",
            JournalKind::StepCompleted => "step_completed",
            JournalKind::StepFailed => "step_failed",
            JournalKind::StageCompleted => "stage_completed",
            JournalKind::RunFinished => "run_finished",
            JournalKind::SessionRead => "session_read",
            JournalKind::SessionWrite => "session_write",
        }
    }
}

impl fmt::Display for JournalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JournalKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JournalKind::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "journal kind",
                value: s.to_owned(),
            })
    }
}

/// The result of one side effect, as the engine records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub kind: JournalKind,
    /// Identifies the side effect (e.g. `"stage/step/turn"`) so a resume can
    /// look it up with [`Store::journal_by_key`]. Need not be unique.
    pub key: String,
    /// SHA-256 (hex) of the plugin that produced a `plugin_output`.
    pub plugin_digest: Option<String>,
    pub data: serde_json::Value,
}

impl JournalEntry {
    pub fn new(kind: JournalKind, key: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            kind,
            key: key.into(),
            plugin_digest: None,
            data,
        }
    }
}

/// A committed journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// 1, 2, 3… per run.
    pub seq: u64,
    pub at_ms: u64,
    pub entry: JournalEntry,
}

/// One item of a session's conversation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    /// 1, 2, 3… per session; never reused, also after a summary replaced a prefix.
    pub seq: u64,
    /// The run that appended it.
    pub run_id: String,
    pub at_ms: u64,
    pub item: serde_json::Value,
}

/// The summary that replaced a session's history up to `covers_up_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub summary: String,
    pub covers_up_to: u64,
    pub updated_at_ms: u64,
}

/// Where an outbox entry goes: an HTTP callback's settings, kept with each
/// entry so any later `host` process can deliver it. Secrets are never
/// stored: only the name of the environment variable holding one, or the
/// fact that the process that enqueued it had one inline (the Go runner's
/// `callback.secret`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxTarget {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Signed with a secret given inline to the enqueuing process.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline_secret: bool,
}

/// An outbox entry's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Not delivered yet; tried again at `next_attempt_at_ms`.
    Pending,
    /// The endpoint accepted it.
    Delivered,
    /// Given up on: the retry cap was reached or the endpoint refused it.
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 3] = [
        OutboxState::Pending,
        OutboxState::Delivered,
        OutboxState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Dead => "dead",
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutboxState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "outbox state",
                value: s.to_owned(),
            })
    }
}

/// One event to deliver, as [`Store::outbox_enqueue`] takes it.
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

/// What [`Store::outbox_claim`] found at the head of a lane (one run's
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

/// A run's outbox at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxSummary {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// The dead entries, by target and `seq`.
    pub dead_entries: Vec<OutboxRecord>,
}

/// Durable state for runs, journals and sessions. Object-safe: use it as
/// `Arc<dyn Store>`.
pub trait Store: Send + Sync + 'static {
    /// Creates a run; [`StoreError::Conflict`] if the id exists.
    fn create_run<'a>(&'a self, run: NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        self.create_run_with(run, None)
    }

    /// Creates a run and, in the same transaction, its first journal entry
    /// (so no run exists without it).
    fn create_run_with<'a>(
        &'a self,
        run: NewRun,
        first: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>>;

    fn get_run<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;

    /// Just the run's status (cheaper than [`Store::get_run`]).
    fn run_status<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunStatus>, StoreError>> {
        Box::pin(async move { Ok(self.get_run(run_id).await?.map(|r| r.status)) })
    }

    /// Runs matching `filter`, newest first.
    fn list_runs<'a>(
        &'a self,
        filter: RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>>;

    /// Applies `update`; [`StoreError::NotFound`] for an unknown run.
    fn update_run<'a>(
        &'a self,
        run_id: &'a str,
        update: RunUpdate,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>>;

    /// Appends `entry` to the run's journal and, in the same transaction,
    /// applies `update` if given. Returns the entry's sequence number. If
    /// anything fails, nothing is written.
    fn append_with_update<'a>(
        &'a self,
        run_id: &'a str,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// [`Store::append_with_update`] for write-behind: the returned future
    /// owns what it needs, so it can be kept and awaited later. Both
    /// implementations here queue the write when this is called (writes
    /// queued by successive calls commit in call order) and the future only
    /// reports the outcome. The default queues nothing until first polled.
    fn append_queued(
        self: Arc<Self>,
        run_id: String,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        Box::pin(async move { self.append_with_update(&run_id, entry, update).await })
    }

    /// Appends `entry` to the run's journal; returns its sequence number.
    fn append<'a>(
        &'a self,
        run_id: &'a str,
        entry: JournalEntry,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.append_with_update(run_id, entry, None)
    }

    /// The run's whole journal, ordered by `seq`.
    fn journal<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;

    /// The run's journal entries with this key, ordered by `seq` (indexed).
    fn journal_by_key<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;

    /// Runs left `queued` or `running` (e.g. by a crash), oldest first.
    fn interrupted_runs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>>;

    /// The session's history after its summary (if any), oldest first; with
    /// `limit`, only the newest `limit` items (still oldest first).
    fn session_history<'a>(
        &'a self,
        scope: &'a SessionScope,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<SessionItem>, StoreError>>;

    /// Appends items to the session (creating it) and, in the same
    /// transaction, `record` to run `run_id`'s journal (so a resumed run
    /// knows whether its items are in the session).
    fn append_session<'a>(
        &'a self,
        scope: &'a SessionScope,
        run_id: &'a str,
        items: Vec<serde_json::Value>,
        record: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The summary strategy: stores `summary` as standing for every item with
    /// `seq <= covers_up_to` and deletes those items, in one transaction.
    /// [`StoreError::Conflict`] if `covers_up_to` is beyond the last item.
    fn set_session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
        summary: String,
        covers_up_to: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
    ) -> BoxFuture<'a, Result<Option<SessionSummary>, StoreError>>;
    // ---- outbox: HTTP events waiting for delivery (docs/EVENTS.md) ----

    /// Adds events to the outbox as `pending`, due now, in one transaction.
    /// An entry whose (run, target URL, seq) exists already is left as it
    /// is, so enqueueing twice is harmless.
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

    /// The head (oldest pending entry) of every lane with pending entries,
    /// whether due or not, oldest lane first.
    fn outbox_heads<'a>(&'a self) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>>;

    /// Leases the head of the lane (run, target URL) to `owner` until
    /// `lease_until_ms` if it is due at `now_ms` and not leased to another
    /// owner (an expired lease counts as none). Atomic, so two deliverers
    /// (two processes) never send one lane's entries at once.
    fn outbox_claim<'a>(
        &'a self,
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

    /// Entries, optionally of one run and in one state, by run, target and
    /// `seq`; at most `limit`.
    fn outbox_entries<'a>(
        &'a self,
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>>;

    /// The run's entries counted by state, and its dead entries.
    fn outbox_summary<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>>;
}

/// The default database file: `$HOST_DB` if set, else `host.db` in the
/// user's data directory (e.g. `~/.local/share/host/host.db` on Linux).
pub fn default_db_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HOST_DB").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("dev", "wasm-workflow", "host")
        .map(|d| d.data_dir().join("host.db"))
}

/// Now, in unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

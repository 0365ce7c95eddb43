//! Runs and their journals: the record types and [`RunStore`].

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Scope, SessionScope, StoreError, UnknownName, Usage, all_variants, parse_name};

/// A run's lifecycle state. The names (`snake_case`) are stored and shown:
/// strum's and serde's must stay the same.
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
pub enum RunStatus {
    Queued,
    Running,
    WaitingApproval,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = all_variants(<Self as strum::VariantArray>::VARIANTS);

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Completed, failed or cancelled: the run will never move again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl std::str::FromStr for RunStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name("run status", s)
    }
}

/// What [`RunStore::create_run`] needs.
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
    /// Per model name (stored without the total: input + output).
    #[serde(with = "crate::usage::stored")]
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
    #[serde(with = "crate::usage::stored::option")]
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

/// Which runs [`RunStore::list_runs`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub session: Option<SessionScope>,
    /// Only runs of this workflow key.
    pub workflow: Option<String>,
    /// A cursor: only runs listed after this run id (older, in the
    /// listing's order), for paging. An unknown id lists nothing.
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// What a journal entry records. The names (`snake_case`) are stored: strum's
/// and serde's must stay the same.
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
pub enum JournalKind {
    RunStarted,
    ModelResponse,
    ToolResult,
    PluginOutput,
    GuardrailVerdict,
    ApprovalRequested,
    ApprovalDecision,
    StepCompleted,
    StepFailed,
    RunFinished,
    /// The session history a step's agent received.
    SessionRead,
    /// Items a step (or a parallel stage) appended to the session.
    SessionWrite,
}

impl JournalKind {
    pub const ALL: [JournalKind; 12] = all_variants(<Self as strum::VariantArray>::VARIANTS);

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for JournalKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name("journal kind", s)
    }
}

/// The result of one side effect, as the engine records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub kind: JournalKind,
    /// Identifies the side effect (e.g. `"stage/step/turn"`) so a resume can
    /// look it up with [`RunStore::journal_by_key`]. Need not be unique.
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

/// Runs and their append-only journals. Object-safe.
pub trait RunStore: Send + Sync + 'static {
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

    /// The run, if it exists and `scope` admits its account.
    fn get_run<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;

    /// Just the run's status (cheaper than [`RunStore::get_run`]), for the
    /// engine checking on a run it executes.
    fn run_status<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunStatus>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .get_run(&Scope::Operator, run_id)
                .await?
                .map(|r| r.status))
        })
    }

    /// Runs of `scope` matching `filter`, newest first.
    fn list_runs<'a>(
        &'a self,
        scope: &'a Scope,
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

    /// [`RunStore::append_with_update`] for write-behind: the returned future
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

    /// The run's whole journal, ordered by `seq`; empty when the run does
    /// not exist or `scope` does not admit its account.
    fn journal<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;

    /// The run's journal entries with this key, ordered by `seq` (indexed).
    /// For the engine reading back a run it executes.
    fn journal_by_key<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;

    /// Runs of `scope` left `queued` or `running` (e.g. by a crash), oldest
    /// first.
    fn interrupted_runs<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>>;

    /// Deletes every finished run ([`RunStatus::is_terminal`]) last updated
    /// before `before_ms`, with its journal, stored events and outbox
    /// entries, in one transaction; returns how many runs went.
    fn prune_finished<'a>(&'a self, before_ms: u64) -> BoxFuture<'a, Result<u64, StoreError>>;
}

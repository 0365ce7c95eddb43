//! The run's journal: what it already did, and the contract for recording
//! the rest. Its format (one payload type per entry kind, typed keys) is
//! described in docs/ARCHITECTURE.md and pinned by `records::tests`.
//!
//! Every side effect — model response, tool result, plugin output, guardrail
//! verdict, approval, session read and write — has a key that is the same in
//! every execution of the run (`stage/step/t<turn>/…`, see [`Key`]). Before
//! doing one, the engine asks [`Journal::recorded`]; after doing it, it
//! [`Journal::commit`]s the result and only then moves on. A resumed run
//! executes the workflow again from the top and is served every recorded
//! result, so it reaches the exact point where it stopped without repeating
//! a model, tool or plugin call — except a tool call that was running when
//! the process died, which runs again: tools are at-least-once, and get
//! `<run id>/<tool key>` as an idempotency key to make that harmless.
//!
//! Approvals are bound to one call: an `approval_requested` entry carries
//! the digest of its tool and arguments ([`call_digest`]), the decision the
//! digest of the call decided on, and a call runs only on a decision with
//! its own digest.
//!
//! Commits are write-behind: [`Journal::commit`] queues the write and returns;
//! [`Journal::barrier`] waits until every queued write of the run is
//! committed. The engine passes a barrier before every side effect that
//! leaves the process or costs money (a model call, a tool call, pausing
//! for an approval, the end of the run), so what it did before is durable
//! before it does anything that must not be repeated — while consecutive
//! writes in between (a response, guardrail verdicts, the step's result,
//! the next step's guard and mapper outputs) share one commit.
//!
//! A replay ([`Mode::Replay`]) is served only what costs money or touches
//! the world — model responses, tool results, approval decisions, session
//! reads — and runs every plugin hook (guards, mappers, reducers,
//! guardrails) again with the current plugins. It writes nothing: what it
//! would have recorded goes to its [`ReplayLog`], with where it first
//! diverged from the recording (a model call whose input is not the
//! recorded one), after which no recorded answer is served.

mod keys;
mod records;
mod replay;
mod steps;

pub use keys::{BadKey, Key, Owner, StepKey};
pub use records::{
    ApprovalAnswer, ApprovalRequest, Decision, GuardrailCheck, HookOutput, ModelCall, Payload,
    RunFinished, RunStarted, SessionRead, SessionRecord, SessionWrite, StepDone, StepFailed,
    ToolCall, call_digest,
};
pub(crate) use replay::ModelServed;
pub use replay::{
    AfterDivergence, Divergence, DivergenceCause, ReplayLog, Replayed, request_digest,
};
pub use steps::{StepStatus, StepSummary, step_summaries};

use crate::store::{
    JournalEntry, JournalKind, JournalRecord, RunStatus, RunUpdate, Store, StoreError,
};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale a "not cancelled" answer may be: the store is asked at most
/// this often per run (a cancel from another process lands within it).
const CANCEL_CHECK_EVERY: Duration = Duration::from_millis(100);

/// How a run uses its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Record every side effect; serve those already recorded (resume).
    Live,
    /// Serve recorded model/tool/approval/session results; write nothing.
    Replay,
}

/// A recorded entry whose payload does not decode as its kind's type.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the journal entry `{key}` is unreadable: {reason}")]
pub struct Unreadable {
    pub key: String,
    pub reason: String,
}

/// Decodes a recorded entry's payload.
pub(crate) fn decode<T: Payload>(record: &JournalRecord) -> Result<T, Unreadable> {
    T::deserialize(&record.entry.data).map_err(|e| Unreadable {
        key: record.entry.key.clone(),
        reason: e.to_string(),
    })
}

/// The run's `run_started` payload, if its journal has one.
pub fn run_started(records: &[JournalRecord]) -> Option<Result<RunStarted, Unreadable>> {
    records
        .iter()
        .find(|r| r.entry.kind == JournalKind::RunStarted)
        .map(decode)
}

/// The plugin that produced a recorded entry and the SHA-256 of its build
/// (hook outputs, guardrail verdicts and tool results carry both).
pub fn served_by(record: &JournalRecord) -> Option<(String, &str)> {
    /// The `plugin` field that `HookOutput`, `GuardrailCheck` and
    /// `ToolCall` share, read without decoding (or copying) the rest.
    #[derive(serde::Deserialize)]
    struct ServedBy {
        plugin: Option<String>,
    }
    let digest = record.entry.plugin_digest.as_deref()?;
    if !matches!(
        record.entry.kind,
        JournalKind::PluginOutput | JournalKind::GuardrailVerdict | JournalKind::ToolResult
    ) {
        return None;
    }
    let plugin = ServedBy::deserialize(&record.entry.data).ok()?.plugin?;
    Some((plugin, digest))
}

/// A typed payload as the entry a store appends.
pub(crate) fn entry<T: Payload>(key: &Key, payload: &T) -> Result<JournalEntry, StoreError> {
    let data = serde_json::to_value(payload).map_err(|source| StoreError::Serialization {
        what: "a journal entry",
        source,
    })?;
    Ok(JournalEntry::new(T::KIND, key.to_string(), data))
}

/// One run's journal: what it already did, and where to record the rest.
pub(crate) struct Journal {
    store: Option<Arc<dyn Store>>,
    run_id: String,
    mode: Mode,
    /// The first record of each kind and key.
    recorded: HashMap<(JournalKind, String), JournalRecord>,
    /// When the store last said the run is not cancelled.
    checked: Mutex<Option<Instant>>,
    /// Writes queued by `commit`, not yet known to be committed.
    pending: Mutex<Pending>,
    /// A replay's log (always set in [`Mode::Replay`]).
    replay: Option<Arc<ReplayLog>>,
}

/// A queued write; every barrier that needs it can wait for it.
type Write = Shared<BoxFuture<'static, Result<(), Arc<StoreError>>>>;

/// The queued writes, numbered in commit order.
#[derive(Default)]
struct Pending {
    next: u64,
    writes: Vec<(u64, Write)>,
}

impl Journal {
    /// No store: nothing is recorded (library use without durability).
    pub(crate) fn disabled(run_id: &str) -> Self {
        Journal {
            store: None,
            run_id: run_id.to_owned(),
            mode: Mode::Live,
            recorded: HashMap::new(),
            checked: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            replay: None,
        }
    }

    /// A live journal on `store`, knowing what the run already recorded.
    /// The caller has just made the run `running` in the store, so it is
    /// known not to be cancelled as of now.
    pub(crate) fn live(store: Arc<dyn Store>, run_id: &str, records: Vec<JournalRecord>) -> Self {
        Journal {
            store: Some(store),
            run_id: run_id.to_owned(),
            mode: Mode::Live,
            recorded: index(records),
            checked: Mutex::new(Some(Instant::now())),
            pending: Mutex::new(Pending::default()),
            replay: None,
        }
    }

    /// A replay of a run recorded in `records`, logging to `log`.
    pub(crate) fn replay(run_id: &str, records: Vec<JournalRecord>, log: Arc<ReplayLog>) -> Self {
        Journal {
            store: None,
            run_id: run_id.to_owned(),
            mode: Mode::Replay,
            recorded: index(records),
            checked: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            replay: Some(log),
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Every recorded entry (resume bookkeeping, e.g. plugin digests).
    pub(crate) fn records(&self) -> impl Iterator<Item = &JournalRecord> {
        self.recorded.values()
    }

    /// The recorded entry of `kind` at `key`, if this run already produced
    /// it and this mode serves that kind.
    pub(crate) fn record(&self, kind: JournalKind, key: &Key) -> Option<&JournalRecord> {
        if self.mode == Mode::Replay && !served_in_replay(kind) {
            return None;
        }
        // After a divergence, recorded model answers and tool results no
        // longer apply: they are asked for again.
        if self.calls_again()
            && matches!(kind, JournalKind::ModelResponse | JournalKind::ToolResult)
        {
            return None;
        }
        self.recorded.get(&(kind, key.to_string()))
    }

    /// A replay that diverged and calls the model (and tools) from there.
    fn calls_again(&self) -> bool {
        self.replay.as_ref().is_some_and(|log| {
            log.after_divergence() == AfterDivergence::CallModel && log.diverged()
        })
    }

    /// Whether a call the journal does not serve may be made: always in a
    /// live run; in a replay, only after it diverged with
    /// [`AfterDivergence::CallModel`].
    pub(crate) fn may_call(&self) -> bool {
        self.mode == Mode::Live || self.calls_again()
    }

    /// What the model call at `key` by `agent`, with the model input of
    /// digest `request_digest` ([`request_digest`]), gets: the recorded
    /// answer while a replay matches the recording (a recording without a
    /// digest, from an older `host`, is taken to match), else a call or,
    /// in a replay that stops at its divergence, nothing.
    pub(crate) fn model_call(
        &self,
        key: &Key,
        agent: &str,
        request_digest: &str,
    ) -> Result<ModelServed, Unreadable> {
        let recorded = self.recorded::<ModelCall>(key)?;
        let Some(log) = self.replay.as_ref().filter(|_| self.mode == Mode::Replay) else {
            return Ok(recorded.map_or(ModelServed::Call, |r| ModelServed::Recorded(Box::new(r))));
        };
        match recorded {
            Some(call)
                if !log.diverged()
                    && call
                        .request_digest
                        .as_deref()
                        .is_none_or(|d| d == request_digest) =>
            {
                return Ok(ModelServed::Recorded(Box::new(call)));
            }
            Some(_) => log.diverge(DivergenceCause::InputChanged, key, agent),
            None => log.diverge(DivergenceCause::NotRecorded, key, agent),
        }
        Ok(if self.calls_again() {
            ModelServed::Call
        } else {
            ModelServed::Diverged
        })
    }

    /// The recorded payload at `key`, if this run already produced it and
    /// this mode serves that kind.
    pub(crate) fn recorded<T: Payload>(&self, key: &Key) -> Result<Option<T>, Unreadable> {
        self.record(T::KIND, key).map(decode).transpose()
    }

    /// Queues a result (and `update` to the run, in the same transaction);
    /// it is durable after the next [`Journal::barrier`]. A no-op without a
    /// store; in a replay it goes to the replay's log.
    pub(crate) async fn commit<T: Payload>(
        &self,
        key: &Key,
        payload: &T,
        plugin_digest: Option<&str>,
        update: Option<RunUpdate>,
    ) -> Result<(), StoreError> {
        if let Some(log) = self.replay.as_ref().filter(|_| self.mode == Mode::Replay) {
            let entry = entry(key, payload)?;
            log.push(Replayed {
                kind: entry.kind,
                key: entry.key,
                data: entry.data,
            });
            return Ok(());
        }
        let Some(store) = self.store.as_ref().filter(|_| self.mode == Mode::Live) else {
            return Ok(());
        };
        let mut entry = entry(key, payload)?;
        entry.plugin_digest = plugin_digest.map(str::to_owned);
        // Queued now, in commit order; the future reports the outcome.
        let write = store
            .clone()
            .append_queued(self.run_id.clone(), entry, update)
            .map(|r| r.map(|_| ()).map_err(Arc::new))
            .boxed()
            .shared();
        let mut pending = self.pending();
        let id = pending.next;
        pending.next += 1;
        pending.writes.push((id, write));
        Ok(())
    }

    /// The queued writes. Nothing panics while holding the lock; a
    /// poisoned list is still whole.
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until every write queued so far is committed — including
    /// writes another barrier of the run (a parallel branch's) is already
    /// waiting for; the first error of any of them.
    pub(crate) async fn barrier(&self) -> Result<(), StoreError> {
        let writes = self.pending().writes.clone();
        let Some(&(last, _)) = writes.last() else {
            return Ok(());
        };
        let mut first = Ok(());
        for (_, write) in writes {
            let result = write.await;
            if first.is_ok() {
                first = result;
            }
        }
        // Every write up to `last` is settled: no barrier needs it again.
        self.pending().writes.retain(|(id, _)| *id > last);
        first.map_err(|e| Arc::try_unwrap(e).unwrap_or_else(StoreError::Shared))
    }

    /// Whether someone cancelled the run in the store (another process).
    pub(crate) async fn cancelled(&self) -> Result<bool, StoreError> {
        let Some(store) = self.store.as_ref().filter(|_| self.mode == Mode::Live) else {
            return Ok(false);
        };
        if let Ok(checked) = self.checked.lock()
            && checked.is_some_and(|t| t.elapsed() < CANCEL_CHECK_EVERY)
        {
            return Ok(false);
        }
        let cancelled = store.run_status(&self.run_id).await? == Some(RunStatus::Cancelled);
        if !cancelled && let Ok(mut checked) = self.checked.lock() {
            *checked = Some(Instant::now());
        }
        Ok(cancelled)
    }
}

fn served_in_replay(kind: JournalKind) -> bool {
    matches!(
        kind,
        JournalKind::ModelResponse
            | JournalKind::ToolResult
            | JournalKind::ApprovalRequested
            | JournalKind::ApprovalDecision
            | JournalKind::SessionRead
    )
}

fn index(records: Vec<JournalRecord>) -> HashMap<(JournalKind, String), JournalRecord> {
    let mut map = HashMap::with_capacity(records.len());
    for r in records {
        map.entry((r.entry.kind, r.entry.key.clone())).or_insert(r);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewRun, RunStore, SqliteStore};
    use serde_json::json;

    fn new_run(run_id: &str) -> NewRun {
        NewRun {
            run_id: run_id.to_owned(),
            status: RunStatus::Running,
            workflow_key: "wf".to_owned(),
            spec_digest: "digest".to_owned(),
            account_id: String::new(),
            user_id: String::new(),
            session_id: None,
            input: json!("input"),
        }
    }

    /// Parallel branches share the run's journal. A branch that reaches its
    /// barrier while another branch's barrier is already waiting for the
    /// queued writes must wait for them too, not find the queue empty and
    /// go on to its model call with the run's last results not yet durable.
    #[tokio::test]
    async fn every_barrier_waits_for_writes_another_barrier_is_committing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.db");
        let store = Arc::new(SqliteStore::open(&path).expect("open"));
        for run in ["r", "x"] {
            store.create_run(new_run(run)).await.expect("create");
        }
        // Another run has a write queued, so run r's barrier lets the
        // runtime turn before it commits.
        let other_run = store.clone().append_queued(
            "x".to_owned(),
            JournalEntry::new(JournalKind::PluginOutput, "s/0/map_input", json!(1)),
            None,
        );
        let journal = Journal::live(store.clone(), "r", Vec::new());
        journal
            .commit(
                &Key::model(&StepKey::new("plan", 0), 1),
                &StepFailed {
                    error: "plan".into(),
                },
                None,
                None,
            )
            .await
            .expect("commit");
        let mut first = std::pin::pin!(journal.barrier());
        assert!(futures::poll!(&mut first).is_pending());
        // The second branch's barrier, seen from another connection (as
        // another process, or a resume after a crash, would see the file).
        journal.barrier().await.expect("second barrier");
        let reader = SqliteStore::open(&path).expect("reader");
        let seen = reader
            .journal(&crate::store::Scope::Operator, "r")
            .await
            .expect("journal");
        assert_eq!(
            seen.len(),
            1,
            "the second barrier returned before the commit"
        );
        first.await.expect("first barrier");
        other_run.await.expect("other run");
    }
}

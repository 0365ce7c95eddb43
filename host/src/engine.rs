//! The staged workflow engine.
//!
//! Stages run in order. In a sequential stage each step's input is the
//! previous step's output (shaped by its input mapper); a guard returning
//! false skips the step. A parallel stage runs its steps concurrently, each
//! branch with its own guard and mapper; its results, in branch order, are
//! merged by the stage reducer into the next stage's input — or, with no
//! reducer, one output passes through and several become a JSON array. If
//! every branch is skipped, the stage's input passes through unchanged.
//!
//! The library API mirrors a service: build a [`Runner`] from a workflow and
//! plugins, [`Runner::start`] a run, and use the [`RunHandle`] to await the
//! result, cancel it, and receive its events.

pub mod approvals;
pub mod build;
pub mod durable;
pub mod memory;
pub mod plan;

use crate::agent::{self, AgentContext, AgentError};
use crate::events::{Emitter, Event, EventType, Scope};
use crate::llm::{Item, Usage};
use crate::plugin::{CallContext, CallError, Registry, StepResult};
use crate::store::{
    self, JournalEntry, JournalKind, JournalRecord, NewRun, RunStatus, RunUpdate, Store, StoreError,
};
use durable::{Journal, keys};
pub use memory::SessionConfig;
use plan::{HookRef, Stage, Step, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("guard `{hook}` failed: {source}")]
    Guard {
        hook: String,
        #[source]
        source: Box<CallError>,
    },
    #[error("input mapper `{hook}` failed: {source}")]
    InputMapper {
        hook: String,
        #[source]
        source: Box<CallError>,
    },
    #[error("plugin `{plugin}` is not loaded")]
    PluginMissing { plugin: String },
    #[error(transparent)]
    Agent(Box<AgentError>),
    #[error("cannot record the step: {0}")]
    Store(#[from] StoreError),
    /// A branch that failed before the run was interrupted (resume).
    #[error("{0}")]
    Recorded(String),
}

impl From<AgentError> for StepError {
    fn from(e: AgentError) -> Self {
        StepError::Agent(Box::new(e))
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stage `{stage}`, step `{step}`: {source}")]
    Step {
        stage: String,
        step: String,
        #[source]
        source: Box<StepError>,
    },
    #[error("stage `{stage}`: reducer `{hook}` failed: {source}")]
    Reducer {
        stage: String,
        hook: String,
        #[source]
        source: Box<CallError>,
    },
    #[error("stage `{stage}`: reducer plugin `{plugin}` is not loaded")]
    ReducerMissing { stage: String, plugin: String },
    #[error("the final output does not match the workflow's output schema: {reason}")]
    OutputSchema { reason: String, output: Value },
    #[error("the run was cancelled")]
    Cancelled,
    /// Not a failure: the run waits in `waiting_approval` for these calls.
    #[error("the run waits for approval of {}", .pending.iter().map(|p| format!("call `{}` (tool `{}`)", p.call_id, p.tool)).collect::<Vec<_>>().join(", "))]
    Paused { pending: Vec<PendingApproval> },
    #[error("run store: {0}")]
    Store(#[from] StoreError),
    #[error("no run store: resume, replay and approvals need one")]
    NoStore,
    #[error("run {run_id} is {status}; only an interrupted run can be resumed")]
    NotResumable { run_id: String, status: RunStatus },
    #[error("run {run_id}: its journal is unusable: {reason}")]
    BadJournal { run_id: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// A tool call waiting for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub call_id: String,
    pub tool: String,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    pub run_id: String,
    pub output: Value,
    /// Every step in execution order (stage order, then branch order).
    pub steps: Vec<StepResult>,
    /// Tokens per model.
    pub usage: BTreeMap<String, Usage>,
    pub last_agent: Option<String>,
    pub last_response_id: Option<String>,
    pub elapsed: Duration,
}

/// How to start one run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub input: Value,
    /// A ULID is generated when absent.
    pub run_id: Option<String>,
    /// Emit `llm.delta` events (streamed text).
    pub deltas: bool,
    /// Receive events through [`RunHandle::events`].
    pub events: bool,
    /// The session the run belongs to (conversation history; needs a store).
    pub session: Option<SessionConfig>,
    /// Wait in-process for approvals instead of pausing the run.
    pub wait_approval: bool,
    /// Kept with the run (in its `run_started` journal entry): what a later
    /// resume needs to rebuild it, e.g. the spec and the plugins folder.
    pub metadata: Value,
    /// SHA-256 of the spec, recorded with the run.
    pub spec_digest: String,
}

/// How to continue an interrupted run.
#[derive(Debug, Clone, Default)]
pub struct ResumeRequest {
    pub deltas: bool,
    pub events: bool,
    pub wait_approval: bool,
}

/// Runs a workflow, any number of times concurrently.
#[derive(Clone)]
pub struct Runner {
    workflow: Arc<Workflow>,
    registry: Arc<Registry>,
    store: Option<Arc<dyn Store>>,
}

/// What a run executes with, once its journal is ready.
struct Prepared {
    journal: Journal,
    input: Value,
    session: Option<SessionConfig>,
    wait_approval: bool,
    resumed: bool,
}

/// What a run records when it starts (the `run_started` journal entry).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Started {
    input: Value,
    #[serde(default)]
    session: Option<SessionRecord>,
    #[serde(default)]
    metadata: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionRecord {
    account_id: String,
    user_id: String,
    session_id: String,
    history_size: Option<u32>,
}

impl From<&SessionConfig> for SessionRecord {
    fn from(s: &SessionConfig) -> Self {
        SessionRecord {
            account_id: s.scope.account_id.clone(),
            user_id: s.scope.user_id.clone(),
            session_id: s.scope.session_id.clone(),
            history_size: s.history_size,
        }
    }
}

impl From<SessionRecord> for SessionConfig {
    fn from(s: SessionRecord) -> Self {
        SessionConfig {
            scope: store::SessionScope::new(s.account_id, s.user_id, s.session_id),
            history_size: s.history_size,
        }
    }
}

/// A step's journaled result.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepRecord {
    skipped: bool,
    output: Value,
    agent: Option<String>,
    #[serde(default)]
    usage: BTreeMap<String, Usage>,
    #[serde(default)]
    turns: u32,
    #[serde(default)]
    last_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    session_items: Vec<Item>,
}

/// The `run_started` entry of a journal: input, session and metadata.
pub fn run_metadata(journal: &[JournalRecord]) -> Option<Value> {
    journal
        .iter()
        .find(|r| r.entry.kind == JournalKind::RunStarted)
        .map(|r| r.entry.data["metadata"].clone())
}

/// A run in progress.
pub struct RunHandle {
    run_id: String,
    events: Option<mpsc::UnboundedReceiver<Event>>,
    cancel: RunCanceller,
    task: tokio::task::JoinHandle<Result<RunOutput, RunError>>,
}

/// Cancels one run, like [`RunHandle::cancel`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct RunCanceller(watch::Sender<bool>);

impl RunCanceller {
    /// Asks the run to stop: it records `cancelled`, emits `run.cancelled`
    /// and its handle's `wait` returns [`RunError::Cancelled`].
    pub fn cancel(&self) {
        let _ = self.0.send(true);
    }
}

impl RunHandle {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's events, in order; `None` unless requested in [`RunRequest`].
    pub fn events(&mut self) -> Option<&mut mpsc::UnboundedReceiver<Event>> {
        self.events.as_mut()
    }

    /// Takes the event receiver, e.g. to drain it on another task.
    pub fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<Event>> {
        self.events.take()
    }

    /// Asks the run to stop; [`RunHandle::wait`] then returns `Cancelled`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Something that cancels the run from elsewhere (a Ctrl-C handler)
    /// while this handle is being waited on.
    pub fn canceller(&self) -> RunCanceller {
        self.cancel.clone()
    }

    /// Waits for the run to finish.
    pub async fn wait(self) -> Result<RunOutput, RunError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(RunError::Internal(e.to_string())),
        }
    }
}

impl Runner {
    pub fn new(workflow: Arc<Workflow>, registry: Arc<Registry>) -> Self {
        Runner {
            workflow,
            registry,
            store: None,
        }
    }

    /// Records every run in `store`: its status, journal and sessions. Runs
    /// can then be resumed, replayed, paused for approvals and have sessions.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// Starts a run on the current tokio runtime.
    pub fn start(&self, request: RunRequest) -> RunHandle {
        let run_id = request
            .run_id
            .clone()
            .unwrap_or_else(|| ulid::Ulid::generate().to_string());
        let store = self.store.clone();
        let workflow_key = self.workflow.key.clone();
        let id = run_id.clone();
        let (events, deltas) = (request.events, request.deltas);
        let prepare = async move {
            let journal = match store {
                Some(store) => {
                    let started = Started {
                        input: request.input.clone(),
                        session: request.session.as_ref().map(SessionRecord::from),
                        metadata: request.metadata.clone(),
                    };
                    let data = serde_json::to_value(&started)
                        .map_err(|e| RunError::Internal(e.to_string()))?;
                    let scope = request.session.as_ref().map(|s| s.scope.clone());
                    store
                        .create_run_with(
                            NewRun {
                                run_id: id.clone(),
                                status: RunStatus::Running,
                                workflow_key,
                                spec_digest: request.spec_digest.clone(),
                                account_id: scope
                                    .as_ref()
                                    .map(|s| s.account_id.clone())
                                    .unwrap_or_default(),
                                user_id: scope
                                    .as_ref()
                                    .map(|s| s.user_id.clone())
                                    .unwrap_or_default(),
                                session_id: scope.map(|s| s.session_id),
                                input: request.input.clone(),
                            },
                            Some(JournalEntry::new(
                                JournalKind::RunStarted,
                                keys::RUN_STARTED,
                                data,
                            )),
                        )
                        .await?;
                    Journal::live(store, &id, Vec::new())
                }
                None => Journal::disabled(&id),
            };
            Ok(Prepared {
                journal,
                input: request.input,
                session: request.session,
                wait_approval: request.wait_approval,
                resumed: false,
            })
        };
        self.launch(run_id, events, deltas, prepare)
    }

    /// Continues an interrupted run (crashed, killed, or waiting for an
    /// approval that has been decided) from its journal: nothing recorded
    /// is done again.
    pub fn resume(&self, run_id: &str, request: ResumeRequest) -> RunHandle {
        let store = self.store.clone();
        let id = run_id.to_owned();
        let prepare = async move {
            let store = store.ok_or(RunError::NoStore)?;
            let record = store
                .get_run(&id)
                .await?
                .ok_or_else(|| StoreError::NotFound { run_id: id.clone() })?;
            if record.status.is_terminal() {
                return Err(RunError::NotResumable {
                    run_id: id,
                    status: record.status,
                });
            }
            let records = store.journal(&id).await?;
            let started = started_of(&id, &records)?;
            store
                .update_run(&id, RunUpdate::status(RunStatus::Running))
                .await?;
            Ok(Prepared {
                journal: Journal::live(store, &id, records),
                input: started.input,
                session: started.session.map(SessionConfig::from),
                wait_approval: request.wait_approval,
                resumed: true,
            })
        };
        self.launch(run_id.to_owned(), request.events, request.deltas, prepare)
    }

    /// Executes a recorded run again with the current plugins, serving model
    /// responses, tool results, approvals and session reads from `records`
    /// (its journal) — no model call is made — and recording nothing.
    pub fn replay(&self, run_id: &str, records: Vec<JournalRecord>, events: bool) -> RunHandle {
        let id = run_id.to_owned();
        let prepare = async move {
            let started = started_of(&id, &records)?;
            Ok(Prepared {
                journal: Journal::replay(&id, records),
                input: started.input,
                session: started.session.map(SessionConfig::from),
                wait_approval: false,
                resumed: false,
            })
        };
        self.launch(run_id.to_owned(), events, false, prepare)
    }

    fn launch(
        &self,
        run_id: String,
        events: bool,
        deltas: bool,
        prepare: impl Future<Output = Result<Prepared, RunError>> + Send + 'static,
    ) -> RunHandle {
        let (tx, rx) = if events {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let emitter = Emitter::new(&run_id, &self.workflow.key, tx, deltas);
        let (cancel, mut cancelled) = watch::channel(false);
        let runner = self.clone();
        let id = run_id.clone();
        let task = tokio::spawn(async move {
            let span = tracing::info_span!(
                "run",
                otel.name = %format_args!("run {}", runner.workflow.key),
                otel.status_code = tracing::field::Empty,
                otel.status_description = tracing::field::Empty,
                workflow.run.id = %id,
                workflow.key = %runner.workflow.key,
            );
            let run = async {
                let prepared = prepare.await?;
                runner.execute(id.clone(), prepared, emitter.clone()).await
            };
            tokio::select! {
                result = run.instrument(span) => result,
                () = async { let _ = cancelled.wait_for(|c| *c).await; } => {
                    if let Some(store) = &runner.store {
                        // Best effort: the run may not have been created yet.
                        let _ = store.update_run(&id, RunUpdate::status(RunStatus::Cancelled)).await;
                    }
                    emitter.emit(EventType::RunCancelled, &Scope::default(), Value::Null);
                    Err(RunError::Cancelled)
                }
            }
        });
        RunHandle {
            run_id,
            events: rx,
            cancel: RunCanceller(cancel),
            task,
        }
    }

    /// Starts a run and waits for it.
    pub async fn run(&self, input: Value) -> Result<RunOutput, RunError> {
        self.start(RunRequest {
            input,
            ..RunRequest::default()
        })
        .wait()
        .await
    }

    async fn execute(
        &self,
        run_id: String,
        prepared: Prepared,
        emitter: Emitter,
    ) -> Result<RunOutput, RunError> {
        let started = Instant::now();
        let logical_time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let wf = &self.workflow;
        let Prepared {
            journal,
            input,
            session,
            wait_approval,
            resumed,
        } = prepared;
        emitter.emit(
            EventType::RunStarted,
            &Scope::default(),
            json!({
                "workflow_name": wf.name,
                "stages": wf.stages.len(),
                "input": input,
                "session": session.as_ref().map(|s| &s.scope.session_id),
                "resumed": resumed,
                "replay": journal.mode() == durable::Mode::Replay,
            }),
        );
        if resumed {
            self.report_changed_plugins(&journal, &emitter);
        }
        let mut state = RunState {
            run_id: run_id.clone(),
            logical_time_ms,
            prior: Vec::new(),
            usage: BTreeMap::new(),
            last_agent: None,
            last_response_id: None,
            journal: Arc::new(journal),
            session: session.map(Arc::new),
            wait_approval,
        };
        let result = self.stages(&mut state, input, &emitter).await;
        let result = result.and_then(|output| match &wf.output_schema {
            Some(schema) => schema
                .check(&output)
                .map(|()| output.clone())
                .map_err(|reason| RunError::OutputSchema { reason, output }),
            None => Ok(output),
        });
        let usage = store_usage(&state.usage);
        // Everything the run recorded is committed before its outcome: a
        // completed run's last results share the commit of its end.
        let result = match result {
            Ok(output) => {
                let end = state
                    .journal
                    .commit(
                        JournalKind::RunFinished,
                        keys::RUN_FINISHED.into(),
                        json!({ "status": "completed", "output": output }),
                        None,
                        Some(RunUpdate {
                            status: Some(RunStatus::Completed),
                            output: Some(output.clone()),
                            usage: Some(usage.clone()),
                            last_agent: state.last_agent.clone(),
                            last_response_id: state.last_response_id.clone(),
                            ..RunUpdate::default()
                        }),
                    )
                    .await;
                match end {
                    Ok(()) => state.journal.barrier().await.map(|()| output),
                    Err(e) => Err(e),
                }
                .map_err(RunError::Store)
            }
            Err(e) => match state.journal.barrier().await {
                Ok(()) => Err(e),
                Err(store) if matches!(e, RunError::Paused { .. }) => Err(RunError::Store(store)),
                Err(_) => Err(e),
            },
        };
        match result {
            Ok(output) => {
                emitter.emit(
                    EventType::RunCompleted,
                    &Scope::default(),
                    json!({ "output": output, "usage": usage_json(&state.usage), "elapsed_ms": started.elapsed().as_millis() as u64 }),
                );
                Ok(RunOutput {
                    run_id,
                    output,
                    steps: state.prior,
                    usage: state.usage,
                    last_agent: state.last_agent,
                    last_response_id: state.last_response_id,
                    elapsed: started.elapsed(),
                })
            }
            // Waiting for a human: the status says so already.
            Err(e @ RunError::Paused { .. }) => Err(e),
            Err(RunError::Cancelled) => {
                emitter.emit(EventType::RunCancelled, &Scope::default(), Value::Null);
                Err(RunError::Cancelled)
            }
            Err(e) => {
                let span = tracing::Span::current();
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", tracing::field::display(&e));
                // A store that fails cannot record the failure either.
                if !matches!(e, RunError::Store(_)) {
                    state
                        .journal
                        .commit(
                            JournalKind::RunFinished,
                            keys::RUN_FINISHED.into(),
                            json!({ "status": "failed", "error": e.to_string() }),
                            None,
                            Some(RunUpdate {
                                status: Some(RunStatus::Failed),
                                error: Some(e.to_string()),
                                usage: Some(usage),
                                last_agent: state.last_agent.clone(),
                                last_response_id: state.last_response_id.clone(),
                                ..RunUpdate::default()
                            }),
                        )
                        .await?;
                    state.journal.barrier().await?;
                }
                emitter.emit(
                    EventType::RunFailed,
                    &Scope::default(),
                    json!({ "error": e.to_string(), "usage": usage_json(&state.usage) }),
                );
                Err(e)
            }
        }
    }

    /// On resume: a plugin whose build changed since it produced recorded
    /// outputs gets a `plugin.reloaded` event (the recorded outputs stand).
    fn report_changed_plugins(&self, journal: &Journal, emitter: &Emitter) {
        let mut seen = BTreeSet::new();
        let mut recorded: Vec<&JournalRecord> = journal.records().collect();
        recorded.sort_by_key(|r| r.seq);
        for r in recorded {
            let (Some(digest), Some(plugin)) =
                (&r.entry.plugin_digest, r.entry.data["plugin"].as_str())
            else {
                continue;
            };
            let current = self.registry.get(plugin).map(|p| p.digest().to_owned());
            if current.as_deref() != Some(digest.as_str()) && seen.insert(plugin.to_owned()) {
                emitter.emit(
                    EventType::PluginReloaded,
                    &Scope::default(),
                    json!({
                        "plugin": plugin,
                        "old_digest": digest,
                        "new_digest": current,
                        "reason": "changed since the run recorded its outputs; recorded outputs stand, the new build serves the calls not yet made",
                    }),
                );
            }
        }
    }

    async fn stages(
        &self,
        state: &mut RunState,
        input: Value,
        emitter: &Emitter,
    ) -> Result<Value, RunError> {
        let mut current = input;
        for (stage_index, stage) in self.workflow.stages.iter().enumerate() {
            let scope = Scope {
                stage: Some(stage.name.clone()),
                ..Scope::default()
            };
            emitter.emit(
                EventType::StageStarted,
                &scope,
                json!({ "mode": if stage.parallel { "parallel" } else { "sequential" }, "steps": stage.steps.len() }),
            );
            let span = tracing::info_span!(
                "stage",
                otel.name = %format_args!("stage {}", stage.name),
                workflow.stage = %stage.name,
                workflow.stage.index = stage_index as i64,
                workflow.stage.parallel = stage.parallel,
            );
            current = if stage.parallel {
                self.parallel_stage(state, stage_index, current, emitter)
                    .instrument(span)
                    .await?
            } else {
                self.sequential_stage(state, stage, current, emitter)
                    .instrument(span)
                    .await?
            };
            emitter.emit(
                EventType::StageCompleted,
                &scope,
                json!({ "output": current }),
            );
        }
        Ok(current)
    }

    async fn sequential_stage(
        &self,
        state: &mut RunState,
        stage: &Stage,
        mut current: Value,
        emitter: &Emitter,
    ) -> Result<Value, RunError> {
        for (index, step) in stage.steps.iter().enumerate() {
            let cx = self.step_context(state, stage, index as u32, None, emitter);
            let step_key = cx.step_key.clone();
            let outcome = run_step(cx, step, current.clone(), &state.prior).await;
            let (result, items) = state.absorb(stage, step, index as u32, None, outcome)?;
            state.write_session(&step_key, items).await?;
            if !result.skipped {
                current = result.output.clone();
            }
            state.prior.push(result);
        }
        Ok(current)
    }

    async fn parallel_stage(
        &self,
        state: &mut RunState,
        stage_index: usize,
        input: Value,
        emitter: &Emitter,
    ) -> Result<Value, RunError> {
        let stage = &self.workflow.stages[stage_index];
        // Branch tasks must own what they read: one copy of the prior
        // results per stage, shared by its branches.
        let prior = Arc::new(state.prior.clone());
        // Branches run as tasks so they use every core; dropping the JoinSet
        // (failure of another branch, cancellation) aborts the rest.
        let mut set = JoinSet::new();
        // Set when a failing branch stops the others: why they stopped.
        let stopped = Arc::new(std::sync::OnceLock::new());
        for (index, _) in stage.steps.iter().enumerate() {
            let cx = self.step_context(state, stage, index as u32, Some(index as u32), emitter);
            let workflow = self.workflow.clone();
            let (input, prior) = (input.clone(), prior.clone());
            let (end_emitter, end_scope, why) =
                (emitter.clone(), cx.scope.clone(), stopped.clone());
            set.spawn(
                async move {
                    // Made on the first poll, as `step.started` is: a branch
                    // stopped before it ran says nothing.
                    let mut end = BranchEnd {
                        emitter: end_emitter,
                        scope: end_scope,
                        why,
                        finished: false,
                    };
                    let step = &workflow.stages[stage_index].steps[index];
                    let outcome = run_step(cx, step, input, &prior).await;
                    end.finished = true;
                    (index, outcome)
                }
                .in_current_span(),
            );
        }
        let mut outcomes: Vec<Option<Result<StepOutcome, StepError>>> =
            (0..stage.steps.len()).map(|_| None).collect();
        let mut pending = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (index, outcome) =
                joined.map_err(|e| RunError::Internal(format!("branch task: {e}")))?;
            match outcome {
                // A branch waiting for a human lets the others finish (their
                // results are journaled); the run pauses after them.
                Err(e) if e.is_paused() => {
                    if let RunError::Paused { pending: p } =
                        step_error(stage, &stage.steps[index], e)
                    {
                        pending.extend(p);
                    }
                }
                // Fail fast: the other branches are stopped, and each one
                // that had started ends with its `step.failed` before the
                // stage's failure is reported.
                Err(e) if !stage.continue_on_branch_error || e.is_fatal() => {
                    let step = &stage.steps[index];
                    let _ = stopped.set(format!(
                        "stopped: branch {index} (step `{}`) failed",
                        step.name
                    ));
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    return Err(step_error(stage, step, e));
                }
                outcome => outcomes[index] = Some(outcome),
            }
        }
        if !pending.is_empty() {
            return Err(RunError::Paused { pending });
        }
        let mut results = Vec::with_capacity(stage.steps.len());
        let mut session_items = Vec::new();
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let outcome = outcome
                .ok_or_else(|| RunError::Internal(format!("branch {index} did not finish")))?;
            let step = &stage.steps[index];
            let result = match outcome {
                Ok(o) => {
                    let (result, items) =
                        state.absorb(stage, step, index as u32, Some(index as u32), Ok(o))?;
                    session_items.extend(items);
                    result
                }
                Err(e) => StepResult {
                    stage_name: stage.name.clone(),
                    step_index: index as u32,
                    agent_key: step.agent.clone(),
                    parallel_group: Some(stage.name.clone()),
                    branch_index: Some(index as u32),
                    skipped: false,
                    output: Value::Null,
                    error: Some(e.to_string()),
                },
            };
            results.push(result);
        }
        // Branches' session items, in branch order, in one transaction.
        state.write_session(&stage.name, session_items).await?;

        let merged = if results.iter().all(|r| r.skipped) {
            input
        } else if let Some(hook) = &stage.reducer {
            let call = CallContext {
                run_id: state.run_id.clone(),
                workflow_key: self.workflow.key.clone(),
                stage: stage.name.clone(),
                step: stage.steps.len() as u32,
                entry: hook.entry.clone(),
                config: hook.config.clone(),
                logical_time_ms: state.logical_time_ms,
            };
            let reduce = async {
                let plugin =
                    self.registry
                        .get(&hook.plugin)
                        .ok_or_else(|| RunError::ReducerMissing {
                            stage: stage.name.clone(),
                            plugin: hook.plugin.clone(),
                        })?;
                plugin
                    .reduce(self.registry.runtime(), &call, &results, &state.prior)
                    .await
                    .map_err(|source| RunError::Reducer {
                        stage: stage.name.clone(),
                        hook: hook.label(),
                        source: Box::new(source),
                    })
            };
            journaled_hook(&state.journal, keys::reduce(&stage.name), hook, reduce).await?
        } else {
            let outputs: Vec<Value> = results
                .iter()
                .filter(|r| !r.skipped && r.error.is_none())
                .map(|r| r.output.clone())
                .collect();
            match outputs.len() {
                1 => outputs.into_iter().next().unwrap_or(Value::Null),
                _ => Value::Array(outputs),
            }
        };
        state.prior.extend(results);
        Ok(merged)
    }

    fn step_context(
        &self,
        state: &RunState,
        stage: &Stage,
        index: u32,
        branch: Option<u32>,
        emitter: &Emitter,
    ) -> StepContext {
        let step = &stage.steps[index as usize];
        StepContext {
            workflow: self.workflow.clone(),
            registry: self.registry.clone(),
            emitter: emitter.clone(),
            scope: Scope {
                stage: Some(stage.name.clone()),
                step: Some(step.name.clone()),
                step_index: Some(index),
                branch_index: branch,
                agent: Some(step.agent.clone()),
            },
            call: CallContext {
                run_id: state.run_id.clone(),
                workflow_key: self.workflow.key.clone(),
                stage: stage.name.clone(),
                step: index,
                entry: String::new(),
                config: Value::Null,
                logical_time_ms: state.logical_time_ms,
            },
            journal: state.journal.clone(),
            step_key: keys::step(&stage.name, index),
            session: state.session.clone(),
            wait_approval: state.wait_approval,
        }
    }
}

fn started_of(run_id: &str, records: &[JournalRecord]) -> Result<Started, RunError> {
    let record = records
        .iter()
        .find(|r| r.entry.kind == JournalKind::RunStarted)
        .ok_or_else(|| RunError::BadJournal {
            run_id: run_id.to_owned(),
            reason: "it has no run_started entry".into(),
        })?;
    serde_json::from_value(record.entry.data.clone()).map_err(|e| RunError::BadJournal {
        run_id: run_id.to_owned(),
        reason: format!("run_started: {e}"),
    })
}

fn store_usage(usage: &BTreeMap<String, Usage>) -> BTreeMap<String, store::Usage> {
    usage
        .iter()
        .map(|(model, u)| {
            (
                model.clone(),
                store::Usage {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens,
                },
            )
        })
        .collect()
}

fn step_error(stage: &Stage, step: &Step, source: StepError) -> RunError {
    match source {
        StepError::Agent(a) => match *a {
            AgentError::Paused { call_id, tool } => RunError::Paused {
                pending: vec![PendingApproval { call_id, tool }],
            },
            AgentError::Cancelled => RunError::Cancelled,
            AgentError::Store(e) => RunError::Store(e),
            other => RunError::Step {
                stage: stage.name.clone(),
                step: step.name.clone(),
                source: Box::new(StepError::Agent(Box::new(other))),
            },
        },
        StepError::Store(e) => RunError::Store(e),
        source => RunError::Step {
            stage: stage.name.clone(),
            step: step.name.clone(),
            source: Box::new(source),
        },
    }
}

impl StepError {
    fn is_paused(&self) -> bool {
        matches!(self, StepError::Agent(a) if a.is_paused())
    }

    /// Errors that end the run even when a stage tolerates failed branches.
    fn is_fatal(&self) -> bool {
        match self {
            StepError::Store(_) => true,
            StepError::Agent(a) => matches!(
                **a,
                AgentError::Cancelled | AgentError::Store(_) | AgentError::ReplayDiverged { .. }
            ),
            _ => false,
        }
    }
}

struct RunState {
    run_id: String,
    logical_time_ms: u64,
    prior: Vec<StepResult>,
    usage: BTreeMap<String, Usage>,
    last_agent: Option<String>,
    last_response_id: Option<String>,
    journal: Arc<Journal>,
    session: Option<Arc<SessionConfig>>,
    wait_approval: bool,
}

impl RunState {
    /// Appends a step's (or a parallel stage's) items to the run's session,
    /// with a journal entry in the same transaction — once.
    async fn write_session(&self, owner: &str, items: Vec<Item>) -> Result<(), RunError> {
        let (Some(session), Some(store)) = (&self.session, self.journal.store()) else {
            return Ok(());
        };
        let key = keys::session_write(owner);
        if items.is_empty()
            || self.journal.mode() != durable::Mode::Live
            || self
                .journal
                .recorded(JournalKind::SessionWrite, &key)
                .is_some()
        {
            return Ok(());
        }
        let values = items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunError::Internal(format!("session item: {e}")))?;
        let entry = JournalEntry::new(
            JournalKind::SessionWrite,
            key,
            json!({ "items": values.len() }),
        );
        store
            .append_session(&session.scope, &self.run_id, values, Some(entry))
            .await?;
        Ok(())
    }

    /// Turns a step's outcome into its recorded result (and the items it
    /// adds to the session), or the run's error.
    fn absorb(
        &mut self,
        stage: &Stage,
        step: &Step,
        index: u32,
        branch: Option<u32>,
        outcome: Result<StepOutcome, StepError>,
    ) -> Result<(StepResult, Vec<Item>), RunError> {
        let outcome = outcome.map_err(|e| step_error(stage, step, e))?;
        let mut items = Vec::new();
        let (skipped, output) = match outcome {
            StepOutcome::Skipped => (true, Value::Null),
            StepOutcome::Done(out) => {
                items = out.session_items;
                for (model, u) in &out.usage {
                    *self.usage.entry(model.clone()).or_default() += *u;
                }
                self.last_agent = Some(out.agent.clone());
                if out.last_response_id.is_some() {
                    self.last_response_id = out.last_response_id.clone();
                }
                (false, out.output)
            }
        };
        Ok((
            StepResult {
                stage_name: stage.name.clone(),
                step_index: index,
                agent_key: step.agent.clone(),
                parallel_group: branch.map(|_| stage.name.clone()),
                branch_index: branch,
                skipped,
                output,
                error: None,
            },
            items,
        ))
    }
}

/// What one step needs, owned so parallel branches can run as tasks.
struct StepContext {
    workflow: Arc<Workflow>,
    registry: Arc<Registry>,
    emitter: Emitter,
    scope: Scope,
    call: CallContext,
    journal: Arc<Journal>,
    step_key: String,
    session: Option<Arc<SessionConfig>>,
    wait_approval: bool,
}

enum StepOutcome {
    Skipped,
    Done(agent::AgentOutput),
}

/// A parallel branch's task: if it is dropped unfinished because another
/// branch failed, it emits the `step.failed` that ends its `step.started`.
struct BranchEnd {
    emitter: Emitter,
    scope: Scope,
    why: Arc<std::sync::OnceLock<String>>,
    finished: bool,
}

impl Drop for BranchEnd {
    fn drop(&mut self) {
        // Only for a fail-fast stop: a cancelled run ends with
        // `run.cancelled` alone.
        if !self.finished
            && let Some(why) = self.why.get()
        {
            self.emitter
                .emit(EventType::StepFailed, &self.scope, json!({ "error": why }));
        }
    }
}

async fn run_step(
    cx: StepContext,
    step: &Step,
    input: Value,
    prior: &[StepResult],
) -> Result<StepOutcome, StepError> {
    let done = keys::done(&cx.step_key);
    // Already done before an interruption: its recorded result stands.
    if let Some(record) = cx.journal.recorded(JournalKind::StepCompleted, &done) {
        let r: StepRecord = serde_json::from_value(record.entry.data.clone()).map_err(|e| {
            StepError::Agent(Box::new(AgentError::Journal {
                key: done.clone(),
                reason: e.to_string(),
            }))
        })?;
        return Ok(if r.skipped {
            StepOutcome::Skipped
        } else {
            StepOutcome::Done(agent::AgentOutput {
                output: r.output,
                agent: r.agent.unwrap_or_else(|| step.agent.clone()),
                usage: r.usage,
                turns: r.turns,
                last_response_id: r.last_response_id,
                session_items: r.session_items,
            })
        });
    }
    if let Some(record) = cx.journal.recorded(JournalKind::StepFailed, &done) {
        return Err(StepError::Recorded(
            record.entry.data["error"]
                .as_str()
                .unwrap_or("failed")
                .to_owned(),
        ));
    }
    let span = tracing::info_span!(
        "step",
        otel.name = %format_args!("step {}", step.name),
        otel.status_code = tracing::field::Empty,
        workflow.step = %step.name,
        workflow.step.index = cx.scope.step_index.map(i64::from),
        workflow.branch.index = cx.scope.branch_index.map(i64::from),
        workflow.step.skipped = tracing::field::Empty,
        gen_ai.agent.name = %step.agent,
    );
    async {
        let started = Instant::now();
        cx.emitter.emit(EventType::StepStarted, &cx.scope, Value::Null);
        if cx.journal.cancelled().await? {
            return Err(StepError::Agent(Box::new(AgentError::Cancelled)));
        }
        let result = step_body(&cx, step, input, prior).await;
        match &result {
            Ok(StepOutcome::Skipped) => {
                let record = StepRecord {
                    skipped: true,
                    output: Value::Null,
                    agent: None,
                    usage: BTreeMap::new(),
                    turns: 0,
                    last_response_id: None,
                    session_items: Vec::new(),
                };
                commit_step(&cx, JournalKind::StepCompleted, done, &record).await?;
                tracing::Span::current().record("workflow.step.skipped", true);
                cx.emitter.emit(EventType::StepSkipped, &cx.scope, json!({ "reason": "guard returned false" }));
            }
            Ok(StepOutcome::Done(out)) => {
                let record = StepRecord {
                    skipped: false,
                    output: out.output.clone(),
                    agent: Some(out.agent.clone()),
                    usage: out.usage.clone(),
                    turns: out.turns,
                    last_response_id: out.last_response_id.clone(),
                    session_items: out.session_items.clone(),
                };
                commit_step(&cx, JournalKind::StepCompleted, done, &record).await?;
                let mut scope = cx.scope.clone();
                scope.agent = Some(out.agent.clone());
                cx.emitter.emit(
                    EventType::StepCompleted,
                    &scope,
                    json!({ "output": out.output, "turns": out.turns, "usage": usage_json(&out.usage), "elapsed_ms": started.elapsed().as_millis() as u64 }),
                );
            }
            Err(e) if e.is_paused() || e.is_fatal() => {}
            Err(e) => {
                tracing::Span::current().record("otel.status_code", "ERROR");
                cx.journal
                    .commit(
                        JournalKind::StepFailed,
                        done,
                        json!({ "error": e.to_string() }),
                        None,
                        None,
                    )
                    .await?;
                cx.emitter.emit(EventType::StepFailed, &cx.scope, json!({ "error": e.to_string() }));
            }
        }
        result
    }
    .instrument(span)
    .await
}

async fn commit_step(
    cx: &StepContext,
    kind: JournalKind,
    key: String,
    record: &StepRecord,
) -> Result<(), StepError> {
    let data = serde_json::to_value(record).map_err(|e| {
        StepError::Store(StoreError::Serialization {
            what: "step record",
            source: e,
        })
    })?;
    Ok(cx.journal.commit(kind, key, data, None, None).await?)
}

/// A hook's output (guard, input mapper, reducer): the recorded one, or the
/// one `call` produces, which is then recorded with the plugin's digest.
async fn journaled_hook<T, E>(
    journal: &Journal,
    key: String,
    hook: &HookRef,
    call: impl Future<Output = Result<crate::plugin::Served<T>, E>>,
) -> Result<T, E>
where
    T: Serialize + serde::de::DeserializeOwned,
    E: From<StoreError>,
{
    if let Some(record) = journal.recorded(JournalKind::PluginOutput, &key) {
        return serde_json::from_value(record.entry.data["value"].clone()).map_err(|source| {
            StoreError::Serialization {
                what: "a recorded plugin output",
                source,
            }
            .into()
        });
    }
    let served = call.await?;
    journal
        .commit(
            JournalKind::PluginOutput,
            key,
            json!({ "plugin": hook.plugin, "entry": hook.entry, "value": served.value }),
            Some(&served.digest),
            None,
        )
        .await?;
    Ok(served.value)
}

async fn step_body(
    cx: &StepContext,
    step: &Step,
    input: Value,
    prior: &[StepResult],
) -> Result<StepOutcome, StepError> {
    if let Some(hook) = &step.guard {
        let pass = journaled_hook(&cx.journal, keys::guard(&cx.step_key), hook, async {
            plugin_for(cx, hook)?
                .guard(cx.registry.runtime(), &hook_call(cx, hook), &input, prior)
                .await
                .map_err(|source| StepError::Guard {
                    hook: hook.label(),
                    source: Box::new(source),
                })
        })
        .await?;
        if !pass {
            return Ok(StepOutcome::Skipped);
        }
    }
    let input = match &step.input_mapper {
        Some(hook) => {
            journaled_hook(&cx.journal, keys::map_input(&cx.step_key), hook, async {
                plugin_for(cx, hook)?
                    .map_input(cx.registry.runtime(), &hook_call(cx, hook), &input, prior)
                    .await
                    .map_err(|source| StepError::InputMapper {
                        hook: hook.label(),
                        source: Box::new(source),
                    })
            })
            .await?
        }
        None => input,
    };
    let agent_cx = AgentContext {
        workflow: &cx.workflow,
        registry: &cx.registry,
        emitter: &cx.emitter,
        scope: cx.scope.clone(),
        call: cx.call.clone(),
        journal: &cx.journal,
        step_key: cx.step_key.clone(),
        session: cx.session.as_deref(),
        wait_approval: cx.wait_approval,
    };
    let out = agent::run(
        &agent_cx,
        &step.agent,
        &input,
        step.max_turns,
        step.output_schema.clone(),
    )
    .await?;
    Ok(StepOutcome::Done(out))
}

fn plugin_for(cx: &StepContext, hook: &HookRef) -> Result<Arc<crate::plugin::Plugin>, StepError> {
    cx.registry
        .get(&hook.plugin)
        .ok_or_else(|| StepError::PluginMissing {
            plugin: hook.plugin.clone(),
        })
}

fn hook_call(cx: &StepContext, hook: &HookRef) -> CallContext {
    let mut call = cx.call.clone();
    call.entry = hook.entry.clone();
    call.config = hook.config.clone();
    call
}

/// Usage per model as JSON for events.
pub fn usage_json(usage: &BTreeMap<String, Usage>) -> Value {
    serde_json::to_value(usage).unwrap_or_default()
}

//! The library API: a [`Runner`] starts, resumes and replays runs; a
//! [`RunHandle`] awaits, cancels and streams one.

use super::run::{Prepared, started_of};
use super::{Caller, RunError};
use crate::agent::SessionConfig;
use crate::events::{Data, Emitter, Event, EventAck, Scope};
use crate::journal::{self, AfterDivergence, Journal, Key, ReplayLog, RunStarted, SessionRecord};
use crate::llm::Usage;
use crate::plan::Workflow;
use crate::plugin::{Registry, StepResult};
use crate::store::{JournalRecord, NewRun, RunStatus, RunUpdate, Store, StoreError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

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
    /// Who starts the run: the run belongs to its account and user, and a
    /// `session` of another account or user is refused (see [`Caller`]).
    pub caller: Caller,
    /// Consumers of the events that make them durable (see
    /// [`ResumeRequest::event_acks`]).
    pub event_acks: Vec<EventAck>,
}

/// How to continue an interrupted run.
#[derive(Debug, Clone, Default)]
pub struct ResumeRequest {
    /// Who resumes it: a run outside the caller's scope is not found.
    pub caller: Caller,
    pub deltas: bool,
    pub events: bool,
    pub wait_approval: bool,
    /// Consumers of the events that make them durable: the run's end is
    /// committed only once they have written its last events
    /// ([`Emitter::flushed`]).
    pub event_acks: Vec<EventAck>,
}

/// Runs a workflow, any number of times concurrently.
#[derive(Clone)]
pub struct Runner {
    pub(super) workflow: Arc<Workflow>,
    pub(super) registry: Arc<Registry>,
    pub(super) store: Option<Arc<dyn Store>>,
}

/// A run in progress.
pub struct RunHandle {
    pub(super) run_id: String,
    pub(super) events: Option<mpsc::UnboundedReceiver<Event>>,
    pub(super) cancel: RunCanceller,
    pub(super) task: tokio::task::JoinHandle<Result<RunOutput, RunError>>,
}

/// Cancels one run, like [`RunHandle::cancel`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct RunCanceller(pub(super) watch::Sender<bool>);

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
    pub fn start(&self, mut request: RunRequest) -> RunHandle {
        let acks = std::mem::take(&mut request.event_acks);
        let run_id = request.run_id.clone().unwrap_or_else(new_run_id);
        let store = self.store.clone();
        let workflow_key = self.workflow.key.clone();
        let id = run_id.clone();
        let (events, deltas) = (request.events, request.deltas);
        let prepare = async move {
            let journal = match store {
                Some(store) => {
                    record_new_run(&store, workflow_key, &id, &request, RunStatus::Running).await?;
                    Journal::live(store, &id, Vec::new())
                }
                None => {
                    request
                        .caller
                        .owner_of(request.session.as_ref().map(|s| &s.scope))?;
                    Journal::disabled(&id)
                }
            };
            Ok(Prepared {
                journal,
                input: request.input,
                session: request.session,
                wait_approval: request.wait_approval,
                resumed: false,
            })
        };
        self.launch(run_id, events, deltas, acks, prepare)
    }

    /// Records a run as `queued`, its `run_started` entry included, without
    /// executing it; [`Runner::resume`] executes it later (a server does when
    /// it has capacity, or after a restart). Returns the run id. A run id
    /// that exists already is a [`StoreError::Conflict`].
    pub async fn enqueue(&self, request: RunRequest) -> Result<String, RunError> {
        let store = self.store.clone().ok_or(RunError::NoStore)?;
        let id = request.run_id.clone().unwrap_or_else(new_run_id);
        record_new_run(
            &store,
            self.workflow.key.clone(),
            &id,
            &request,
            RunStatus::Queued,
        )
        .await?;
        Ok(id)
    }

    /// Continues an interrupted run (crashed, killed, or waiting for an
    /// approval that has been decided) from its journal: nothing recorded
    /// is done again.
    pub fn resume(&self, run_id: &str, request: ResumeRequest) -> RunHandle {
        let store = self.store.clone();
        let id = run_id.to_owned();
        let prepare = async move {
            let store = store.ok_or(RunError::NoStore)?;
            let scope = request.caller.scope();
            let record = store
                .get_run(&scope, &id)
                .await?
                .ok_or_else(|| StoreError::NotFound { run_id: id.clone() })?;
            if record.status.is_terminal() {
                return Err(RunError::NotResumable {
                    run_id: id,
                    status: record.status,
                });
            }
            let records = store.journal(&scope, &id).await?;
            let started = started_of(&id, &records)?;
            store
                .update_run(&id, RunUpdate::status(RunStatus::Running))
                .await?;
            Ok(Prepared {
                journal: Journal::live(store, &id, records),
                input: started.input,
                session: started.session.map(SessionConfig::from),
                wait_approval: request.wait_approval,
                // A queued run executes for the first time.
                resumed: record.status != RunStatus::Queued,
            })
        };
        self.launch(
            run_id.to_owned(),
            request.events,
            request.deltas,
            request.event_acks,
            prepare,
        )
    }

    /// Executes a recorded run again with the current plugins, serving model
    /// responses, tool results, approvals and session reads from `records`
    /// (its journal) — no model call is made — and recording nothing. It
    /// stops at its first divergence (see [`Runner::replay_logged`]).
    pub fn replay(&self, run_id: &str, records: Vec<JournalRecord>, events: bool) -> RunHandle {
        let log = Arc::new(ReplayLog::new(AfterDivergence::Stop));
        self.replay_logged(run_id, records, events, log)
    }

    /// [`Runner::replay`] with a log: where the replay diverged (a model
    /// call whose input is not the recorded one, or was never made), what it
    /// does from there (`log`'s [`AfterDivergence`]), and what it would have
    /// recorded.
    pub fn replay_logged(
        &self,
        run_id: &str,
        records: Vec<JournalRecord>,
        events: bool,
        log: Arc<ReplayLog>,
    ) -> RunHandle {
        let id = run_id.to_owned();
        let prepare = async move {
            let started = started_of(&id, &records)?;
            Ok(Prepared {
                journal: Journal::replay(&id, records, log),
                input: started.input,
                session: started.session.map(SessionConfig::from),
                wait_approval: false,
                resumed: false,
            })
        };
        self.launch(run_id.to_owned(), events, false, Vec::new(), prepare)
    }

    pub(super) fn launch(
        &self,
        run_id: String,
        events: bool,
        deltas: bool,
        acks: Vec<EventAck>,
        prepare: impl Future<Output = Result<Prepared, RunError>> + Send + 'static,
    ) -> RunHandle {
        let (tx, rx) = if events {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let emitter = Emitter::with_acks(&run_id, &self.workflow.key, tx, deltas, acks);
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
                session.id = tracing::field::Empty,
            );
            let run = async {
                let prepared = prepare.await?;
                if let Some(session) = &prepared.session {
                    tracing::Span::current()
                        .record("session.id", session.scope.session_id.as_str());
                }
                runner.execute(id.clone(), prepared, emitter.clone()).await
            };
            tokio::select! {
                result = run.instrument(span) => result,
                () = async { let _ = cancelled.wait_for(|c| *c).await; } => {
                    if let Some(store) = &runner.store {
                        // Best effort: the run may not have been created yet.
                        let _ = store.update_run(&id, RunUpdate::status(RunStatus::Cancelled)).await;
                    }
                    emitter.emit(&Scope::default(), Data::RunCancelled);
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
}

/// A new run id (a ULID), for a caller that needs it before the run
/// starts.
pub fn new_run_id() -> String {
    ulid::Ulid::generate().to_string()
}

/// Creates the run in `store` with its `run_started` entry, in one
/// transaction, owned by the request's caller (a session of someone else
/// is refused).
async fn record_new_run(
    store: &Arc<dyn Store>,
    workflow_key: String,
    id: &str,
    request: &RunRequest,
    status: RunStatus,
) -> Result<(), RunError> {
    let (account_id, user_id) = request
        .caller
        .owner_of(request.session.as_ref().map(|s| &s.scope))?;
    let started = journal::entry(
        &Key::RunStarted,
        &RunStarted {
            input: request.input.clone(),
            session: request.session.as_ref().map(SessionRecord::from),
            metadata: request.metadata.clone(),
        },
    )?;
    store
        .create_run_with(
            NewRun {
                run_id: id.to_owned(),
                status,
                workflow_key,
                spec_digest: request.spec_digest.clone(),
                account_id,
                user_id,
                session_id: request.session.as_ref().map(|s| s.scope.session_id.clone()),
                input: request.input.clone(),
            },
            Some(started),
        )
        .await?;
    Ok(())
}

//! One run's lifecycle: its journal records, state, stages in order, and
//! the end that commits its outcome.

use super::error::step_error;
use super::step::StepOutcome;
use super::{RunError, RunOutput, Runner, StepError};
use crate::agent::SessionConfig;
use crate::events::data::{PluginReloaded, RunCompleted, RunFailed, RunStarted};
use crate::events::{Data, Emitter, Scope};
use crate::journal::{self, Journal, Key, Mode, Owner, RunFinished, SessionWrite};
use crate::llm::{Item, Usage};
use crate::plan::{Stage, Step};
use crate::plugin::StepResult;
use crate::store::{JournalKind, JournalRecord, RunStatus, RunUpdate};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What a run executes with, once its journal is ready.
pub(super) struct Prepared {
    pub(super) journal: Journal,
    pub(super) input: Value,
    pub(super) session: Option<SessionConfig>,
    pub(super) wait_approval: bool,
    pub(super) resumed: bool,
}

impl Runner {
    pub(super) async fn execute(
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
            &Scope::default(),
            RunStarted {
                input: input.clone(),
                replay: journal.mode() == Mode::Replay,
                resumed,
                session: session.as_ref().map(|s| s.scope.session_id.clone()),
                stages: wf.stages.len() as u64,
                workflow_name: wf.name.clone(),
            },
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
        let usage = state.usage.clone();
        // Everything the run recorded is committed before its outcome: a
        // completed run's last results share the commit of its end. The end
        // event goes out first, and the end is committed only once the
        // run's durable event consumers (the server's event store and
        // outbox) have written it: a process killed in between leaves a
        // running run, which is resumed from its journal and ends again,
        // never a finished run that lacks its last events.
        let result = match result {
            Ok(output) => {
                let end = match state.journal.barrier().await {
                    Ok(()) => {
                        emitter.emit(
                            &Scope::default(),
                            RunCompleted {
                                elapsed_ms: crate::util::millis(started.elapsed()),
                                output: output.clone(),
                                usage: state.usage.clone(),
                            },
                        );
                        emitter.flushed().await;
                        state
                            .journal
                            .commit(
                                &Key::RunFinished,
                                &RunFinished::Completed {
                                    output: output.clone(),
                                },
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
                            .await
                    }
                    Err(e) => Err(e),
                };
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
            Ok(output) => Ok(RunOutput {
                run_id,
                output,
                steps: state.prior,
                usage: state.usage,
                last_agent: state.last_agent,
                last_response_id: state.last_response_id,
                elapsed: started.elapsed(),
            }),
            // Waiting for a human: the status says so already.
            Err(e @ RunError::Paused { .. }) => Err(e),
            Err(RunError::Cancelled) => {
                emitter.emit(&Scope::default(), Data::RunCancelled);
                Err(RunError::Cancelled)
            }
            Err(e) => {
                let span = tracing::Span::current();
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", tracing::field::display(&e));
                emitter.emit(
                    &Scope::default(),
                    RunFailed {
                        error: e.to_string(),
                        usage: state.usage.clone(),
                    },
                );
                // A store that fails cannot record the failure either.
                if !matches!(e, RunError::Store(_)) {
                    emitter.flushed().await;
                    state
                        .journal
                        .commit(
                            &Key::RunFinished,
                            &RunFinished::Failed {
                                error: e.to_string(),
                            },
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
                Err(e)
            }
        }
    }

    /// On resume: a plugin whose build changed since it produced recorded
    /// outputs gets a `plugin.reloaded` event (the recorded outputs stand).
    pub(super) fn report_changed_plugins(&self, journal: &Journal, emitter: &Emitter) {
        let mut seen = BTreeSet::new();
        let mut recorded: Vec<&JournalRecord> = journal.records().collect();
        recorded.sort_by_key(|r| r.seq);
        for r in recorded {
            let Some((plugin, digest)) = journal::served_by(r) else {
                continue;
            };
            let current = self.registry.current_digest(&plugin);
            if current.as_deref() != Some(digest) && seen.insert(plugin.clone()) {
                emitter.emit(
                    &Scope::default(),
                    PluginReloaded {
                        new_digest: current,
                        old_digest: digest.to_owned(),
                        plugin: plugin.to_owned(),
                        reason: "changed since the run recorded its outputs; recorded outputs stand, the new build serves the calls not yet made".into(),
                    },
                );
            }
        }
    }
}

pub(super) fn started_of(
    run_id: &str,
    records: &[JournalRecord],
) -> Result<journal::RunStarted, RunError> {
    let bad = |reason: String| RunError::BadJournal {
        run_id: run_id.to_owned(),
        reason,
    };
    journal::run_started(records)
        .ok_or_else(|| bad("it has no run_started entry".into()))?
        .map_err(|e| bad(format!("run_started: {}", e.reason)))
}

pub(super) struct RunState {
    pub(super) run_id: String,
    pub(super) logical_time_ms: u64,
    pub(super) prior: Vec<StepResult>,
    pub(super) usage: BTreeMap<String, Usage>,
    pub(super) last_agent: Option<String>,
    pub(super) last_response_id: Option<String>,
    pub(super) journal: Arc<Journal>,
    pub(super) session: Option<Arc<SessionConfig>>,
    pub(super) wait_approval: bool,
}

impl RunState {
    /// Appends a step's (or a parallel stage's) items to the run's session,
    /// with a journal entry in the same transaction — once.
    pub(super) async fn write_session(
        &self,
        owner: Owner,
        items: Vec<Item>,
    ) -> Result<(), RunError> {
        let (Some(session), Some(store)) = (&self.session, self.journal.store()) else {
            return Ok(());
        };
        let key = Key::SessionWrite(owner);
        if items.is_empty()
            || self.journal.mode() != Mode::Live
            || self
                .journal
                .record(JournalKind::SessionWrite, &key)
                .is_some()
        {
            return Ok(());
        }
        let values = items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunError::Internal(format!("session item: {e}")))?;
        let entry = journal::entry(
            &key,
            &SessionWrite {
                items: values.len(),
            },
        )?;
        store
            .append_session(&session.scope, &self.run_id, values, Some(entry))
            .await?;
        Ok(())
    }

    /// Turns a step's outcome into its recorded result (and the items it
    /// adds to the session), or the run's error.
    pub(super) fn absorb(
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

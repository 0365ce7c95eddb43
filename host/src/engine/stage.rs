//! A stage: its steps in order, or its branches at once and their merge.

use super::error::step_error;
use super::run::RunState;
use super::step::{StepOutcome, journaled_hook, run_step};
use super::{RunError, Runner, StepError};
use crate::agent::AgentContext;
use crate::events::data::{StageCompleted, StageMode, StageStarted, StepFailed};
use crate::events::{Emitter, Scope};
use crate::journal::{Key, Owner, StepKey};
use crate::plan::Stage;
use crate::plugin::{CallContext, StepResult};
use serde_json::Value;
use std::sync::Arc;
use tokio::task::JoinSet;
use tracing::Instrument;

impl Runner {
    pub(super) async fn stages(
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
                &scope,
                StageStarted {
                    mode: if stage.parallel {
                        StageMode::Parallel
                    } else {
                        StageMode::Sequential
                    },
                    steps: stage.steps.len() as u64,
                },
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
                &scope,
                StageCompleted {
                    output: current.clone(),
                },
            );
        }
        Ok(current)
    }

    pub(super) async fn sequential_stage(
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
            state.write_session(Owner::Step(step_key), items).await?;
            if !result.skipped {
                current = result.output.clone();
            }
            state.prior.push(result);
        }
        Ok(current)
    }

    pub(super) async fn parallel_stage(
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
        state
            .write_session(Owner::Stage(stage.name.clone()), session_items)
            .await?;

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
                idempotency_key: None,
                http: None,
                limits: self.workflow.limits_of(&hook.plugin),
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
            journaled_hook(&state.journal, Key::reduce(&stage.name), hook, reduce).await?
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

    pub(super) fn step_context(
        &self,
        state: &RunState,
        stage: &Stage,
        index: u32,
        branch: Option<u32>,
        emitter: &Emitter,
    ) -> AgentContext {
        let step = &stage.steps[index as usize];
        AgentContext {
            workflow: self.workflow.clone(),
            registry: self.registry.clone(),
            emitter: emitter.clone(),
            scope: Scope {
                stage: Some(stage.name.clone()),
                step: Some(step.name.clone()),
                step_index: Some(index),
                branch_index: branch,
                agent: Some(step.agent.clone()),
                tool_call_id: None,
            },
            call: CallContext {
                run_id: state.run_id.clone(),
                workflow_key: self.workflow.key.clone(),
                stage: stage.name.clone(),
                step: index,
                entry: String::new(),
                config: Value::Null,
                logical_time_ms: state.logical_time_ms,
                idempotency_key: None,
                http: None,
                limits: None,
            },
            journal: state.journal.clone(),
            step_key: StepKey::new(&stage.name, index),
            session: state.session.clone(),
            wait_approval: state.wait_approval,
        }
    }
}

/// A parallel branch's task: if it is dropped unfinished because another
/// branch failed, it emits the `step.failed` that ends its `step.started`.
pub(super) struct BranchEnd {
    pub(super) emitter: Emitter,
    pub(super) scope: Scope,
    pub(super) why: Arc<std::sync::OnceLock<String>>,
    pub(super) finished: bool,
}

impl Drop for BranchEnd {
    fn drop(&mut self) {
        // Only for a fail-fast stop: a cancelled run ends with
        // `run.cancelled` alone.
        if !self.finished
            && let Some(why) = self.why.get()
        {
            self.emitter
                .emit(&self.scope, StepFailed { error: why.clone() });
        }
    }
}

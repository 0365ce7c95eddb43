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

pub mod build;
pub mod plan;

use crate::agent::{self, AgentContext, AgentError};
use crate::events::{Emitter, Event, EventType, Scope};
use crate::llm::Usage;
use crate::plugin::{CallContext, CallError, Registry, StepResult};
use plan::{HookRef, Stage, Step, Workflow};
use serde_json::{Value, json};
use std::collections::BTreeMap;
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
    #[error("internal error: {0}")]
    Internal(String),
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
    /// The session the run belongs to (recorded in `run.started`).
    pub session: Option<String>,
}

/// Runs a workflow, any number of times concurrently.
#[derive(Clone)]
pub struct Runner {
    workflow: Arc<Workflow>,
    registry: Arc<Registry>,
}

/// A run in progress.
pub struct RunHandle {
    run_id: String,
    events: Option<mpsc::UnboundedReceiver<Event>>,
    cancel: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<RunOutput, RunError>>,
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
        let _ = self.cancel.send(true);
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
        Runner { workflow, registry }
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// Starts a run on the current tokio runtime.
    pub fn start(&self, request: RunRequest) -> RunHandle {
        let run_id = request
            .run_id
            .clone()
            .unwrap_or_else(|| ulid::Ulid::generate().to_string());
        let (tx, rx) = if request.events {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let emitter = Emitter::new(&run_id, &self.workflow.key, tx, request.deltas);
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
                session.id = request.session.as_deref(),
            );
            let run = runner.execute(id.clone(), request.input, request.session, emitter.clone());
            tokio::select! {
                result = run.instrument(span) => result,
                _ = cancelled.wait_for(|c| *c) => {
                    emitter.emit(EventType::RunCancelled, &Scope::default(), Value::Null);
                    Err(RunError::Cancelled)
                }
            }
        });
        RunHandle {
            run_id,
            events: rx,
            cancel,
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
        input: Value,
        session: Option<String>,
        emitter: Emitter,
    ) -> Result<RunOutput, RunError> {
        let started = Instant::now();
        let logical_time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let wf = &self.workflow;
        emitter.emit(
            EventType::RunStarted,
            &Scope::default(),
            json!({ "workflow_name": wf.name, "stages": wf.stages.len(), "input": input, "session": session }),
        );
        let mut state = RunState {
            run_id: run_id.clone(),
            logical_time_ms,
            prior: Vec::new(),
            usage: BTreeMap::new(),
            last_agent: None,
            last_response_id: None,
        };
        let result = self.stages(&mut state, input, &emitter).await;
        let result = result.and_then(|output| match &wf.output_schema {
            Some(schema) => schema
                .check(&output)
                .map(|()| output.clone())
                .map_err(|reason| RunError::OutputSchema { reason, output }),
            None => Ok(output),
        });
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
            Err(e) => {
                let span = tracing::Span::current();
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", tracing::field::display(&e));
                emitter.emit(
                    EventType::RunFailed,
                    &Scope::default(),
                    json!({ "error": e.to_string(), "usage": usage_json(&state.usage) }),
                );
                Err(e)
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
            let outcome = run_step(cx, step, current.clone(), &state.prior).await;
            let result = state.absorb(stage, step, index as u32, None, outcome)?;
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
        for (index, _) in stage.steps.iter().enumerate() {
            let cx = self.step_context(state, stage, index as u32, Some(index as u32), emitter);
            let workflow = self.workflow.clone();
            let (input, prior) = (input.clone(), prior.clone());
            set.spawn(
                async move {
                    let step = &workflow.stages[stage_index].steps[index];
                    (index, run_step(cx, step, input, &prior).await)
                }
                .in_current_span(),
            );
        }
        let mut outcomes: Vec<Option<Result<StepOutcome, StepError>>> =
            (0..stage.steps.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (index, outcome) =
                joined.map_err(|e| RunError::Internal(format!("branch task: {e}")))?;
            match outcome {
                // Fail fast: the other branches are aborted with the set.
                Err(e) if !stage.continue_on_branch_error => {
                    return Err(step_error(stage, &stage.steps[index], e));
                }
                outcome => outcomes[index] = Some(outcome),
            }
        }
        let mut results = Vec::with_capacity(stage.steps.len());
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let outcome = outcome
                .ok_or_else(|| RunError::Internal(format!("branch {index} did not finish")))?;
            let step = &stage.steps[index];
            let result = match outcome {
                Ok(o) => state.absorb(stage, step, index as u32, Some(index as u32), Ok(o))?,
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

        let merged = if results.iter().all(|r| r.skipped) {
            input
        } else if let Some(hook) = &stage.reducer {
            let plugin =
                self.registry
                    .get(&hook.plugin)
                    .ok_or_else(|| RunError::ReducerMissing {
                        stage: stage.name.clone(),
                        plugin: hook.plugin.clone(),
                    })?;
            let call = CallContext {
                run_id: state.run_id.clone(),
                workflow_key: self.workflow.key.clone(),
                stage: stage.name.clone(),
                step: stage.steps.len() as u32,
                entry: hook.entry.clone(),
                config: hook.config.clone(),
                logical_time_ms: state.logical_time_ms,
            };
            plugin
                .reduce(self.registry.runtime(), &call, &results, &state.prior)
                .await
                .map_err(|source| RunError::Reducer {
                    stage: stage.name.clone(),
                    hook: hook.label(),
                    source: Box::new(source),
                })?
                .value
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
        }
    }
}

fn step_error(stage: &Stage, step: &Step, source: StepError) -> RunError {
    RunError::Step {
        stage: stage.name.clone(),
        step: step.name.clone(),
        source: Box::new(source),
    }
}

struct RunState {
    run_id: String,
    logical_time_ms: u64,
    prior: Vec<StepResult>,
    usage: BTreeMap<String, Usage>,
    last_agent: Option<String>,
    last_response_id: Option<String>,
}

impl RunState {
    /// Turns a step's outcome into its recorded result, or the run's error.
    fn absorb(
        &mut self,
        stage: &Stage,
        step: &Step,
        index: u32,
        branch: Option<u32>,
        outcome: Result<StepOutcome, StepError>,
    ) -> Result<StepResult, RunError> {
        let outcome = outcome.map_err(|e| step_error(stage, step, e))?;
        let (skipped, output) = match outcome {
            StepOutcome::Skipped => (true, Value::Null),
            StepOutcome::Done(out) => {
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
        Ok(StepResult {
            stage_name: stage.name.clone(),
            step_index: index,
            agent_key: step.agent.clone(),
            parallel_group: branch.map(|_| stage.name.clone()),
            branch_index: branch,
            skipped,
            output,
            error: None,
        })
    }
}

/// What one step needs, owned so parallel branches can run as tasks.
struct StepContext {
    workflow: Arc<Workflow>,
    registry: Arc<Registry>,
    emitter: Emitter,
    scope: Scope,
    call: CallContext,
}

enum StepOutcome {
    Skipped,
    Done(agent::AgentOutput),
}

async fn run_step(
    cx: StepContext,
    step: &Step,
    input: Value,
    prior: &[StepResult],
) -> Result<StepOutcome, StepError> {
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
        let result = step_body(&cx, step, input, prior).await;
        match &result {
            Ok(StepOutcome::Skipped) => {
                tracing::Span::current().record("workflow.step.skipped", true);
                cx.emitter.emit(EventType::StepSkipped, &cx.scope, json!({ "reason": "guard returned false" }));
            }
            Ok(StepOutcome::Done(out)) => {
                let mut scope = cx.scope.clone();
                scope.agent = Some(out.agent.clone());
                cx.emitter.emit(
                    EventType::StepCompleted,
                    &scope,
                    json!({ "output": out.output, "turns": out.turns, "usage": usage_json(&out.usage), "elapsed_ms": started.elapsed().as_millis() as u64 }),
                );
            }
            Err(e) => {
                tracing::Span::current().record("otel.status_code", "ERROR");
                cx.emitter.emit(EventType::StepFailed, &cx.scope, json!({ "error": e.to_string() }));
            }
        }
        result
    }
    .instrument(span)
    .await
}

async fn step_body(
    cx: &StepContext,
    step: &Step,
    input: Value,
    prior: &[StepResult],
) -> Result<StepOutcome, StepError> {
    if let Some(hook) = &step.guard {
        let plugin = plugin_for(cx, hook)?;
        let call = hook_call(cx, hook);
        let run = plugin
            .guard(cx.registry.runtime(), &call, &input, prior)
            .await
            .map_err(|source| StepError::Guard {
                hook: hook.label(),
                source: Box::new(source),
            })?;
        if !run.value {
            return Ok(StepOutcome::Skipped);
        }
    }
    let input = match &step.input_mapper {
        Some(hook) => {
            let plugin = plugin_for(cx, hook)?;
            let call = hook_call(cx, hook);
            plugin
                .map_input(cx.registry.runtime(), &call, &input, prior)
                .await
                .map_err(|source| StepError::InputMapper {
                    hook: hook.label(),
                    source: Box::new(source),
                })?
                .value
        }
        None => input,
    };
    let agent_cx = AgentContext {
        workflow: &cx.workflow,
        registry: &cx.registry,
        emitter: &cx.emitter,
        scope: cx.scope.clone(),
        call: cx.call.clone(),
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

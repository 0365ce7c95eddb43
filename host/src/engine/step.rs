//! A step: its guard, its input mapper, its agent, and its journaled result.

use super::StepError;
use super::run::StepRecord;
use crate::agent::{self, AgentContext, AgentError, SessionConfig};
use crate::events::data::{StepCompleted, StepFailed, StepSkipped};
use crate::events::{Data, Emitter, Scope};
use crate::journal::{Journal, keys};
use crate::plan::{HookRef, Step, Workflow};
use crate::plugin::{CallContext, Registry, StepResult};
use crate::store::{JournalKind, StoreError};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// What one step needs, owned so parallel branches can run as tasks.
pub(super) struct StepContext {
    pub(super) workflow: Arc<Workflow>,
    pub(super) registry: Arc<Registry>,
    pub(super) emitter: Emitter,
    pub(super) scope: Scope,
    pub(super) call: CallContext,
    pub(super) journal: Arc<Journal>,
    pub(super) step_key: String,
    pub(super) session: Option<Arc<SessionConfig>>,
    pub(super) wait_approval: bool,
}

pub(super) enum StepOutcome {
    Skipped,
    Done(agent::AgentOutput),
}

pub(super) async fn run_step(
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
        cx.emitter.emit(&cx.scope, Data::StepStarted);
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
                cx.emitter.emit(
                    &cx.scope,
                    StepSkipped {
                        reason: "guard returned false".into(),
                    },
                );
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
                    &scope,
                    StepCompleted {
                        elapsed_ms: crate::util::millis(started.elapsed()),
                        output: out.output.clone(),
                        turns: out.turns,
                        usage: out.usage.clone(),
                    },
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
                cx.emitter.emit(
                    &cx.scope,
                    StepFailed {
                        error: e.to_string(),
                    },
                );
            }
        }
        result
    }
    .instrument(span)
    .await
}

pub(super) async fn commit_step(
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
pub(super) async fn journaled_hook<T, E>(
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

pub(super) async fn step_body(
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

pub(super) fn plugin_for(
    cx: &StepContext,
    hook: &HookRef,
) -> Result<Arc<crate::plugin::Plugin>, StepError> {
    cx.registry
        .get(&hook.plugin)
        .ok_or_else(|| StepError::PluginMissing {
            plugin: hook.plugin.clone(),
        })
}

pub(super) fn hook_call(cx: &StepContext, hook: &HookRef) -> CallContext {
    let mut call = cx.call.clone();
    call.entry = hook.entry.clone();
    call.config = hook.config.clone();
    call
}

//! A step: its guard, its input mapper, its agent, and its journaled result.

use super::StepError;
use crate::agent::{self, AgentContext, AgentError};
use crate::events::Data;
use crate::events::data::{StepCompleted, StepFailed, StepSkipped};
use crate::journal::{self, HookOutput, Journal, Key, StepDone, Unreadable};
use crate::plan::{HookRef, Step};
use crate::plugin::{CallContext, StepResult};
use crate::store::StoreError;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub(super) enum StepOutcome {
    Skipped,
    Done(agent::AgentOutput),
}

pub(super) async fn run_step(
    cx: AgentContext,
    step: &Step,
    input: Value,
    prior: &[StepResult],
) -> Result<StepOutcome, StepError> {
    let done = Key::Done(cx.step_key.clone());
    // Already done before an interruption: its recorded result stands.
    if let Some(r) = cx.journal.recorded::<StepDone>(&done)? {
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
    if let Some(failed) = cx.journal.recorded::<journal::StepFailed>(&done)? {
        return Err(StepError::Recorded(failed.error));
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
                cx.journal
                    .commit(&done, &StepDone::skipped(), None, None)
                    .await?;
                tracing::Span::current().record("workflow.step.skipped", true);
                cx.emitter.emit(
                    &cx.scope,
                    StepSkipped {
                        reason: "guard returned false".into(),
                    },
                );
            }
            Ok(StepOutcome::Done(out)) => {
                let record = StepDone {
                    skipped: false,
                    output: out.output.clone(),
                    agent: Some(out.agent.clone()),
                    usage: out.usage.clone(),
                    turns: out.turns,
                    last_response_id: out.last_response_id.clone(),
                    session_items: out.session_items.clone(),
                };
                cx.journal.commit(&done, &record, None, None).await?;
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
                let failed = journal::StepFailed {
                    error: e.to_string(),
                };
                cx.journal.commit(&done, &failed, None, None).await?;
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

/// A hook's output (guard, input mapper, reducer): the recorded one, or the
/// one `call` produces, which is then recorded with the plugin's digest.
pub(super) async fn journaled_hook<T, E>(
    journal: &Journal,
    key: Key,
    hook: &HookRef,
    call: impl Future<Output = Result<crate::plugin::Served<T>, E>>,
) -> Result<T, E>
where
    T: Serialize + serde::de::DeserializeOwned,
    E: From<StoreError> + From<Unreadable>,
{
    let decode = |value: Value| {
        serde_json::from_value(value).map_err(|e| Unreadable {
            key: key.to_string(),
            reason: e.to_string(),
        })
    };
    if let Some(recorded) = journal.recorded::<HookOutput>(&key)? {
        return Ok(decode(recorded.value)?);
    }
    let served = call.await?;
    let value =
        serde_json::to_value(&served.value).map_err(|source| StoreError::Serialization {
            what: "a plugin output",
            source,
        })?;
    let output = HookOutput {
        plugin: hook.plugin.clone(),
        entry: hook.entry.clone(),
        value,
    };
    journal
        .commit(&key, &output, Some(&served.digest), None)
        .await?;
    Ok(served.value)
}

pub(super) async fn step_body(
    cx: &AgentContext,
    step: &Step,
    input: Value,
    prior: &[StepResult],
) -> Result<StepOutcome, StepError> {
    if let Some(hook) = &step.guard {
        let pass = journaled_hook(&cx.journal, Key::Guard(cx.step_key.clone()), hook, async {
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
            journaled_hook(
                &cx.journal,
                Key::MapInput(cx.step_key.clone()),
                hook,
                async {
                    plugin_for(cx, hook)?
                        .map_input(cx.registry.runtime(), &hook_call(cx, hook), &input, prior)
                        .await
                        .map_err(|source| StepError::InputMapper {
                            hook: hook.label(),
                            source: Box::new(source),
                        })
                },
            )
            .await?
        }
        None => input,
    };
    let out = agent::run(
        cx,
        &step.agent,
        &input,
        step.max_turns,
        step.output_schema.clone(),
    )
    .await?;
    Ok(StepOutcome::Done(out))
}

pub(super) fn plugin_for(
    cx: &AgentContext,
    hook: &HookRef,
) -> Result<Arc<crate::plugin::Plugin>, StepError> {
    cx.registry
        .get(&hook.plugin)
        .ok_or_else(|| StepError::PluginMissing {
            plugin: hook.plugin.clone(),
        })
}

pub(super) fn hook_call(cx: &AgentContext, hook: &HookRef) -> CallContext {
    cx.call
        .for_entry(&hook.entry, &hook.config)
        .with_limits(cx.workflow.limits_of(&hook.plugin))
}

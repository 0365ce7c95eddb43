//! Guardrails of a phase, run concurrently; verdicts journaled.

use super::*;
use crate::events::Scope;
use crate::events::data::GuardrailTripped;
use crate::journal::{GuardrailCheck, Key};
use crate::plan::HookRef;
use crate::plugin::Phase;
use serde_json::Value;

/// Runs every guardrail of a phase (concurrently); the first tripwire, in
/// declaration order, fails the step. Verdicts are journaled under `site`.
pub(super) async fn check_guardrails(
    cx: &AgentContext,
    scope: &Scope,
    guardrails: &[HookRef],
    phase: Phase,
    payload: &Value,
    site: &str,
) -> Result<(), AgentError> {
    if guardrails.is_empty() {
        return Ok(());
    }
    let checks = guardrails.iter().enumerate().map(|(i, g)| async move {
        let key = Key::guardrail(&cx.step_key, site, i);
        if let Some(check) = cx.journal.recorded::<GuardrailCheck>(&key)? {
            return Ok::<_, AgentError>(check.verdict);
        }
        let guardrail =
            cx.registry
                .guardrail(&g.plugin)
                .ok_or_else(|| AgentError::PluginMissing {
                    plugin: g.plugin.clone(),
                })?;
        let call = cx
            .call
            .for_entry(&g.entry, &g.config)
            .with_limits(cx.workflow.limits_of(&g.plugin));
        let served = guardrail
            .check(cx.registry.runtime(), &call, phase, &g.narrow(payload))
            .await
            .map_err(AgentError::Guardrail)?;
        let check = GuardrailCheck {
            plugin: g.plugin.clone(),
            guardrail: g.label(),
            phase: phase.to_string(),
            verdict: served.value,
        };
        cx.journal
            .commit(&key, &check, Some(&served.digest), None)
            .await?;
        Ok(check.verdict)
    });
    let verdicts = futures::future::join_all(checks).await;
    for (g, verdict) in guardrails.iter().zip(verdicts) {
        let verdict = verdict?;
        if verdict.tripwire {
            cx.emitter.emit(
                scope,
                GuardrailTripped {
                    guardrail: g.label(),
                    info: verdict.info.clone(),
                    message: verdict.message.clone(),
                    phase: phase.to_string(),
                },
            );
            return Err(AgentError::Tripwire {
                phase,
                guardrail: g.label(),
                message: verdict.message,
                info: verdict.info,
            });
        }
    }
    Ok(())
}

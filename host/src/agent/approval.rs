//! The approval gate of a tool call: a recorded decision, or a request
//! that pauses the run (or waits in-process) until a human decides.

use super::model::decode;
use super::*;
use crate::events::Scope;
use crate::events::data::{ApprovalRequested, ApprovalResolved};
use crate::journal::{Decision, Mode, keys};
use crate::store::{JournalKind, RunStatus, RunUpdate};
use serde_json::json;
use std::time::Duration;

/// How often a run waiting in-process for an approval looks for a decision.
pub(super) const APPROVAL_POLL: Duration = Duration::from_millis(100);

/// Waits for a human's decision on call `call_id`: recorded already (a
/// resumed run), or requested now — then the run pauses (the step returns
/// [`AgentError::Paused`]) unless it waits in-process.
pub(super) async fn approval_gate(
    cx: &AgentContext<'_>,
    scope: &Scope,
    turn: u32,
    call_id: &str,
    tool: String,
    arguments: &str,
    kind: &'static str,
) -> Result<Decision, AgentError> {
    let key = keys::approval(&cx.step_key, turn, call_id);
    if let Some(record) = cx.journal.recorded(JournalKind::ApprovalDecision, &key) {
        return decode(&key, &record.entry.data["decision"]);
    }
    if cx.journal.mode() == Mode::Replay {
        return Err(AgentError::ReplayDiverged { key });
    }
    let Some(store) = cx.journal.store() else {
        return Err(AgentError::ApprovalNeedsStore { tool });
    };
    let waiting = Some(RunUpdate::status(RunStatus::WaitingApproval));
    if cx
        .journal
        .recorded(JournalKind::ApprovalRequested, &key)
        .is_none()
    {
        cx.journal
            .commit(
                JournalKind::ApprovalRequested,
                key.clone(),
                json!({
                    "call_id": call_id,
                    "tool": tool,
                    "arguments": arguments,
                    "kind": kind,
                    "stage": scope.stage,
                    "step": scope.step,
                    "agent": scope.agent,
                }),
                None,
                waiting,
            )
            .await?;
    } else if let Some(update) = waiting {
        store.update_run(cx.journal.run_id(), update).await?;
    }
    // The request is durable before anyone is told about it.
    cx.journal.barrier().await?;
    cx.emitter.emit(
        scope,
        ApprovalRequested {
            arguments: clip(arguments),
            call_id: call_id.to_owned(),
            kind: kind.to_owned(),
            tool: tool.clone(),
        },
    );
    if !cx.wait_approval {
        return Err(AgentError::Paused {
            call_id: call_id.to_owned(),
            tool,
        });
    }
    loop {
        let records = store.journal_by_key(cx.journal.run_id(), &key).await?;
        if let Some(record) = records
            .iter()
            .find(|r| r.entry.kind == JournalKind::ApprovalDecision)
        {
            let decision: Decision = decode(&key, &record.entry.data["decision"])?;
            store
                .update_run(cx.journal.run_id(), RunUpdate::status(RunStatus::Running))
                .await?;
            cx.emitter.emit(
                scope,
                ApprovalResolved {
                    approved: decision.approved,
                    call_id: call_id.to_owned(),
                    reason: decision.reason.clone(),
                    tool: tool.clone(),
                },
            );
            return Ok(decision);
        }
        if cx.journal.cancelled().await? {
            return Err(AgentError::Cancelled);
        }
        tokio::time::sleep(APPROVAL_POLL).await;
    }
}

//! The approval gate of a tool call: a recorded decision, or a request
//! that pauses the run (or waits in-process) until a human decides.

use super::*;
use crate::events::Scope;
use crate::events::data::{ApprovalRequested, ApprovalResolved};
use crate::journal::{ApprovalAnswer, ApprovalRequest, Decision, Key, Mode, call_digest, decode};
use crate::store::{JournalKind, RunStatus, RunUpdate};
use std::time::Duration;

/// How often a run waiting in-process for an approval looks for a decision.
pub(super) const APPROVAL_POLL: Duration = Duration::from_millis(100);

/// Waits for a human's decision on call `call_id`: recorded already (a
/// resumed run), or requested now — then the run pauses (the step returns
/// [`AgentError::Paused`]) unless it waits in-process. A decision counts
/// only for the exact call it was made on (tool and argument digest, see
/// [`call_digest`]); one recorded for another call under the same key fails
/// the step without running the call.
pub(super) async fn approval_gate(
    cx: &AgentContext,
    scope: &Scope,
    turn: u32,
    call_id: &str,
    tool: String,
    arguments: &str,
    kind: &'static str,
) -> Result<Decision, AgentError> {
    let key = Key::approval(&cx.step_key, turn, call_id);
    let digest = call_digest(&tool, arguments);
    if let Some(answer) = cx.journal.recorded::<ApprovalAnswer>(&key)? {
        let request = cx.journal.recorded::<ApprovalRequest>(&key)?;
        bound_to(&key, &answer, request.as_ref(), &digest)?;
        // A run resumed after a decision (given by another process, or
        // over the server's API) says what it picked up.
        if cx.journal.mode() == Mode::Live {
            cx.emitter.emit(
                scope,
                ApprovalResolved {
                    approved: answer.decision.approved,
                    call_id: call_id.to_owned(),
                    reason: answer.decision.reason.clone(),
                    tool: tool.clone(),
                },
            );
        }
        return Ok(answer.decision);
    }
    if cx.journal.mode() == Mode::Replay {
        return Err(AgentError::ReplayDiverged {
            key: key.to_string(),
        });
    }
    let Some(store) = cx.journal.store() else {
        return Err(AgentError::ApprovalNeedsStore { tool });
    };
    let waiting = Some(RunUpdate::status(RunStatus::WaitingApproval));
    if cx
        .journal
        .record(JournalKind::ApprovalRequested, &key)
        .is_none()
    {
        let request = ApprovalRequest {
            call_id: call_id.to_owned(),
            tool: tool.clone(),
            arguments: arguments.to_owned(),
            kind: kind.to_owned(),
            stage: scope.stage.clone(),
            step: scope.step.clone(),
            agent: scope.agent.clone(),
            digest: Some(digest.clone()),
        };
        cx.journal.commit(&key, &request, None, waiting).await?;
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
        let records = store
            .journal_by_key(cx.journal.run_id(), &key.to_string())
            .await?;
        if let Some(record) = records
            .iter()
            .find(|r| r.entry.kind == JournalKind::ApprovalDecision)
        {
            let answer = decode::<ApprovalAnswer>(record)?;
            bound_to(&key, &answer, None, &digest)?;
            let decision = answer.decision;
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

/// Checks that `answer` decides the call whose digest is `digest`: by the
/// digest it carries, or (a decision journaled before digests existed) by
/// the recorded request's tool and arguments.
fn bound_to(
    key: &Key,
    answer: &ApprovalAnswer,
    request: Option<&ApprovalRequest>,
    digest: &str,
) -> Result<(), AgentError> {
    let decided = match (&answer.digest, request) {
        (Some(decided), _) => decided.clone(),
        (None, Some(request)) => request.call_digest(),
        // An old decision with no request to compare: the key alone.
        (None, None) => return Ok(()),
    };
    if decided != digest {
        return Err(AgentError::ApprovalMismatch {
            key: key.to_string(),
            message: format!(
                "the decision recorded was for another call (`{decided}`, this call is `{digest}`)"
            ),
        });
    }
    Ok(())
}

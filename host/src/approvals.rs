//! Human approvals of tool calls, as recorded in runs' journals.
//!
//! A run asks by journaling an `approval_requested` entry (and moving to
//! `waiting_approval`); a human answers with [`decide`], which journals an
//! `approval_decision` under the same key. The waiting run — polling in its
//! own process, or a later `resume` — picks the decision up.
//!
//! Every function takes the caller's [`Scope`]: an account sees and decides
//! only its own runs' approvals (another account's run is "no such run").

use crate::journal::{self, ApprovalAnswer, ApprovalRequest, Decision, Key};
use crate::store::{JournalKind, RunFilter, RunStatus, Scope, Store, StoreError};
use serde::Serialize;

/// A tool call waiting for a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingCall {
    pub run_id: String,
    pub call_id: String,
    pub tool: String,
    pub arguments: String,
    /// `function` (our tool) or `mcp` (a hosted MCP tool).
    pub kind: String,
    pub stage: Option<String>,
    pub step: Option<String>,
    pub agent: Option<String>,
    pub requested_at_ms: u64,
    /// The journal key the decision is recorded under.
    #[serde(skip)]
    key: Key,
}

/// Why a decision could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("run {run_id} has no pending approval for call `{call_id}`{}", if .pending.is_empty() { String::new() } else { format!(" (pending: {})", .pending.join(", ")) })]
    NoSuchCall {
        run_id: String,
        call_id: String,
        pending: Vec<String>,
    },
    #[error("run {run_id} is {status}; its approvals can no longer change anything")]
    Finished { run_id: String, status: RunStatus },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Calls of `run_id` waiting for a decision (none when `scope` does not
/// admit the run).
pub async fn pending(
    store: &dyn Store,
    scope: &Scope,
    run_id: &str,
) -> Result<Vec<PendingCall>, StoreError> {
    let journal = store.journal(scope, run_id).await?;
    let decided: std::collections::HashSet<&str> = journal
        .iter()
        .filter(|r| r.entry.kind == JournalKind::ApprovalDecision)
        .map(|r| r.entry.key.as_str())
        .collect();
    Ok(journal
        .iter()
        .filter(|r| {
            r.entry.kind == JournalKind::ApprovalRequested
                && !decided.contains(r.entry.key.as_str())
        })
        .filter_map(|r| {
            let request = match journal::decode::<ApprovalRequest>(r) {
                Ok(request) => request,
                Err(e) => {
                    tracing::warn!(run_id, "skipping an approval request: {e}");
                    return None;
                }
            };
            Some(PendingCall {
                run_id: run_id.to_owned(),
                call_id: request.call_id,
                tool: request.tool,
                arguments: request.arguments,
                kind: request.kind,
                stage: request.stage,
                step: request.step,
                agent: request.agent,
                requested_at_ms: r.at_ms,
                key: r.entry.key.parse().ok()?,
            })
        })
        .collect())
}

/// Every pending call of every run of `scope` waiting for approval.
pub async fn pending_all(store: &dyn Store, scope: &Scope) -> Result<Vec<PendingCall>, StoreError> {
    let runs = store
        .list_runs(
            scope,
            RunFilter {
                status: Some(RunStatus::WaitingApproval),
                ..RunFilter::default()
            },
        )
        .await?;
    let mut out = Vec::new();
    for run in runs {
        out.extend(pending(store, scope, &run.run_id).await?);
    }
    Ok(out)
}

/// Records a human's decision on call `call_id` of run `run_id`, a run
/// `scope` admits ([`StoreError::NotFound`] otherwise).
pub async fn decide(
    store: &dyn Store,
    scope: &Scope,
    run_id: &str,
    call_id: &str,
    decision: Decision,
    by: Option<&str>,
) -> Result<(), ApprovalError> {
    let run = store
        .get_run(scope, run_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            run_id: run_id.to_owned(),
        })?;
    if run.status.is_terminal() {
        return Err(ApprovalError::Finished {
            run_id: run_id.to_owned(),
            status: run.status,
        });
    }
    let waiting = pending(store, scope, run_id).await?;
    let Some(call) = waiting.iter().find(|p| p.call_id == call_id) else {
        return Err(ApprovalError::NoSuchCall {
            run_id: run_id.to_owned(),
            call_id: call_id.to_owned(),
            pending: waiting.into_iter().map(|p| p.call_id).collect(),
        });
    };
    let entry = journal::entry(
        &call.key,
        &ApprovalAnswer {
            call_id: call.call_id.clone(),
            tool: call.tool.clone(),
            decision,
            by: by.map(str::to_owned),
        },
    )?;
    store.append(run_id, entry).await?;
    Ok(())
}

#[cfg(test)]
mod tenancy_tests;

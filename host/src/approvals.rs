//! Human approvals of tool calls, as recorded in runs' journals.
//!
//! A run asks by journaling an `approval_requested` entry (and moving to
//! `waiting_approval`); a human answers with [`decide`], which journals an
//! `approval_decision` under the same key. The waiting run — polling in its
//! own process, or a later `resume` — picks the decision up.
//!
//! A decision is bound to exactly one call: its journal key (step, turn,
//! call id) and the digest of its tool and arguments. A call is named by its
//! key, or by its call id when that is unambiguous among the run's pending
//! calls; the run only accepts a decision whose digest is the call's.
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
    /// The journal key the decision is recorded under
    /// (`STAGE/I/tN/approval/CALL`): names this call exactly.
    pub key: String,
    /// `sha256:HEX` of the tool and its exact arguments: what a decision
    /// approves.
    pub digest: String,
    #[serde(skip)]
    parsed: Key,
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
    #[error("run {run_id} has several pending calls `{call_id}`; name one by its key: {}", .keys.join(", "))]
    Ambiguous {
        run_id: String,
        call_id: String,
        keys: Vec<String>,
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
            let digest = request.call_digest();
            Some(PendingCall {
                run_id: run_id.to_owned(),
                digest,
                call_id: request.call_id,
                tool: request.tool,
                arguments: request.arguments,
                kind: request.kind,
                stage: request.stage,
                step: request.step,
                agent: request.agent,
                requested_at_ms: r.at_ms,
                key: r.entry.key.clone(),
                parsed: r.entry.key.parse().ok()?,
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

/// Records a human's decision on one pending call of run `run_id` — a run
/// `scope` admits ([`StoreError::NotFound`] otherwise) — named by its
/// journal key or by its call id (refused as ambiguous when several pending
/// calls share it). The decision carries the call's digest.
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
    let matching: Vec<&PendingCall> = match waiting.iter().find(|p| p.key == call_id) {
        Some(exact) => vec![exact],
        None => waiting.iter().filter(|p| p.call_id == call_id).collect(),
    };
    let call = match matching.as_slice() {
        [one] => *one,
        [] => {
            return Err(ApprovalError::NoSuchCall {
                run_id: run_id.to_owned(),
                call_id: call_id.to_owned(),
                pending: waiting.into_iter().map(|p| p.call_id).collect(),
            });
        }
        several => {
            return Err(ApprovalError::Ambiguous {
                run_id: run_id.to_owned(),
                call_id: call_id.to_owned(),
                keys: several.iter().map(|p| p.key.clone()).collect(),
            });
        }
    };
    let entry = journal::entry(
        &call.parsed,
        &ApprovalAnswer {
            call_id: call.call_id.clone(),
            tool: call.tool.clone(),
            decision,
            by: by.map(str::to_owned),
            digest: Some(call.digest.clone()),
        },
    )?;
    store.append(run_id, entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{StepKey, call_digest};
    use crate::store::{MemoryStore, NewRun, RunStore, RunUpdate};
    use serde_json::json;

    /// A waiting run with a pending call `x` in turns 1 and 2 of one step
    /// (servers that number calls per response reuse ids like this).
    async fn two_pending_x() -> (MemoryStore, Vec<String>) {
        let store = MemoryStore::new();
        store
            .create_run(NewRun {
                run_id: "r".into(),
                status: RunStatus::Running,
                workflow_key: "wf".into(),
                spec_digest: "d".into(),
                account_id: String::new(),
                user_id: String::new(),
                session_id: None,
                input: json!(null),
            })
            .await
            .unwrap();
        let step = StepKey::new("main", 0);
        let mut keys = Vec::new();
        for (turn, amount) in [(1, "1"), (2, "1000000")] {
            let key = Key::approval(&step, turn, "x");
            let request = ApprovalRequest {
                call_id: "x".into(),
                tool: "pay".into(),
                arguments: format!("{{\"amount\":{amount}}}"),
                kind: "function".into(),
                stage: None,
                step: None,
                agent: None,
                digest: Some(call_digest("pay", &format!("{{\"amount\":{amount}}}"))),
            };
            store
                .append("r", journal::entry(&key, &request).unwrap())
                .await
                .unwrap();
            keys.push(key.to_string());
        }
        store
            .update_run("r", RunUpdate::status(RunStatus::WaitingApproval))
            .await
            .unwrap();
        (store, keys)
    }

    #[tokio::test]
    async fn an_ambiguous_call_id_is_refused_and_a_key_decides_one_call() {
        let (store, keys) = two_pending_x().await;
        let err = decide(
            &store,
            &Scope::Operator,
            "r",
            "x",
            Decision::approve(),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ApprovalError::Ambiguous { .. }), "{err}");
        assert!(err.to_string().contains(&keys[1]), "{err}");

        decide(
            &store,
            &Scope::Operator,
            "r",
            &keys[0],
            Decision::approve(),
            Some("ops"),
        )
        .await
        .unwrap();
        let left = pending(&store, &Scope::Operator, "r").await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].key, keys[1]);
        let journal = store.journal(&Scope::Operator, "r").await.unwrap();
        let answer = journal
            .iter()
            .find(|r| r.entry.kind == JournalKind::ApprovalDecision)
            .unwrap();
        assert_eq!(answer.entry.key, keys[0]);
        let answer: ApprovalAnswer = journal::decode(answer).unwrap();
        assert_eq!(
            answer.digest.as_deref(),
            Some(call_digest("pay", "{\"amount\":1}").as_str())
        );
        // Now `x` names one pending call.
        decide(
            &store,
            &Scope::Operator,
            "r",
            "x",
            Decision::reject("no"),
            None,
        )
        .await
        .unwrap();
        assert!(
            pending(&store, &Scope::Operator, "r")
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[cfg(test)]
mod tenancy_tests;

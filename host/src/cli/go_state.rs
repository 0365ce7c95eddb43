//! The Go runner's `RunSummary` and `WorkflowExecutionState`, as `host runs
//! show --json` reports them (`summary`, `execution_state`), read from the
//! run's record, its journal and its pending approvals. Unlike the Go
//! runner's store, which keeps one state per session (so concurrent runs of
//! a session overwrite each other), the state here is per run.

use host::approvals::PendingCall;
use host::events::rfc3339;
use host::store::{RunRecord, RunStatus};
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

fn at(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

/// `RunSummary`.
#[derive(Debug, Serialize)]
pub(super) struct RunSummary {
    pub workflow_name: String,
    pub session_id: String,
    pub final_output: Value,
    pub last_response_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `WorkflowExecutionState`.
#[derive(Debug, Serialize)]
pub(super) struct ExecutionState {
    pub session_id: String,
    pub workflow_name: String,
    /// `idle`, `running`, `waiting_approval`, `completed` or `failed`
    /// (a cancelled run is `failed`).
    pub status: &'static str,
    pub last_agent: String,
    pub last_response_id: String,
    pub last_query: Value,
    pub last_error: String,
    pub pending_approvals: Vec<ApprovalRequestState>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub final_output: Value,
    pub updated_at: String,
}

/// `ApprovalRequestState`.
#[derive(Debug, Serialize)]
pub(super) struct ApprovalRequestState {
    pub request_id: String,
    pub agent_name: String,
    pub tool_name: String,
    pub server_label: String,
    pub arguments: String,
    pub created_at: String,
}

/// Both views of `run`; `workflow_name` is the spec's `workflow.name`
/// (else its key).
pub(super) fn of(
    run: &RunRecord,
    workflow_name: &str,
    pending: &[PendingCall],
) -> (RunSummary, ExecutionState) {
    let session_id = run.session_id.clone().unwrap_or_default();
    let final_output = run.output.clone().unwrap_or(Value::Null);
    let last_response_id = run.last_response_id.clone().unwrap_or_default();
    let status = match run.status {
        RunStatus::Queued => "idle",
        RunStatus::Running => "running",
        RunStatus::WaitingApproval => "waiting_approval",
        RunStatus::Completed => "completed",
        RunStatus::Failed | RunStatus::Cancelled => "failed",
    };
    let summary = RunSummary {
        workflow_name: workflow_name.to_string(),
        session_id: session_id.clone(),
        final_output: final_output.clone(),
        last_response_id: last_response_id.clone(),
        error: run.error.clone(),
    };
    let state = ExecutionState {
        session_id,
        workflow_name: workflow_name.to_string(),
        status,
        last_agent: run.last_agent.clone().unwrap_or_default(),
        last_response_id,
        last_query: run.input.clone(),
        last_error: run.error.clone().unwrap_or_default(),
        pending_approvals: pending
            .iter()
            .map(|p| ApprovalRequestState {
                request_id: p.call_id.clone(),
                agent_name: p.agent.clone().unwrap_or_default(),
                tool_name: p.tool.clone(),
                server_label: String::new(),
                arguments: p.arguments.clone(),
                created_at: at(p.requested_at_ms),
            })
            .collect(),
        final_output,
        updated_at: at(run.updated_at_ms),
    };
    (summary, state)
}

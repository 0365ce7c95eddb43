//! Why a step or a run did not complete.

use crate::agent::AgentError;
use crate::journal::Unreadable;
use crate::plan::{Stage, Step};
use crate::plugin::CallError;
use crate::store::{RunStatus, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    #[error("cannot record the step: {0}")]
    Store(#[from] StoreError),
    /// A branch that failed before the run was interrupted (resume).
    #[error("{0}")]
    Recorded(String),
}

impl From<Unreadable> for StepError {
    fn from(e: Unreadable) -> Self {
        StepError::Agent(Box::new(AgentError::Journal(e)))
    }
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
    /// Not a failure: the run waits in `waiting_approval` for these calls.
    #[error("the run waits for approval of {}", .pending.iter().map(|p| format!("call `{}` (tool `{}`)", p.call_id, p.tool)).collect::<Vec<_>>().join(", "))]
    Paused { pending: Vec<PendingApproval> },
    #[error("run store: {0}")]
    Store(#[from] StoreError),
    #[error("no run store: resume, replay and approvals need one")]
    NoStore,
    #[error("run {run_id} is {status}; only an interrupted run can be resumed")]
    NotResumable { run_id: String, status: RunStatus },
    #[error(
        "session {session:?} belongs to account {account_id:?}, user {user_id:?}, but the run \
         is started for account {caller_account:?}, user {caller_user:?}; a spec cannot name \
         another account's or user's session (the account and user come from the caller: \
         --account/--user)"
    )]
    ForeignSession {
        session: String,
        account_id: String,
        user_id: String,
        caller_account: String,
        caller_user: String,
    },
    #[error("run {run_id}: its journal is unusable: {reason}")]
    BadJournal { run_id: String, reason: String },
    #[error(transparent)]
    Journal(#[from] Unreadable),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A tool call waiting for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub call_id: String,
    pub tool: String,
}

pub(super) fn step_error(stage: &Stage, step: &Step, source: StepError) -> RunError {
    match source {
        StepError::Agent(a) => match *a {
            AgentError::Paused { call_id, tool } => RunError::Paused {
                pending: vec![PendingApproval { call_id, tool }],
            },
            AgentError::Cancelled => RunError::Cancelled,
            AgentError::Store(e) => RunError::Store(e),
            other => RunError::Step {
                stage: stage.name.clone(),
                step: step.name.clone(),
                source: Box::new(StepError::Agent(Box::new(other))),
            },
        },
        StepError::Store(e) => RunError::Store(e),
        source => RunError::Step {
            stage: stage.name.clone(),
            step: step.name.clone(),
            source: Box::new(source),
        },
    }
}

impl StepError {
    pub(super) fn is_paused(&self) -> bool {
        matches!(self, StepError::Agent(a) if a.is_paused())
    }

    /// Errors that end the run even when a stage tolerates failed branches.
    pub(super) fn is_fatal(&self) -> bool {
        match self {
            StepError::Store(_) => true,
            StepError::Agent(a) => matches!(
                **a,
                AgentError::Cancelled | AgentError::Store(_) | AgentError::ReplayDiverged { .. }
            ),
            _ => false,
        }
    }
}

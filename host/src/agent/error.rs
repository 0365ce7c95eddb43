//! Why an agent's step failed, or stopped without failing.

use crate::journal::Unreadable;
use crate::llm::LlmError;
use crate::plugin::{CallError, Phase};
use crate::store::StoreError;
use serde_json::Value;

/// Why an agent's step failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("model call failed: {0}")]
    Llm(#[from] LlmError),
    #[error("{phase} guardrail `{guardrail}` tripped: {message}")]
    Tripwire {
        phase: Phase,
        guardrail: String,
        message: String,
        info: Value,
    },
    #[error("guardrail failed: {0}")]
    Guardrail(CallError),
    #[error("agent `{agent}` reached max_turns ({max_turns}) without a final output")]
    MaxTurns { agent: String, max_turns: u32 },
    #[error("agent `{agent}` returned output that does not match its output schema: {reason}")]
    Schema { agent: String, reason: String },
    #[error("plugin `{plugin}` is not loaded")]
    PluginMissing { plugin: String },
    #[error("unknown agent `{agent}`")]
    UnknownAgent { agent: String },
    #[error(
        "tool `{tool}` needs approval, which needs a run store (the command line always has one)"
    )]
    ApprovalNeedsStore { tool: String },
    /// Not a failure: the run waits for a human to approve `call_id`.
    #[error("waiting for approval of call `{call_id}` (tool `{tool}`)")]
    Paused { call_id: String, tool: String },
    #[error("the run was cancelled")]
    Cancelled,
    #[error("cannot record the run's progress: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] Unreadable),
    #[error(
        "replay diverged at `{key}`: the recorded answer no longer applies (its input changed, or a changed guard or mapper took a path the original run did not)"
    )]
    ReplayDiverged { key: String },
    #[error("session: {0}")]
    Session(String),
    /// The model's reply cannot be acted on safely (calls that cannot be
    /// told apart, or more than the operator allows); nothing of it ran.
    #[error(
        "agent `{agent}`, turn {turn}: the model's reply was refused, none of its calls ran: {message}"
    )]
    ReplyRefused {
        agent: String,
        turn: u32,
        message: String,
    },
    /// A recorded approval decision is not for this call (another tool or
    /// other arguments under the same key): the call does not run.
    #[error("approval `{key}`: {message}; the call was not run")]
    ApprovalMismatch { key: String, message: String },
}

impl AgentError {
    /// Whether the step only waits (for an approval) rather than failed.
    pub(crate) fn is_paused(&self) -> bool {
        matches!(self, AgentError::Paused { .. })
    }
}

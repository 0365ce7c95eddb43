//! What each journal entry holds: one type per [`JournalKind`], serialized
//! as the entry's `data`. Resume and replay decode exactly these types, so a
//! change to one is a change to the durable format: add fields with
//! `#[serde(default)]`, never rename or remove one (journals outlive
//! releases). `tests::the_stored_format_is_unchanged` pins today's bytes.

use crate::llm::{Item, ModelResponse, Usage};
use crate::plugin::Verdict;
use crate::store::JournalKind;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A journal entry's payload: the kind it is recorded as.
pub trait Payload: Serialize + DeserializeOwned {
    const KIND: JournalKind;
}

macro_rules! payload {
    ($($ty:ty => $kind:ident),* $(,)?) => {
        $(impl Payload for $ty {
            const KIND: JournalKind = JournalKind::$kind;
        })*
    };
}

payload! {
    RunStarted => RunStarted,
    ModelCall => ModelResponse,
    ToolCall => ToolResult,
    HookOutput => PluginOutput,
    GuardrailCheck => GuardrailVerdict,
    ApprovalRequest => ApprovalRequested,
    ApprovalAnswer => ApprovalDecision,
    StepDone => StepCompleted,
    StepFailed => StepFailed,
    RunFinished => RunFinished,
    SessionRead => SessionRead,
    SessionWrite => SessionWrite,
}

/// `run_started`: what a resume needs to execute the run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub input: Value,
    #[serde(default)]
    pub session: Option<SessionRecord>,
    /// The caller's own data (the command line keeps the spec and the
    /// plugins folder here); opaque to the engine.
    #[serde(default)]
    pub metadata: Value,
}

/// The session a run belongs to, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account_id: String,
    pub user_id: String,
    pub session_id: String,
    pub history_size: Option<u32>,
}

/// `model_response`: a model's answer, paid for once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    pub agent: String,
    /// The agent loop's turn; absent for a session summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// Why a call outside the agent loop was made (`session_summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// SHA-256 of the model input the call was made with
    /// ([`super::request_digest`]): a replay whose input differs has
    /// diverged. Absent in runs recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    pub response: ModelResponse,
}

/// `tool_result`: what the model received for a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool: String,
    pub call_id: String,
    #[serde(default)]
    pub output: String,
    /// The output is an error the model sees (bad arguments, a trap, a
    /// rejection), not the tool's answer.
    #[serde(default)]
    pub error: bool,
    /// The plugin that serves the tool (none for an unknown tool).
    #[serde(default)]
    pub plugin: Option<String>,
    /// An agent offered as a tool: the agent that ran, and the tokens its
    /// model calls took (its calls are journaled under the call, so an
    /// interrupted one resumes where it stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, Usage>,
    /// An MCP tool's structured result (`structuredContent`), when it gave
    /// one; `output` holds its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
}

/// `plugin_output`: a guard's, input mapper's or reducer's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookOutput {
    pub plugin: String,
    pub entry: String,
    pub value: Value,
}

/// `guardrail_verdict`: one guardrail's decision at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailCheck {
    pub plugin: String,
    pub guardrail: String,
    pub phase: String,
    pub verdict: Verdict,
}

/// `approval_requested`: a tool call waiting for a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub call_id: String,
    pub tool: String,
    #[serde(default)]
    pub arguments: String,
    /// `function` (our tool) or `mcp` (a hosted MCP tool).
    #[serde(default = "function_kind")]
    pub kind: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    /// [`call_digest`] of the tool and its arguments: what a decision on
    /// this request approves. Absent in journals written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ApprovalRequest {
    /// The digest a decision on this request must carry: the recorded one,
    /// or for an older entry the one of its recorded tool and arguments.
    pub fn call_digest(&self) -> String {
        self.digest
            .clone()
            .unwrap_or_else(|| call_digest(&self.tool, &self.arguments))
    }
}

/// `sha256:HEX` of a tool call's name and its exact argument text: binds an
/// approval to the one call a human saw (another call under the same id, or
/// the same call with other arguments, has another digest).
pub fn call_digest(tool: &str, arguments: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(tool.as_bytes());
    hash.update([0u8]);
    hash.update(arguments.as_bytes());
    format!("sha256:{}", hex::encode(hash.finalize()))
}

fn function_kind() -> String {
    "function".to_owned()
}

/// A human's answer to an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Decision {
    pub fn approve() -> Self {
        Decision {
            approved: true,
            reason: None,
        }
    }

    pub fn reject(reason: impl Into<String>) -> Self {
        Decision {
            approved: false,
            reason: Some(reason.into()),
        }
    }
}

/// `approval_decision`: the human's answer, under the request's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalAnswer {
    pub call_id: String,
    pub tool: String,
    pub decision: Decision,
    /// Who decided, when they said.
    #[serde(default)]
    pub by: Option<String>,
    /// The [`call_digest`] of the call decided on; the decision applies to
    /// that call only. Absent in journals written before it existed (the
    /// request's recorded tool and arguments are then compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// `step_completed`: a step's result, skipped or done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDone {
    pub skipped: bool,
    pub output: Value,
    pub agent: Option<String>,
    #[serde(default)]
    pub usage: BTreeMap<String, Usage>,
    #[serde(default)]
    pub turns: u32,
    #[serde(default)]
    pub last_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_items: Vec<Item>,
}

impl StepDone {
    /// A step its guard skipped.
    pub fn skipped() -> Self {
        StepDone {
            skipped: true,
            output: Value::Null,
            agent: None,
            usage: BTreeMap::new(),
            turns: 0,
            last_response_id: None,
            session_items: Vec::new(),
        }
    }
}

/// `step_failed`: why a step failed (a resumed run fails the same way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailed {
    #[serde(default)]
    pub error: String,
}

/// `run_finished`: the run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunFinished {
    Completed { output: Value },
    Failed { error: String },
}

/// `session_read`: the history a step's agent received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRead {
    pub items: Vec<Item>,
}

/// `session_write`: how many items a step (or a parallel stage) appended to
/// the session, in the same transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionWrite {
    pub items: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored<T: Payload>(payload: &T) -> String {
        serde_json::to_value(payload)
            .expect("serializes")
            .to_string()
    }

    /// The bytes a journal holds for each kind, as the engine wrote them
    /// before the payloads were typed: old journals must keep decoding and
    /// new ones must look the same.
    #[test]
    fn the_stored_format_is_unchanged() {
        let cases: Vec<(String, Value)> = vec![
            (
                stored(&ToolCall {
                    tool: "add".into(),
                    call_id: "c1".into(),
                    output: "3".into(),
                    error: false,
                    plugin: Some("calculator".into()),
                    agent: None,
                    usage: BTreeMap::new(),
                    structured: None,
                }),
                json!({"tool": "add", "call_id": "c1", "output": "3", "error": false, "plugin": "calculator"}),
            ),
            (
                stored(&HookOutput {
                    plugin: "g".into(),
                    entry: "guard".into(),
                    value: json!(true),
                }),
                json!({"plugin": "g", "entry": "guard", "value": true}),
            ),
            (
                stored(&ApprovalRequest {
                    call_id: "c".into(),
                    tool: "t".into(),
                    arguments: "{}".into(),
                    kind: "function".into(),
                    stage: Some("s".into()),
                    step: None,
                    agent: Some("a".into()),
                    digest: None,
                }),
                json!({"call_id": "c", "tool": "t", "arguments": "{}", "kind": "function", "stage": "s", "step": null, "agent": "a"}),
            ),
            (
                stored(&ApprovalRequest {
                    call_id: "c".into(),
                    tool: "t".into(),
                    arguments: "{}".into(),
                    kind: "function".into(),
                    stage: None,
                    step: None,
                    agent: None,
                    digest: Some(call_digest("t", "{}")),
                }),
                json!({"call_id": "c", "tool": "t", "arguments": "{}", "kind": "function", "stage": null, "step": null, "agent": null,
                       "digest": "sha256:c277c62dc4a00825f5e8ddbaf449c64e79a4f665924f450da81a9c31e7a392eb"}),
            ),
            (
                stored(&ApprovalAnswer {
                    call_id: "c".into(),
                    tool: "t".into(),
                    decision: Decision::approve(),
                    by: None,
                    digest: None,
                }),
                json!({"call_id": "c", "tool": "t", "decision": {"approved": true}, "by": null}),
            ),
            (
                stored(&StepDone::skipped()),
                json!({"skipped": true, "output": null, "agent": null, "usage": {}, "turns": 0, "last_response_id": null}),
            ),
            (
                stored(&StepFailed { error: "e".into() }),
                json!({"error": "e"}),
            ),
            (
                stored(&RunFinished::Completed { output: json!(1) }),
                json!({"status": "completed", "output": 1}),
            ),
            (
                stored(&RunFinished::Failed { error: "e".into() }),
                json!({"status": "failed", "error": "e"}),
            ),
            (stored(&SessionWrite { items: 2 }), json!({"items": 2})),
            (
                stored(&RunStarted {
                    input: json!("hi"),
                    session: None,
                    metadata: Value::Null,
                }),
                json!({"input": "hi", "session": null, "metadata": null}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want.to_string());
        }
        let call = ModelCall {
            agent: "a".into(),
            turn: Some(1),
            purpose: None,
            request_digest: None,
            response: ModelResponse::default(),
        };
        let value = serde_json::to_value(&call).expect("serializes");
        assert_eq!(value["turn"], 1);
        assert!(value.get("purpose").is_none());
        // Runs recorded before the digest was kept read back without one.
        assert!(value.get("request_digest").is_none());
        let old: ModelCall = serde_json::from_value(value).expect("decodes");
        assert_eq!(old.request_digest, None);
    }
}

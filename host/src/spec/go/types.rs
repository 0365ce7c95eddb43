//! The Go runner's `WorkflowRequest`, field for field as its JSON tags name
//! them, plus the few extensions the module docs of `spec::go` list. Every
//! struct denies unknown fields, so a field the Go runner does not have is
//! an error at its path. Numbers the Go runner keeps as `int` are `i64`
//! here, so a negative size is reported by validation, with its path,
//! rather than as a type error.

use crate::secret::Secret;
use crate::spec::EventFormat;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The Go runner's request (`WorkflowRequest`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Go runner request")]
pub struct GoRequest {
    /// The user's input. Required; a string in the Go runner (any JSON here).
    #[serde(default)]
    pub query: Value,
    #[serde(default)]
    pub session: GoSession,
    /// Where events go; absent means the `http` mode without a target,
    /// which validation refuses as the Go runner does.
    #[serde(default)]
    pub callback: Option<GoCallback>,
    pub workflow: GoWorkflow,
    /// Kept with the run (the stored request).
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
    /// Kept with the run (the stored request); the Go runner reads it nowhere either.
    #[serde(default)]
    pub context: BTreeMap<String, Value>,
}

/// `SessionDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoSession {
    #[serde(default)]
    pub session_id: String,
    /// Messages of history to load; 0 means all.
    #[serde(default)]
    pub history_size: i64,
    /// Turn budget of the run; 0 means the default.
    #[serde(default)]
    pub max_turns: i64,
    #[serde(default)]
    pub credentials: GoCredentials,
}

/// `CredentialDeclaration`, with two extensions: a per-request model key
/// and base URL.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoCredentials {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
    /// Extension: this request's own model key (a secret, never stored).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Extension: where `api_key` goes; needs `api_key`.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// `CallbackDeclaration`: an object, or a bare string meaning the target.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GoCallback {
    /// The target URL of an `http` callback.
    Target(String),
    Full(GoCallbackObject),
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoCallbackObject {
    #[serde(default)]
    pub target: String,
    /// `http` (the default), `stdout` or `stdout_verbose`.
    #[serde(default)]
    pub mode: Option<GoCallbackMode>,
    /// Extension (`http`): the signing secret of each POST.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Extension (`http`): extra headers of each POST (values redacted).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Extension: `host` sends or prints this host's events instead of the
    /// Go runner's; defaults to `go`.
    #[serde(default)]
    pub format: Option<EventFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoCallbackMode {
    /// The Go runner's default mode, also spelled `""`.
    #[serde(rename = "")]
    Default,
    Http,
    Stdout,
    StdoutVerbose,
}

/// `WorkflowDeclaration`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoWorkflow {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub starting_agent: String,
    #[serde(default)]
    pub agents: Vec<GoAgent>,
    /// Kept with the run (the stored request).
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

/// `AgentDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoAgent {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub instructions: String,
    #[serde(default)]
    pub prompt_id: String,
    #[serde(default)]
    pub model: Option<GoModel>,
    /// Agents this one may hand off to (the JSON key is singular).
    #[serde(default, rename = "handoff")]
    pub handoffs: Vec<String>,
    #[serde(default)]
    pub handoff_description: String,
    #[serde(default)]
    pub agent_tools: Vec<GoAgentTool>,
    #[serde(default)]
    pub tools: Vec<GoTool>,
    #[serde(default)]
    pub mcp: Vec<GoMcp>,
    #[serde(default)]
    pub input_guardrails: Vec<GoGuardrail>,
    #[serde(default)]
    pub output_guardrails: Vec<GoGuardrail>,
    #[serde(default)]
    pub output_type: Option<GoOutputType>,
    #[serde(default)]
    pub annotations: BTreeMap<String, Value>,
}

/// `AgentToolReference`: another agent offered to this one as a tool.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoAgentTool {
    #[serde(default)]
    pub agent_name: String,
    #[serde(default)]
    pub tool_name: String,
    #[serde(default)]
    pub description: String,
}

/// `ToolDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoTool {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    /// Extension (`plugin` tools only): `always` makes every call wait for
    /// a human's approval.
    #[serde(default)]
    pub require_approval: String,
}

/// `MCPDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoMcp {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub server_label: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub require_approval: String,
    #[serde(default)]
    pub additional: BTreeMap<String, Value>,
}

/// `GuardrailDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoGuardrail {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    #[serde(default)]
    pub target: String,
}

/// `OutputTypeDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoOutputType {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub strict: bool,
    #[serde(default)]
    pub schema: Option<BTreeMap<String, Value>>,
}

/// `ModelDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoModel {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub reasoning: Option<GoReasoning>,
    #[serde(default)]
    pub verbosity: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_query: BTreeMap<String, String>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
}

/// `ReasoningDeclaration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoReasoning {
    #[serde(default)]
    pub effort: String,
    #[serde(default)]
    pub summary: String,
}

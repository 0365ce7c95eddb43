//! The executable form of a workflow: every agent, plugin reference, tool
//! and schema resolved and compiled once, before any run starts.

use crate::llm::{ModelSettings, Provider, ToolSpec};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A JSON Schema with its compiled validator.
pub struct Schema {
    pub value: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("value", &self.value)
            .finish()
    }
}

impl Schema {
    /// Whether `schema` is closed (`additionalProperties: false`): OpenAI's
    /// strict mode needs that, so it is used exactly when the schema is.
    pub fn is_strict(schema: &Value) -> bool {
        schema.get("additionalProperties") == Some(&Value::Bool(false))
    }

    pub fn compile(value: Value) -> Result<Schema, String> {
        let validator = jsonschema::validator_for(&value).map_err(|e| e.to_string())?;
        Ok(Schema { value, validator })
    }

    /// Every violation, `path: message`, joined with `; ` (at most 5).
    pub fn check(&self, instance: &Value) -> Result<(), String> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(instance)
            .take(5)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// A resolved plugin entry plus its per-use config. The plugin is looked up
/// by name at call time, so a hot-swapped build serves the next call.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRef {
    pub plugin: String,
    pub entry: String,
    pub config: Value,
    /// Guardrails only: the part of the checked value they see (a field
    /// name or a JSON pointer).
    pub target: Option<String>,
}

impl HookRef {
    pub fn label(&self) -> String {
        format!("{}#{}", self.plugin, self.entry)
    }

    /// What a guardrail with a `target` checks of `value`: the field (a
    /// name) or the value at the JSON pointer (`/a/b`) of a JSON object or
    /// array, `null` when it has none; a plain value (the text of an
    /// unstructured answer) has no parts and is checked whole, so a
    /// `target` never lets text pass unchecked.
    pub fn narrow<'v>(&self, value: &'v Value) -> std::borrow::Cow<'v, Value> {
        use std::borrow::Cow;
        let Some(target) = &self.target else {
            return Cow::Borrowed(value);
        };
        if !(value.is_object() || value.is_array()) {
            return Cow::Borrowed(value);
        }
        let found = if target.starts_with('/') {
            value.pointer(target)
        } else {
            value.get(target.as_str())
        };
        found.map_or(Cow::Owned(Value::Null), Cow::Borrowed)
    }
}

/// A tool an agent may call, with its definition and argument validator.
pub struct ToolRef {
    pub plugin: String,
    pub name: String,
    pub config: Value,
    pub spec: ToolSpec,
    pub arguments: Schema,
    /// Every call waits for a human's approval.
    pub approval: bool,
    /// What the plugin may send over HTTP (`plugins.NAME.allowed_hosts`);
    /// none: no network.
    pub http: Option<Arc<crate::plugin::HttpGrant>>,
}

/// One agent, ready to run.
pub struct Agent {
    pub key: String,
    pub instructions: String,
    pub provider: Arc<dyn Provider>,
    pub settings: ModelSettings,
    pub tools: Vec<ToolRef>,
    /// MCP servers' tools (`mcp:NAME`, `mcp:NAME#tool`).
    pub mcp_tools: Vec<McpToolsRef>,
    /// Other agents offered to this one as tools.
    pub agent_tools: Vec<AgentToolRef>,
    /// Tools the provider runs itself (Responses API only).
    pub hosted_tools: Vec<crate::llm::HostedTool>,
    pub input_guardrails: Vec<HookRef>,
    pub output_guardrails: Vec<HookRef>,
    pub tool_guardrails: Vec<HookRef>,
    pub handoffs: Vec<String>,
    pub handoff_description: Option<String>,
    pub output_schema: Option<Arc<Schema>>,
    /// Whether the model should stream (emits `llm.delta` events).
    pub stream: bool,
    /// How session history is kept within bounds (with a session).
    pub memory: Option<crate::spec::Memory>,
}

/// Another agent offered as a tool: the model calls `name` with an
/// `input` text and receives `agent`'s final output.
pub struct AgentToolRef {
    pub name: String,
    pub agent: String,
    pub description: String,
}

/// One step of a stage.
pub struct Step {
    /// Display name: the spec's `name`, else the agent key.
    pub name: String,
    pub agent: String,
    pub guard: Option<HookRef>,
    pub input_mapper: Option<HookRef>,
    pub max_turns: u32,
    /// Overrides the agent's output schema for this step.
    pub output_schema: Option<Arc<Schema>>,
}

/// A stage: sequential or parallel steps, optionally reduced.
pub struct Stage {
    pub name: String,
    pub parallel: bool,
    pub steps: Vec<Step>,
    pub reducer: Option<HookRef>,
    /// `on_branch_error: continue`: failed branches reach the reducer.
    pub continue_on_branch_error: bool,
}

/// A whole workflow, ready to run any number of times concurrently.
pub struct Workflow {
    pub key: String,
    pub name: String,
    pub stages: Vec<Stage>,
    pub agents: HashMap<String, Arc<Agent>>,
    pub output_schema: Option<Arc<Schema>>,
    pub allow_handoffs: bool,
    /// The operator's caps on model replies (tool calls per turn; the
    /// providers hold the rest).
    pub replies: crate::llm::ReplyLimits,
    /// The MCP servers the agents' `mcp:` tools call.
    pub mcp: Option<Arc<crate::mcp::McpHub>>,
    /// The call limits the spec sets per plugin (`plugins.NAME`); a plugin
    /// it says nothing about runs under the limits it was loaded with.
    pub plugin_limits: HashMap<String, crate::plugin::LimitsOverride>,
}

impl Workflow {
    /// The spec's call limits for `plugin`, if it sets any.
    pub fn limits_of(&self, plugin: &str) -> Option<crate::plugin::LimitsOverride> {
        self.plugin_limits.get(plugin).copied()
    }
}

/// The default turn budget of a step when neither step nor agent sets one.
pub const DEFAULT_MAX_TURNS: u32 = 10;

mod compile;
pub mod credentials;
mod grants;
mod mcp;
pub use compile::{CompileError, CompileOptions, compile, load_options};
pub use credentials::{BASE_URL_ENV, CredentialPair, CredentialPolicy};
pub use mcp::{McpToolsRef, start_hub};

#[cfg(test)]
mod tests {
    use super::HookRef;
    use serde_json::{Value, json};

    fn guardrail(target: Option<&str>) -> HookRef {
        HookRef {
            plugin: "g".into(),
            entry: "g".into(),
            config: json!({}),
            target: target.map(str::to_owned),
        }
    }

    #[test]
    fn a_target_narrows_structured_values_and_never_plain_text() {
        let output = json!({"response": "call 555-123-4567", "meta": {"note": "n"}});
        assert_eq!(*guardrail(None).narrow(&output), output);
        assert_eq!(
            *guardrail(Some("response")).narrow(&output),
            json!("call 555-123-4567")
        );
        assert_eq!(*guardrail(Some("/meta/note")).narrow(&output), json!("n"));
        assert_eq!(*guardrail(Some("missing")).narrow(&output), Value::Null);
        // Text has no fields: checked whole.
        let text = json!("call 555-123-4567");
        assert_eq!(*guardrail(Some("response")).narrow(&text), text);
    }
}

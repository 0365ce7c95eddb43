//! An agent's model and its settings ([`Model`]), and the agents it is
//! offered as tools ([`AgentTool`]).

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The request settings are the model layer's own types.
pub use crate::llm::{ReasoningSummary, StoredPrompt, ToolChoice, Verbosity};

/// A model reference: a bare name (`"gpt-4.1-mini"`, on the default
/// provider) or an object with settings. After [`Spec::from_json_str`]
/// `provider` is filled in with the default provider's name when one exists.
///
/// [`Spec::from_json_str`]: super::Spec::from_json_str
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "ModelRepr")]
pub struct Model {
    /// Key into `providers`; empty means the default provider.
    pub provider: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<ReasoningSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<Verbosity>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_query: BTreeMap<String, String>,
}

impl Model {
    /// A model by name on the default provider.
    pub fn named(name: impl Into<String>) -> Self {
        Model {
            name: name.into(),
            ..Default::default()
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
enum ModelRepr {
    /// A model name on the default provider.
    Name(String),
    Full(ModelObject),
}

/// A model with its settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ModelObject {
    /// Key into `providers`; defaults to the single provider, else the one
    /// named `default`, else `openai`.
    #[serde(default)]
    provider: String,
    name: String,
    /// 0 to 2.
    #[serde(default)]
    temperature: Option<f64>,
    /// 0 to 1.
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    reasoning_effort: Option<ReasoningEffort>,
    /// `auto`, `concise` or `detailed` (Responses API only).
    #[serde(default)]
    reasoning_summary: Option<ReasoningSummary>,
    /// `low`, `medium` or `high`: how long answers are.
    #[serde(default)]
    verbosity: Option<Verbosity>,
    /// Sent as the request's `metadata` (at most 16 pairs).
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// `auto`, `required`, `none`, or the name of one of the agent's tools.
    #[serde(default)]
    tool_choice: Option<ToolChoice>,
    /// Extra HTTP headers sent with each request.
    #[serde(default)]
    extra_headers: BTreeMap<String, String>,
    /// Extra query parameters of each request's URL.
    #[serde(default)]
    extra_query: BTreeMap<String, String>,
}

impl From<ModelRepr> for Model {
    fn from(repr: ModelRepr) -> Self {
        match repr {
            ModelRepr::Name(name) => Model::named(name),
            ModelRepr::Full(m) => Model {
                provider: m.provider,
                name: m.name,
                temperature: m.temperature,
                top_p: m.top_p,
                max_output_tokens: m.max_output_tokens,
                reasoning_effort: m.reasoning_effort,
                reasoning_summary: m.reasoning_summary,
                verbosity: m.verbosity,
                metadata: m.metadata,
                tool_choice: m.tool_choice,
                extra_headers: m.extra_headers,
                extra_query: m.extra_query,
            },
        }
    }
}

impl JsonSchema for Model {
    fn schema_name() -> Cow<'static, str> {
        "Model".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        ModelRepr::json_schema(generator)
    }
}

/// Reasoning effort of reasoning models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

/// Another agent offered to this one as a tool: the model calls it with an
/// `input` text, the agent runs on it to its final output (its own turns,
/// tools and guardrails, no session history), and that output is the tool's
/// result. Unlike a handoff, the conversation stays with the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentTool {
    /// The agent's key.
    pub agent: String,
    /// The tool's name; defaults to the agent's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// What the model reads about the tool; defaults to the agent's
    /// `handoff_description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl AgentTool {
    /// The name the model calls.
    pub fn name(&self) -> &str {
        self.tool_name.as_deref().unwrap_or(&self.agent)
    }
}

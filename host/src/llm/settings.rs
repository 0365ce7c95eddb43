//! [`ModelSettings`]: the model and its sampling and request settings, as
//! a spec (native or Go) declares them per agent. The wire builders turn
//! each into the field the API documents (`reasoning.summary`,
//! `text.verbosity`, `metadata`, `tool_choice`, `prompt`; `extra_query` and
//! `extra_headers` on the HTTP request itself).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Model and sampling settings of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh` (as the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// A summary of the model's reasoning (Responses API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<ReasoningSummary>,
    /// How long the answer should be (`text.verbosity` on the Responses
    /// API, `verbosity` on Chat Completions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<Verbosity>,
    /// The request's `metadata` (kept by the provider with the response).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Which tool the model must (or must not) call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// A prompt stored with the provider (Responses API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<StoredPrompt>,
    /// Sent with every request of these settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_headers: BTreeMap<String, String>,
    /// Query parameters added to the request URL (`?api-version=…`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_query: BTreeMap<String, String>,
}

impl ModelSettings {
    /// Settings for `model` with the server's defaults.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }
}

/// `reasoning.summary` of the Responses API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningSummary {
    Auto,
    Concise,
    Detailed,
}

/// The length of the model's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    Low,
    Medium,
    High,
}

impl Verbosity {
    pub fn as_str(self) -> &'static str {
        match self {
            Verbosity::Low => "low",
            Verbosity::Medium => "medium",
            Verbosity::High => "high",
        }
    }
}

/// `tool_choice`, written as a string: `auto` (the model decides), `required`
/// (some tool), `none` (no tool), or the name of one tool of the agent — a
/// plugin tool, `transfer_to_<agent>`, an agent offered as a tool, a hosted
/// tool's type (`web_search`, `file_search`, …) or a hosted MCP server's
/// label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ToolChoice {
    Auto,
    Required,
    None,
    Named(String),
}

impl From<String> for ToolChoice {
    fn from(s: String) -> Self {
        match s.as_str() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            "none" => ToolChoice::None,
            _ => ToolChoice::Named(s),
        }
    }
}

impl From<ToolChoice> for String {
    fn from(c: ToolChoice) -> String {
        match c {
            ToolChoice::Auto => "auto".into(),
            ToolChoice::Required => "required".into(),
            ToolChoice::None => "none".into(),
            ToolChoice::Named(name) => name,
        }
    }
}

impl JsonSchema for ToolChoice {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ToolChoice".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// A prompt template stored with the provider, by id (and version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredPrompt {
    pub id: String,
    /// The template's version; the provider's current one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

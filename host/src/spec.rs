//! The workflow spec: one JSON document that declares model providers, plugin
//! limits, agents, a staged workflow and the run's input, session and event
//! sinks. This module owns its serde types, their normalization, validation
//! with exact JSON paths, and the document's JSON Schema (`host schema`).
//!
//! It uses nothing else from the host crate but `util`: plugin references are
//! checked against a [`PluginCatalog`], which `plugin::Registry` implements,
//! and the plugin layer takes its entry [`Kind`] from here.
//!
//! # Public API
//!
//! - [`Spec::from_json_str`]`(text, base_dir) -> Result<Spec, SpecErrors>`:
//!   syntax and shape. Shape errors carry the JSONPath of the bad value
//!   (`$.workflow.stages[1].mode`), all of them at once. Also accepts the Go
//!   runner's request shape (see [`GoRequest`]). Normalizes: model strings and
//!   missing `provider`s become the default provider, `workflow.steps` becomes
//!   one sequential stage `main`, a `scripted` provider's `script` is joined
//!   to `base_dir`, an empty `providers` gets an implicit `openai` provider,
//!   an empty `workflow.key` becomes a slug of `workflow.name` (else `workflow`).
//! - [`Spec::from_path`]`(path)`: the same, reading a file; `base_dir` is its folder.
//!   [`Spec::from_value`]`(&Value, base_dir)`: the same for a parsed document.
//! - [`Spec::validate`]`(&self, Option<&dyn PluginCatalog>) -> Result<(), SpecErrors>`:
//!   every semantic problem at once (unknown agents, providers, plugins and
//!   entries, entries of the wrong kind, JSON Schemas that do not compile,
//!   duplicate names, empty stages, out-of-range settings, ...), sorted by path.
//! - [`Spec::plugin_uses`]: every plugin reference with its path and needed [`Kind`].
//! - [`Spec::json_schema`] / [`Spec::go_request_schema`]: the JSON Schemas.
//! - [`SpecError`] `{ path, message, hint }` and [`SpecErrors`]; Display prints
//!   `error: $.path: message` lines, each with an indented `hint: ...` line.
//! - Types: [`Spec`], [`Provider`], [`Api`], [`Retry`], [`PluginSettings`],
//!   [`Agent`], [`Model`], [`ReasoningEffort`], [`Memory`], [`PluginRef`],
//!   [`Workflow`], [`Stage`], [`Mode`], [`OnBranchError`], [`Step`], [`Run`],
//!   [`Session`], [`Callback`], [`Credentials`], [`Secret`].
//!
//! Keys are never part of a spec: providers name the environment variable
//! that holds one (`api_key_env`), and that key goes only to a base URL the
//! operator paired it with (`plan::credentials`). The only exception is the
//! Go request shape, whose `session.credentials.api_key` and
//! `callback.secret` are kept in a [`Secret`], which prints and serializes
//! as `***`. [`redact`] gives the document a run stores: those and every
//! header value replaced by `***`. Files a spec names stay in its folder
//! ([`confine`]).

mod confine;
mod destinations;
mod error;
mod go;
mod grants;
mod hosted;
mod locate;
mod mcp_servers;
mod model;
mod parse;
mod paths;
mod redact;
mod run;
mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use confine::{Escape, confine};
/// `base.key` or `base['key']`: a JSON path as spec errors write it.
pub(crate) use error::key as json_key;
pub use error::{SpecError, SpecErrors};
pub use go::{
    DEFAULT_MODEL as GO_DEFAULT_MODEL, GoAgent, GoAgentTool, GoCallback, GoCallbackMode,
    GoCallbackObject, GoCredentials, GoGuardrail, GoMcp, GoModel, GoOutputType, GoReasoning,
    GoRequest, GoSession, GoTool, GoWorkflow,
};
pub use grants::{
    DEFAULT_HTTP_REQUEST_KIB, DEFAULT_HTTP_REQUESTS, DEFAULT_HTTP_RESPONSE_KIB,
    DEFAULT_HTTP_TIMEOUT_MS, HostPattern, HttpCaps, SecretTemplate,
};
pub use mcp_servers::{DEFAULT_MCP_TIMEOUT_MS, MCP_PREFIX, McpServer};
pub use model::{ReasoningSummary, StoredPrompt, ToolChoice, Verbosity};
pub use redact::{REDACTED, Redacted, redact};
pub use types::{
    Agent, AgentTool, Api, Approval, Callback, Credentials, DEFAULT_API_KEY_ENV,
    DEFAULT_OPENAI_BASE_URL, DEFAULT_PROVIDER_TIMEOUT_MS, EventFormat, HostedTool, Kind,
    MAX_PLUGIN_MEMORY_MIB, McpApproval, Memory, Mode, Model, OnBranchError, PluginRef,
    PluginSettings, Provider, ReasoningEffort, Retry, Run, SHORTHAND_STAGE, Secret, Session, Stage,
    Step, Workflow,
};
pub use validate::{PluginCatalog, PluginUse};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A whole spec. Build it with [`Spec::from_json_str`] or [`Spec::from_path`]
/// (deserializing it directly skips normalization), then [`Spec::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "host workflow spec")]
pub struct Spec {
    /// Model providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, Provider>,
    /// Resource limits per plugin name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, PluginSettings>,
    /// MCP servers by name; agents use their tools as `mcp:NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mcp_servers: BTreeMap<String, McpServer>,
    /// Agents by name.
    #[serde(default)]
    pub agents: BTreeMap<String, Agent>,
    pub workflow: Workflow,
    #[serde(default)]
    pub run: Run,
    #[serde(skip)]
    base_dir: PathBuf,
    #[serde(skip)]
    origin: Origin,
}

/// Where a spec came from, so errors can name paths of the document the
/// user wrote.
#[derive(Debug, Clone, PartialEq, Default)]
enum Origin {
    #[default]
    Native,
    /// `workflow.steps` was given and became the stage `main`.
    NativeSteps,
    /// The Go runner's request: where each agent came from.
    Go { agents: BTreeMap<String, GoOrigin> },
}

/// Where a converted agent is in the Go request.
#[derive(Debug, Clone, PartialEq, Default)]
struct GoOrigin {
    /// Its index in `workflow.agents`.
    index: usize,
    /// The index in its `tools` of each of the spec's `tools`.
    tools: Vec<usize>,
    /// The path of each of the spec's `hosted_tools` (a `tools` or `mcp` entry).
    hosted: Vec<String>,
}

impl Spec {
    /// The folder relative paths in the spec are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Whether this spec was converted from the Go runner's request shape.
    pub fn is_go_request(&self) -> bool {
        matches!(self.origin, Origin::Go { .. })
    }

    /// The provider a model without `provider` uses: the only one, else the
    /// one named `default`, else `openai`; `None` when none of these exists.
    pub fn default_provider(&self) -> Option<&str> {
        default_provider(&self.providers)
    }

    /// Steps in all stages.
    pub fn step_count(&self) -> usize {
        self.workflow.stages.iter().map(|s| s.steps.len()).sum()
    }

    /// The JSON Schema of the spec document (what `host schema` prints).
    pub fn json_schema() -> serde_json::Value {
        schemars::schema_for!(Spec).to_value()
    }

    /// The JSON Schema of the Go runner's request shape.
    pub fn go_request_schema() -> serde_json::Value {
        schemars::schema_for!(GoRequest).to_value()
    }
}

fn default_provider(providers: &BTreeMap<String, Provider>) -> Option<&str> {
    if providers.len() == 1 {
        return providers.keys().next().map(String::as_str);
    }
    ["default", "openai"]
        .into_iter()
        .find(|name| providers.contains_key(*name))
}

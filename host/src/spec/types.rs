//! The serde types of the spec. Every type derives [`JsonSchema`] so that
//! `host schema` can print the whole document's schema, and most deny unknown
//! fields so that a typo is an error with a path instead of a silent default.

pub use super::hosted::{HostedTool, McpApproval};
use super::model::StoredPrompt;
pub use super::model::{AgentTool, Model, ReasoningEffort};
pub use super::run::{Callback, Credentials, EventFormat, Run, Session};
use crate::util::empty_object;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The provider defaults are `llm`'s own, so an omitted field means what the
/// provider would do anyway: the environment variable an `openai` provider
/// reads its key from, the base URL of an `openai` provider without
/// `base_url`, and the deadline of one model request without `timeout_ms`.
pub use crate::llm::{
    DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL as DEFAULT_OPENAI_BASE_URL,
    DEFAULT_TIMEOUT_MS as DEFAULT_PROVIDER_TIMEOUT_MS,
};
/// Secrets of the Go runner's request shape (`session.credentials.api_key`,
/// `callback.secret`) are the crate's one secret type.
pub use crate::secret::Secret;
/// Ceiling of a plugin's `memory_mib`.
pub const MAX_PLUGIN_MEMORY_MIB: u64 = 1024;
/// The name of the single stage that a workflow's `steps` shorthand becomes.
pub const SHORTHAND_STAGE: &str = "main";

/// A model provider, selected by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Provider {
    /// OpenAI's own API.
    Openai {
        /// Defaults to `https://api.openai.com/v1`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        /// The environment variable holding the key; defaults to `OPENAI_API_KEY`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key_env: Option<String>,
        /// Defaults to `responses`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api: Option<Api>,
        /// Deadline of one request in milliseconds; defaults to 60000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<Retry>,
    },
    /// Any server that speaks the OpenAI API (vLLM, Ollama, LiteLLM, ...).
    OpenaiCompatible {
        /// Required, e.g. `http://localhost:11434/v1`.
        #[serde(default)]
        base_url: String,
        /// The environment variable holding the key; none is sent without it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key_env: Option<String>,
        /// Defaults to `chat`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api: Option<Api>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<Retry>,
    },
    /// Offline: answers come from a script file, relative to the spec's folder
    /// (after parsing, `script` holds the joined path).
    Scripted {
        #[serde(default)]
        script: PathBuf,
    },
}

impl Provider {
    /// The `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Provider::Openai { .. } => "openai",
            Provider::OpenaiCompatible { .. } => "openai_compatible",
            Provider::Scripted { .. } => "scripted",
        }
    }

    /// The base URL with its default applied; `None` for `scripted`.
    pub fn base_url(&self) -> Option<&str> {
        match self {
            Provider::Openai { base_url, .. } => {
                Some(base_url.as_deref().unwrap_or(DEFAULT_OPENAI_BASE_URL))
            }
            Provider::OpenaiCompatible { base_url, .. } => Some(base_url),
            Provider::Scripted { .. } => None,
        }
    }

    /// The API flavour with its default applied; `None` for `scripted`.
    pub fn api(&self) -> Option<Api> {
        match self {
            Provider::Openai { api, .. } => Some(api.unwrap_or(Api::Responses)),
            Provider::OpenaiCompatible { api, .. } => Some(api.unwrap_or(Api::Chat)),
            Provider::Scripted { .. } => None,
        }
    }

    /// The environment variable that holds the key, if one is sent.
    pub fn api_key_env(&self) -> Option<&str> {
        match self {
            Provider::Openai { api_key_env, .. } => {
                Some(api_key_env.as_deref().unwrap_or(DEFAULT_API_KEY_ENV))
            }
            Provider::OpenaiCompatible { api_key_env, .. } => api_key_env.as_deref(),
            Provider::Scripted { .. } => None,
        }
    }

    /// Deadline of one request.
    pub fn timeout(&self) -> Duration {
        let ms = match self {
            Provider::Openai { timeout_ms, .. } | Provider::OpenaiCompatible { timeout_ms, .. } => {
                *timeout_ms
            }
            Provider::Scripted { .. } => None,
        };
        Duration::from_millis(ms.unwrap_or(DEFAULT_PROVIDER_TIMEOUT_MS))
    }

    /// Retry policy with defaults applied.
    pub fn retry(&self) -> Retry {
        match self {
            Provider::Openai { retry, .. } | Provider::OpenaiCompatible { retry, .. } => {
                retry.clone().unwrap_or_default()
            }
            Provider::Scripted { .. } => Retry::default(),
        }
    }
}

/// Which OpenAI API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// The Responses API (`/responses`).
    Responses,
    /// Chat Completions (`/chat/completions`).
    Chat,
}

/// Retries of failed model requests, with exponential backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            initial_backoff_ms: 500,
            max_backoff_ms: 8_000,
        }
    }
}

/// One plugin's settings: resource caps (absent values keep the host's
/// defaults) and, for tools, its outbound HTTP grant (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Wall-clock deadline of one call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Linear-memory cap in MiB, at most 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Cap on one returned value (JSON text), in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kib: Option<u64>,
    /// Tool calls only: hosts the plugin may send HTTP requests to
    /// (`api.example.com`, `host:port`, `*.example.com`, or an
    /// `http://host:port` origin for plain http). Empty: no network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Headers the host adds to requests to a listed host, by that host's
    /// `allowed_hosts` entry; values name environment variables
    /// (`{"api.example.com": {"Authorization": "Bearer ${API_TOKEN}"}}`),
    /// so the plugin never holds the secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Caps on the plugin's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<super::grants::HttpCaps>,
}

impl PluginSettings {
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory_mib.map(|m| m.saturating_mul(1 << 20))
    }

    pub fn output_bytes(&self) -> Option<usize> {
        self.output_kib
            .map(|k| usize::try_from(k.saturating_mul(1 << 10)).unwrap_or(usize::MAX))
    }
}

/// One agent: its instructions, model, plugins and handoffs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The name people see (printers, Go callbacks); the model and every
    /// reference still use the agent's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub instructions: String,
    /// A prompt template stored with the provider (Responses API only),
    /// sent beside `instructions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<StoredPrompt>,
    pub model: Model,
    /// Tool plugins: a bare `plugin` means every tool it offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<PluginRef>,
    /// Tools the model provider runs itself (web search, file search, code
    /// interpreter, image generation, remote MCP servers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosted_tools: Vec<HostedTool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_guardrails: Vec<PluginRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_guardrails: Vec<PluginRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_guardrails: Vec<PluginRef>,
    /// Other agents offered to this one as tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_tools: Vec<AgentTool>,
    /// Agents this one may hand the conversation to (needs
    /// `workflow.allow_handoff_agents`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handoffs: Vec<String>,
    /// How other agents see this one as a handoff target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_description: Option<String>,
    /// JSON Schema of the final output (structured output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Free-form notes kept with the spec; never sent anywhere.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Value>,
}

/// How an agent's conversation history is kept within bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Memory {
    /// Keep the last `max_turns` turns.
    Trim { max_turns: u32 },
    /// Summarize older turns with a model, keeping the last `keep_last`.
    Summarize {
        keep_last: u32,
        max_summary_tokens: u32,
        /// The summarizing model; defaults to the agent's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<Model>,
    },
    /// Compact history to at most `max_tokens`.
    Compact { max_tokens: u32 },
}

/// A reference to a plugin entry, written `"plugin"`, `"plugin#entry"` or
/// `{"plugin": "plugin#entry", "config": {...}}`. All three become this one
/// shape; `config` is `{}` when absent and reaches the plugin as its
/// per-use configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "PluginRefRepr", into = "PluginRefRepr")]
pub struct PluginRef {
    pub plugin: String,
    pub entry: Option<String>,
    pub config: Value,
    /// Tools only: whether a call waits for a human's approval.
    pub approval: Approval,
    /// Guardrails only: the part of the checked value the guardrail sees —
    /// a field name (`response`) or a JSON pointer (`/answer/text`).
    pub target: Option<String>,
}

/// Whether a tool call needs a human's approval before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Every call pauses the run in `waiting_approval` until approved or rejected.
    Always,
    #[default]
    Never,
}

impl PluginRef {
    /// Parses `plugin` or `plugin#entry` (never fails: empty parts are
    /// reported by validation).
    pub fn parse(reference: &str) -> Self {
        let reference = reference.trim();
        let (plugin, entry) = match reference.split_once('#') {
            Some((p, e)) => (p.trim(), Some(e.trim().to_string())),
            None => (reference, None),
        };
        PluginRef {
            plugin: plugin.to_string(),
            entry,
            config: empty_object(),
            approval: Approval::Never,
            target: None,
        }
    }

    /// With a per-use `config`.
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// `plugin` or `plugin#entry`.
    pub fn reference(&self) -> String {
        match &self.entry {
            Some(e) => format!("{}#{e}", self.plugin),
            None => self.plugin.clone(),
        }
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference())
    }
}

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
enum PluginRefRepr {
    /// `plugin` or `plugin#entry`.
    Short(String),
    Full(PluginRefObject),
}

/// A plugin reference with per-use configuration.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PluginRefObject {
    /// `plugin` or `plugin#entry`.
    plugin: String,
    /// Handed to the plugin on every call; defaults to `{}`.
    #[serde(default = "empty_object")]
    config: Value,
    /// Tools only: `always` makes every call wait for a human's approval.
    #[serde(default, skip_serializing_if = "is_never")]
    approval: Approval,
    /// Guardrails only: the part of the checked value the guardrail sees —
    /// a field name (`response`) or a JSON pointer (`/answer/text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

fn is_never(a: &Approval) -> bool {
    *a == Approval::Never
}

impl From<PluginRefRepr> for PluginRef {
    fn from(repr: PluginRefRepr) -> Self {
        match repr {
            PluginRefRepr::Short(s) => PluginRef::parse(&s),
            PluginRefRepr::Full(o) => {
                let mut r = PluginRef::parse(&o.plugin).with_config(o.config);
                r.approval = o.approval;
                r.target = o.target;
                r
            }
        }
    }
}

impl From<PluginRef> for PluginRefRepr {
    fn from(r: PluginRef) -> Self {
        if r.config.as_object().is_some_and(|o| o.is_empty())
            && r.approval == Approval::Never
            && r.target.is_none()
        {
            PluginRefRepr::Short(r.reference())
        } else {
            PluginRefRepr::Full(PluginRefObject {
                plugin: r.reference(),
                config: r.config,
                approval: r.approval,
                target: r.target,
            })
        }
    }
}

impl JsonSchema for PluginRef {
    fn schema_name() -> Cow<'static, str> {
        "PluginRef".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        PluginRefRepr::json_schema(generator)
    }
}

/// The kind of entry a plugin offers and a reference needs. The one set of
/// kinds for the spec and the plugin layer, so a plugin's entries are checked
/// against a reference without going through strings. The string names
/// (`input_mapper`) are the ones specs, tables and errors show.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    Guard,
    InputMapper,
    Reducer,
    Tool,
    Guardrail,
}

impl Kind {
    /// The name used in specs and tables (`input_mapper`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Hooks shape data flow and must be deterministic so that a run can be
    /// replayed from its journal; tools are actions and see the real world.
    pub fn is_hook(self) -> bool {
        !matches!(self, Kind::Tool)
    }
}

/// The staged workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Identifies the workflow in runs and events; defaults to a slug of
    /// `name`, else `workflow`.
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Shorthand for one sequential stage named `main`; never together with
    /// `stages`. After parsing it has been moved into `stages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// JSON Schema the workflow's final output must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Whether agents may hand off to the agents in their `handoffs`.
    #[serde(default)]
    pub allow_handoff_agents: bool,
}

/// A group of steps run one after another or all at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Parallel stages only: combines the branch outputs into one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reducer: Option<PluginRef>,
    /// Parallel stages only: what a failed branch does; defaults to `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_branch_error: Option<OnBranchError>,
}

/// How a stage runs its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Sequential,
    Parallel,
}

/// What a failing branch of a parallel stage does to the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnBranchError {
    /// The stage (and the run) fails.
    #[default]
    Fail,
    /// The branch's result carries the error; the others go on.
    Continue,
}

/// One agent run within a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Key into `agents`.
    pub agent: String,
    /// Unique within the stage; defaults to the agent's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Decides whether the step runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<PluginRef>,
    /// Builds the agent's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_mapper: Option<PluginRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Overrides the agent's `output_schema` for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
}

impl Step {
    /// A step running `agent`.
    pub fn new(agent: impl Into<String>) -> Self {
        Step {
            agent: agent.into(),
            name: None,
            guard: None,
            input_mapper: None,
            max_turns: None,
            output_schema: None,
        }
    }

    /// `name`, else the agent's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.agent)
    }
}

//! The host's own view of plugin data. Bindgen types stay in `bindings`;
//! engine, agent and store code only ever see these.

use super::http::HttpGrant;
use crate::spec::{Kind, MAX_PLUGIN_MEMORY_MIB};
use crate::util::empty_object;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One named entry a plugin offers, as reported by its `describe` export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    pub name: String,
    pub kind: Kind,
    pub description: String,
}

/// Where and why the host calls a plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallContext {
    pub run_id: String,
    pub workflow_key: String,
    pub stage: String,
    pub step: u32,
    /// Filled in by the registry from the resolved reference.
    #[serde(default)]
    pub entry: String,
    /// The per-use `config` from the spec (`{}` when absent).
    #[serde(default = "empty_object")]
    pub config: Value,
    /// Milliseconds since the UNIX epoch at which the run started. Hooks see
    /// a wall clock that starts here, so a replayed run reads the same time.
    #[serde(default)]
    pub logical_time_ms: u64,
    /// For a tool call of a run: `<run id>/<journal key>`, the same when the
    /// call is made again after a resume, different for every other call.
    /// Guests of WIT 0.1.1 read it with `host.idempotency-key`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// A tool call's outbound HTTP grant (`plugins.NAME.allowed_hosts`);
    /// none: no network. Ignored for every other kind of call.
    #[serde(skip)]
    pub http: Option<HttpAccess>,
    /// The limits the workflow's spec sets for this plugin
    /// (`plugins.NAME.timeout_ms`, `memory_mib`, `max_output_bytes`): they
    /// win over those the plugin was loaded with, so a server whose
    /// workflows share one loaded plugin applies each spec's own.
    #[serde(skip)]
    pub limits: Option<LimitsOverride>,
}

/// A shared [`HttpGrant`] in a [`CallContext`]: equal when it is the same
/// grant.
#[derive(Clone, Debug)]
pub struct HttpAccess(pub Arc<HttpGrant>);

impl PartialEq for HttpAccess {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl CallContext {
    /// This context for a call of `entry` with its per-use `config`.
    pub fn for_entry(&self, entry: &str, config: &Value) -> Self {
        CallContext {
            entry: entry.to_owned(),
            config: config.clone(),
            ..self.clone()
        }
    }

    /// This context with the idempotency key of one tool call.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// This context with a tool call's HTTP grant.
    pub fn with_http(mut self, grant: Option<Arc<HttpGrant>>) -> Self {
        self.http = grant.map(HttpAccess);
        self
    }

    /// This context under the spec's limits for the called plugin, if any.
    pub fn with_limits(mut self, limits: Option<LimitsOverride>) -> Self {
        self.limits = limits;
        self
    }

    /// A context for a call outside any run (tests, `host plugins` tooling).
    pub fn adhoc(config: Value) -> Self {
        CallContext {
            config,
            ..Default::default()
        }
    }
}

/// The outcome of one step that already ran in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub stage_name: String,
    pub step_index: u32,
    pub agent_key: String,
    pub parallel_group: Option<String>,
    pub branch_index: Option<u32>,
    pub skipped: bool,
    pub output: Value,
    pub error: Option<String>,
}

/// What a guardrail checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Input,
    Output,
    ToolInput,
    ToolOutput,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Input => "input",
            Phase::Output => "output",
            Phase::ToolInput => "tool_input",
            Phase::ToolOutput => "tool_output",
        })
    }
}

/// A guardrail's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub tripwire: bool,
    pub message: String,
    pub info: Value,
}

/// How a tool is presented to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A value a plugin returned, with which build of the plugin served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Served<T> {
    pub value: T,
    /// The plugin's name (file stem).
    pub plugin: Arc<str>,
    /// SHA-256 of the `.wasm` file that served the call, hex.
    pub digest: Arc<str>,
    /// Wall time of the call, instantiation included.
    pub elapsed: Duration,
}

impl<T> Served<T> {
    /// The same call's provenance around another value (what the host made
    /// of the guest's raw output).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Served<U> {
        Served {
            value: f(self.value),
            plugin: self.plugin,
            digest: self.digest,
            elapsed: self.elapsed,
        }
    }
}

/// Per-plugin resource limits. Defaults are deliberately tight: a plugin
/// that needs more says so in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline of one call, instantiation included.
    #[serde(with = "millis", rename = "timeout_ms")]
    pub timeout: Duration,
    /// Cap on the plugin's linear memory, in bytes.
    pub memory_bytes: u64,
    /// Cap on the size of any one value (JSON text) the plugin returns.
    pub output_bytes: usize,
}

/// The limits a spec sets for one plugin; what it leaves out stays as the
/// plugin was loaded with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsOverride {
    pub timeout: Option<Duration>,
    pub memory_bytes: Option<u64>,
    pub output_bytes: Option<usize>,
}

impl LimitsOverride {
    /// `base` with this override's values.
    pub fn apply(self, base: Limits) -> Limits {
        Limits {
            timeout: self.timeout.unwrap_or(base.timeout),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
        }
    }
}

impl Limits {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
    pub const DEFAULT_OUTPUT_BYTES: usize = 4 << 20;
    /// Ceiling for `memory_bytes`: the pooling allocator reserves slots of
    /// this size, so no per-plugin setting may exceed it. Derived from the
    /// spec's `memory_mib` ceiling so the two cannot disagree (the spec is
    /// the leaf both layers share).
    pub const MAX_MEMORY_BYTES: u64 = MAX_PLUGIN_MEMORY_MIB << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Self::DEFAULT_TIMEOUT,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            output_bytes: Self::DEFAULT_OUTPUT_BYTES,
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

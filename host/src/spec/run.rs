//! The `run` section of the spec: the run's input, session and event sinks
//! (callbacks), and the per-run credentials only a Go request may carry.

use super::types::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The run's input, session and event sinks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Text or any JSON; the command line's `--input` overrides it.
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callback: Vec<Callback>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
}

/// Conversation history kept across runs, per session id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Messages of history to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Only from the Go runner's request shape: a key for this run that
    /// overrides the provider's env var. Never read from a native spec;
    /// redacted in Debug and serialized output.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub credentials: Option<Credentials>,
}

/// Where run events go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Callback {
    /// Progress lines on stdout (`format: go`: the Go runner's printer).
    Stdout {
        #[serde(default, skip_serializing_if = "EventFormat::is_host")]
        format: EventFormat,
    },
    /// Every event on stdout, model deltas included (`format: go`: the Go
    /// runner's verbose printer).
    StdoutVerbose {
        #[serde(default, skip_serializing_if = "EventFormat::is_host")]
        format: EventFormat,
    },
    /// One JSON event per line to `path` (`-` is stdout).
    Jsonl {
        #[serde(default)]
        path: String,
    },
    /// POST each event to `url`, signed with the key in `secret_env`.
    Http {
        #[serde(default)]
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_env: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// The body of each POST: this host's event envelope (`host`, the
        /// default) or the Go runner's callback event (`go`).
        #[serde(default, skip_serializing_if = "EventFormat::is_host")]
        format: EventFormat,
        /// Only from the Go runner's request shape (its `callback.secret`);
        /// redacted in Debug and serialized output.
        #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
        #[schemars(skip)]
        secret: Option<Secret>,
    },
}

/// Which shape a callback's events take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventFormat {
    /// This host's event envelope (docs/EVENTS.md) or its readable lines.
    #[default]
    Host,
    /// The Go runner's callback events (`run.started`, `run.event`,
    /// `run.completed`, `run.failed`) or its console printer.
    Go,
}

impl EventFormat {
    pub fn is_host(&self) -> bool {
        *self == EventFormat::Host
    }
}

/// Per-run credentials of the Go runner's request shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

//! `mcp_servers`: MCP servers whose tools agents may call, referenced from an
//! agent's `tools` as `mcp:NAME` (every tool) or `mcp:NAME#tool`.

use super::types::PluginRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The prefix of a tool reference that names an MCP server.
pub const MCP_PREFIX: &str = "mcp:";

/// The default wall-clock deadline of one MCP tool call.
pub const DEFAULT_MCP_TIMEOUT_MS: u64 = 30_000;

/// One MCP server: a program the host starts and talks to over stdio
/// (`command`), or a Streamable HTTP endpoint (`url`). Exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    /// stdio: the program to start (looked up on `PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// stdio: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// stdio: names of environment variables passed from the host's
    /// environment. The server gets these and `PATH`, nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// stdio: its working directory, relative to the spec's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Streamable HTTP: the endpoint (`http://127.0.0.1:3001/mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Streamable HTTP: headers sent with every request, by value. Not for
    /// secrets: use `headers_env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Streamable HTTP: headers whose values come from the host's
    /// environment, header name → variable name (`{"Authorization":
    /// "TICKETS_AUTH"}`). The value never enters the spec, journal or events.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_env: BTreeMap<String, String>,
    /// Wall-clock deadline of one tool call, in milliseconds (default 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl McpServer {
    /// The deadline of one tool call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_MCP_TIMEOUT_MS))
    }
}

impl PluginRef {
    /// `mcp:NAME` or `mcp:NAME#tool`: the server's name, when this
    /// reference names an MCP server rather than a plugin.
    pub fn mcp_server(&self) -> Option<&str> {
        self.plugin.strip_prefix(MCP_PREFIX).map(str::trim)
    }
}

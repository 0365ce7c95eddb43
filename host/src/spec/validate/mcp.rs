//! Checks of `mcp_servers` and of the agents' `mcp:` tool references.

use super::Checker;
use crate::spec::destinations::url_problem;
use crate::spec::error::{key, suggestion};

/// An environment variable name the host can pass on.
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Checker<'_> {
    /// Each server is either a command (stdio) or a URL (Streamable HTTP),
    /// with only the fields of its kind; every `mcp:` reference names a
    /// declared server.
    pub(super) fn mcp_servers(&mut self) {
        for (name, server) in &self.spec.mcp_servers {
            let at = key("$.mcp_servers", name);
            if name.is_empty() || name.contains(['#', ':']) {
                self.error(&at, "a server name must be non-empty, without `#` or `:`");
            }
            match (&server.command, &server.url) {
                (Some(_), Some(_)) | (None, None) => self.error_hint(
                    &at,
                    "an MCP server needs exactly one of `command` (stdio) and `url` (Streamable HTTP)",
                    Some("e.g. {\"command\": \"node\", \"args\": [\"server.js\"]}".into()),
                ),
                (Some(command), None) => {
                    if command.trim().is_empty() {
                        self.error(key(&at, "command"), "empty command");
                    }
                    if !server.headers.is_empty() || !server.headers_env.is_empty() {
                        self.error(
                            key(&at, "headers"),
                            "headers apply to a `url` server only",
                        );
                    }
                }
                (None, Some(url)) => {
                    if let Some(problem) = url_problem(url) {
                        self.error(key(&at, "url"), problem);
                    }
                    if !server.args.is_empty() || !server.env.is_empty() || server.cwd.is_some()
                    {
                        self.error(
                            &at,
                            "`args`, `env` and `cwd` apply to a `command` server only",
                        );
                    }
                }
            }
            for (i, var) in server.env.iter().enumerate() {
                if !is_env_name(var) {
                    self.error(
                        format!("{at}.env[{i}]"),
                        format!("`{var}` is not an environment variable name"),
                    );
                }
            }
            let headers = server.headers.keys().map(|h| ("headers", h));
            let from_env = server.headers_env.keys().map(|h| ("headers_env", h));
            for (field, header) in headers.chain(from_env) {
                if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    self.error(
                        key(&key(&at, field), header),
                        format!("`{header}` is not a header name"),
                    );
                }
            }
            for (header, var) in &server.headers_env {
                if !is_env_name(var) {
                    self.error(
                        key(&key(&at, "headers_env"), header),
                        format!("`{var}` is not an environment variable name"),
                    );
                }
            }
            if server.timeout_ms == Some(0) {
                self.error(key(&at, "timeout_ms"), "must be at least 1");
            }
        }
        for (agent_name, agent) in &self.spec.agents {
            for (i, r) in agent.tools.iter().enumerate() {
                let Some(server) = r.mcp_server() else {
                    continue;
                };
                let at = self.paths.agent_item(agent_name, "tools", i);
                if r.target.is_some() {
                    self.error(key(&at, "target"), "`target` applies to guardrails only");
                }
                if r.entry.as_deref().is_some_and(|e| e.trim().is_empty()) {
                    self.error_hint(
                        &at,
                        format!("empty tool name after `mcp:{server}#`"),
                        Some(format!("write `mcp:{server}` or `mcp:{server}#tool`")),
                    );
                }
                if r.config.as_object().is_some_and(|c| !c.is_empty()) {
                    self.error(
                        key(&at, "config"),
                        "an MCP tool takes no `config`; the model gives its arguments",
                    );
                }
                if !self.spec.mcp_servers.contains_key(server) {
                    let names = self.spec.mcp_servers.keys().map(String::as_str);
                    let hint = suggestion(server, names, "MCP servers")
                        .or_else(|| Some("declare it under `mcp_servers`".into()));
                    self.error_hint(&at, format!("unknown MCP server `{server}`"), hint);
                }
            }
        }
    }
}

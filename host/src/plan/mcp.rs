//! An agent's `mcp:` tool references, resolved against the process's MCP
//! servers ([`McpHub`]).

use super::compile::{CompileError, CompileOptions};
use crate::mcp::McpHub;
use crate::spec::{self, Spec};
use std::sync::Arc;

/// The tools of one MCP server an agent may call: all of them, or one.
/// The server's list is read at every turn, so a `tools/list_changed`
/// reaches the model on its next turn.
#[derive(Debug, Clone, PartialEq)]
pub struct McpToolsRef {
    pub server: String,
    /// `mcp:NAME#tool`: only this tool.
    pub tool: Option<String>,
    /// Every call waits for a human's approval.
    pub approval: bool,
}

impl McpToolsRef {
    /// Whether this reference offers the server's tool `name`.
    pub fn offers(&self, server: &str, name: &str) -> bool {
        self.server == server && self.tool.as_deref().is_none_or(|t| t == name)
    }
}

/// The hub serving the spec's servers: the operator's (one per process),
/// or one started for this workflow.
pub(super) fn hub(
    spec: &Spec,
    options: &CompileOptions,
) -> Result<Option<Arc<McpHub>>, CompileError> {
    if spec.mcp_servers.is_empty() {
        return Ok(None);
    }
    if let Some(hub) = &options.mcp {
        for name in spec.mcp_servers.keys() {
            if !hub.has(name) {
                return Err(CompileError::Invalid {
                    path: spec::json_key("$.mcp_servers", name),
                    message: "this process did not start MCP server `{name}`"
                        .replace("{name}", name),
                });
            }
        }
        return Ok(Some(hub.clone()));
    }
    start_hub(spec, options).map(Some)
}

/// Starts the spec's MCP servers for this process, once each header secret
/// is checked: a `headers_env` variable is the operator's, so it goes only
/// to a server URL the operator paired it with (`--credential VAR=URL`,
/// `[[credentials.pair]]`), as provider keys do. HTTP servers connect under
/// the operator's egress policy.
pub fn start_hub(spec: &Spec, options: &CompileOptions) -> Result<Arc<McpHub>, CompileError> {
    let mut errors = Vec::new();
    for (name, server) in &spec.mcp_servers {
        let Some(url) = &server.url else { continue };
        let at = spec::json_key(&spec::json_key("$.mcp_servers", name), "headers_env");
        for (header, var) in &server.headers_env {
            if !options.credentials.allows(var, url) {
                errors.push(spec::SpecError::new(
                    spec::json_key(&at, header),
                    format!(
                        "`{var}` may not be sent to {}: the operator pairs them with \
                         `--credential {var}={url}` or a [[credentials.pair]] in the host config",
                        crate::egress::display_url(url)
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(CompileError::Spec(spec::SpecErrors::new(errors)));
    }
    McpHub::start(&spec.mcp_servers, spec.base_dir(), &options.egress).map_err(|e| {
        CompileError::Invalid {
            path: "$.mcp_servers".into(),
            message: e.to_string(),
        }
    })
}

/// The `mcp:` references among `refs` (an agent's `tools`, at `path`). A
/// named tool is checked against the server's list when it has one.
pub(super) fn refs(
    hub: Option<&McpHub>,
    refs: &[spec::PluginRef],
    path: &str,
) -> Result<Vec<McpToolsRef>, CompileError> {
    let mut out = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let Some(server) = r.mcp_server() else {
            continue;
        };
        let at = format!("{path}[{i}]");
        let Some(hub) = hub else {
            return Err(CompileError::Invalid {
                path: at,
                message: format!("unknown MCP server `{server}`"),
            });
        };
        let tools = hub.tools(server).map_err(|e| CompileError::Invalid {
            path: at.clone(),
            message: e.to_string(),
        })?;
        let tool = r.entry.as_ref().map(|t| t.trim().to_owned());
        if let Some(name) = &tool
            && !tools.is_empty()
            && !tools.iter().any(|t| &t.name == name)
        {
            let known: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
            return Err(CompileError::Invalid {
                path: at,
                message: format!(
                    "MCP server `{server}` has no tool `{name}` (it offers: {})",
                    known.join(", ")
                ),
            });
        }
        out.push(McpToolsRef {
            server: server.to_owned(),
            tool,
            approval: r.approval == spec::Approval::Always,
        });
    }
    Ok(out)
}

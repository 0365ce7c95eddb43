//! A Go agent's `tools` and `mcp` entries: hosted tools of the provider,
//! or (our extension) a WASM plugin tool, each problem reported at its path
//! in the Go request.

use super::convert::Problems;
use super::types::{GoMcp, GoTool};
use crate::spec::error::key;
use crate::spec::types::{Approval, HostedTool, McpApproval, PluginRef};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// The tool types a `tools` entry may have.
pub(super) const TOOL_TYPES: &[&str] = &[
    "web_search",
    "file_search",
    "code_interpreter",
    "image_generation",
    "hosted_mcp",
    "plugin",
];

/// What a `tools` or `mcp` entry becomes.
pub(super) enum Converted {
    Plugin(PluginRef),
    Hosted(HostedTool),
}

/// Names the converter needs to default an MCP server's label the way the
/// Go runner does (`<workflow>_<agent>`).
pub(super) struct Names<'a> {
    pub workflow: &'a str,
    pub agent: &'a str,
}

/// One `tools` entry at `path`.
pub(super) fn tool(
    t: &GoTool,
    path: &str,
    names: &Names<'_>,
    p: &mut Problems,
) -> Option<Converted> {
    let cp = key(path, "config");
    let mut config = Config {
        entries: t.config.clone(),
        path: cp,
        failed: false,
    };
    let converted = match t.kind.trim() {
        "" => {
            p.add(key(path, "type"), "tool missing type");
            return None;
        }
        "plugin" => {
            if t.name.trim().is_empty() {
                p.hint(
                    key(path, "name"),
                    "a plugin tool needs the plugin's `name`",
                    "write `{\"type\": \"plugin\", \"name\": \"calculator\"}`",
                );
                return None;
            }
            let settings = Value::Object(std::mem::take(&mut config.entries).into_iter().collect());
            let mut r = PluginRef::parse(&t.name).with_config(settings);
            r.approval = match t.require_approval.trim() {
                "" | "never" => Approval::Never,
                "always" => Approval::Always,
                other => {
                    p.add(
                        key(path, "require_approval"),
                        format!("`require_approval` is `never` or `always`, not `{other}`"),
                    );
                    Approval::Never
                }
            };
            return Some(Converted::Plugin(r));
        }
        "web_search" => HostedTool::WebSearch {
            user_location: config.take("user_location", p),
            search_context_size: config.take("search_context_size", p),
        },
        "file_search" => {
            let ids = config.take::<Vec<String>>("vector_store_ids", p);
            let max = config.take("max_num_results", p);
            if ids.is_none() && !config.failed {
                p.add(
                    key(&config.path, "vector_store_ids"),
                    "file search needs `vector_store_ids`",
                );
            }
            HostedTool::FileSearch {
                vector_store_ids: ids.unwrap_or_default(),
                max_num_results: max,
            }
        }
        "code_interpreter" => HostedTool::CodeInterpreter {
            container: config.take("container", p),
        },
        "image_generation" => HostedTool::ImageGeneration {
            options: config
                .take::<BTreeMap<String, Value>>("tool_config", p)
                .unwrap_or_default(),
        },
        "hosted_mcp" => {
            let url: Option<String> = config.take("server_url", p);
            let label: Option<String> = config.take("server_label", p);
            let approval: Option<String> = config.take("require_approval", p);
            let approval = approval_of(
                approval.as_deref(),
                &key(&config.path, "require_approval"),
                p,
            );
            let label = Some(t.name.clone())
                .filter(|n| !n.is_empty())
                .or(label.filter(|l| !l.is_empty()))
                .unwrap_or_else(|| default_label(names));
            if url.as_deref().is_none_or(|u| u.trim().is_empty()) {
                p.add(
                    key(&config.path, "server_url"),
                    "server_url is required for a hosted_mcp tool",
                );
            }
            HostedTool::Mcp {
                server_label: label,
                server_url: url.unwrap_or_default(),
                require_approval: approval,
                headers: config.take("headers", p).unwrap_or_default(),
                allowed_tools: config.take("allowed_tools", p),
            }
        }
        other => {
            p.hint(
                key(path, "type"),
                format!("unknown tool type `{other}`"),
                format!(
                    "tool types: {}",
                    TOOL_TYPES
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        }
    };
    config.rest(p);
    if !t.require_approval.is_empty() {
        p.hint(
            key(path, "require_approval"),
            "`require_approval` applies to `plugin` tools only",
            "a `hosted_mcp` tool takes it in `config`",
        );
    }
    if !t.name.is_empty() && !matches!(converted, HostedTool::Mcp { .. }) {
        p.add(
            key(path, "name"),
            format!("a `{}` tool takes no `name`", t.kind.trim()),
        );
    }
    hosted_problems(
        &converted,
        |field| match (&converted, field) {
            (HostedTool::Mcp { .. }, "server_label") if !t.name.is_empty() => key(path, "name"),
            (HostedTool::ImageGeneration { .. }, _) => key(&config.path, "tool_config"),
            _ => key(&config.path, field),
        },
        p,
    );
    Some(Converted::Hosted(converted))
}

/// One `mcp` entry at `path`: always a hosted MCP server.
pub(super) fn mcp(m: &GoMcp, path: &str, names: &Names<'_>, p: &mut Problems) -> Option<Converted> {
    if !["", "hosted", "hosted_mcp", "mcp"].contains(&m.kind.trim()) {
        p.hint(
            key(path, "type"),
            format!("MCP server type `{}` is not supported", m.kind),
            "only hosted MCP servers (the provider calls them): leave `type` out",
        );
    }
    if m.address.trim().is_empty() {
        p.add(key(path, "address"), "mcp address is required");
        return None;
    }
    let approval = approval_of(Some(&m.require_approval), &key(path, "require_approval"), p);
    let mut additional = Config {
        entries: m.additional.clone(),
        path: key(path, "additional"),
        failed: false,
    };
    let tool = HostedTool::Mcp {
        server_label: Some(m.server_label.clone())
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| default_label(names)),
        server_url: m.address.clone(),
        require_approval: approval,
        headers: additional.take("headers", p).unwrap_or_default(),
        allowed_tools: additional.take("allowed_tools", p),
    };
    additional.rest(p);
    hosted_problems(
        &tool,
        |field| match field {
            "server_url" => key(path, "address"),
            "headers" | "allowed_tools" => key(&additional.path, field),
            other => key(path, other),
        },
        p,
    );
    Some(Converted::Hosted(tool))
}

fn default_label(names: &Names<'_>) -> String {
    format!("{}_{}", names.workflow, names.agent)
}

fn approval_of(value: Option<&str>, path: &str, p: &mut Problems) -> McpApproval {
    match value.map(str::trim).unwrap_or("") {
        "" | "never" => McpApproval::Never,
        "always" => McpApproval::Always,
        other => {
            p.add(
                path,
                format!("`require_approval` is `never` or `always`, not `{other}`"),
            );
            McpApproval::Never
        }
    }
}

fn hosted_problems(tool: &HostedTool, at: impl Fn(&str) -> String, p: &mut Problems) {
    for problem in tool.problems() {
        p.add(at(problem.field), problem.message);
    }
}

/// A `config` (or `additional`) object read key by key; what is left over
/// is an error, so no setting is silently ignored.
struct Config {
    entries: BTreeMap<String, Value>,
    path: String,
    failed: bool,
}

impl Config {
    fn take<T: DeserializeOwned>(&mut self, name: &str, p: &mut Problems) -> Option<T> {
        let value = self.entries.remove(name)?;
        if value.is_null() {
            return None;
        }
        match serde_json::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed = true;
                p.add(key(&self.path, name), format!("invalid `{name}`: {e}"));
                None
            }
        }
    }

    fn rest(&self, p: &mut Problems) {
        for name in self.entries.keys() {
            p.add(
                key(&self.path, name),
                format!("setting `{name}` is not supported by this host"),
            );
        }
    }
}

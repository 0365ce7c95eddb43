//! Hosted tools: tools the provider runs itself on the Responses API (web
//! search, file search, code interpreter, image generation, a remote MCP
//! server). The host offers them in `tools` exactly as OpenAI documents
//! them ([`HostedTool::wire`]); their output items come back whole as
//! [`crate::llm::Item::HostedToolCall`] and are described for events and
//! step listings by [`HostedCallSummary`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::secret::Secret;
use crate::util::clip_chars;

/// A tool the model provider runs, selected by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostedTool {
    /// Web search. `user_location` is the API's approximate location object
    /// (`{"type": "approximate", "city": …, "country": …}`).
    WebSearch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_location: Option<Value>,
        /// `low`, `medium` or `high`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        search_context_size: Option<String>,
    },
    /// Search over the provider's vector stores.
    FileSearch {
        vector_store_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_num_results: Option<u32>,
    },
    /// A sandboxed code interpreter. `container` is a container id or the
    /// API's container object; absent means `{"type": "auto"}`.
    CodeInterpreter {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<Value>,
    },
    /// Image generation, with the API's tool settings in `options`.
    ImageGeneration {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        options: BTreeMap<String, Value>,
    },
    /// A remote MCP server the provider calls.
    Mcp {
        server_label: String,
        server_url: String,
        #[serde(default, skip_serializing_if = "McpApproval::is_never")]
        require_approval: McpApproval,
        /// Sent to the server; values are secrets (redacted when printed,
        /// serialized or stored).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, Secret>,
        /// Only these of the server's tools; absent means all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed_tools: Option<Vec<String>>,
    },
}

/// Whether the provider asks before calling an MCP server's tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum McpApproval {
    #[default]
    Never,
    Always,
}

impl McpApproval {
    pub fn is_never(&self) -> bool {
        *self == McpApproval::Never
    }
}

impl HostedTool {
    /// The tool's entry in a Responses request's `tools`.
    pub(crate) fn wire(&self) -> Value {
        let mut tool = Map::new();
        let mut put = |key: &str, value: Value| {
            tool.insert(key.to_owned(), value);
        };
        match self {
            HostedTool::WebSearch {
                user_location,
                search_context_size,
            } => {
                put("type", json!("web_search"));
                if let Some(location) = user_location {
                    put("user_location", location.clone());
                }
                if let Some(size) = search_context_size {
                    put("search_context_size", json!(size));
                }
            }
            HostedTool::FileSearch {
                vector_store_ids,
                max_num_results,
            } => {
                put("type", json!("file_search"));
                put("vector_store_ids", json!(vector_store_ids));
                if let Some(n) = max_num_results {
                    put("max_num_results", json!(n));
                }
            }
            HostedTool::CodeInterpreter { container } => {
                put("type", json!("code_interpreter"));
                put(
                    "container",
                    container.clone().unwrap_or_else(|| json!({"type": "auto"})),
                );
            }
            HostedTool::ImageGeneration { options } => {
                put("type", json!("image_generation"));
                for (key, value) in options {
                    if key != "type" {
                        put(key, value.clone());
                    }
                }
            }
            HostedTool::Mcp {
                server_label,
                server_url,
                require_approval,
                headers,
                allowed_tools,
            } => {
                put("type", json!("mcp"));
                put("server_label", json!(server_label));
                put("server_url", json!(server_url));
                put(
                    "require_approval",
                    json!(match require_approval {
                        McpApproval::Never => "never",
                        McpApproval::Always => "always",
                    }),
                );
                if !headers.is_empty() {
                    let exposed: Map<String, Value> = headers
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v.expose())))
                        .collect();
                    put("headers", Value::Object(exposed));
                }
                if let Some(tools) = allowed_tools {
                    put("allowed_tools", json!(tools));
                }
            }
        }
        Value::Object(tool)
    }

    /// Its `type` in the spec and on the wire (`web_search`, `mcp`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            HostedTool::WebSearch { .. } => "web_search",
            HostedTool::FileSearch { .. } => "file_search",
            HostedTool::CodeInterpreter { .. } => "code_interpreter",
            HostedTool::ImageGeneration { .. } => "image_generation",
            HostedTool::Mcp { .. } => "mcp",
        }
    }
}

/// Output item types that are hosted tool calls.
pub(crate) const HOSTED_ITEMS: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "code_interpreter_call",
    "image_generation_call",
    "mcp_call",
    "mcp_list_tools",
];

/// Most characters of a summary's input or output.
const SUMMARY_CHARS: usize = 200;

/// A hosted tool call as people read it: which tool, with what, and what
/// came of it (clipped; an image's bytes are never copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedCallSummary {
    /// `web_search`, `file_search`, `code_interpreter`,
    /// `image_generation`, `mcp:<server>.<tool>` or `mcp:<server>` (a tool
    /// listing).
    pub tool: String,
    /// What it was asked (a query, code, arguments).
    pub input: String,
    /// What came of it (status, results, output, an error).
    pub output: String,
    /// The call failed.
    pub failed: bool,
}

impl HostedCallSummary {
    /// The summary of output item `item` of type `kind`.
    pub fn of(kind: &str, item: &Value) -> Self {
        let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default();
        let status = text("status");
        let error = item.get("error").filter(|e| !e.is_null());
        let failed = status == "failed" || status == "incomplete" || error.is_some();
        let (tool, input, output) = match kind {
            "web_search_call" => {
                let action = item.get("action").unwrap_or(&Value::Null);
                let query = action
                    .get("query")
                    .and_then(Value::as_str)
                    .or_else(|| action.get("url").and_then(Value::as_str))
                    .unwrap_or_default();
                ("web_search".to_owned(), query.to_owned(), status.to_owned())
            }
            "file_search_call" => {
                let queries = item.get("queries").cloned().unwrap_or(Value::Null);
                let results = item
                    .get("results")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                (
                    "file_search".to_owned(),
                    join_strings(&queries),
                    format!("{status}, {results} result(s)"),
                )
            }
            "code_interpreter_call" => {
                let outputs = item.get("outputs").cloned().unwrap_or(Value::Null);
                let logs: Vec<&str> = outputs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.get("logs").and_then(Value::as_str))
                    .collect();
                (
                    "code_interpreter".to_owned(),
                    text("code").to_owned(),
                    if logs.is_empty() {
                        status.to_owned()
                    } else {
                        logs.join("\n")
                    },
                )
            }
            "image_generation_call" => {
                let size = text("result").len();
                (
                    "image_generation".to_owned(),
                    String::new(),
                    format!("{status}, {size} base64 characters"),
                )
            }
            "mcp_call" => (
                format!("mcp:{}.{}", text("server_label"), text("name")),
                text("arguments").to_owned(),
                match error {
                    Some(Value::String(e)) => e.clone(),
                    Some(e) => e.to_string(),
                    None => text("output").to_owned(),
                },
            ),
            "mcp_list_tools" => {
                let tools = item
                    .get("tools")
                    .and_then(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .filter_map(|t| t.get("name").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                (
                    format!("mcp:{}", text("server_label")),
                    "list tools".to_owned(),
                    tools,
                )
            }
            other => (other.to_owned(), String::new(), status.to_owned()),
        };
        HostedCallSummary {
            tool,
            input: clip_chars(&input, SUMMARY_CHARS),
            output: clip_chars(&output, SUMMARY_CHARS),
            failed,
        }
    }
}

fn join_strings(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_go_out_as_openai_documents_them() {
        let web: HostedTool = serde_json::from_value(json!({
            "type": "web_search", "user_location": {"type": "approximate", "city": "Paris"},
            "search_context_size": "low"
        }))
        .unwrap();
        assert_eq!(
            web.wire(),
            json!({"type": "web_search", "user_location": {"type": "approximate", "city": "Paris"}, "search_context_size": "low"})
        );
        let code: HostedTool = serde_json::from_value(json!({"type": "code_interpreter"})).unwrap();
        assert_eq!(
            code.wire(),
            json!({"type": "code_interpreter", "container": {"type": "auto"}})
        );
        let mcp: HostedTool = serde_json::from_value(json!({
            "type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp",
            "headers": {"Authorization": "Bearer s3cret"}
        }))
        .unwrap();
        assert_eq!(
            mcp.wire(),
            json!({"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp",
                   "require_approval": "never", "headers": {"Authorization": "Bearer s3cret"}})
        );
        let stored = serde_json::to_string(&mcp).unwrap();
        assert!(!stored.contains("s3cret"), "{stored}");
    }

    #[test]
    fn summaries_name_the_tool_and_clip() {
        let s = HostedCallSummary::of(
            "web_search_call",
            &json!({"id": "ws_1", "status": "completed", "action": {"type": "search", "query": "rust"}}),
        );
        assert_eq!(
            (s.tool.as_str(), s.input.as_str(), s.failed),
            ("web_search", "rust", false)
        );
        let s = HostedCallSummary::of(
            "mcp_call",
            &json!({"server_label": "wiki", "name": "ask", "arguments": "{}", "error": "denied"}),
        );
        assert_eq!(
            (s.tool.as_str(), s.output.as_str(), s.failed),
            ("mcp:wiki.ask", "denied", true)
        );
        let image = "A".repeat(100_000);
        let s = HostedCallSummary::of(
            "image_generation_call",
            &json!({"status": "completed", "result": image}),
        );
        assert!(s.output.contains("100000 base64"), "{}", s.output);
    }
}

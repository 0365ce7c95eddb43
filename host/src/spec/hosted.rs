//! Hosted tools: tools the model provider runs itself, declared per agent
//! (`agents.<name>.hosted_tools`, or a Go request's `tools` entries of the
//! hosted types and its `mcp` entries).
//!
//! Their shape is the model layer's ([`crate::llm::HostedTool`], one type
//! from the spec to the wire); this module owns their checks. [`HostedTool::problems`]
//! returns each problem with the field it concerns, so the native spec and
//! the Go request can both report it at a path of the document the user
//! wrote. Sending them to a model is the model layer's business; the spec
//! only promises that what reaches it is well formed.
//!
//! `image_generation` keeps its settings in one `options` object (not
//! flattened into the tool, so that a typo in a neighbouring field is still
//! an unknown field); they are the Responses API's `image_generation` tool
//! fields (`quality`, `size`, …), passed through as given.

pub use crate::llm::{HostedTool, McpApproval};

/// One problem of a hosted tool: the field it is about (`""` for the tool
/// itself) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

impl HostedTool {
    /// Everything wrong with this tool, by field.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut add = |field, message: String| out.push(Problem { field, message });
        match self {
            HostedTool::WebSearch {
                user_location,
                search_context_size,
            } => {
                if let Some(size) = search_context_size
                    && !["low", "medium", "high"].contains(&size.as_str())
                {
                    add(
                        "search_context_size",
                        format!("`search_context_size` is `low`, `medium` or `high`, not `{size}`"),
                    );
                }
                if user_location.as_ref().is_some_and(|l| !l.is_object()) {
                    add("user_location", "`user_location` must be an object".into());
                }
            }
            HostedTool::FileSearch {
                vector_store_ids,
                max_num_results,
            } => {
                if vector_store_ids.is_empty() {
                    add(
                        "vector_store_ids",
                        "file search needs at least one vector store id".into(),
                    );
                } else if vector_store_ids.iter().any(|id| id.trim().is_empty()) {
                    add(
                        "vector_store_ids",
                        "a vector store id must not be empty".into(),
                    );
                }
                if *max_num_results == Some(0) {
                    add(
                        "max_num_results",
                        "`max_num_results` must be at least 1".into(),
                    );
                }
            }
            HostedTool::CodeInterpreter { container } => {
                if container
                    .as_ref()
                    .is_some_and(|c| !(c.is_string() || c.is_object()))
                {
                    add(
                        "container",
                        "`container` is a container id or an object".into(),
                    );
                }
            }
            HostedTool::ImageGeneration { .. } => {}
            HostedTool::Mcp {
                server_label,
                server_url,
                allowed_tools,
                ..
            } => {
                if server_label.trim().is_empty() {
                    add("server_label", "an MCP server needs a label".into());
                }
                if server_url.trim().is_empty() {
                    add("server_url", "an MCP server needs a URL".into());
                } else if !is_http_url(server_url) {
                    add(
                        "server_url",
                        format!("`{server_url}` is not an http(s) URL"),
                    );
                }
                if allowed_tools
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|n| n.trim().is_empty()))
                {
                    add("allowed_tools", "a tool name must not be empty".into());
                }
            }
        }
        out
    }
}

/// `http://` or `https://`, a host, no whitespace.
pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) && !url.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn tool(v: Value) -> HostedTool {
        serde_json::from_value(v).expect("hosted tool")
    }

    fn fields(t: &HostedTool) -> Vec<&'static str> {
        t.problems().iter().map(|p| p.field).collect()
    }

    #[test]
    fn each_type_parses_with_its_defaults() {
        let mcp = tool(json!({"type": "mcp", "server_label": "docs",
            "server_url": "https://mcp.example/sse", "headers": {"Authorization": "Bearer s3cret"}}));
        match &mcp {
            HostedTool::Mcp {
                require_approval,
                headers,
                allowed_tools,
                ..
            } => {
                assert_eq!(*require_approval, McpApproval::Never);
                assert_eq!(headers["Authorization"].expose(), "Bearer s3cret");
                assert_eq!(*allowed_tools, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{mcp:?}").contains("s3cret"));
        assert!(
            !serde_json::to_string(&mcp)
                .expect("json")
                .contains("s3cret")
        );
        assert_eq!(
            tool(json!({"type": "code_interpreter"})),
            HostedTool::CodeInterpreter { container: None }
        );
        assert!(
            serde_json::from_value::<HostedTool>(json!({"type": "file_search"})).is_err(),
            "vector_store_ids is required"
        );
        assert!(
            serde_json::from_value::<HostedTool>(json!({"type": "web_search", "x": 1})).is_err()
        );
    }

    #[test]
    fn problems_name_their_field() {
        let ok = [
            json!({"type": "web_search", "search_context_size": "high", "user_location": {"type": "approximate"}}),
            json!({"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 3}),
            json!({"type": "code_interpreter", "container": "cntr_1"}),
            json!({"type": "image_generation", "options": {"quality": "low"}}),
            json!({"type": "mcp", "server_label": "a", "server_url": "http://127.0.0.1:1/mcp", "allowed_tools": ["x"]}),
        ];
        for t in ok {
            assert_eq!(fields(&tool(t.clone())), Vec::<&str>::new(), "{t}");
        }
        let bad = [
            (
                json!({"type": "web_search", "search_context_size": "huge", "user_location": "Rome"}),
                vec!["search_context_size", "user_location"],
            ),
            (
                json!({"type": "file_search", "vector_store_ids": [], "max_num_results": 0}),
                vec!["vector_store_ids", "max_num_results"],
            ),
            (
                json!({"type": "file_search", "vector_store_ids": [" "]}),
                vec!["vector_store_ids"],
            ),
            (
                json!({"type": "code_interpreter", "container": 3}),
                vec!["container"],
            ),
            (
                json!({"type": "mcp", "server_label": "", "server_url": "ftp://x", "allowed_tools": [""]}),
                vec!["server_label", "server_url", "allowed_tools"],
            ),
            (
                json!({"type": "mcp", "server_label": "a", "server_url": ""}),
                vec!["server_url"],
            ),
            (
                json!({"type": "mcp", "server_label": "a", "server_url": "https://"}),
                vec!["server_url"],
            ),
        ];
        for (t, want) in bad {
            assert_eq!(fields(&tool(t.clone())), want, "{t}");
        }
    }
}

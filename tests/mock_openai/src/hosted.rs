//! Hosted tools of the Responses API (web search, file search, code
//! interpreter, image generation, remote MCP): the reply kind, the default
//! `[[use_hosted]]` behaviour, and their output items and stream events,
//! shaped like async-openai 0.43's `OutputItem` variants.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::render::{SseWriter, js};
use crate::request::ReqView;
use crate::schema::short_hash;

/// The marker that makes the default behaviour use the offered hosted tools.
pub(crate) const USE_HOSTED_MARKER: &str = "[[use_hosted]]";

/// A 1×1 PNG, base64: the `result` of mock image generation calls.
pub const TINY_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// Request tool types that are hosted tools (`web_search_preview` counts as
/// `web_search`).
pub(crate) const HOSTED_TOOL_TYPES: [&str; 7] = [
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "mcp",
];

/// Kind of a hosted tool output item in a [`HostedReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostedKind {
    /// `web_search_call` (fields: `query`).
    WebSearch,
    /// `file_search_call` (fields: `query`).
    FileSearch,
    /// `code_interpreter_call` (fields: `code`, `output` = logs).
    CodeInterpreter,
    /// `image_generation_call` (fields: `query` = revised prompt, `result` = base64).
    ImageGeneration,
    /// `mcp_call` (fields: `server_label`, `name`, `arguments`, `output`).
    Mcp,
    /// `mcp_list_tools` (fields: `server_label`, `name` = the one tool listed).
    McpListTools,
    /// `mcp_approval_request` (fields: `server_label`, `name`, `arguments`).
    McpApprovalRequest,
}

/// One hosted tool output item of a [`HostedReply`]; unset fields get
/// deterministic defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostedCallSpec {
    /// Which item.
    #[serde(rename = "type")]
    pub kind: HostedKind,
    /// Item id (default: generated, e.g. `ws_mock<N>_<i>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Search query (web / file search) or revised prompt (image generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Code run by the code interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Code interpreter logs, or MCP call output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// MCP server label (default `mock_mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_label: Option<String>,
    /// MCP tool name (default `mock_tool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MCP arguments (a JSON string is sent verbatim, other values serialized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// Image generation result, base64 (default: a 1×1 PNG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The `approval_request_id` of an MCP call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
}

impl HostedCallSpec {
    /// An item of `kind` with default fields.
    pub fn new(kind: HostedKind) -> Self {
        Self {
            kind,
            id: None,
            query: None,
            code: None,
            output: None,
            server_label: None,
            name: None,
            arguments: None,
            result: None,
            approval_request_id: None,
        }
    }
    /// Sets `query`.
    #[must_use]
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }
    /// Sets `code`.
    #[must_use]
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
    /// Sets `output`.
    #[must_use]
    pub fn output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }
    /// Sets the MCP `server_label` and tool `name`.
    #[must_use]
    pub fn mcp_tool(mut self, server_label: impl Into<String>, name: impl Into<String>) -> Self {
        self.server_label = Some(server_label.into());
        self.name = Some(name.into());
        self
    }
    /// Sets `arguments`.
    #[must_use]
    pub fn arguments(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments);
        self
    }
}

/// Reply `{"hosted": [...], "text": "..."}`: hosted tool output items, then
/// an assistant message with `text` (none when `text` is absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostedReply {
    /// The hosted tool output items, in order.
    pub hosted: Vec<HostedCallSpec>,
    /// The final assistant text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A rendered hosted output item.
#[derive(Debug, Clone)]
pub(crate) enum HostedItem {
    WebSearch {
        id: String,
        query: String,
    },
    FileSearch {
        id: String,
        query: String,
    },
    Code {
        id: String,
        code: String,
        logs: String,
    },
    Image {
        id: String,
        result: String,
        prompt: Option<String>,
    },
    McpCall {
        id: String,
        server_label: String,
        name: String,
        arguments: String,
        output: String,
        approval_request_id: Option<String>,
    },
    McpListTools {
        id: String,
        server_label: String,
        name: String,
    },
    Approval {
        id: String,
        server_label: String,
        name: String,
        arguments: String,
    },
}

fn arguments_text(arguments: Option<&Value>) -> String {
    match arguments {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "{}".to_owned(),
    }
}

/// Items of a scripted [`HostedReply`] for answer `n`.
pub(crate) fn items_from_specs(
    specs: &[HostedCallSpec],
    last_user: &str,
    n: u64,
) -> Vec<HostedItem> {
    let hash = short_hash(last_user);
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let id = |prefix: &str| {
                s.id.clone()
                    .unwrap_or_else(|| format!("{prefix}_mock{n}_{i}"))
            };
            let label = || s.server_label.clone().unwrap_or_else(|| "mock_mcp".into());
            let name = || s.name.clone().unwrap_or_else(|| "mock_tool".into());
            match s.kind {
                HostedKind::WebSearch => HostedItem::WebSearch {
                    id: id("ws"),
                    query: s.query.clone().unwrap_or_else(|| last_user.to_owned()),
                },
                HostedKind::FileSearch => HostedItem::FileSearch {
                    id: id("fs"),
                    query: s.query.clone().unwrap_or_else(|| last_user.to_owned()),
                },
                HostedKind::CodeInterpreter => HostedItem::Code {
                    id: id("ci"),
                    code: s.code.clone().unwrap_or_else(|| format!("print('{hash}')")),
                    logs: s.output.clone().unwrap_or_else(|| format!("{hash}\n")),
                },
                HostedKind::ImageGeneration => HostedItem::Image {
                    id: id("ig"),
                    result: s.result.clone().unwrap_or_else(|| TINY_PNG_BASE64.into()),
                    prompt: s.query.clone(),
                },
                HostedKind::Mcp => HostedItem::McpCall {
                    id: id("mcp"),
                    server_label: label(),
                    name: name(),
                    arguments: arguments_text(s.arguments.as_ref()),
                    output: s.output.clone().unwrap_or_else(|| format!("mcp {hash}")),
                    approval_request_id: s.approval_request_id.clone(),
                },
                HostedKind::McpListTools => HostedItem::McpListTools {
                    id: id("mcpl"),
                    server_label: label(),
                    name: name(),
                },
                HostedKind::McpApprovalRequest => HostedItem::Approval {
                    id: id("mcpr"),
                    server_label: label(),
                    name: name(),
                    arguments: arguments_text(s.arguments.as_ref()),
                },
            }
        })
        .collect()
}

/// The default `[[use_hosted]]` answer: `None` when the default behaviour
/// does not apply; else the items and whether the text reply follows.
///
/// First turn (no `mcp_approval_response` in the input): one item per hosted
/// tool offered; an `mcp` tool whose `require_approval` is not `"never"`
/// (absent means approval required, as OpenAI) gives an
/// `mcp_approval_request` and no text. Continuation (an approval response is
/// present): approved → an `mcp_call` per approval-requiring MCP tool, then
/// text; denied → text only.
pub(crate) fn default_items(view: &ReqView<'_>, n: u64) -> Option<(Vec<HostedItem>, bool)> {
    if !view.hosted_marker || view.hosted_tools.is_empty() {
        return None;
    }
    let hash = short_hash(&view.last_user);
    let mut items = Vec::new();
    let mut text = true;
    let continuation = view.approvals.last().copied();
    for (i, tool) in view.hosted_tools.iter().enumerate() {
        let mcp_call = |approval: Option<String>| HostedItem::McpCall {
            id: format!("mcp_mock{n}_{i}"),
            server_label: tool.server_label.to_owned(),
            name: tool.mcp_name.to_owned(),
            arguments: "{}".into(),
            output: format!("mcp {hash}"),
            approval_request_id: approval,
        };
        match (continuation, tool.kind) {
            (Some(true), "mcp") if tool.needs_approval => {
                items.push(mcp_call(view.last_approval_id.map(str::to_owned)));
            }
            (Some(_), _) => {}
            (None, "mcp") if tool.needs_approval => {
                text = false;
                items.push(HostedItem::Approval {
                    id: format!("mcpr_mock{n}_{i}"),
                    server_label: tool.server_label.to_owned(),
                    name: tool.mcp_name.to_owned(),
                    arguments: "{}".into(),
                });
            }
            (None, "mcp") => items.push(mcp_call(None)),
            (None, kind) => {
                let kind = match kind {
                    "file_search" => HostedKind::FileSearch,
                    "code_interpreter" => HostedKind::CodeInterpreter,
                    "image_generation" => HostedKind::ImageGeneration,
                    _ => HostedKind::WebSearch,
                };
                let mut spec = HostedCallSpec::new(kind);
                spec.id = Some(format!(
                    "{}_mock{n}_{i}",
                    match kind {
                        HostedKind::FileSearch => "fs",
                        HostedKind::CodeInterpreter => "ci",
                        HostedKind::ImageGeneration => "ig",
                        _ => "ws",
                    }
                ));
                items.extend(items_from_specs(&[spec], &view.last_user, n));
            }
        }
    }
    Some((items, text))
}

impl HostedItem {
    pub(crate) fn chars(&self) -> usize {
        match self {
            HostedItem::WebSearch { query, .. } | HostedItem::FileSearch { query, .. } => {
                query.len()
            }
            HostedItem::Code { code, logs, .. } => code.len() + logs.len(),
            HostedItem::Image { result, .. } => result.len() / 100,
            HostedItem::McpCall {
                arguments, output, ..
            } => arguments.len() + output.len(),
            HostedItem::McpListTools { name, .. } => name.len(),
            HostedItem::Approval {
                name, arguments, ..
            } => name.len() + arguments.len(),
        }
    }

    fn id(&self) -> &str {
        match self {
            HostedItem::WebSearch { id, .. }
            | HostedItem::FileSearch { id, .. }
            | HostedItem::Code { id, .. }
            | HostedItem::Image { id, .. }
            | HostedItem::McpCall { id, .. }
            | HostedItem::McpListTools { id, .. }
            | HostedItem::Approval { id, .. } => id,
        }
    }

    /// The item as JSON: completed, or as first announced (`done == false`).
    pub(crate) fn json(&self, done: bool) -> String {
        let status = if done { "completed" } else { "in_progress" };
        let id = js(self.id());
        match self {
            HostedItem::WebSearch { query, .. } => {
                let action = if done {
                    format!(
                        ",\"action\":{{\"type\":\"search\",\"query\":{},\"sources\":null}}",
                        js(query)
                    )
                } else {
                    String::new()
                };
                format!(
                    "{{\"type\":\"web_search_call\",\"id\":{id},\"status\":\"{status}\"{action}}}"
                )
            }
            HostedItem::FileSearch { query, .. } => {
                let queries = if done {
                    format!("[{}]", js(query))
                } else {
                    "[]".into()
                };
                format!(
                    "{{\"type\":\"file_search_call\",\"id\":{id},\"status\":\"{status}\",\"queries\":{queries},\"results\":null}}"
                )
            }
            HostedItem::Code { code, logs, .. } => {
                let (code, outputs) = if done {
                    (
                        js(code),
                        format!("[{{\"type\":\"logs\",\"logs\":{}}}]", js(logs)),
                    )
                } else {
                    ("\"\"".into(), "null".into())
                };
                format!(
                    "{{\"type\":\"code_interpreter_call\",\"id\":{id},\"status\":\"{status}\",\"code\":{code},\"container_id\":\"cntr_mock\",\"outputs\":{outputs}}}"
                )
            }
            HostedItem::Image { result, prompt, .. } => {
                let result = if done { js(result) } else { "null".into() };
                let prompt = match prompt {
                    Some(p) if done => format!(",\"revised_prompt\":{}", js(p)),
                    _ => String::new(),
                };
                format!(
                    "{{\"type\":\"image_generation_call\",\"id\":{id},\"status\":\"{status}\",\"result\":{result}{prompt}}}"
                )
            }
            HostedItem::McpCall {
                server_label,
                name,
                arguments,
                output,
                approval_request_id,
                ..
            } => {
                let (arguments, output) = if done {
                    (js(arguments), js(output))
                } else {
                    ("\"\"".into(), "null".into())
                };
                let approval = approval_request_id.as_deref().map_or("null".into(), js);
                format!(
                    "{{\"type\":\"mcp_call\",\"id\":{id},\"status\":\"{status}\",\"server_label\":{},\"name\":{},\"arguments\":{arguments},\"output\":{output},\"error\":null,\"approval_request_id\":{approval}}}",
                    js(server_label),
                    js(name)
                )
            }
            HostedItem::McpListTools {
                server_label, name, ..
            } => {
                let tools = if done {
                    format!(
                        "[{{\"name\":{},\"description\":\"Mock MCP tool.\",\"input_schema\":{{\"type\":\"object\",\"properties\":{{}}}},\"annotations\":null}}]",
                        js(name)
                    )
                } else {
                    "[]".into()
                };
                format!(
                    "{{\"type\":\"mcp_list_tools\",\"id\":{id},\"server_label\":{},\"tools\":{tools}}}",
                    js(server_label)
                )
            }
            HostedItem::Approval {
                server_label,
                name,
                arguments,
                ..
            } => format!(
                "{{\"type\":\"mcp_approval_request\",\"id\":{id},\"server_label\":{},\"name\":{},\"arguments\":{}}}",
                js(server_label),
                js(name),
                js(arguments)
            ),
        }
    }

    /// The stream events of this item at `index`, as OpenAI sends them.
    pub(crate) fn events(&self, w: &mut SseWriter, index: usize, chunks: usize) {
        let at = format!("\"output_index\":{index},\"item_id\":{}", js(self.id()));
        w.typed(
            "response.output_item.added",
            &format!("\"output_index\":{index},\"item\":{}", self.json(false)),
        );
        let progress = |w: &mut SseWriter, prefix: &str, steps: &[&str]| {
            for step in steps {
                w.typed(&format!("{prefix}.{step}"), &at);
            }
        };
        match self {
            HostedItem::WebSearch { .. } => progress(
                w,
                "response.web_search_call",
                &["in_progress", "searching", "completed"],
            ),
            HostedItem::FileSearch { .. } => progress(
                w,
                "response.file_search_call",
                &["in_progress", "searching", "completed"],
            ),
            HostedItem::Code { code, .. } => {
                progress(w, "response.code_interpreter_call", &["in_progress"]);
                for delta in crate::render::split(code, chunks) {
                    w.typed(
                        "response.code_interpreter_call_code.delta",
                        &format!("{at},\"delta\":{}", js(delta)),
                    );
                }
                w.typed(
                    "response.code_interpreter_call_code.done",
                    &format!("{at},\"code\":{}", js(code)),
                );
                progress(
                    w,
                    "response.code_interpreter_call",
                    &["interpreting", "completed"],
                );
            }
            HostedItem::Image { .. } => progress(
                w,
                "response.image_generation_call",
                &["in_progress", "generating", "completed"],
            ),
            HostedItem::McpCall { arguments, .. } => {
                progress(w, "response.mcp_call", &["in_progress"]);
                for delta in crate::render::split(arguments, chunks) {
                    w.typed(
                        "response.mcp_call_arguments.delta",
                        &format!("{at},\"delta\":{}", js(delta)),
                    );
                }
                w.typed(
                    "response.mcp_call_arguments.done",
                    &format!("{at},\"arguments\":{}", js(arguments)),
                );
                progress(w, "response.mcp_call", &["completed"]);
            }
            HostedItem::McpListTools { .. } => {
                progress(w, "response.mcp_list_tools", &["in_progress", "completed"])
            }
            HostedItem::Approval { .. } => {}
        }
        w.typed(
            "response.output_item.done",
            &format!("\"output_index\":{index},\"item\":{}", self.json(true)),
        );
    }
}

//! What the mock needs to know about a request, read from its JSON body
//! without assuming anything a real client might leave out.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::{ApprovalMatch, Endpoint, Match};
use crate::hosted::{HOSTED_TOOL_TYPES, USE_HOSTED_MARKER};

/// The marker that makes the default behaviour call the first tool.
pub(crate) const USE_TOOL_MARKER: &str = "[[use_tool]]";

/// A hosted tool offered by a Responses request.
#[derive(Debug)]
pub(crate) struct HostedTool<'a> {
    /// `web_search` (also for `web_search_preview*`), `file_search`,
    /// `code_interpreter`, `image_generation` or `mcp`.
    pub kind: &'a str,
    /// The type as sent.
    pub raw_type: &'a str,
    /// MCP: `server_label` (default `mcp`).
    pub server_label: &'a str,
    /// MCP: the first of `allowed_tools` (default `mock_tool`).
    pub mcp_name: &'a str,
    /// MCP: `require_approval` is not `"never"` (absent: required, as OpenAI).
    pub needs_approval: bool,
}

/// A function tool offered by the request.
#[derive(Debug)]
pub(crate) struct ToolDef<'a> {
    pub name: &'a str,
    pub parameters: Option<&'a Value>,
}

/// Requested structured-output format.
#[derive(Debug)]
pub(crate) enum Format<'a> {
    Text,
    JsonObject,
    JsonSchema(&'a Value),
}

/// A request, as seen by rules and the default behaviour.
#[derive(Debug)]
pub(crate) struct ReqView<'a> {
    pub endpoint: Endpoint,
    pub model: &'a str,
    pub stream: bool,
    pub include_usage: bool,
    /// Instructions plus system / developer messages, joined by newlines.
    pub instructions: String,
    /// Text of the last user message ("" when none).
    pub last_user: String,
    /// Whether `[[use_tool]]` occurs in the instructions or a user message.
    pub marker: bool,
    /// Characters of text in the request (for usage numbers).
    pub input_chars: usize,
    pub tools: Vec<ToolDef<'a>>,
    /// Names of the calls that tool results answer (None when unknown).
    pub tool_results: Vec<Option<String>>,
    /// `approve` of each `mcp_approval_response` item, in order.
    pub approvals: Vec<bool>,
    /// `approval_request_id` of the last `mcp_approval_response` item.
    pub last_approval_id: Option<&'a str>,
    /// Hosted tools offered (Responses API).
    pub hosted_tools: Vec<HostedTool<'a>>,
    /// Whether `[[use_hosted]]` occurs in the instructions or a user message.
    pub hosted_marker: bool,
    pub format: Format<'a>,
}

/// A request the real API would reject with 400.
#[derive(Debug)]
pub(crate) struct BadRequest {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

fn bad(message: impl Into<String>, param: &str) -> BadRequest {
    BadRequest {
        message: message.into(),
        param: Some(param.to_owned()),
        code: None,
    }
}

/// Text of a message `content`: a string or a list of parts with `text`.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// The function name behind each tool output: given on the output itself,
/// else the call with that id in this request, else one the server issued.
fn tool_result_names(
    outputs: Vec<(Option<&str>, Option<&str>)>,
    call_names: &HashMap<&str, &str>,
    known_calls: &dyn Fn(&str) -> Option<String>,
) -> Vec<Option<String>> {
    outputs
        .into_iter()
        .map(|(call_id, name)| {
            name.map(str::to_owned).or_else(|| {
                let id = call_id?;
                call_names
                    .get(id)
                    .map(|n| (*n).to_owned())
                    .or_else(|| known_calls(id))
            })
        })
        .collect()
}

/// A Responses request tool that is a hosted tool.
fn hosted_tool(tool: &Value) -> Option<HostedTool<'_>> {
    let raw_type = str_field(tool, "type")?;
    if !HOSTED_TOOL_TYPES.contains(&raw_type) {
        return None;
    }
    let kind = if raw_type.starts_with("web_search") {
        "web_search"
    } else {
        raw_type
    };
    let mcp_name = match tool.get("allowed_tools") {
        Some(Value::Array(names)) => names.first().and_then(Value::as_str),
        Some(Value::Object(filter)) => filter
            .get("tool_names")
            .and_then(Value::as_array)
            .and_then(|names| names.first())
            .and_then(Value::as_str),
        _ => None,
    };
    Some(HostedTool {
        kind,
        raw_type,
        server_label: str_field(tool, "server_label").unwrap_or("mcp"),
        mcp_name: mcp_name.unwrap_or("mock_tool"),
        needs_approval: str_field(tool, "require_approval") != Some("never"),
    })
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

impl<'a> ReqView<'a> {
    /// Reads a request body. `known_calls` resolves call ids issued by
    /// earlier responses (for `previous_response_id` style conversations).
    pub(crate) fn parse(
        endpoint: Endpoint,
        body: &'a Value,
        known_calls: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, BadRequest> {
        if !body.is_object() {
            return Err(BadRequest {
                message: "Request body must be a JSON object.".into(),
                param: None,
                code: None,
            });
        }
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.as_str(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(bad("Missing required parameter: 'model'.", "model"));
            }
            Some(_) => return Err(bad("Invalid type for 'model': expected a string.", "model")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(bad(
                    "Invalid type for 'stream': expected a boolean.",
                    "stream",
                ));
            }
        };
        let mut view = ReqView {
            endpoint,
            model,
            stream,
            include_usage: false,
            instructions: String::new(),
            last_user: String::new(),
            marker: false,
            input_chars: 0,
            tools: Vec::new(),
            tool_results: Vec::new(),
            approvals: Vec::new(),
            last_approval_id: None,
            hosted_tools: Vec::new(),
            hosted_marker: false,
            format: Format::Text,
        };
        match endpoint {
            Endpoint::Chat => view.read_chat(body, known_calls)?,
            _ => view.read_responses(body, known_calls)?,
        }
        view.marker = view.marker || view.instructions.contains(USE_TOOL_MARKER);
        view.hosted_marker = view.hosted_marker || view.instructions.contains(USE_HOSTED_MARKER);
        Ok(view)
    }

    fn add_instructions(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.instructions.is_empty() {
            self.instructions.push('\n');
        }
        self.instructions.push_str(text);
        self.input_chars += text.len();
    }

    fn add_user(&mut self, text: String) {
        self.input_chars += text.len();
        self.marker = self.marker || text.contains(USE_TOOL_MARKER);
        self.hosted_marker = self.hosted_marker || text.contains(USE_HOSTED_MARKER);
        self.last_user = text;
    }

    fn read_responses(
        &mut self,
        body: &'a Value,
        known_calls: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), BadRequest> {
        match body.get("instructions") {
            Some(Value::String(s)) => self.add_instructions(s),
            Some(Value::Array(items)) => {
                for item in items {
                    let text = content_text(item.get("content"));
                    self.add_instructions(&text);
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(bad(
                    "Invalid type for 'instructions': expected a string or an array.",
                    "instructions",
                ));
            }
        }
        let mut call_names: HashMap<&str, &str> = HashMap::new();
        let mut outputs: Vec<(Option<&str>, Option<&str>)> = Vec::new();
        match body.get("input") {
            Some(Value::String(s)) => self.add_user(s.clone()),
            Some(Value::Array(items)) => {
                for item in items {
                    if !item.is_object() {
                        return Err(bad("Invalid input item: expected an object.", "input"));
                    }
                    match str_field(item, "type") {
                        Some("function_call") | Some("custom_tool_call") => {
                            if let (Some(id), Some(name)) =
                                (str_field(item, "call_id"), str_field(item, "name"))
                            {
                                call_names.insert(id, name);
                            }
                            self.input_chars += str_field(item, "arguments").map_or(0, str::len);
                        }
                        Some("function_call_output") | Some("custom_tool_call_output") => {
                            let output = item.get("output");
                            self.input_chars += match output {
                                Some(Value::String(s)) => s.len(),
                                other => content_text(other).len(),
                            };
                            outputs.push((str_field(item, "call_id"), str_field(item, "name")));
                        }
                        Some("mcp_approval_response") => {
                            let approve = item.get("approve").and_then(Value::as_bool);
                            self.approvals.push(approve.unwrap_or(false));
                            self.last_approval_id = str_field(item, "approval_request_id");
                        }
                        Some("message") | None => {
                            let text = content_text(item.get("content"));
                            match str_field(item, "role") {
                                Some("user") => self.add_user(text),
                                Some("system") | Some("developer") => self.add_instructions(&text),
                                _ => self.input_chars += text.len(),
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(bad(
                    "Invalid type for 'input': expected a string or an array.",
                    "input",
                ));
            }
        }
        self.tool_results = tool_result_names(outputs, &call_names, known_calls);
        if let Some(tools) = body.get("tools").and_then(Value::as_array) {
            for tool in tools {
                if str_field(tool, "type") == Some("function")
                    && let Some(name) = str_field(tool, "name")
                {
                    self.tools.push(ToolDef {
                        name,
                        parameters: tool.get("parameters"),
                    });
                }
                if let Some(hosted) = hosted_tool(tool) {
                    self.hosted_tools.push(hosted);
                }
            }
        }
        if let Some(format) = body.get("text").and_then(|t| t.get("format")) {
            self.format = match str_field(format, "type") {
                Some("json_schema") => {
                    Format::JsonSchema(format.get("schema").unwrap_or(&Value::Null))
                }
                Some("json_object") => Format::JsonObject,
                _ => Format::Text,
            };
        }
        Ok(())
    }

    fn read_chat(
        &mut self,
        body: &'a Value,
        known_calls: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), BadRequest> {
        let messages = match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => m,
            Some(Value::Array(_)) => {
                return Err(bad(
                    "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                    "messages",
                ));
            }
            _ => return Err(bad("Missing required parameter: 'messages'.", "messages")),
        };
        let mut call_names: HashMap<&str, &str> = HashMap::new();
        let mut outputs: Vec<(Option<&str>, Option<&str>)> = Vec::new();
        for message in messages {
            let text = content_text(message.get("content"));
            match str_field(message, "role") {
                Some("user") => self.add_user(text),
                Some("system") | Some("developer") => self.add_instructions(&text),
                Some("assistant") => {
                    self.input_chars += text.len();
                    for call in message
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let name = call.get("function").and_then(|f| str_field(f, "name"));
                        if let (Some(id), Some(name)) = (str_field(call, "id"), name) {
                            call_names.insert(id, name);
                        }
                    }
                }
                Some("tool") => {
                    self.input_chars += text.len();
                    outputs.push((str_field(message, "tool_call_id"), None));
                }
                Some("function") => {
                    self.input_chars += text.len();
                    outputs.push((None, str_field(message, "name")));
                }
                Some(role) => {
                    return Err(bad(
                        format!(
                            "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                        ),
                        "messages",
                    ));
                }
                None => {
                    return Err(bad(
                        "Missing required parameter: 'messages[].role'.",
                        "messages",
                    ));
                }
            }
        }
        self.tool_results = tool_result_names(outputs, &call_names, known_calls);
        if let Some(tools) = body.get("tools").and_then(Value::as_array) {
            for (index, tool) in tools.iter().enumerate() {
                if let Some(kind) = str_field(tool, "type")
                    && HOSTED_TOOL_TYPES.contains(&kind)
                {
                    // What OpenAI answers: hosted tools are a Responses feature.
                    return Err(BadRequest {
                        message: format!(
                            "Invalid value: '{kind}'. Supported values are: 'function' and 'custom'."
                        ),
                        param: Some(format!("tools[{index}].type")),
                        code: Some("invalid_value"),
                    });
                }
                if str_field(tool, "type") == Some("function")
                    && let Some(function) = tool.get("function")
                    && let Some(name) = str_field(function, "name")
                {
                    self.tools.push(ToolDef {
                        name,
                        parameters: function.get("parameters"),
                    });
                }
            }
        }
        if let Some(functions) = body.get("functions").and_then(Value::as_array) {
            for function in functions {
                if let Some(name) = str_field(function, "name") {
                    self.tools.push(ToolDef {
                        name,
                        parameters: function.get("parameters"),
                    });
                }
            }
        }
        if let Some(format) = body.get("response_format") {
            self.format = match str_field(format, "type") {
                Some("json_schema") => Format::JsonSchema(
                    format
                        .get("json_schema")
                        .and_then(|j| j.get("schema"))
                        .unwrap_or(&Value::Null),
                ),
                Some("json_object") => Format::JsonObject,
                _ => Format::Text,
            };
        }
        self.include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(())
    }

    /// Whether the request satisfies `m`'s conditions (counters aside).
    pub(crate) fn satisfies(&self, m: &Match) -> bool {
        if m.endpoint != Endpoint::Any && m.endpoint != self.endpoint {
            return false;
        }
        if m.model.as_deref().is_some_and(|model| model != self.model) {
            return false;
        }
        if m.instructions_contains
            .as_deref()
            .is_some_and(|s| !self.instructions.contains(s))
        {
            return false;
        }
        if m.user_contains
            .as_deref()
            .is_some_and(|s| !self.last_user.contains(s))
        {
            return false;
        }
        if m.has_tool_result
            .is_some_and(|want| want == self.tool_results.is_empty())
        {
            return false;
        }
        if let Some(name) = m.tool_result_for.as_deref()
            && !self.tool_results.iter().any(|n| n.as_deref() == Some(name))
        {
            return false;
        }
        if let Some(state) = m.mcp_approval {
            let last = self.approvals.last().copied();
            let ok = match state {
                ApprovalMatch::None => last.is_none(),
                ApprovalMatch::Any => last.is_some(),
                ApprovalMatch::Approved => last == Some(true),
                ApprovalMatch::Denied => last == Some(false),
            };
            if !ok {
                return false;
            }
        }
        if m.stream.is_some_and(|s| s != self.stream) {
            return false;
        }
        if let Some(kind) = m.has_hosted_tool.as_deref()
            && !self
                .hosted_tools
                .iter()
                .any(|t| t.kind == kind || t.raw_type == kind)
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn reads_responses_tool_round_trip() {
        let body = json!({"model":"m","instructions":"Do it. [[use_tool]]",
            "input":[{"content":"q","role":"user"},
                     {"arguments":"{}","call_id":"c1","name":"lookup","type":"function_call"},
                     {"call_id":"c1","output":"facts","type":"function_call_output"}],
            "tools":[{"type":"function","name":"lookup","parameters":{"type":"object"}}]});
        let view = match ReqView::parse(Endpoint::Responses, &body, &none) {
            Ok(v) => v,
            Err(e) => panic!("{}", e.message),
        };
        assert!(view.marker);
        assert_eq!(view.last_user, "q");
        assert_eq!(view.tool_results, vec![Some("lookup".to_owned())]);
        assert!(view.satisfies(&Match::any().tool_result_for("lookup")));
        assert!(!view.satisfies(&Match::any().has_tool_result(false)));
    }

    #[test]
    fn reads_chat_and_rejects_bad_requests() {
        let body = json!({"model":"m","messages":[{"role":"system","content":"sys"},
            {"role":"user","content":[{"type":"text","text":"hello"}]}],
            "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
            "stream":true,"stream_options":{"include_usage":true}});
        let view = match ReqView::parse(Endpoint::Chat, &body, &none) {
            Ok(v) => v,
            Err(e) => panic!("{}", e.message),
        };
        assert_eq!(view.instructions, "sys");
        assert_eq!(view.last_user, "hello");
        assert!(view.stream && view.include_usage);
        assert!(matches!(view.format, Format::JsonSchema(_)));
        assert!(ReqView::parse(Endpoint::Chat, &json!({"model":"m"}), &none).is_err());
        assert!(ReqView::parse(Endpoint::Responses, &json!({"input":"x"}), &none).is_err());
        assert!(ReqView::parse(Endpoint::Responses, &json!([1]), &none).is_err());
    }
}

//! The offline scripted provider: replies come from a JSON script, for
//! examples, demos, dry runs and tests without a model server.
//!
//! ```json
//! {
//!   "replies": [
//!     {"when": {"agent": "calc", "has_tool_result": false},
//!      "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [1, 2]}}]}},
//!     {"when": {"agent": "calc"}, "reply": {"text": "The sum is {{tool_output}}."}},
//!     {"when": {"agent": "triage"}, "reply": {"handoff": "writer"}},
//!     {"when": {"agent": "writer", "input_contains": "report"}, "reply": {"json": {"title": "T"}}}
//!   ],
//!   "default": {"text": "You said: {{input}}"}
//! }
//! ```
//!
//! The first rule whose `when` holds answers (no rule matching and no
//! `default` is an error listing what was tried). `when` conditions, all
//! optional and all required to hold:
//! `agent`, `step`, `turn` (equal), `input_contains` (substring of the last
//! user message), `instructions_contains` (substring of the instructions and
//! system/developer messages), `has_tool_result` (a function call output is
//! in the input; a handoff's output does not count).
//!
//! Replies: `{"text": "…"}` with `{{input}}` (last user message),
//! `{{tool_output}}` (last function call output, not a handoff's), `{{agent}}`, `{{step}}`,
//! `{{turn}}` replaced; `{"tool_calls": [{"name", "arguments"}]}`
//! (`arguments` any JSON; a string is sent as is); `{"json": value}`;
//! `{"handoff": "agent"}` (a call of `transfer_to_<agent>`). When the
//! request has an output schema and the reply is text that is not JSON, the
//! reply is instead a deterministic value satisfying the schema (see
//! [`sample_value`](super::sample_value)). Usage is estimated as characters / 4. Everything is deterministic:
//! the same request gets the same response.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

use super::{
    HANDOFF_PREFIX, Item, LlmError, ModelRequest, ModelResponse, OnDelta, Provider, Role,
    StreamEvent, Usage, estimate_tokens, sample_value,
};
use crate::util::clip;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default)]
    replies: Vec<Rule>,
    #[serde(default)]
    default: Option<Reply>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    /// Optional label shown in errors.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    when: When,
    reply: Reply,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct When {
    agent: Option<String>,
    step: Option<String>,
    turn: Option<u32>,
    input_contains: Option<String>,
    instructions_contains: Option<String>,
    has_tool_result: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Reply {
    Text(String),
    ToolCalls(Vec<ToolCall>),
    Json(Value),
    Handoff(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCall {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    call_id: Option<String>,
}

/// What a request offers to match on.
struct Facts<'a> {
    request: &'a ModelRequest,
    last_user: &'a str,
    last_tool_output: &'a str,
    instructions: String,
    has_tool_result: bool,
}

impl<'a> Facts<'a> {
    fn of(request: &'a ModelRequest) -> Self {
        let mut last_user = "";
        let mut last_tool_output = "";
        let mut has_tool_result = false;
        let mut instructions = request.instructions.clone().unwrap_or_default();
        // A handoff is a function call too, but its output only says that
        // the conversation moved on: no tool result.
        let mut handoffs = Vec::new();
        for item in &request.input {
            match item {
                Item::FunctionCall { call_id, name, .. } if name.starts_with(HANDOFF_PREFIX) => {
                    handoffs.push(call_id.as_str());
                }
                Item::Message {
                    role: Role::User,
                    content,
                } => last_user = content,
                Item::Message {
                    role: Role::System | Role::Developer,
                    content,
                } => {
                    instructions.push('\n');
                    instructions.push_str(content);
                }
                Item::FunctionCallOutput { call_id, output } => {
                    if handoffs.contains(&call_id.as_str()) {
                        continue;
                    }
                    has_tool_result = true;
                    last_tool_output = output;
                }
                _ => {}
            }
        }
        Facts {
            request,
            last_user,
            last_tool_output,
            instructions,
            has_tool_result,
        }
    }

    /// Why `when` does not hold (`None`: it holds).
    fn mismatch(&self, when: &When) -> Option<String> {
        let r = self.request;
        if let Some(agent) = &when.agent
            && *agent != r.agent
        {
            return Some(format!("agent is `{}`, not `{agent}`", r.agent));
        }
        if let Some(step) = &when.step
            && *step != r.step
        {
            return Some(format!("step is `{}`, not `{step}`", r.step));
        }
        if let Some(turn) = when.turn
            && turn != r.turn
        {
            return Some(format!("turn is {}, not {turn}", r.turn));
        }
        if let Some(want) = when.has_tool_result
            && want != self.has_tool_result
        {
            return Some(format!("has_tool_result is {}", self.has_tool_result));
        }
        if let Some(text) = &when.input_contains
            && !self.last_user.contains(text.as_str())
        {
            return Some(format!("last user message lacks {text:?}"));
        }
        if let Some(text) = &when.instructions_contains
            && !self.instructions.contains(text.as_str())
        {
            return Some(format!("instructions lack {text:?}"));
        }
        None
    }
}

/// The offline provider. Build it with [`build_provider`](super::build_provider)
/// and a [`ProviderKind::Scripted`](super::ProviderKind::Scripted) config, or
/// directly.
#[derive(Debug)]
pub struct ScriptedProvider {
    name: String,
    path: Option<PathBuf>,
    script: Script,
}

impl ScriptedProvider {
    /// Reads and checks the script at `path`.
    pub fn from_file(name: impl Into<String>, path: impl AsRef<Path>) -> Result<Self, LlmError> {
        let name = name.into();
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| LlmError::Script {
            provider: name.clone(),
            path: Some(path.to_path_buf()),
            message: format!("cannot read the script: {e}"),
        })?;
        let mut provider = Self::from_json(name, &text).map_err(|e| match e {
            LlmError::Script {
                provider, message, ..
            } => LlmError::Script {
                provider,
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })?;
        provider.path = Some(path.to_path_buf());
        Ok(provider)
    }

    /// Parses a script from JSON text.
    pub fn from_json(name: impl Into<String>, json: &str) -> Result<Self, LlmError> {
        let name = name.into();
        let script: Script = serde_json::from_str(json).map_err(|e| LlmError::Script {
            provider: name.clone(),
            path: None,
            message: format!(
                "not a valid script ({e}); expected {{\"replies\": [{{\"when\": {{…}}, \"reply\": {{\"text\" | \"tool_calls\" | \"json\" | \"handoff\": …}}}}], \"default\": {{…}}}}"
            ),
        })?;
        Ok(Self {
            name,
            path: None,
            script,
        })
    }

    /// The response to `request` (what [`Provider::respond`] returns, without
    /// streaming).
    pub fn reply_to(&self, request: &ModelRequest) -> Result<ModelResponse, LlmError> {
        let facts = Facts::of(request);
        let reply = self
            .script
            .replies
            .iter()
            .find(|rule| facts.mismatch(&rule.when).is_none())
            .map(|rule| &rule.reply)
            .or(self.script.default.as_ref())
            .ok_or_else(|| self.no_match(&facts))?;
        let output = self.render(reply, &facts)?;
        let output_chars: usize = output.iter().map(item_chars).sum();
        let input_chars = request.instructions.as_deref().map_or(0, str::len)
            + request.input.iter().map(item_chars).sum::<usize>();
        let usage = Usage::reported(
            estimate_tokens(input_chars),
            estimate_tokens(output_chars),
            estimate_tokens(input_chars) + estimate_tokens(output_chars),
        );
        Ok(ModelResponse {
            id: Some(format!(
                "scripted-{}-{}-{}",
                request.agent, request.step, request.turn
            )),
            model: if request.settings.model.is_empty() {
                "scripted".to_string()
            } else {
                request.settings.model.clone()
            },
            output,
            usage,
            attempts: 1,
        })
    }

    fn render(&self, reply: &Reply, facts: &Facts<'_>) -> Result<Vec<Item>, LlmError> {
        let request = facts.request;
        let call_id = |i: usize| format!("call_{}_{}_{}", request.agent, request.turn, i + 1);
        Ok(match reply {
            Reply::Text(template) => {
                let text = render_template(template, facts);
                let text = match &request.output_schema {
                    Some(schema) if serde_json::from_str::<Value>(&text).is_err() => {
                        sample_value(&schema.schema).to_string()
                    }
                    _ => text,
                };
                vec![Item::assistant(text)]
            }
            Reply::Json(value) => vec![Item::assistant(value.to_string())],
            Reply::ToolCalls(calls) => calls
                .iter()
                .enumerate()
                .map(|(i, call)| Item::FunctionCall {
                    call_id: call.call_id.clone().unwrap_or_else(|| call_id(i)),
                    name: call.name.clone(),
                    arguments: match &call.arguments {
                        None => "{}".to_string(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    },
                })
                .collect(),
            Reply::Handoff(target) => {
                if target.is_empty() {
                    return Err(self.script_error("a handoff reply needs an agent name".into()));
                }
                vec![Item::FunctionCall {
                    call_id: call_id(0),
                    name: format!("{HANDOFF_PREFIX}{target}"),
                    arguments: "{}".to_string(),
                }]
            }
        })
    }

    fn script_error(&self, message: String) -> LlmError {
        LlmError::Script {
            provider: self.name.clone(),
            path: self.path.clone(),
            message,
        }
    }

    fn no_match(&self, facts: &Facts<'_>) -> LlmError {
        let r = facts.request;
        let mut message = format!(
            "no reply matches agent `{}`, step `{}`, turn {} (last user message {:?}, has_tool_result {})",
            r.agent,
            r.step,
            r.turn,
            clip(facts.last_user, 80),
            facts.has_tool_result
        );
        if self.script.replies.is_empty() {
            message.push_str("; the script has no rules");
        } else {
            let _ = write!(message, "; tried {} rule(s):", self.script.replies.len());
            for (i, rule) in self.script.replies.iter().enumerate() {
                let why = facts.mismatch(&rule.when).unwrap_or_default();
                match &rule.name {
                    Some(name) => {
                        let _ = write!(message, " #{} `{name}`: {why};", i + 1);
                    }
                    None => {
                        let _ = write!(message, " #{}: {why};", i + 1);
                    }
                }
            }
        }
        message.push_str(" add a matching rule or a \"default\" reply");
        self.script_error(message)
    }
}

fn render_template(template: &str, facts: &Facts<'_>) -> String {
    if !template.contains("{{") {
        return template.to_string();
    }
    let r = facts.request;
    template
        .replace("{{input}}", facts.last_user)
        .replace("{{tool_output}}", facts.last_tool_output)
        .replace("{{agent}}", &r.agent)
        .replace("{{step}}", &r.step)
        .replace("{{turn}}", &r.turn.to_string())
}

fn item_chars(item: &Item) -> usize {
    match item {
        Item::Message { content, .. } => content.len(),
        Item::FunctionCall {
            name, arguments, ..
        } => name.len() + arguments.len(),
        Item::FunctionCallOutput { output, .. } => output.len(),
        Item::McpApprovalRequest {
            name, arguments, ..
        } => name.len() + arguments.len(),
        Item::McpApprovalResponse { reason, .. } => reason.as_deref().map_or(0, str::len),
        Item::HostedToolCall { item, .. } => item.to_string().len(),
    }
}

/// Splits `text` into word-sized deltas (each word keeps its trailing
/// whitespace), for a deterministic simulated stream.
fn deltas(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            pieces.push(&text[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_offline(&self) -> bool {
        true
    }

    fn respond<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_event: Option<OnDelta<'a>>,
    ) -> BoxFuture<'a, Result<ModelResponse, LlmError>> {
        // The span opens when the call starts, inside whatever span awaits it.
        Box::pin(async move {
            let span = super::span::chat(&self.name, "scripted", None, request);
            let record = span.clone();
            async move {
                let response = self.reply_to(request);
                super::span::record(&record, &response);
                let response = response?;
                if let (true, Some(on_event)) = (request.stream, on_event) {
                    for item in &response.output {
                        match item {
                            Item::Message { content, .. } => {
                                for piece in deltas(content) {
                                    on_event(StreamEvent::TextDelta(piece.to_string()));
                                }
                            }
                            Item::FunctionCall { call_id, name, .. } => {
                                on_event(StreamEvent::FunctionCallStarted {
                                    call_id: call_id.clone(),
                                    name: name.clone(),
                                })
                            }
                            _ => {}
                        }
                    }
                }
                Ok(response)
            }
            .instrument(span)
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_concatenate() {
        let text = "Hello  there, world!\n ok";
        let pieces = deltas(text);
        assert_eq!(pieces, vec!["Hello  ", "there, ", "world!\n ", "ok"]);
        assert_eq!(pieces.concat(), text);
        assert!(deltas("").is_empty());
    }

    /// After a handoff the target agent has seen no tool result yet: the
    /// handoff's own output (a function call output) does not count.
    #[test]
    fn a_handoff_output_is_no_tool_result() {
        let script = ScriptedProvider::from_json(
            "s",
            r#"{"replies": [
                {"when": {"agent": "b", "has_tool_result": false},
                 "reply": {"tool_calls": [{"name": "add", "arguments": {}}]}},
                {"when": {"agent": "b"}, "reply": {"text": "sum {{tool_output}}"}}
            ]}"#,
        )
        .unwrap();
        let handoff = [
            Item::user("hi"),
            Item::FunctionCall {
                call_id: "h1".into(),
                name: format!("{HANDOFF_PREFIX}b"),
                arguments: "{}".into(),
            },
            Item::FunctionCallOutput {
                call_id: "h1".into(),
                output: r#"{"assistant":"b"}"#.into(),
            },
        ];
        let mut request = ModelRequest {
            agent: "b".into(),
            input: handoff.to_vec(),
            turn: 2,
            ..ModelRequest::default()
        };
        let first = script.reply_to(&request).unwrap();
        let calls = first.function_calls();
        assert_eq!(calls.len(), 1, "{first:?}");
        assert_eq!(calls[0].name, "add");
        let call_id = calls[0].call_id.to_owned();
        request.input.extend(first.output.clone());
        request.input.push(Item::FunctionCallOutput {
            call_id,
            output: "3".into(),
        });
        let second = script.reply_to(&request).unwrap();
        assert_eq!(second.text().as_deref(), Some("sum 3"));
    }

    #[test]
    fn bad_scripts_are_explained() {
        let err = ScriptedProvider::from_json("s", r#"{"replies": [{"reply": {"txt": "x"}}]}"#)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("provider `s`"), "{text}");
        assert!(text.contains("txt"), "{text}");
        let err = ScriptedProvider::from_file("s", "/nonexistent/script.json").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/script.json"),
            "{err}"
        );
    }
}

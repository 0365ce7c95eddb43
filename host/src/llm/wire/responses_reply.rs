//! Reading a Responses API reply, whole or streamed, as leniently as the
//! official SDKs (see [`super::lenient`]): a `Response` object → [`Answer`],
//! SSE events → [`Answer`].
//!
//! Streams are accepted with or without SSE `event:` lines (the type is
//! then read from the data's `type`), with a trailing `data: [DONE]` or
//! without, with comments and CRLF line endings (the decoder's business).
//! A stream must still end with `response.completed` (or `.incomplete`):
//! like the SDKs' final response, the answer is not known without it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::lenient::{
    arguments_text, content_text, ignored, index_field, opt, str_field, string_field, usage_of,
};
use super::{Answer, DeltaTap};
use crate::llm::error::{Failure, json_failure};
use crate::llm::hosted::HOSTED_ITEMS;
use crate::llm::sse::SseEvent;
use crate::llm::{Item, StreamEvent};

/// The parts of a `Response` object the host reads; all optional.
#[derive(Debug, Default, Deserialize)]
struct WireResponse {
    #[serde(default, deserialize_with = "opt")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    model: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    output: Option<Vec<Value>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    incomplete_details: Option<Value>,
}

/// A whole (non-streamed) answer.
pub(crate) fn parse_response(body: &[u8]) -> Result<Answer, Failure> {
    let response: WireResponse =
        serde_json::from_slice(body).map_err(|e| json_failure(&e, "the response body", body))?;
    super::lenient::expect_object(body, "the response body")?;
    convert_response(response)
}

fn convert_response(response: WireResponse) -> Result<Answer, Failure> {
    match response.status.as_deref() {
        Some("failed") => return Err(failed(response.error.as_ref())),
        Some("incomplete") => {
            tracing::warn!(
                reason = response
                    .incomplete_details
                    .as_ref()
                    .and_then(|d| str_field(d, "reason"))
                    .unwrap_or("unknown"),
                "the model's response is incomplete"
            );
        }
        _ => {}
    }
    let mut output = Vec::new();
    for (index, item) in response.output.unwrap_or_default().iter().enumerate() {
        if let Some(item) = output_item(item, index)? {
            output.push(item);
        }
    }
    Ok(Answer {
        id: response.id,
        model: response.model,
        output,
        usage: usage_of(response.usage.as_ref()),
    })
}

/// The error of a failed response (its `error` object, if any).
fn failed(error: Option<&Value>) -> Failure {
    match error {
        Some(error) => Failure::ModelFailed {
            code: error_code(error),
            message: str_field(error, "message")
                .unwrap_or("response status is `failed`")
                .to_owned(),
        },
        None => Failure::ModelFailed {
            code: None,
            message: "response status is `failed`".into(),
        },
    }
}

fn error_code(error: &Value) -> Option<String> {
    match error.get("code") {
        Some(Value::String(code)) => Some(code.clone()),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => str_field(error, "type").map(str::to_owned),
    }
}

/// Output item types the host knows and does not act on.
const SKIPPED_ITEMS: &[&str] = &[
    "reasoning",
    "computer_call",
    "local_shell_call",
    "custom_tool_call",
];

/// The neutral item for output item number `index` (`None` for kinds the
/// agent loop does not handle). A function call without a name is an
/// error: nothing could run it.
fn output_item(item: &Value, index: usize) -> Result<Option<Item>, Failure> {
    let kind = str_field(item, "type").unwrap_or_default();
    Ok(match kind {
        "message" => {
            let text = item
                .get("content")
                .and_then(|c| content_text(c, "a message content part"))
                .unwrap_or_default();
            Some(Item::assistant(text))
        }
        "function_call" => Some(function_call(item, index)?),
        "mcp_approval_request" => Some(Item::McpApprovalRequest {
            id: string_field(item, "id"),
            server_label: string_field(item, "server_label"),
            name: string_field(item, "name"),
            arguments: arguments_text(item.get("arguments")),
        }),
        hosted if HOSTED_ITEMS.contains(&hosted) => Some(Item::HostedToolCall {
            id: string_field(item, "id"),
            kind: hosted.to_owned(),
            item: item.clone(),
        }),
        known if SKIPPED_ITEMS.contains(&known) => None,
        other => {
            ignored("an output item type", other);
            None
        }
    })
}

fn function_call(item: &Value, index: usize) -> Result<Item, Failure> {
    let name = string_field(item, "name");
    if name.is_empty() {
        return Err(Failure::Malformed(format!(
            "output item #{index} is a function call without a name"
        )));
    }
    Ok(Item::FunctionCall {
        call_id: call_id(item, index),
        name,
        arguments: arguments_text(item.get("arguments")),
    })
}

/// `call_id`, else the item's `id`, else one made from its position (the
/// id only pairs the call with its output).
fn call_id(item: &Value, index: usize) -> String {
    str_field(item, "call_id")
        .or_else(|| str_field(item, "id"))
        .filter(|id| !id.is_empty())
        .map_or_else(|| format!("call_{index}"), str::to_owned)
}

/// A function call being streamed: from `response.output_item.added`,
/// completed by argument deltas.
#[derive(Debug, Default)]
struct PartialCall {
    call_id: String,
    name: String,
    arguments: String,
}

/// Stream event types the host knows and needs nothing from.
const SKIPPED_EVENTS: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.queued",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.done",
    "response.output_text.annotation.added",
    "response.refusal.done",
];

/// Prefixes of stream event families the host needs nothing from.
const SKIPPED_EVENT_FAMILIES: &[&str] = &[
    "response.reasoning",
    "response.web_search_call.",
    "response.file_search_call.",
    "response.code_interpreter_call",
    "response.image_generation_call.",
    "response.mcp_call",
    "response.mcp_list_tools.",
    "response.custom_tool_call_input.",
    "response.audio",
];

/// Assembles a streamed answer from its SSE events.
#[derive(Default)]
pub(crate) struct StreamAssembler {
    /// Text deltas per output index (used if the final event lacks output).
    texts: BTreeMap<u32, String>,
    /// Function calls being streamed, per output index.
    calls: BTreeMap<u32, PartialCall>,
    /// Finished output items per output index.
    items: BTreeMap<u32, Option<Item>>,
    final_response: Option<Answer>,
}

impl StreamAssembler {
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        tap: &mut DeltaTap<'_>,
    ) -> Result<(), Failure> {
        let data = event.data.trim();
        if self.final_response.is_some() || data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let value: Value = serde_json::from_str(data)
            .map_err(|e| json_failure(&e, "a stream event", data.as_bytes()))?;
        let kind = if event.event.is_empty() {
            str_field(&value, "type").unwrap_or_default()
        } else {
            event.event.as_str()
        };
        let index = index_field(&value, "output_index").unwrap_or(0);
        match kind {
            "response.output_text.delta" | "response.refusal.delta" => {
                let delta = string_field(&value, "delta");
                if !delta.is_empty() {
                    self.texts.entry(index).or_default().push_str(&delta);
                    tap.emit(StreamEvent::TextDelta(delta));
                }
            }
            "response.output_item.added" => {
                let item = value.get("item").unwrap_or(&Value::Null);
                if str_field(item, "type") == Some("function_call") {
                    let call = PartialCall {
                        call_id: call_id(item, index as usize),
                        name: string_field(item, "name"),
                        arguments: arguments_text(item.get("arguments")),
                    };
                    if !call.name.is_empty() {
                        tap.emit(StreamEvent::FunctionCallStarted {
                            call_id: call.call_id.clone(),
                            name: call.name.clone(),
                        });
                    }
                    self.calls.insert(index, call);
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(call) = self.calls.get_mut(&index) {
                    call.arguments
                        .push_str(str_field(&value, "delta").unwrap_or_default());
                }
            }
            "response.function_call_arguments.done" => {
                if let (Some(call), Some(arguments)) =
                    (self.calls.get_mut(&index), value.get("arguments"))
                {
                    call.arguments = arguments_text(Some(arguments));
                }
            }
            "response.output_item.done" => {
                let item = value.get("item").unwrap_or(&Value::Null);
                let item = output_item(item, index as usize)?;
                self.items.insert(index, item);
            }
            "response.completed" | "response.incomplete" => {
                let response = value
                    .get("response")
                    .cloned()
                    .and_then(super::lenient::from_value::<WireResponse>)
                    .unwrap_or_default();
                self.final_response = Some(convert_response(response)?);
            }
            "response.failed" => {
                let error = value.get("response").and_then(|r| r.get("error"));
                return Err(failed(error.filter(|e| !e.is_null())));
            }
            "error" => {
                // `{type: error, code, message}`, or the error nested.
                let error = value
                    .get("error")
                    .filter(|e| e.is_object())
                    .unwrap_or(&value);
                return Err(Failure::ModelFailed {
                    code: error_code(error),
                    message: str_field(error, "message")
                        .unwrap_or("the server reported an error mid-stream")
                        .to_owned(),
                });
            }
            known
                if SKIPPED_EVENTS.contains(&known)
                    || SKIPPED_EVENT_FAMILIES.iter().any(|p| known.starts_with(p)) => {}
            other => ignored("a stream event type", other),
        }
        Ok(())
    }

    /// The answer, once the stream has ended.
    pub(crate) fn finish(mut self) -> Result<Answer, Failure> {
        let Some(mut answer) = self.final_response.take() else {
            return Err(Failure::Truncated(
                "the stream ended before `response.completed`".into(),
            ));
        };
        if answer.output.is_empty() {
            // Some servers send the final response without its output: the
            // finished items, else the streamed calls and text, in order.
            answer.output = self.streamed_output()?;
        }
        Ok(answer)
    }

    fn streamed_output(self) -> Result<Vec<Item>, Failure> {
        let mut indexes: Vec<u32> = self
            .items
            .keys()
            .chain(self.calls.keys())
            .chain(self.texts.keys())
            .copied()
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let (mut items, mut calls, mut texts) = (self.items, self.calls, self.texts);
        let mut output = Vec::new();
        for index in indexes {
            if let Some(done) = items.remove(&index) {
                output.extend(done);
            } else if let Some(call) = calls.remove(&index) {
                if call.name.is_empty() {
                    return Err(Failure::Malformed(format!(
                        "streamed output item #{index} is a function call without a name"
                    )));
                }
                output.push(Item::FunctionCall {
                    call_id: call.call_id,
                    name: call.name,
                    arguments: call.arguments,
                });
            } else if let Some(text) = texts.remove(&index) {
                output.push(Item::assistant(text));
            }
        }
        Ok(output)
    }
}

#[cfg(test)]
#[path = "responses_reply_tests.rs"]
mod tests;

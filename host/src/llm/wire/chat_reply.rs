//! Reading a Chat Completions reply, whole or streamed, as leniently as the
//! official SDKs (see [`super::lenient`]): a completion → [`Answer`],
//! chunks → [`Answer`].
//!
//! Streams seen in the wild are accepted: `role` alone in a first chunk or
//! merged into the first content chunk; `finish_reason` on the last content
//! chunk or in a chunk of its own; a tool call whole in one chunk, or its id
//! and name first and its arguments spread over many chunks (a server that
//! repeats the id and name in every chunk is understood too); the usage
//! chunk with `choices: []` or with a choice whose delta is empty; with
//! `data: [DONE]` or without. A stream that ends with neither `[DONE]` nor
//! a `finish_reason` was cut off.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::lenient::{
    arguments_text, content_text, ignored, index_field, opt, str_field, string_field, usage_of,
};
use super::{Answer, DeltaTap};
use crate::llm::error::{Failure, json_failure};
use crate::llm::sse::SseEvent;
use crate::llm::{Item, StreamEvent, Usage};

/// The parts of a completion (or a stream chunk) the host reads.
#[derive(Debug, Default, Deserialize)]
struct WireCompletion {
    #[serde(default, deserialize_with = "opt")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    model: Option<String>,
    #[serde(default, deserialize_with = "opt")]
    choices: Option<Vec<Value>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

impl WireCompletion {
    /// Choice 0 (the host asks for one), or the first one.
    fn first_choice(&self) -> Option<&Value> {
        let choices = self.choices.as_deref().unwrap_or_default();
        choices
            .iter()
            .find(|c| index_field(c, "index").unwrap_or(0) == 0)
            .or_else(|| choices.first())
    }
}

/// A whole (non-streamed) completion.
pub(crate) fn parse_response(body: &[u8]) -> Result<Answer, Failure> {
    let completion: WireCompletion =
        serde_json::from_slice(body).map_err(|e| json_failure(&e, "the completion body", body))?;
    super::lenient::expect_object(body, "the completion body")?;
    if let Some(failure) = error_in(&completion) {
        return Err(failure);
    }
    let Some(choice) = completion.first_choice() else {
        return Err(Failure::Malformed("the completion has no choices".into()));
    };
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut calls = Vec::new();
    if let Some(Value::Array(tool_calls)) = message.get("tool_calls") {
        for (index, call) in tool_calls.iter().enumerate() {
            if let Some(call) = tool_call(call, index)? {
                calls.push(call);
            }
        }
    }
    // The legacy single `function_call`, still read by the SDKs.
    if let Some(function) = message.get("function_call").filter(|f| f.is_object()) {
        calls.push(function_item(function, "call_0".into(), calls.len())?);
    }
    let content = message
        .get("content")
        .and_then(|c| content_text(c, "a message content part"))
        .filter(|c| !c.is_empty());
    let refusal = str_field(message, "refusal")
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let mut output = Vec::new();
    match (content, refusal) {
        (Some(text), _) | (None, Some(text)) => output.push(Item::assistant(text)),
        (None, None) if calls.is_empty() => output.push(Item::assistant(String::new())),
        (None, None) => {}
    }
    output.extend(calls);
    Ok(Answer {
        id: completion.id,
        model: completion.model,
        output,
        usage: usage_of(completion.usage.as_ref()),
    })
}

/// An error object sent instead of a completion (some servers answer 200
/// with one, or send one mid-stream).
fn error_in(completion: &WireCompletion) -> Option<Failure> {
    let error = completion.error.as_ref().filter(|e| !e.is_null())?;
    if completion.choices.is_some() {
        return None;
    }
    let message = match error {
        Value::String(message) => message.clone(),
        error => str_field(error, "message")
            .unwrap_or("the server reported an error")
            .to_owned(),
    };
    let code = ["code", "type"]
        .iter()
        .find_map(|key| match error.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
    Some(Failure::ModelFailed { code, message })
}

/// A whole tool call (`None` for types other than `function`).
fn tool_call(call: &Value, index: usize) -> Result<Option<Item>, Failure> {
    match str_field(call, "type").unwrap_or("function") {
        "function" => {}
        other => {
            ignored("a tool call type", other);
            return Ok(None);
        }
    }
    let id = str_field(call, "id")
        .filter(|id| !id.is_empty())
        .map_or_else(|| format!("call_{index}"), str::to_owned);
    let function = call.get("function").unwrap_or(&Value::Null);
    function_item(function, id, index).map(Some)
}

fn function_item(function: &Value, call_id: String, index: usize) -> Result<Item, Failure> {
    let name = string_field(function, "name");
    if name.is_empty() {
        return Err(Failure::Malformed(format!(
            "tool call #{index} has no function name"
        )));
    }
    Ok(Item::FunctionCall {
        call_id,
        name,
        arguments: arguments_text(function.get("arguments")),
    })
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    announced: bool,
}

/// Assembles a streamed completion from its chunks.
#[derive(Default)]
pub(crate) struct StreamAssembler {
    id: Option<String>,
    model: Option<String>,
    text: String,
    refusal: String,
    calls: BTreeMap<u32, PartialCall>,
    usage: Option<Usage>,
    /// `data: [DONE]` arrived.
    done: bool,
    /// A choice carried a `finish_reason`.
    finished: bool,
}

impl StreamAssembler {
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        tap: &mut DeltaTap<'_>,
    ) -> Result<(), Failure> {
        let data = event.data.trim();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: WireCompletion = serde_json::from_str(data)
            .map_err(|e| json_failure(&e, "a completion chunk", data.as_bytes()))?;
        super::lenient::expect_object(data.as_bytes(), "a completion chunk")?;
        if let Some(failure) = error_in(&chunk) {
            return Err(failure);
        }
        if self.id.is_none() {
            self.id.clone_from(&chunk.id);
        }
        if self.model.is_none() {
            self.model.clone_from(&chunk.model);
        }
        if let Some(usage) = usage_of(chunk.usage.as_ref()) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk.first_choice() else {
            return Ok(());
        };
        if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
            self.finished = true;
        }
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(refusal) = str_field(delta, "refusal") {
            self.refusal.push_str(refusal);
        }
        if let Some(content) = delta
            .get("content")
            .and_then(|c| content_text(c, "a content part"))
            .filter(|c| !c.is_empty())
        {
            self.text.push_str(&content);
            tap.emit(StreamEvent::TextDelta(content));
        }
        if let Some(Value::Array(calls)) = delta.get("tool_calls") {
            for (position, call) in calls.iter().enumerate() {
                self.on_call_delta(call, position, tap);
            }
        }
        Ok(())
    }

    fn on_call_delta(&mut self, call: &Value, position: usize, tap: &mut DeltaTap<'_>) {
        if str_field(call, "type").is_some_and(|t| t != "function") {
            ignored(
                "a streamed tool call type",
                str_field(call, "type").unwrap_or_default(),
            );
            return;
        }
        let id = str_field(call, "id").filter(|id| !id.is_empty());
        // `index` is standard; without it, a known id, else the next index.
        let index = index_field(call, "index")
            .or_else(|| {
                id.and_then(|id| {
                    self.calls
                        .iter()
                        .find(|(_, c)| c.id == id)
                        .map(|(index, _)| *index)
                })
            })
            .unwrap_or_else(|| u32::try_from(self.calls.len().max(position)).unwrap_or(u32::MAX));
        let partial = self.calls.entry(index).or_default();
        if let Some(id) = id {
            partial.id = id.to_owned();
        }
        let function = call.get("function").unwrap_or(&Value::Null);
        if let Some(name) = str_field(function, "name").filter(|n| !n.is_empty()) {
            // Sent once; a server that repeats it sends the same name.
            if partial.name.is_empty() {
                partial.name = name.to_owned();
            }
        }
        match function.get("arguments") {
            Some(Value::String(piece)) => partial.arguments.push_str(piece),
            Some(Value::Null) | None => {}
            Some(whole) => partial.arguments = whole.to_string(),
        }
        if !partial.announced && !partial.name.is_empty() {
            partial.announced = true;
            if partial.id.is_empty() {
                partial.id = format!("call_{index}");
            }
            tap.emit(StreamEvent::FunctionCallStarted {
                call_id: partial.id.clone(),
                name: partial.name.clone(),
            });
        }
    }

    /// The answer, once the stream has ended.
    pub(crate) fn finish(self) -> Result<Answer, Failure> {
        if !self.done && !self.finished {
            return Err(Failure::Truncated(
                "the stream ended before a `finish_reason` or `data: [DONE]`".into(),
            ));
        }
        let mut output = Vec::new();
        if !self.text.is_empty() {
            output.push(Item::assistant(self.text));
        } else if !self.refusal.is_empty() {
            output.push(Item::assistant(self.refusal));
        } else if self.calls.is_empty() {
            output.push(Item::assistant(String::new()));
        }
        for (index, call) in self.calls {
            if call.name.is_empty() {
                return Err(Failure::Malformed(format!(
                    "streamed tool call #{index} has no function name"
                )));
            }
            output.push(Item::FunctionCall {
                call_id: call.id,
                name: call.name,
                arguments: call.arguments,
            });
        }
        Ok(Answer {
            id: self.id,
            model: self.model,
            output,
            usage: self.usage,
        })
    }
}

#[cfg(test)]
#[path = "chat_reply_tests.rs"]
mod tests;

//! Wire format: response bodies and SSE events for both APIs, shaped like
//! OpenAI's (and checked against async-openai 0.43's types in the tests).
//!
//! Bodies are written as text with `format!` rather than built as `Value`
//! trees: this crate is compiled at opt-level 0 in dev profiles while the mock
//! serves benchmarks, and generic serde code would be instantiated here
//! unoptimized. Request subtrees that are echoed (tools, text format...) are
//! serialized through `Value`'s `Display`, which is compiled in serde_json.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::hosted::HostedItem;
use crate::request::ReqView;

/// A JSON string literal (quoted, escaped).
pub(crate) fn js(text: &str) -> String {
    Value::from(text).to_string()
}

/// One function call the mock answers with.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub item_id: String,
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

/// What the model "says".
#[derive(Debug, Clone)]
pub(crate) enum Output {
    Text(String),
    Calls(Vec<Call>),
    Approval {
        id: String,
        name: String,
        arguments: String,
        server_label: String,
    },
    /// Hosted tool items, then a message when `text` is set.
    Hosted {
        items: Vec<HostedItem>,
        text: Option<String>,
    },
}

impl Output {
    fn chars(&self) -> usize {
        match self {
            Output::Text(t) => t.len(),
            Output::Calls(calls) => calls.iter().map(|c| c.name.len() + c.arguments.len()).sum(),
            Output::Approval {
                name, arguments, ..
            } => name.len() + arguments.len(),
            Output::Hosted { items, text } => {
                items.iter().map(HostedItem::chars).sum::<usize>()
                    + text.as_ref().map_or(0, String::len)
            }
        }
    }

    /// Chat Completions has no MCP approval items: those become JSON text.
    pub(crate) fn chat_text(&self) -> Option<String> {
        match self {
            Output::Text(t) => Some(t.clone()),
            Output::Calls(_) => None,
            Output::Approval {
                id,
                name,
                arguments,
                server_label,
            } => Some(
                json!({"mcp_approval_request": {"id": id, "name": name,
                        "arguments": arguments, "server_label": server_label}})
                .to_string(),
            ),
            Output::Hosted { text, .. } => Some(text.clone().unwrap_or_default()),
        }
    }
}

/// Identity of one answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub n: u64,
    pub created: u64,
}

/// Cuts `text` into at most `parts` pieces on char boundaries.
pub(crate) fn split(text: &str, parts: usize) -> Vec<&str> {
    let count = text.chars().count();
    if count == 0 {
        return Vec::new();
    }
    let step = count.div_ceil(parts.max(1)).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for (i, (pos, _)) in text.char_indices().enumerate() {
        if i > 0 && i % step == 0 {
            out.push(&text[start..pos]);
            start = pos;
        }
    }
    out.push(&text[start..]);
    out
}

fn tokens(chars: usize) -> u64 {
    u64::try_from(chars / 4 + 1).unwrap_or(u64::MAX)
}

/// OpenAI error body.
pub(crate) fn error_body(
    message: &str,
    error_type: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Bytes {
    let body =
        json!({"error": {"message": message, "type": error_type, "param": param, "code": code}});
    Bytes::from(body.to_string())
}

// ------------------------------------------------------------------ Responses

fn responses_usage(view: &ReqView<'_>, out: &Output) -> String {
    let input = tokens(view.input_chars);
    let output = tokens(out.chars());
    let total = input + output;
    format!(
        "{{\"input_tokens\":{input},\"input_tokens_details\":{{\"cached_tokens\":0}},\"output_tokens\":{output},\"output_tokens_details\":{{\"reasoning_tokens\":0}},\"total_tokens\":{total}}}"
    )
}

fn text_part_json(text_literal: &str) -> String {
    format!(
        "{{\"type\":\"output_text\",\"text\":{text_literal},\"annotations\":[],\"logprobs\":[]}}"
    )
}

fn message_item_json(id_literal: &str, status: &str, content: &str) -> String {
    format!(
        "{{\"type\":\"message\",\"id\":{id_literal},\"status\":\"{status}\",\"role\":\"assistant\",\"content\":[{content}]}}"
    )
}

fn call_item_json(call: &Call, arguments_literal: &str, status: &str) -> String {
    format!(
        "{{\"type\":\"function_call\",\"id\":{},\"call_id\":{},\"name\":{},\"arguments\":{arguments_literal},\"status\":\"{status}\"}}",
        js(&call.item_id),
        js(&call.call_id),
        js(&call.name)
    )
}

fn approval_item_json(id: &str, name: &str, arguments: &str, server_label: &str) -> String {
    format!(
        "{{\"type\":\"mcp_approval_request\",\"id\":{},\"name\":{},\"arguments\":{},\"server_label\":{}}}",
        js(id),
        js(name),
        js(arguments),
        js(server_label)
    )
}

fn message_id(meta: Meta) -> String {
    js(&format!("msg_mock{}", meta.n))
}

/// Final output items, as a JSON array.
fn items_json(out: &Output, meta: Meta) -> String {
    match out {
        Output::Text(text) => format!(
            "[{}]",
            message_item_json(&message_id(meta), "completed", &text_part_json(&js(text)))
        ),
        Output::Calls(calls) => {
            let items: Vec<String> = calls
                .iter()
                .map(|c| call_item_json(c, &js(&c.arguments), "completed"))
                .collect();
            format!("[{}]", items.join(","))
        }
        Output::Approval {
            id,
            name,
            arguments,
            server_label,
        } => format!(
            "[{}]",
            approval_item_json(id, name, arguments, server_label)
        ),
        Output::Hosted { items, text } => {
            let mut all: Vec<String> = items.iter().map(|i| i.json(true)).collect();
            if let Some(text) = text {
                all.push(message_item_json(
                    &message_id(meta),
                    "completed",
                    &text_part_json(&js(text)),
                ));
            }
            format!("[{}]", all.join(","))
        }
    }
}

/// A request field echoed in the response object, or `default`.
fn echo(body: &Value, key: &str, default: &str) -> String {
    match body.get(key) {
        Some(Value::Null) | None => default.to_owned(),
        Some(v) => v.to_string(),
    }
}

/// The Response object (`output` and `usage` already JSON).
fn response_json(
    body: &Value,
    view: &ReqView<'_>,
    meta: Meta,
    completed: bool,
    output: &str,
    usage: &str,
) -> String {
    let text = match body.get("text") {
        Some(Value::Object(map)) => {
            let mut map = map.clone();
            map.entry("format")
                .or_insert_with(|| json!({"type": "text"}));
            map.entry("verbosity")
                .or_insert_with(|| Value::from("medium"));
            Value::Object(map).to_string()
        }
        _ => "{\"format\":{\"type\":\"text\"},\"verbosity\":\"medium\"}".to_owned(),
    };
    let (status, completed_at) = if completed {
        ("completed", format!(",\"completed_at\":{}", meta.created))
    } else {
        ("in_progress", String::new())
    };
    format!(
        concat!(
            "{{\"id\":\"resp_mock{n}\",\"object\":\"response\",\"created_at\":{created},",
            "\"status\":\"{status}\",\"background\":false,\"error\":null,",
            "\"incomplete_details\":null,\"instructions\":{instructions},",
            "\"max_output_tokens\":{max_output_tokens},\"max_tool_calls\":{max_tool_calls},",
            "\"model\":{model},\"output\":{output},\"parallel_tool_calls\":{parallel},",
            "\"previous_response_id\":{previous},\"prompt_cache_key\":{cache_key},",
            "\"reasoning\":{reasoning},\"safety_identifier\":{safety},",
            "\"service_tier\":\"default\",\"store\":{store},\"temperature\":{temperature},",
            "\"text\":{text},\"tool_choice\":{tool_choice},\"tools\":{tools},",
            "\"top_logprobs\":{top_logprobs},\"top_p\":{top_p},\"truncation\":{truncation},",
            "\"usage\":{usage},\"user\":{user},\"metadata\":{metadata}{completed_at}}}"
        ),
        n = meta.n,
        created = meta.created,
        status = status,
        instructions = echo(body, "instructions", "null"),
        max_output_tokens = echo(body, "max_output_tokens", "null"),
        max_tool_calls = echo(body, "max_tool_calls", "null"),
        model = js(view.model),
        output = output,
        parallel = echo(body, "parallel_tool_calls", "true"),
        previous = echo(body, "previous_response_id", "null"),
        cache_key = echo(body, "prompt_cache_key", "null"),
        reasoning = echo(body, "reasoning", "{\"effort\":null,\"summary\":null}"),
        safety = echo(body, "safety_identifier", "null"),
        store = echo(body, "store", "true"),
        temperature = echo(body, "temperature", "1.0"),
        text = text,
        tool_choice = echo(body, "tool_choice", "\"auto\""),
        tools = echo(body, "tools", "[]"),
        top_logprobs = echo(body, "top_logprobs", "0"),
        top_p = echo(body, "top_p", "1.0"),
        truncation = echo(body, "truncation", "\"disabled\""),
        usage = usage,
        user = echo(body, "user", "null"),
        metadata = echo(body, "metadata", "{}"),
        completed_at = completed_at,
    )
}

/// Non-streamed `POST /v1/responses` body.
pub(crate) fn responses_json(body: &Value, view: &ReqView<'_>, out: &Output, meta: Meta) -> Bytes {
    let usage = responses_usage(view, out);
    Bytes::from(response_json(
        body,
        view,
        meta,
        true,
        &items_json(out, meta),
        &usage,
    ))
}

pub(crate) struct SseWriter {
    seq: u64,
    events: Vec<Bytes>,
}

impl SseWriter {
    fn new() -> Self {
        Self {
            seq: 0,
            events: Vec::with_capacity(16),
        }
    }

    /// A Responses event: `event: <type>`, then data `{"type", "sequence_number", fields...}`.
    pub(crate) fn typed(&mut self, event_type: &str, fields: &str) {
        let seq = self.seq;
        self.seq += 1;
        self.events.push(Bytes::from(format!(
            "event: {event_type}\ndata: {{\"type\":\"{event_type}\",\"sequence_number\":{seq},{fields}}}\n\n"
        )));
    }

    /// A Chat chunk: `data: <json>`.
    fn data(&mut self, json: &str) {
        self.events.push(Bytes::from(format!("data: {json}\n\n")));
    }

    fn done(&mut self) {
        self.events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
}

/// The events of an assistant text message at output `index`.
fn text_events(w: &mut SseWriter, text: &str, id: &str, index: usize, chunks: usize) {
    let at = format!("\"item_id\":{id},\"output_index\":{index},\"content_index\":0");
    let text_literal = js(text);
    w.typed(
        "response.output_item.added",
        &format!(
            "\"output_index\":{index},\"item\":{}",
            message_item_json(id, "in_progress", "")
        ),
    );
    w.typed(
        "response.content_part.added",
        &format!("{at},\"part\":{}", text_part_json("\"\"")),
    );
    for delta in split(text, chunks) {
        w.typed(
            "response.output_text.delta",
            &format!("{at},\"delta\":{},\"logprobs\":[]", js(delta)),
        );
    }
    w.typed(
        "response.output_text.done",
        &format!("{at},\"text\":{text_literal},\"logprobs\":[]"),
    );
    let part = text_part_json(&text_literal);
    w.typed(
        "response.content_part.done",
        &format!("{at},\"part\":{part}"),
    );
    w.typed(
        "response.output_item.done",
        &format!(
            "\"output_index\":{index},\"item\":{}",
            message_item_json(id, "completed", &part)
        ),
    );
}

/// SSE events of a streamed `POST /v1/responses`, one `Bytes` per event.
pub(crate) fn responses_events(
    body: &Value,
    view: &ReqView<'_>,
    out: &Output,
    meta: Meta,
    chunks: usize,
) -> Vec<Bytes> {
    let mut w = SseWriter::new();
    let start = response_json(body, view, meta, false, "[]", "null");
    w.typed("response.created", &format!("\"response\":{start}"));
    w.typed("response.in_progress", &format!("\"response\":{start}"));
    match out {
        Output::Text(text) => text_events(&mut w, text, &message_id(meta), 0, chunks),
        Output::Calls(calls) => {
            for (index, call) in calls.iter().enumerate() {
                let item_id = js(&call.item_id);
                let arguments = js(&call.arguments);
                w.typed(
                    "response.output_item.added",
                    &format!(
                        "\"output_index\":{index},\"item\":{}",
                        call_item_json(call, "\"\"", "in_progress")
                    ),
                );
                for delta in split(&call.arguments, chunks) {
                    w.typed(
                        "response.function_call_arguments.delta",
                        &format!(
                            "\"item_id\":{item_id},\"output_index\":{index},\"delta\":{}",
                            js(delta)
                        ),
                    );
                }
                w.typed(
                    "response.function_call_arguments.done",
                    &format!(
                        "\"item_id\":{item_id},\"output_index\":{index},\"name\":{},\"arguments\":{arguments}",
                        js(&call.name)
                    ),
                );
                w.typed(
                    "response.output_item.done",
                    &format!(
                        "\"output_index\":{index},\"item\":{}",
                        call_item_json(call, &arguments, "completed")
                    ),
                );
            }
        }
        Output::Approval {
            id,
            name,
            arguments,
            server_label,
        } => {
            let item = approval_item_json(id, name, arguments, server_label);
            w.typed(
                "response.output_item.added",
                &format!("\"output_index\":0,\"item\":{item}"),
            );
            w.typed(
                "response.output_item.done",
                &format!("\"output_index\":0,\"item\":{item}"),
            );
        }
        Output::Hosted { items, text } => {
            for (index, item) in items.iter().enumerate() {
                item.events(&mut w, index, chunks);
            }
            if let Some(text) = text {
                text_events(&mut w, text, &message_id(meta), items.len(), chunks);
            }
        }
    }
    let usage = responses_usage(view, out);
    let done = response_json(body, view, meta, true, &items_json(out, meta), &usage);
    w.typed("response.completed", &format!("\"response\":{done}"));
    w.events
}

// ------------------------------------------------------------ Chat Completions

pub(crate) fn chat_usage(view: &ReqView<'_>, out: &Output) -> String {
    let prompt = tokens(view.input_chars);
    let completion = tokens(out.chars());
    let total = prompt + completion;
    format!(
        concat!(
            "{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{total},",
            "\"prompt_tokens_details\":{{\"cached_tokens\":0,\"audio_tokens\":0}},",
            "\"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,",
            "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}}"
        ),
        prompt = prompt,
        completion = completion,
        total = total
    )
}

/// Non-streamed `POST /v1/chat/completions` body.
pub(crate) fn chat_json(view: &ReqView<'_>, out: &Output, meta: Meta) -> Bytes {
    let (message, finish) = match (out, out.chat_text()) {
        (Output::Calls(calls), _) => {
            let calls: Vec<String> = calls
                .iter()
                .map(|c| {
                    format!(
                        "{{\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":{}}}}}",
                        js(&c.call_id),
                        js(&c.name),
                        js(&c.arguments)
                    )
                })
                .collect();
            (
                format!(
                    "{{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":[{}],\"annotations\":[]}}",
                    calls.join(",")
                ),
                "tool_calls",
            )
        }
        (_, text) => (
            format!(
                "{{\"role\":\"assistant\",\"content\":{},\"refusal\":null,\"annotations\":[]}}",
                js(&text.unwrap_or_default())
            ),
            "stop",
        ),
    };
    Bytes::from(format!(
        concat!(
            "{{\"id\":\"chatcmpl-mock{n}\",\"object\":\"chat.completion\",\"created\":{created},",
            "\"model\":{model},\"choices\":[{{\"index\":0,\"message\":{message},",
            "\"logprobs\":null,\"finish_reason\":\"{finish}\"}}],\"usage\":{usage},",
            "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\"}}"
        ),
        n = meta.n,
        created = meta.created,
        model = js(view.model),
        message = message,
        finish = finish,
        usage = chat_usage(view, out),
    ))
}

/// SSE events of a streamed `POST /v1/chat/completions`, ending with `[DONE]`.
pub(crate) fn chat_events(
    view: &ReqView<'_>,
    out: &Output,
    meta: Meta,
    chunks: usize,
) -> Vec<Bytes> {
    let mut w = SseWriter::new();
    let base = format!(
        "{{\"id\":\"chatcmpl-mock{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\"",
        meta.n,
        meta.created,
        js(view.model)
    );
    let usage_null = if view.include_usage {
        ",\"usage\":null"
    } else {
        ""
    };
    let chunk = |w: &mut SseWriter, delta: &str, finish: &str| {
        w.data(&format!(
            "{base},\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]{usage_null}}}"
        ));
    };
    let finish = match (out, out.chat_text()) {
        (Output::Calls(calls), _) => {
            for (index, call) in calls.iter().enumerate() {
                let head = format!(
                    "[{{\"index\":{index},\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]",
                    js(&call.call_id),
                    js(&call.name)
                );
                let delta = if index == 0 {
                    format!(
                        "{{\"role\":\"assistant\",\"content\":null,\"tool_calls\":{head},\"refusal\":null}}"
                    )
                } else {
                    format!("{{\"tool_calls\":{head}}}")
                };
                chunk(&mut w, &delta, "null");
                for piece in split(&call.arguments, chunks) {
                    let delta = format!(
                        "{{\"tool_calls\":[{{\"index\":{index},\"function\":{{\"arguments\":{}}}}}]}}",
                        js(piece)
                    );
                    chunk(&mut w, &delta, "null");
                }
            }
            "\"tool_calls\""
        }
        (_, text) => {
            let text = text.unwrap_or_default();
            chunk(
                &mut w,
                "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
                "null",
            );
            for piece in split(&text, chunks) {
                chunk(&mut w, &format!("{{\"content\":{}}}", js(piece)), "null");
            }
            "\"stop\""
        }
    };
    chunk(&mut w, "{}", finish);
    if view.include_usage {
        w.data(&format!(
            "{base},\"choices\":[],\"usage\":{}}}",
            chat_usage(view, out)
        ));
    }
    w.done();
    w.events
}

// ------------------------------------------------------------------ Faults

/// A 200 body that is not valid JSON.
pub(crate) fn malformed_json(meta: Meta) -> Bytes {
    Bytes::from(format!(
        "{{\"id\":\"resp_mock{}\",\"object\":\"response\",\"output\":[{{\"type\":\"message\",",
        meta.n
    ))
}

/// An SSE stream whose event data is not valid JSON (then a normal end).
pub(crate) fn malformed_events(chat: bool, meta: Meta) -> Vec<Bytes> {
    if chat {
        vec![
            Bytes::from(format!(
                "data: {{\"id\":\"chatcmpl-mock{}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\n\n",
                meta.n
            )),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ]
    } else {
        vec![Bytes::from(format!(
            "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{{\"id\":\"resp_mock{}\",\n\n",
            meta.n
        ))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_char_boundaries() {
        assert_eq!(split("", 4), Vec::<&str>::new());
        assert_eq!(split("abcdefghij", 4), vec!["abc", "def", "ghi", "j"]);
        assert_eq!(split("ééé", 4), vec!["é", "é", "é"]);
        assert_eq!(split("ab", 1), vec!["ab"]);
        assert_eq!(split("héllo wörld", 3).concat(), "héllo wörld");
    }
}

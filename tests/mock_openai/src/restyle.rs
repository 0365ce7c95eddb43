//! Applying reply styles (see `style.rs`) to rendered answers.
//!
//! Only used when a request has styles: the plain path in `render.rs` stays
//! text-formatted for speed, and this one works on `Value` trees (re-parsing
//! the rendered JSON), which is simpler to get right for every combination.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::render::{self, Meta, Output};
use crate::request::ReqView;
use crate::style::{Style, Styles};

/// Characters per argument delta with `split_tool_args`.
const TINY: usize = 3;

fn retain(map: &mut Map<String, Value>, keep: &[&str]) {
    map.retain(|k, _| keep.contains(&k.as_str()));
}

fn usage(usage: &mut Value, st: Styles) {
    let Some(map) = usage.as_object_mut() else {
        return;
    };
    if st.has(Style::BareUsage) || st.has(Style::Minimal) {
        map.retain(|k, _| !k.ends_with("_tokens_details"));
    }
    if st.has(Style::Extra) {
        map.insert("x_vendor_cost".into(), json!({"usd": 0.0}));
    }
}

/// Usage at `map["usage"]`: removed (no_usage, or null under minimal) or restyled.
fn usage_field(map: &mut Map<String, Value>, st: Styles) {
    let null = map.get("usage").is_some_and(Value::is_null);
    if st.has(Style::NoUsage) || (null && st.has(Style::Minimal)) {
        map.remove("usage");
    } else if let Some(u) = map.get_mut("usage") {
        usage(u, st);
    }
}

fn part(part: &mut Value, st: Styles) {
    let Some(map) = part.as_object_mut() else {
        return;
    };
    if st.has(Style::Minimal) {
        retain(map, &["type", "text", "refusal"]);
    }
    if st.has(Style::Extra) {
        map.insert("x_vendor_part".into(), json!({"safe": true}));
    }
}

fn item(item: &mut Value, st: Styles) {
    let Some(map) = item.as_object_mut() else {
        return;
    };
    if st.has(Style::Minimal) {
        match map.get("type").and_then(Value::as_str) {
            Some("message") => retain(map, &["type", "role", "content"]),
            Some("function_call") => retain(map, &["type", "call_id", "name", "arguments"]),
            // Its id is what an approval response refers to.
            Some("mcp_approval_request") => {}
            _ => {
                map.remove("id");
                map.remove("status");
            }
        }
    }
    if let Some(Value::Array(parts)) = map.get_mut("content") {
        for p in parts {
            part(p, st);
        }
    }
    if st.has(Style::Extra) {
        map.insert("x_vendor_item".into(), json!({"trace": "mock"}));
    }
}

const VENDOR_NOTE: &str = "{\"type\":\"vendor_note\",\"text\":\"served by a mock gateway\"}";

/// A Responses response object; `note`: append the unknown output item.
fn response(resp: &mut Value, st: Styles, note: bool) {
    let Some(map) = resp.as_object_mut() else {
        return;
    };
    if st.has(Style::Minimal) {
        retain(map, &["model", "output", "usage"]);
    }
    usage_field(map, st);
    if let Some(Value::Array(items)) = map.get_mut("output") {
        for i in items.iter_mut() {
            item(i, st);
        }
        if note && st.has(Style::Extra) {
            items.push(VENDOR_NOTE.parse().unwrap_or(Value::Null));
        }
    }
    if st.has(Style::Extra) {
        map.insert("x_vendor".into(), json!({"region": "mock-1"}));
    }
}

fn chat_choice(choice: &mut Value, st: Styles) {
    let Some(map) = choice.as_object_mut() else {
        return;
    };
    if st.has(Style::Minimal) {
        retain(map, &["index", "message", "delta", "finish_reason"]);
    }
    for key in ["message", "delta"] {
        if let Some(Value::Object(m)) = map.get_mut(key) {
            if st.has(Style::Minimal) {
                retain(m, &["role", "content", "tool_calls"]);
            }
            if st.has(Style::Extra) {
                m.insert("x_vendor_message".into(), json!({"lang": "en"}));
            }
        }
    }
    if st.has(Style::Extra) {
        map.insert("x_vendor_choice".into(), json!({"rank": 0}));
    }
}

/// A Chat completion or chunk.
fn chat_object(obj: &mut Value, st: Styles) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if st.has(Style::Minimal) {
        // The official Python SDK's `chat.completions.stream` helper drops
        // chunks whose `object` is not "chat.completion.chunk": keep it there.
        let chunk = map.get("object").and_then(Value::as_str) == Some("chat.completion.chunk");
        let keep: &[&str] = if chunk {
            &["object", "model", "choices", "usage"]
        } else {
            &["model", "choices", "usage"]
        };
        retain(map, keep);
    }
    usage_field(map, st);
    if let Some(Value::Array(choices)) = map.get_mut("choices") {
        for c in choices {
            chat_choice(c, st);
        }
    }
    if st.has(Style::Extra) {
        map.insert("x_vendor".into(), json!({"region": "mock-1"}));
    }
}

/// A non-streamed body with the body styles applied.
pub(crate) fn json_body(bytes: &Bytes, chat: bool, st: Styles) -> Bytes {
    let Ok(mut value) = std::str::from_utf8(bytes)
        .map_err(|_| ())
        .and_then(|t| t.parse::<Value>().map_err(|_| ()))
    else {
        return bytes.clone();
    };
    if chat {
        chat_object(&mut value, st);
    } else {
        response(&mut value, st, true);
    }
    Bytes::from(value.to_string())
}

/// One SSE event before framing.
enum Event {
    /// A Responses event: name and data.
    Typed(String, Value),
    /// A Chat chunk.
    Data(Value),
    /// `data: [DONE]`.
    Done,
}

/// Frames events as SSE with the stream styles.
fn frame(events: Vec<Event>, st: Styles) -> Vec<Bytes> {
    let crlf = |text: String| {
        if st.has(Style::Crlf) {
            text.replace('\n', "\r\n")
        } else {
            text
        }
    };
    events
        .into_iter()
        .map(|event| {
            let mut text = String::new();
            if st.has(Style::Keepalive) {
                text.push_str(": keep-alive\n\n\n");
            }
            match event {
                Event::Typed(name, data) if !st.has(Style::DataOnly) => {
                    text.push_str(&format!("event: {name}\ndata: {data}\n\n"));
                }
                Event::Typed(_, data) | Event::Data(data) => {
                    text.push_str(&format!("data: {data}\n\n"));
                }
                Event::Done => text.push_str("data: [DONE]\n\n"),
            }
            Bytes::from(crlf(text))
        })
        .collect()
}

/// Reads back `render::responses_events` output (`event:` + `data:` blocks).
fn parse_typed(events: &[Bytes]) -> Vec<Event> {
    let mut out = Vec::with_capacity(events.len());
    for raw in events {
        let text = String::from_utf8_lossy(raw);
        let mut name = None;
        let mut data = None;
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = d.parse::<Value>().ok();
            }
        }
        if let (Some(name), Some(data)) = (name, data) {
            out.push(Event::Typed(name, data));
        }
    }
    out
}

fn typed(name: &str, fields: Value) -> Event {
    let mut data = json!({"type": name, "sequence_number": 0});
    if let (Some(map), Value::Object(extra)) = (data.as_object_mut(), fields) {
        map.extend(extra);
    }
    Event::Typed(name.to_owned(), data)
}

/// Tool-call argument deltas of `TINY` characters for `done` (a
/// `response.function_call_arguments.done` event).
fn tiny_argument_deltas(done: &Value) -> Vec<Event> {
    let arguments = done["arguments"].as_str().unwrap_or_default();
    render::split(arguments, arguments.chars().count().div_ceil(TINY))
        .into_iter()
        .map(|piece| {
            typed(
                "response.function_call_arguments.delta",
                json!({"item_id": done["item_id"], "output_index": done["output_index"],
                       "delta": piece}),
            )
        })
        .collect()
}

/// A streamed Responses answer with the styles applied.
pub(crate) fn responses_stream(events: &[Bytes], st: Styles) -> Vec<Bytes> {
    let mut out = Vec::new();
    for event in parse_typed(events) {
        let Event::Typed(name, mut data) = event else {
            continue;
        };
        if st.has(Style::SplitToolArgs) {
            match name.as_str() {
                "response.function_call_arguments.delta" => continue,
                "response.function_call_arguments.done" => out.extend(tiny_argument_deltas(&data)),
                _ => {}
            }
        }
        let completed = name == "response.completed";
        if completed && st.has(Style::Extra) {
            let index = data["response"]["output"].as_array().map_or(0, Vec::len);
            let note: Value = VENDOR_NOTE.parse().unwrap_or(Value::Null);
            for kind in ["response.output_item.added", "response.output_item.done"] {
                out.push(typed(kind, json!({"output_index": index, "item": note})));
            }
        }
        if let Some(map) = data.as_object_mut() {
            if let Some(r) = map.get_mut("response") {
                response(r, st, completed);
            }
            if let Some(i) = map.get_mut("item") {
                item(i, st);
            }
            if let Some(p) = map.get_mut("part") {
                part(p, st);
            }
        }
        out.push(Event::Typed(name, data));
        if out.len() == 2 && st.has(Style::Extra) {
            out.push(typed(
                "response.vendor.heartbeat",
                json!({"x_vendor": {"load": 0.5}}),
            ));
        }
    }
    let mut seq = 0u64;
    for event in &mut out {
        if let Event::Typed(_, Value::Object(map)) = event {
            if st.has(Style::Minimal) {
                map.remove("sequence_number");
                map.remove("logprobs");
            } else {
                map.insert("sequence_number".into(), Value::from(seq));
                seq += 1;
            }
            if st.has(Style::Extra) {
                map.entry("x_vendor_event").or_insert(Value::Bool(true));
            }
        }
    }
    if st.has(Style::ResponsesDone) {
        out.push(Event::Done);
    }
    frame(out, st)
}

/// A streamed Chat answer built with the styles.
pub(crate) fn chat_stream(
    view: &ReqView<'_>,
    out: &Output,
    meta: Meta,
    chunks: usize,
    st: Styles,
) -> Vec<Bytes> {
    let mut list: Vec<Value> = Vec::new();
    let assistant = |delta: &mut Value| {
        if let Some(map) = delta.as_object_mut() {
            map.insert("role".into(), Value::from("assistant"));
        }
    };
    let finish = match (out, out.chat_text()) {
        (Output::Calls(calls), _) => {
            for (index, call) in calls.iter().enumerate() {
                let whole = st.has(Style::WholeToolCall);
                let head_args = if whole { call.arguments.as_str() } else { "" };
                let mut delta = json!({"tool_calls": [{"index": index, "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": head_args}}]});
                if index == 0 {
                    assistant(&mut delta);
                    delta["content"] = Value::Null;
                    delta["refusal"] = Value::Null;
                }
                list.push(delta);
                if whole {
                    continue;
                }
                let count = call.arguments.chars().count();
                let parts = if st.has(Style::SplitToolArgs) {
                    count.div_ceil(TINY)
                } else {
                    chunks
                };
                for piece in render::split(&call.arguments, parts) {
                    list.push(json!({"tool_calls": [{"index": index,
                        "function": {"arguments": piece}}]}));
                }
            }
            "tool_calls"
        }
        (_, text) => {
            let text = text.unwrap_or_default();
            if !st.has(Style::RoleInContent) {
                list.push(json!({"role": "assistant", "content": "", "refusal": null}));
            }
            for piece in render::split(&text, chunks) {
                list.push(json!({ "content": piece }));
            }
            if st.has(Style::RoleInContent) {
                match list.first_mut() {
                    Some(first) => assistant(first),
                    None => list.push(json!({"role": "assistant", "content": ""})),
                }
            }
            "stop"
        }
    };
    let include_usage = view.include_usage && !st.has(Style::NoUsage);
    let base = json!({"id": format!("chatcmpl-mock{}", meta.n),
        "object": "chat.completion.chunk", "created": meta.created, "model": view.model,
        "service_tier": "default", "system_fingerprint": "fp_mock"});
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = base.clone();
        c["choices"] = json!([{"index": 0, "delta": delta, "logprobs": null,
                                "finish_reason": finish}]);
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let last = list.len().saturating_sub(1);
    let on_content = st.has(Style::FinishOnContent);
    let mut events: Vec<Event> = list
        .into_iter()
        .enumerate()
        .map(|(i, delta)| {
            let f = (on_content && i == last).then_some(finish);
            Event::Data(chunk(delta, f))
        })
        .collect();
    if !on_content {
        events.push(Event::Data(chunk(json!({}), Some(finish))));
    }
    if include_usage {
        let mut c = base.clone();
        c["choices"] = if st.has(Style::UsageInChoice) {
            json!([{"index": 0, "delta": {}, "finish_reason": null}])
        } else {
            json!([])
        };
        c["usage"] = render::chat_usage(view, out).parse().unwrap_or(Value::Null);
        events.push(Event::Data(c));
    }
    for event in &mut events {
        if let Event::Data(c) = event {
            chat_object(c, st);
        }
    }
    if !st.has(Style::NoDone) {
        events.push(Event::Done);
    }
    frame(events, st)
}

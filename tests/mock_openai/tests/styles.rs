//! Reply styles: every style × API × streamed or not × scenario (text, tool
//! call, tool round trip, structured output) is checked on the raw bytes: the
//! reply is still complete and valid, and the style's deviation is there.

mod common;

use common::{raw_request, start};
use mock_openai::{Match, MockConfig, MockServer, Reply, Rule, STYLE_HEADER, Style};
use serde_json::{Value, json};

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e}", stringify!($e)),
        }
    };
}

const MODEL: &str = "gpt-4.1-mini";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Responses,
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Text,
    ToolCall,
    ToolResult,
    Structured,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario::Text,
    Scenario::ToolCall,
    Scenario::ToolResult,
    Scenario::Structured,
];

fn params() -> Value {
    json!({"type": "object", "properties": {"query": {"type": "string"},
        "limit": {"type": "integer"}}, "required": ["query", "limit"]})
}

fn schema() -> Value {
    json!({"type": "object", "properties": {"title": {"type": "string"},
        "score": {"type": "number"}}, "required": ["title", "score"]})
}

fn request(api: Api, scenario: Scenario, stream: bool) -> (&'static str, Value) {
    let marker = matches!(scenario, Scenario::ToolCall | Scenario::ToolResult);
    let system = if marker {
        "Plan. [[use_tool]]"
    } else {
        "Plan."
    };
    match api {
        Api::Responses => {
            let mut input = vec![json!({"role": "user", "content": "find things"})];
            if scenario == Scenario::ToolResult {
                input.push(json!({"type": "function_call", "call_id": "c1",
                    "name": "lookup", "arguments": "{}"}));
                input.push(json!({"type": "function_call_output", "call_id": "c1",
                    "output": "facts"}));
            }
            let mut body = json!({"model": MODEL, "instructions": system, "input": input,
                "stream": stream,
                "tools": [{"type": "function", "name": "lookup", "parameters": params()}]});
            if scenario == Scenario::Structured {
                body["text"] = json!({"format": {"type": "json_schema", "name": "r",
                    "schema": schema(), "strict": true}});
            }
            ("/v1/responses", body)
        }
        Api::Chat => {
            let mut messages = vec![
                json!({"role": "system", "content": system}),
                json!({"role": "user", "content": "find things"}),
            ];
            if scenario == Scenario::ToolResult {
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "lookup", "arguments": "{}"}}]}));
                messages.push(json!({"role": "tool", "tool_call_id": "c1", "content": "facts"}));
            }
            let mut body = json!({"model": MODEL, "messages": messages, "stream": stream,
                "tools": [{"type": "function",
                           "function": {"name": "lookup", "parameters": params()}}]});
            if stream {
                body["stream_options"] = json!({"include_usage": true});
            }
            if scenario == Scenario::Structured {
                body["response_format"] = json!({"type": "json_schema",
                    "json_schema": {"name": "r", "schema": schema(), "strict": true}});
            }
            ("/v1/chat/completions", body)
        }
    }
}

async fn send(
    server: &MockServer,
    path: &str,
    body: &Value,
    styles: Option<&str>,
) -> common::RawResponse {
    let bytes = body.to_string().into_bytes();
    let headers: Vec<(&str, &str)> = styles.map(|s| (STYLE_HEADER, s)).into_iter().collect();
    ok!(raw_request(server.addr(), "POST", path, Some(&bytes), &headers).await)
}

/// An SSE stream parsed per the WHATWG rules (LF, CRLF or CR line ends).
#[derive(Debug, Default)]
struct Sse {
    /// `(event: value, data)` per dispatched event.
    events: Vec<(Option<String>, String)>,
    comments: usize,
    /// Empty lines that dispatched nothing.
    idle_blank_lines: usize,
}

fn parse_sse(raw: &[u8]) -> Sse {
    let text = ok!(std::str::from_utf8(raw));
    let mut sse = Sse::default();
    let mut event = None;
    let mut data: Option<String> = None;
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            match data.take() {
                Some(d) => sse.events.push((event.take(), d)),
                None if event.is_none() => sse.idle_blank_lines += 1,
                None => event = None,
            }
        } else if line.starts_with(':') {
            sse.comments += 1;
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim_start().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            data = Some(match data {
                Some(d) => format!("{d}\n{v}"),
                None => v.to_owned(),
            });
        } else {
            panic!("unexpected SSE line {line:?}");
        }
    }
    assert!(data.is_none(), "stream ends inside an event");
    sse
}

/// What a lenient client (like the official Python SDK) reconstructs.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    text: String,
    /// `(call id, name, arguments)`.
    calls: Vec<(String, String, String)>,
    usage: Option<Value>,
    finish: Option<String>,
    /// Every JSON object sent (body, events, chunks) for shape checks.
    objects: Vec<Value>,
    /// Stream only: the event / chunk data in order (`[DONE]` as a string).
    datas: Vec<String>,
    event_names: Vec<Option<String>>,
}

fn responses_output(response: &Value, answer: &mut Answer) {
    for item in response["output"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    answer
                        .text
                        .push_str(part["text"].as_str().unwrap_or_default());
                }
            }
            Some("function_call") => answer.calls.push((
                item["call_id"].as_str().unwrap_or_default().to_owned(),
                item["name"].as_str().unwrap_or_default().to_owned(),
                item["arguments"].as_str().unwrap_or_default().to_owned(),
            )),
            _ => {}
        }
    }
    answer.usage = response.get("usage").filter(|u| !u.is_null()).cloned();
}

fn read(api: Api, stream: bool, raw: &common::RawResponse) -> Answer {
    assert_eq!(raw.status, 200, "{}", raw.text());
    let mut answer = Answer::default();
    if !stream {
        let body = raw.json();
        answer.objects.push(body.clone());
        match api {
            Api::Responses => responses_output(&body, &mut answer),
            Api::Chat => {
                let choice = &body["choices"][0];
                let message = &choice["message"];
                answer.text = message["content"].as_str().unwrap_or_default().to_owned();
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    answer.calls.push((
                        call["id"].as_str().unwrap_or_default().to_owned(),
                        call["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        call["function"]["arguments"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    ));
                }
                answer.finish = choice["finish_reason"].as_str().map(str::to_owned);
                answer.usage = body.get("usage").cloned();
            }
        }
        return answer;
    }
    let sse = parse_sse(&raw.body);
    let mut streamed_text = String::new();
    let mut streamed_args: Vec<String> = Vec::new();
    for (name, data) in &sse.events {
        answer.datas.push(data.clone());
        answer.event_names.push(name.clone());
        if data == "[DONE]" {
            continue;
        }
        let value: Value = ok!(serde_json::from_str(data));
        answer.objects.push(value.clone());
        match api {
            Api::Responses => {
                let kind = value["type"].as_str().unwrap_or_default();
                if let Some(name) = name {
                    assert_eq!(name, kind, "event: line matches the data's type");
                }
                match kind {
                    "response.output_text.delta" => {
                        streamed_text.push_str(value["delta"].as_str().unwrap_or_default());
                    }
                    "response.function_call_arguments.delta" => {
                        let index = value["output_index"].as_u64().unwrap_or(0);
                        let index = usize::try_from(index).unwrap_or(0);
                        if streamed_args.len() <= index {
                            streamed_args.resize(index + 1, String::new());
                        }
                        streamed_args[index].push_str(value["delta"].as_str().unwrap_or_default());
                    }
                    "response.completed" => responses_output(&value["response"], &mut answer),
                    _ => {}
                }
            }
            Api::Chat => {
                if let Some(usage) = value.get("usage").filter(|u| !u.is_null()) {
                    answer.usage = Some(usage.clone());
                }
                for choice in value["choices"].as_array().into_iter().flatten() {
                    let delta = &choice["delta"];
                    streamed_text.push_str(delta["content"].as_str().unwrap_or_default());
                    for call in delta["tool_calls"].as_array().into_iter().flatten() {
                        let index =
                            usize::try_from(call["index"].as_u64().unwrap_or(0)).unwrap_or(0);
                        if answer.calls.len() <= index {
                            answer.calls.resize(index + 1, Default::default());
                        }
                        let slot = &mut answer.calls[index];
                        if let Some(id) = call["id"].as_str() {
                            slot.0 = id.to_owned();
                        }
                        if let Some(name) = call["function"]["name"].as_str() {
                            slot.1 = name.to_owned();
                        }
                        slot.2
                            .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
                    }
                    if let Some(f) = choice["finish_reason"].as_str() {
                        answer.finish = Some(f.to_owned());
                    }
                }
            }
        }
    }
    match api {
        Api::Responses => {
            assert_eq!(
                streamed_text, answer.text,
                "deltas add up to the final text"
            );
            let finals: Vec<&str> = answer.calls.iter().map(|c| c.2.as_str()).collect();
            let streamed: Vec<&str> = streamed_args
                .iter()
                .map(String::as_str)
                .filter(|a| !a.is_empty())
                .collect();
            assert_eq!(streamed, finals, "argument deltas add up");
        }
        Api::Chat => answer.text = streamed_text,
    }
    answer
}

/// The reply is complete whatever the style.
fn check_content(api: Api, scenario: Scenario, answer: &Answer) {
    match scenario {
        Scenario::ToolCall => {
            assert_eq!(answer.calls.len(), 1, "{answer:?}");
            let (id, name, arguments) = &answer.calls[0];
            assert!(!id.is_empty());
            assert_eq!(name, "lookup");
            let args: Value = ok!(serde_json::from_str(arguments));
            assert!(
                args["query"].is_string() && args["limit"].is_i64(),
                "{args}"
            );
            if api == Api::Chat {
                assert_eq!(answer.finish.as_deref(), Some("tool_calls"));
            }
        }
        Scenario::Text | Scenario::ToolResult => {
            assert!(answer.calls.is_empty());
            assert!(answer.text.starts_with("reply "), "{answer:?}");
            if api == Api::Chat {
                assert_eq!(answer.finish.as_deref(), Some("stop"));
            }
        }
        Scenario::Structured => {
            let value: Value = ok!(serde_json::from_str(&answer.text));
            assert!(value["title"].is_string() && value["score"].is_number());
        }
    }
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn assert_keys_within(value: &Value, allowed: &[&str], what: &str) {
    for key in keys(value) {
        assert!(
            allowed.contains(&key.as_str()),
            "{what}: unexpected key {key} in {value}"
        );
    }
}

/// Every usage object in the answer.
fn usages(api: Api, answer: &Answer) -> Vec<Value> {
    let mut out = Vec::new();
    for object in &answer.objects {
        let holder = match api {
            Api::Responses if object.get("response").is_some() => &object["response"],
            _ => object,
        };
        if let Some(u) = holder.get("usage").filter(|u| !u.is_null()) {
            out.push(u.clone());
        }
    }
    out
}

/// Responses objects (non-streamed body, or each event's `response`) and
/// output items, with where they come from.
fn responses_parts(answer: &Answer) -> (Vec<Value>, Vec<Value>) {
    let mut responses = Vec::new();
    let mut items = Vec::new();
    for object in &answer.objects {
        let response = if object.get("output").is_some() {
            Some(object)
        } else {
            object.get("response")
        };
        if let Some(r) = response {
            responses.push(r.clone());
            items.extend(r["output"].as_array().cloned().unwrap_or_default());
        }
        if let Some(item) = object.get("item") {
            items.push(item.clone());
        }
    }
    (responses, items)
}

fn chat_choices(answer: &Answer) -> Vec<Value> {
    answer
        .objects
        .iter()
        .flat_map(|o| o["choices"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The style's own deviation is visible.
#[expect(clippy::too_many_lines, reason = "one arm per style")]
fn check_style(
    style: Style,
    api: Api,
    stream: bool,
    scenario: Scenario,
    raw: &[u8],
    answer: &Answer,
) {
    let text = String::from_utf8_lossy(raw);
    let tool = scenario == Scenario::ToolCall;
    match style {
        Style::NoUsage => {
            assert!(usages(api, answer).is_empty(), "usage present");
            for object in &answer.objects {
                let holder = object.get("response").unwrap_or(object);
                assert!(holder.get("usage").is_none(), "usage key in {object}");
            }
        }
        Style::BareUsage => {
            let list = usages(api, answer);
            assert!(!list.is_empty(), "usage missing");
            let want = match api {
                Api::Responses => ["input_tokens", "output_tokens", "total_tokens"],
                Api::Chat => ["prompt_tokens", "completion_tokens", "total_tokens"],
            };
            for u in list {
                let mut k = keys(&u);
                k.sort();
                let mut w: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
                w.sort();
                assert_eq!(k, w, "{u}");
            }
        }
        Style::Minimal => match api {
            Api::Responses => {
                let (responses, items) = responses_parts(answer);
                assert!(!responses.is_empty());
                for r in &responses {
                    assert_keys_within(r, &["model", "output", "usage"], "response");
                    assert!(r["model"].is_string());
                }
                for item in &items {
                    match item["type"].as_str() {
                        Some("message") => {
                            assert_keys_within(item, &["type", "role", "content"], "message");
                            for part in item["content"].as_array().into_iter().flatten() {
                                assert_keys_within(part, &["type", "text"], "part");
                            }
                        }
                        Some("function_call") => assert_keys_within(
                            item,
                            &["type", "call_id", "name", "arguments"],
                            "call",
                        ),
                        other => panic!("unexpected item type {other:?}"),
                    }
                }
                for object in &answer.objects {
                    assert!(object.get("sequence_number").is_none(), "{object}");
                    assert!(object.get("logprobs").is_none(), "{object}");
                }
                for u in usages(api, answer) {
                    assert!(keys(&u).iter().all(|k| !k.ends_with("_details")), "{u}");
                }
            }
            Api::Chat => {
                for object in &answer.objects {
                    if stream {
                        // Kept: the Python SDK's stream helper filters on it.
                        assert_eq!(object["object"], "chat.completion.chunk");
                        let keep = ["object", "model", "choices", "usage"];
                        assert_keys_within(object, &keep, "chat chunk");
                    } else {
                        assert_keys_within(object, &["model", "choices", "usage"], "completion");
                    }
                }
                for choice in chat_choices(answer) {
                    assert_keys_within(
                        &choice,
                        &["index", "message", "delta", "finish_reason"],
                        "choice",
                    );
                    let m = choice.get("message").unwrap_or(&choice["delta"]);
                    assert_keys_within(m, &["role", "content", "tool_calls"], "message");
                }
            }
        },
        Style::Extra => match api {
            Api::Responses => {
                let (responses, items) = responses_parts(answer);
                assert!(responses.iter().all(|r| r.get("x_vendor").is_some()));
                let last = responses.last().map(|r| r["output"].clone());
                let last_type = last
                    .as_ref()
                    .and_then(|o| o.as_array())
                    .and_then(|o| o.last())
                    .map(|i| i["type"].clone());
                assert_eq!(last_type, Some(json!("vendor_note")));
                assert!(
                    items
                        .iter()
                        .all(|i| i["type"] == "vendor_note" || i.get("x_vendor_item").is_some())
                );
                for u in usages(api, answer) {
                    assert!(u.get("x_vendor_cost").is_some());
                }
                if stream {
                    let types: Vec<&str> = answer
                        .objects
                        .iter()
                        .filter_map(|o| o["type"].as_str())
                        .collect();
                    assert!(types.contains(&"response.vendor.heartbeat"), "{types:?}");
                    assert!(
                        answer
                            .objects
                            .iter()
                            .all(|o| o.get("x_vendor_event").is_some())
                    );
                }
            }
            Api::Chat => {
                assert!(answer.objects.iter().all(|o| o.get("x_vendor").is_some()));
                let choices = chat_choices(answer);
                assert!(!choices.is_empty());
                assert!(choices.iter().all(|c| c.get("x_vendor_choice").is_some()));
            }
        },
        Style::DataOnly if api == Api::Responses && stream => {
            assert!(answer.event_names.iter().all(Option::is_none));
            assert!(!text.contains("event:"));
            assert!(answer.objects.iter().all(|o| o["type"].is_string()));
        }
        Style::ResponsesDone if stream => {
            assert_eq!(answer.datas.last().map(String::as_str), Some("[DONE]"));
        }
        Style::NoDone if stream && api == Api::Chat => {
            assert!(!answer.datas.iter().any(|d| d == "[DONE]"));
            assert!(answer.datas.last().is_some_and(|d| d.starts_with('{')));
        }
        Style::UsageInChoice if stream && api == Api::Chat => {
            let last = answer.objects.last().cloned().unwrap_or_default();
            assert!(last["usage"].is_object(), "{last}");
            assert_eq!(
                last["choices"],
                json!([{"index": 0, "delta": {}, "finish_reason": null}])
            );
        }
        Style::WholeToolCall if stream && api == Api::Chat && tool => {
            let with_calls: Vec<&Value> = answer
                .objects
                .iter()
                .filter(|o| o["choices"][0]["delta"].get("tool_calls").is_some())
                .collect();
            assert_eq!(with_calls.len(), 1);
            let call = &with_calls[0]["choices"][0]["delta"]["tool_calls"][0];
            assert!(call["id"].is_string() && call["type"] == "function");
            let args = call["function"]["arguments"].as_str().unwrap_or_default();
            let _: Value = ok!(serde_json::from_str(args));
        }
        Style::SplitToolArgs if stream && tool => {
            let pieces: Vec<String> = match api {
                Api::Chat => {
                    let calls: Vec<&Value> = answer
                        .objects
                        .iter()
                        .filter_map(|o| o["choices"][0]["delta"].get("tool_calls"))
                        .map(|c| &c[0])
                        .collect();
                    assert!(calls[0]["id"].is_string() && calls[0]["function"]["name"] == "lookup");
                    assert_eq!(calls[0]["function"]["arguments"], "");
                    calls[1..]
                        .iter()
                        .map(|c| c["function"]["arguments"].as_str().unwrap_or("").to_owned())
                        .collect()
                }
                Api::Responses => answer
                    .objects
                    .iter()
                    .filter(|o| o["type"] == "response.function_call_arguments.delta")
                    .map(|o| o["delta"].as_str().unwrap_or_default().to_owned())
                    .collect(),
            };
            assert!(pieces.len() > 5, "{pieces:?}");
            assert!(pieces.iter().all(|p| (1..=3).contains(&p.chars().count())));
        }
        Style::RoleInContent if stream && api == Api::Chat && !tool => {
            let first = &answer.objects[0]["choices"][0]["delta"];
            assert_eq!(first["role"], "assistant");
            assert!(
                first["content"].as_str().is_some_and(|c| !c.is_empty()),
                "{first}"
            );
        }
        Style::FinishOnContent if stream && api == Api::Chat => {
            let finishing: Vec<&Value> = answer
                .objects
                .iter()
                .filter(|o| o["choices"][0]["finish_reason"].is_string())
                .collect();
            assert_eq!(finishing.len(), 1);
            let delta = &finishing[0]["choices"][0]["delta"];
            if tool {
                assert!(delta["tool_calls"].is_array(), "{delta}");
            } else {
                assert!(delta["content"].as_str().is_some_and(|c| !c.is_empty()));
            }
        }
        Style::Keepalive if stream => {
            let sse = parse_sse(raw);
            assert!(sse.comments >= sse.events.len() - 1, "{sse:?}");
            assert!(sse.idle_blank_lines > 0);
            assert!(text.contains(": keep-alive"));
        }
        Style::Crlf if stream => {
            assert!(text.contains("\r\n"));
            let bare_lf = text
                .char_indices()
                .filter(|&(i, c)| c == '\n' && (i == 0 || text.as_bytes()[i - 1] != b'\r'))
                .count();
            assert_eq!(bare_lf, 0, "only CRLF line ends");
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_style_api_stream_and_scenario() {
    let server = start(MockConfig::default()).await;
    for style in Style::ALL {
        for api in [Api::Responses, Api::Chat] {
            for stream in [false, true] {
                for scenario in SCENARIOS {
                    let (path, body) = request(api, scenario, stream);
                    let raw = send(&server, path, &body, Some(style.name())).await;
                    let context = format!("{style} {api:?} stream={stream} {scenario:?}");
                    let answer = read(api, stream, &raw);
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        check_content(api, scenario, &answer);
                        check_style(style, api, stream, scenario, &raw.body, &answer);
                    }));
                    if let Err(e) = result {
                        panic!("{context}: {e:?}\n{}", raw.text());
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn without_styles_the_bodies_are_unchanged() {
    // The baseline the styles deviate from: details in usage, event lines,
    // [DONE] only on Chat, a role-only first chunk, a separate finish chunk.
    let server = start(MockConfig::default()).await;
    let (path, body) = request(Api::Responses, Scenario::Text, true);
    let raw = send(&server, path, &body, None).await;
    let answer = read(Api::Responses, true, &raw);
    assert!(answer.event_names.iter().all(Option::is_some));
    assert!(!answer.datas.iter().any(|d| d == "[DONE]"));
    let usage = answer.usage.clone().unwrap_or_default();
    assert!(usage["input_tokens_details"].is_object());
    let (path, body) = request(Api::Chat, Scenario::Text, true);
    let raw = send(&server, path, &body, None).await;
    let answer = read(Api::Chat, true, &raw);
    assert_eq!(answer.datas.last().map(String::as_str), Some("[DONE]"));
    let first = &answer.objects[0]["choices"][0]["delta"];
    assert_eq!(first["content"], "");
    assert!(answer.objects[0]["id"].is_string());
    assert!(!raw.text().contains('\r'));
}

#[tokio::test]
async fn styles_combine() {
    let server = start(MockConfig::default()).await;
    let all = "no_usage,minimal,extra,data_only,responses_done,keepalive,crlf,split_tool_args";
    let (path, body) = request(Api::Responses, Scenario::ToolCall, true);
    let raw = send(&server, path, &body, Some(all)).await;
    let answer = read(Api::Responses, true, &raw);
    check_content(Api::Responses, Scenario::ToolCall, &answer);
    for style in [
        Style::NoUsage,
        Style::DataOnly,
        Style::ResponsesDone,
        Style::Keepalive,
        Style::Crlf,
        Style::SplitToolArgs,
    ] {
        check_style(
            style,
            Api::Responses,
            true,
            Scenario::ToolCall,
            &raw.body,
            &answer,
        );
    }
    let chat = "bare_usage,usage_in_choice,role_in_content,finish_on_content,no_done,crlf";
    let (path, body) = request(Api::Chat, Scenario::Text, true);
    let raw = send(&server, path, &body, Some(chat)).await;
    let answer = read(Api::Chat, true, &raw);
    check_content(Api::Chat, Scenario::Text, &answer);
    for style in [
        Style::BareUsage,
        Style::UsageInChoice,
        Style::RoleInContent,
        Style::FinishOnContent,
        Style::NoDone,
        Style::Crlf,
    ] {
        check_style(style, Api::Chat, true, Scenario::Text, &raw.body, &answer);
    }
}

#[tokio::test]
async fn precedence_header_then_rule_then_global() {
    let config = MockConfig::default()
        .with_styles([Style::NoUsage])
        .with_rule(
            Rule::new(Reply::Default)
                .when(Match::any().user_contains("ruled"))
                .with_styles([Style::BareUsage]),
        );
    let server = start(config).await;
    let usage_of = |raw: &common::RawResponse| raw.json().get("usage").cloned();
    let plain = json!({"model": MODEL, "input": "plain"});
    let ruled = json!({"model": MODEL, "input": "ruled"});
    // Global: no usage.
    let raw = send(&server, "/v1/responses", &plain, None).await;
    assert_eq!(usage_of(&raw), None);
    // Rule replaces the global styles: bare usage.
    let raw = send(&server, "/v1/responses", &ruled, None).await;
    let usage = usage_of(&raw).unwrap_or_default();
    assert!(usage["input_tokens"].is_u64() && usage.get("input_tokens_details").is_none());
    // The header replaces both; an empty header means no styles.
    let raw = send(&server, "/v1/responses", &ruled, Some("no_usage")).await;
    assert_eq!(usage_of(&raw), None);
    let raw = send(&server, "/v1/responses", &ruled, Some("")).await;
    assert!(usage_of(&raw).is_some_and(|u| u["input_tokens_details"].is_object()));
}

#[tokio::test]
async fn unknown_styles_are_rejected() {
    let server = start(MockConfig::default()).await;
    let body = json!({"model": MODEL, "input": "x"});
    let raw = send(&server, "/v1/responses", &body, Some("crlf,shiny")).await;
    assert_eq!(raw.status, 400);
    let error = &raw.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("shiny"))
    );
    assert_eq!(error["param"], STYLE_HEADER);
    let raw = send(
        &server,
        "/v1/responses",
        &body,
        Some("whole_tool_call,split_tool_args"),
    )
    .await;
    assert_eq!(raw.status, 400);
    assert!(MockConfig::from_json(r#"{"styles": ["shiny"]}"#).is_err());
    assert!(MockConfig::from_json(r#"{"styles": ["crlf", "no_done"]}"#).is_ok());
    assert!(MockConfig::from_json(r#"[{"reply": "default", "styles": ["nope"]}]"#).is_err());
    assert!(
        MockConfig::from_json(r#"{"styles": ["whole_tool_call", "split_tool_args"]}"#).is_err()
    );
    let config = ok!(MockConfig::from_json(
        r#"[{"reply": "default", "styles": ["minimal"]}]"#
    ));
    assert_eq!(config.rules[0].styles, Some(vec![Style::Minimal]));
}

use super::*;
use crate::llm::limits::ReplyLimits;
use crate::llm::sse::SseDecoder;
use serde_json::json;

fn whole(body: Value) -> Result<Answer, Failure> {
    parse_response(body.to_string().as_bytes())
}

/// Feeds `raw` to a decoder in small pieces and the events to an
/// assembler; returns the answer and the calls announced.
fn stream(raw: &str) -> (Result<Answer, Failure>, Vec<String>) {
    let mut decoder = SseDecoder::new(ReplyLimits::default());
    let mut assembler = StreamAssembler::default();
    let started = std::sync::Mutex::new(Vec::new());
    let on = |e: StreamEvent| {
        if let StreamEvent::FunctionCallStarted { call_id, name } = e {
            started.lock().unwrap().push(format!("{call_id}:{name}"));
        }
    };
    let mut tap = DeltaTap::new(Some(&on));
    let mut events = Vec::new();
    let mut result = Ok(());
    for piece in raw.as_bytes().chunks(5) {
        decoder.feed(piece, &mut events).expect("decodes");
        for event in events.drain(..) {
            if result.is_ok() {
                result = assembler.on_event(&event, &mut tap);
            }
        }
    }
    decoder.finish(&mut events);
    for event in events.drain(..) {
        if result.is_ok() {
            result = assembler.on_event(&event, &mut tap);
        }
    }
    (
        result.and_then(|()| assembler.finish()),
        started.into_inner().unwrap(),
    )
}

fn chunks(chunks: &[Value], done: bool) -> String {
    let mut raw: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        raw.push_str("data: [DONE]\n\n");
    }
    raw
}

fn call(id: &str, name: &str, arguments: &str) -> Item {
    Item::FunctionCall {
        call_id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

#[test]
fn a_bare_completion_is_accepted() {
    let answer = whole(json!({"choices": [{"message": {"content": "hi"}}]})).unwrap();
    assert_eq!(answer.output, vec![Item::assistant("hi")]);
    assert_eq!((answer.id, answer.usage), (None, None));

    let answer = whole(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "system_fingerprint": null, "service_tier": "default", "vendor": 1,
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": null, "extra": 2,
                                 "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                                                {"type": "custom", "custom": {"name": "g"}},
                                                {"function": {"name": "h", "arguments": {"x": 1}}}]}}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1}
    }))
    .unwrap();
    assert_eq!(
        answer.output,
        vec![call("a", "f", "{}"), call("call_2", "h", "{\"x\":1}")]
    );
    assert_eq!(answer.usage, Some(Usage::reported(4, 1, 5)));
}

#[test]
fn errors_instead_of_a_completion() {
    let err = whole(json!({"error": {"message": "model not loaded", "code": 503}})).unwrap_err();
    assert!(
        matches!(&err, Failure::ModelFailed { code: Some(c), message } if c == "503" && message == "model not loaded"),
        "{err:?}"
    );
    assert!(matches!(
        whole(json!({"choices": []})),
        Err(Failure::Malformed(_))
    ));
    let err =
        whole(json!({"choices": [{"message": {"tool_calls": [{"id": "a", "function": {}}]}}]}))
            .unwrap_err();
    assert!(matches!(err, Failure::Malformed(_)));
}

#[test]
fn text_streams_in_every_shape_seen_in_the_wild() {
    let role = json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]});
    let first = json!({"choices": [{"index": 0, "delta": {"content": "he"}}]});
    let first_with_role = json!({"choices": [{"delta": {"role": "assistant", "content": "he"}}]});
    let last = json!({"choices": [{"index": 0, "delta": {"content": "llo"}}]});
    let last_finishing =
        json!({"choices": [{"index": 0, "delta": {"content": "llo"}, "finish_reason": "stop"}]});
    let finish = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let usage_empty = json!({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
    let usage_in_choice = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": null}],
                                 "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
    let shapes = [
        vec![&role, &first, &last, &finish, &usage_empty],
        vec![&first_with_role, &last, &finish, &usage_in_choice],
        vec![&role, &first, &last_finishing, &usage_in_choice],
        vec![&first_with_role, &last_finishing],
    ];
    for shape in shapes {
        let has_usage = shape.len() > 2 && shape.last().is_some_and(|c| c.get("usage").is_some());
        let owned: Vec<Value> = shape.into_iter().cloned().collect();
        for done in [true, false] {
            let (answer, _) = stream(&chunks(&owned, done));
            let answer = answer.unwrap();
            assert_eq!(answer.output, vec![Item::assistant("hello")]);
            assert_eq!(answer.usage.is_some(), has_usage);
            let crlf = chunks(&owned, done).replace('\n', "\r\n");
            let with_comments = format!(
                ": ping\n\n{}",
                chunks(&owned, done).replace("\n\n", "\n\n: keep-alive\n\n")
            );
            for raw in [crlf, with_comments] {
                assert_eq!(
                    stream(&raw).0.unwrap().output,
                    vec![Item::assistant("hello")]
                );
            }
        }
    }
}

#[test]
fn a_stream_cut_before_any_finish_is_truncated() {
    let first = json!({"choices": [{"index": 0, "delta": {"content": "he"}}]});
    let (answer, _) = stream(&chunks(&[first], false));
    assert!(matches!(answer, Err(Failure::Truncated(_))));
}

#[test]
fn tool_calls_whole_or_in_pieces() {
    let whole_call = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
        "finish_reason": "tool_calls"}]});
    let (answer, started) = stream(&chunks(&[whole_call], false));
    assert_eq!(
        answer.unwrap().output,
        vec![call("c1", "lookup", "{\"q\":\"x\"}")]
    );
    assert_eq!(started, vec!["c1:lookup"]);

    let mut pieces = vec![json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "lookup", "arguments": ""}}]}}]})];
    for piece in ["{\"", "q\":", "\"x", "\"}"] {
        // Some servers repeat the id and name in every chunk.
        pieces.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c1", "function": {"name": "lookup", "arguments": piece}}]}}]}));
    }
    pieces.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}));
    let (answer, started) = stream(&chunks(&pieces, true));
    assert_eq!(
        answer.unwrap().output,
        vec![call("c1", "lookup", "{\"q\":\"x\"}")]
    );
    assert_eq!(started, vec!["c1:lookup"]);

    // Two calls without `index` or ids, arguments as a JSON object.
    let two = json!({"choices": [{"delta": {"tool_calls": [
        {"function": {"name": "a", "arguments": {"n": 1}}},
        {"function": {"name": "b", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]});
    let (answer, _) = stream(&chunks(&[two], true));
    assert_eq!(
        answer.unwrap().output,
        vec![call("call_0", "a", "{\"n\":1}"), call("call_1", "b", "{}")]
    );
}

#[test]
fn an_error_chunk_fails_the_stream() {
    let (answer, _) =
        stream("data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n");
    assert!(
        matches!(&answer, Err(Failure::ModelFailed { code: Some(c), .. }) if c == "server_error"),
        "{answer:?}"
    );
}

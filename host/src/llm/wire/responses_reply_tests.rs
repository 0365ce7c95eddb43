use super::*;
use crate::llm::Usage;
use crate::llm::limits::ReplyLimits;
use crate::llm::sse::SseDecoder;
use serde_json::json;

fn whole(body: Value) -> Result<Answer, Failure> {
    parse_response(body.to_string().as_bytes())
}

/// Feeds `raw` to a decoder in small pieces and the events to an
/// assembler; returns the answer and the text deltas seen.
fn stream(raw: &str) -> (Result<Answer, Failure>, String) {
    let mut decoder = SseDecoder::new(ReplyLimits::default());
    let mut assembler = StreamAssembler::default();
    let deltas = std::sync::Mutex::new(String::new());
    let on = |e: StreamEvent| {
        if let StreamEvent::TextDelta(d) = e {
            deltas.lock().unwrap().push_str(&d);
        }
    };
    let mut tap = DeltaTap::new(Some(&on));
    let mut events = Vec::new();
    let mut result = Ok(());
    for piece in raw.as_bytes().chunks(7) {
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
    let answer = result.and_then(|()| assembler.finish());
    (answer, deltas.into_inner().unwrap())
}

#[test]
fn a_bare_reply_without_ids_status_or_usage_details_is_accepted() {
    // The reply that failed with "missing field input_tokens_details".
    let answer = whole(json!({
        "model": "local",
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "hi"}]}],
        "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    }))
    .unwrap();
    assert_eq!(answer.id, None);
    assert_eq!(answer.output, vec![Item::assistant("hi")]);
    assert_eq!(answer.usage, Some(Usage::reported(5, 2, 7)));

    let answer = whole(json!({"output": []})).unwrap();
    assert_eq!(answer.usage, None, "missing usage is unknown, not zero");
}

#[test]
fn unknown_fields_and_item_types_are_ignored() {
    let answer = whole(json!({
        "id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "vendor": {"x": 1}, "model": 7,
        "output": [
            {"type": "vendor_note", "text": "?"},
            {"type": "reasoning", "summary": []},
            {"type": "message", "id": "m", "status": "completed", "role": "assistant", "extra": true,
             "content": [{"type": "output_text", "text": "a", "annotations": [], "logprobs": []},
                         {"type": "vendor_part"}]},
            {"type": "function_call", "name": "f", "arguments": {"x": 1}}
        ],
        "usage": {"input_tokens": 1, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens_details": null, "vendor": 3}
    }))
    .unwrap();
    assert_eq!(answer.model, None, "a model of the wrong type is absent");
    assert_eq!(
        answer.output,
        vec![
            Item::assistant("a"),
            Item::FunctionCall {
                call_id: "call_3".into(),
                name: "f".into(),
                arguments: "{\"x\":1}".into()
            }
        ]
    );
    assert_eq!(answer.usage, Some(Usage::reported(1, 1, 2)));
}

#[test]
fn a_function_call_without_a_name_and_a_failed_status_are_errors() {
    let err = whole(json!({"output": [{"type": "function_call", "call_id": "c"}]})).unwrap_err();
    assert!(
        matches!(&err, Failure::Malformed(m) if m.contains("without a name")),
        "{err:?}"
    );
    let err =
        whole(json!({"status": "failed", "error": {"code": "server_error", "message": "boom"}}))
            .unwrap_err();
    assert!(
        matches!(&err, Failure::ModelFailed { code: Some(c), message } if c == "server_error" && message == "boom"),
        "{err:?}"
    );
    assert!(whole(json!([1])).is_err(), "not an object");
}

const TEXT_EVENTS: &[(&str, &str)] = &[
    (
        "response.created",
        r#"{"type":"response.created","response":{"id":"r","status":"in_progress","output":[]}}"#,
    ),
    (
        "response.output_item.added",
        r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"message","role":"assistant","content":[]}}"#,
    ),
    (
        "response.output_text.delta",
        r#"{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"he"}"#,
    ),
    (
        "response.vendor.heartbeat",
        r#"{"type":"response.vendor.heartbeat"}"#,
    ),
    (
        "response.output_text.delta",
        r#"{"type":"response.output_text.delta","output_index":0,"delta":"llo"}"#,
    ),
    (
        "response.output_item.done",
        r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hello"}]}}"#,
    ),
    (
        "response.completed",
        r#"{"type":"response.completed","response":{"id":"r","model":"m","output":[{"type":"message","content":[{"type":"output_text","text":"hello"}]}],"usage":{"input_tokens":2,"output_tokens":1,"total_tokens":3}}}"#,
    ),
];

fn sse(events: &[(&str, &str)], with_event_lines: bool, newline: &str, extra: &str) -> String {
    let mut raw = String::new();
    for (kind, data) in events {
        raw.push_str(extra);
        if with_event_lines {
            raw.push_str(&format!("event: {kind}{newline}"));
        }
        raw.push_str(&format!("data: {data}{newline}{newline}"));
    }
    raw
}

#[test]
fn streams_with_or_without_event_lines_crlf_comments_and_done() {
    for with_event_lines in [true, false] {
        for newline in ["\n", "\r\n"] {
            for extra in ["", ": keep-alive\n\n"] {
                for done in ["", "data: [DONE]\n\n"] {
                    let raw = sse(TEXT_EVENTS, with_event_lines, newline, extra) + done;
                    let (answer, deltas) = stream(&raw);
                    let answer = answer.unwrap();
                    assert_eq!(answer.output, vec![Item::assistant("hello")]);
                    assert_eq!(answer.usage, Some(Usage::reported(2, 1, 3)));
                    assert_eq!(deltas, "hello");
                }
            }
        }
    }
}

#[test]
fn a_stream_without_its_completion_is_truncated() {
    let (answer, _) = stream(&sse(&TEXT_EVENTS[..5], false, "\n", ""));
    assert!(matches!(answer, Err(Failure::Truncated(_))));
}

#[test]
fn a_bare_completion_is_filled_from_the_streamed_items() {
    // No sequence numbers, no ids, a final response without output or
    // usage; the function call's arguments arrive in pieces, never done.
    let events: &[(&str, &str)] = &[
        (
            "response.output_text.delta",
            r#"{"type":"response.output_text.delta","delta":"Let me check."}"#,
        ),
        (
            "response.output_item.added",
            r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","call_id":"c1","name":"lookup","arguments":""}}"#,
        ),
        (
            "response.function_call_arguments.delta",
            r#"{"type":"response.function_call_arguments.delta","output_index":1,"delta":"{\"q\":"}"#,
        ),
        (
            "response.function_call_arguments.delta",
            r#"{"type":"response.function_call_arguments.delta","output_index":1,"delta":"\"x\"}"}"#,
        ),
        (
            "response.completed",
            r#"{"type":"response.completed","response":{}}"#,
        ),
    ];
    let (answer, deltas) = stream(&sse(events, false, "\n", ""));
    let answer = answer.unwrap();
    assert_eq!(deltas, "Let me check.");
    assert_eq!(answer.usage, None);
    assert_eq!(
        answer.output,
        vec![
            Item::assistant("Let me check."),
            Item::FunctionCall {
                call_id: "c1".into(),
                name: "lookup".into(),
                arguments: "{\"q\":\"x\"}".into()
            }
        ]
    );
}

#[test]
fn error_events_in_either_shape_fail_the_answer() {
    for data in [
        r#"{"type":"error","code":"overloaded","message":"busy"}"#,
        r#"{"type":"error","error":{"code":"overloaded","message":"busy"}}"#,
    ] {
        let (answer, _) = stream(&format!("data: {data}\n\n"));
        assert!(
            matches!(&answer, Err(Failure::ModelFailed { code: Some(c), message }) if c == "overloaded" && message == "busy"),
            "{answer:?}"
        );
    }
    let (answer, _) = stream(
        "event: response.failed\ndata: {\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"x\",\"message\":\"no\"}}}\n\n",
    );
    assert!(matches!(&answer, Err(Failure::ModelFailed { message, .. }) if message == "no"));
    let (answer, _) = stream("data: {not json\n\n");
    assert!(matches!(answer, Err(Failure::Malformed(_))));
}

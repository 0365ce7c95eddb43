//! Faults, latency and concurrency.

mod common;

use std::time::{Duration, Instant};

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::types::responses::{CreateResponseArgs, ResponseStreamEvent};
use common::{client, post_json, raw_request, start};
use futures::StreamExt;
use mock_openai::{Endpoint, Fault, Match, MockConfig, Reply, Rule};
use serde_json::json;

const MODEL: &str = "gpt-4.1-mini";

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e}", stringify!($e)),
        }
    };
}

fn fault_rule(fault: Fault, times: u64) -> Rule {
    Rule::new(Reply::Fault(fault))
        .named("fault")
        .when(Match::any().times(times))
}

fn response_request(input: &str) -> async_openai::types::responses::CreateResponse {
    ok!(CreateResponseArgs::default()
        .model(MODEL)
        .input(input)
        .build())
}

fn chat_request(input: &str) -> async_openai::types::chat::CreateChatCompletionRequest {
    ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(vec![
            ok!(ChatCompletionRequestUserMessageArgs::default()
                .content(input)
                .build())
            .into()
        ])
        .build())
}

#[tokio::test]
async fn rate_limit_then_success() {
    let server = start(MockConfig::default().with_rule(fault_rule(
        Fault::RateLimit {
            retry_after_secs: 0,
            message: None,
        },
        2,
    )))
    .await;
    // async-openai retries 429 (honouring Retry-After) and then succeeds.
    let response = ok!(client(&server)
        .responses()
        .create(response_request("hi"))
        .await);
    assert_eq!(
        response.output_text(),
        Some(mock_openai::default_text("hi"))
    );
    let stats = server.stats();
    assert_eq!(stats.responses, 3);
    assert_eq!(stats.faults, 2);
    assert_eq!(stats.faults_by_kind.get("rate_limit"), Some(&2));
    assert_eq!(stats.rule_hits.get("fault"), Some(&2));

    // The wire format of the 429, seen raw.
    server
        .set_rules(vec![fault_rule(
            Fault::RateLimit {
                retry_after_secs: 3,
                message: None,
            },
            1,
        )])
        .unwrap_or_else(|e| panic!("{e}"));
    let body = json!({"model": MODEL, "input": "x"});
    let raw = ok!(post_json(&server, "/v1/responses", &body).await);
    assert_eq!(raw.status, 429);
    assert_eq!(raw.header("retry-after"), Some("3"));
    let error = raw.json();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    assert!(error["error"]["message"].is_string());
    let raw = ok!(post_json(&server, "/v1/responses", &body).await);
    assert_eq!(raw.status, 200);
}

#[tokio::test]
async fn server_error_then_success_and_plain_errors() {
    let server = start(
        MockConfig::default()
            .with_rule(
                Rule::new(Reply::Fault(Fault::Error {
                    status: 400,
                    message: Some("bad thing".into()),
                    error_type: None,
                    code: Some("bad_code".into()),
                }))
                .when(Match::any().user_contains("invalid")),
            )
            .with_rule(fault_rule(Fault::ServerError { message: None }, 1)),
    )
    .await;
    let openai = client(&server);
    let response = ok!(openai.chat().create(chat_request("hi")).await);
    assert_eq!(
        response.choices[0].message.content,
        Some(mock_openai::default_text("hi"))
    );
    assert_eq!(server.stats().faults_by_kind.get("server_error"), Some(&1));

    match openai.chat().create(chat_request("invalid")).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 400);
            assert_eq!(e.api_error.message, "bad thing");
            assert_eq!(e.api_error.code.as_deref(), Some("bad_code"));
            assert_eq!(e.api_error.r#type.as_deref(), Some("invalid_request_error"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_is_a_client_error() {
    let server = start(MockConfig::default().with_rule(fault_rule(Fault::Malformed, 3))).await;
    let openai = client(&server);
    match openai.responses().create(response_request("x")).await {
        Err(OpenAIError::JSONDeserialize(..)) => {}
        other => panic!("expected a deserialization error, got {other:?}"),
    }
    match openai.chat().create(chat_request("x")).await {
        Err(OpenAIError::JSONDeserialize(..)) => {}
        other => panic!("expected a deserialization error, got {other:?}"),
    }
    let mut stream = ok!(common::responses_stream(&openai, response_request("x")).await);
    let first = stream.next().await;
    assert!(matches!(first, Some(Err(_))), "{first:?}");
    // Fault exhausted: normal answer again.
    assert!(openai.chat().create(chat_request("x")).await.is_ok());
}

#[tokio::test]
async fn truncated_stream_is_a_client_error() {
    let server = start(
        MockConfig::default()
            .with_rule(fault_rule(Fault::TruncatedStream { after_events: None }, 3)),
    )
    .await;
    let openai = client(&server);

    let mut stream =
        ok!(common::responses_stream(&openai, response_request("long enough input")).await);
    let mut good = 0;
    let mut error = None;
    let mut completed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(ResponseStreamEvent::ResponseCompleted(_)) => completed = true,
            Ok(_) => good += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(!completed);
    assert!(good >= 1, "some events arrive before the cut");
    assert!(
        matches!(error, Some(OpenAIError::StreamError(_))),
        "{error:?}"
    );

    let mut request = chat_request("chat input");
    request.stream = Some(true);
    let mut stream = ok!(common::chat_stream(&openai, request).await);
    let mut saw_finish = false;
    let mut saw_error = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => saw_finish |= c.choices.iter().any(|ch| ch.finish_reason.is_some()),
            Err(_) => {
                saw_error = true;
                break;
            }
        }
    }
    assert!(saw_error && !saw_finish);

    // A non-streamed request cut mid-body.
    assert!(
        openai
            .responses()
            .create(response_request("x"))
            .await
            .is_err()
    );
    assert_eq!(
        server.stats().faults_by_kind.get("truncated_stream"),
        Some(&3)
    );
}

#[tokio::test]
async fn hang_until_shutdown() {
    let server = start(MockConfig::default().with_rule(fault_rule(Fault::Hang, 1))).await;
    let openai = client(&server);
    let hung = tokio::spawn(async move { openai.responses().create(response_request("x")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!hung.is_finished(), "the request must not be answered");
    let stats = server.stats();
    assert_eq!(stats.faults_by_kind.get("hang"), Some(&1));
    assert_eq!(stats.in_flight, 1);
    // Other requests are answered while one hangs.
    let body = json!({"model": MODEL, "input": "y"});
    let raw = ok!(post_json(&server, "/v1/responses", &body).await);
    assert_eq!(raw.status, 200);
    // Shutdown releases the hung request (its connection is dropped).
    let started = Instant::now();
    ok!(server.shutdown().await);
    assert!(started.elapsed() < Duration::from_secs(5));
    let result = ok!(tokio::time::timeout(Duration::from_secs(10), hung).await);
    assert!(ok!(result).is_err());
}

#[tokio::test]
async fn max_concurrency_counts_parallel_requests() {
    let server = start(MockConfig::default().with_latency(Duration::from_millis(100))).await;
    let openai = client(&server);
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let openai = openai.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    openai
                        .responses()
                        .create(response_request(&format!("p{i}")))
                        .await
                        .map(|r| r.output_text())
                } else {
                    openai
                        .chat()
                        .create(chat_request(&format!("p{i}")))
                        .await
                        .map(|r| r.choices[0].message.content.clone())
                }
            })
        })
        .collect();
    for (i, task) in futures::future::join_all(tasks)
        .await
        .into_iter()
        .enumerate()
    {
        let text = ok!(ok!(task));
        assert_eq!(text, Some(mock_openai::default_text(&format!("p{i}"))));
    }
    let elapsed = started.elapsed();
    let stats = server.stats();
    assert_eq!(stats.max_in_flight, 8, "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    assert!(elapsed >= Duration::from_millis(100));
    assert!(
        elapsed < Duration::from_millis(700),
        "requests overlapped: {elapsed:?}"
    );
}

#[tokio::test]
async fn rule_latency_spread_over_stream_and_header_override() {
    let mut rule = Rule::new(Reply::text("abcdefghijklmnop"))
        .when(Match::any().endpoint(Endpoint::Responses))
        .with_latency(Duration::from_millis(200));
    rule.spread_stream_latency = Some(true);
    let server = start(MockConfig::default().with_rule(rule)).await;
    let openai = client(&server);
    let started = Instant::now();
    let mut stream = ok!(common::responses_stream(&openai, response_request("x")).await);
    let first_event_after = started.elapsed();
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let ResponseStreamEvent::ResponseOutputTextDelta(d) = ok!(event) {
            text.push_str(&d.delta);
        }
    }
    let total = started.elapsed();
    assert_eq!(text, "abcdefghijklmnop");
    assert!(
        first_event_after < Duration::from_millis(150),
        "{first_event_after:?}"
    );
    assert!(total >= Duration::from_millis(190), "{total:?}");

    // `x-mock-latency-ms` overrides everything (0 here).
    let started = Instant::now();
    let raw = ok!(raw_request(
        server.addr(),
        "POST",
        "/v1/responses",
        Some(br#"{"model":"m","input":"fast"}"#),
        &[("x-mock-latency-ms", "0")],
    )
    .await);
    assert_eq!(raw.status, 200);
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn raw_fault_sends_any_status_body_and_content_type() {
    let config = ok!(MockConfig::from_json(
        r#"[
          {"match": {"user_contains": "big"}, "reply": {"fault": {"kind": "raw", "status": 413,
            "content_type": "text/html",
            "body": "<html>413 Request Entity Too Large</html>"}}},
          {"match": {"user_contains": "ollama"}, "reply": {"fault": {"kind": "raw", "status": 404,
            "body": "404 page not found"}}},
          {"match": {"user_contains": "long"}, "reply": {"fault": {"kind": "raw", "status": 502,
            "content_type": "application/json", "body": "{\"detail\":\"upstream\"} ", "repeat": 2000}}}
        ]"#
    ));
    let server = start(config).await;
    let ask = |text: &str| json!({"model": MODEL, "input": text});
    let raw = ok!(post_json(&server, "/v1/responses", &ask("big")).await);
    assert_eq!(raw.status, 413);
    assert_eq!(raw.header("content-type"), Some("text/html"));
    assert_eq!(raw.text(), "<html>413 Request Entity Too Large</html>");
    let raw = ok!(post_json(&server, "/v1/responses", &ask("ollama")).await);
    assert_eq!(raw.status, 404);
    assert_eq!(
        raw.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(raw.text(), "404 page not found");
    let raw = ok!(post_json(
        &server,
        "/v1/chat/completions",
        &json!({"model": MODEL,
        "messages": [{"role": "user", "content": "long"}]})
    )
    .await);
    assert_eq!(raw.status, 502);
    assert_eq!(raw.body.len(), 2000 * "{\"detail\":\"upstream\"} ".len());
    assert!(
        raw.text()
            .starts_with("{\"detail\":\"upstream\"} {\"detail\"")
    );
    assert_eq!(server.stats().faults_by_kind.get("raw"), Some(&3));
    // The SDK sees a plain API error with the raw body.
    let openai = client(&server);
    assert!(
        openai
            .responses()
            .create(response_request("ollama"))
            .await
            .is_err()
    );
    // Invalid statuses / content types are config errors.
    assert!(
        MockConfig::from_json(r#"[{"reply": {"fault": {"kind": "raw", "status": 99}}}]"#).is_err()
    );
    assert!(
        MockConfig::from_json(
            r#"[{"reply": {"fault": {"kind": "raw", "status": 500, "content_type": "a\nb"}}}]"#
        )
        .is_err()
    );
    let rust = Fault::Raw {
        status: 404,
        content_type: "text/plain".into(),
        body: "404 page not found".into(),
        repeat: 1,
    };
    assert_eq!(rust.kind(), "raw");
}

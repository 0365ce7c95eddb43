//! Wire-level checks with a raw HTTP client: the peer's recorded SDK request
//! bodies, SSE framing, error shapes, control endpoints and the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{post_json, raw_request, sse_events, start};
use mock_openai::MockConfig;
use serde_json::{Value, json};

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e}", stringify!($e)),
        }
    };
}

/// `(path, body)` of each line of a peer .jsonl file.
fn vectors(text: &str) -> Vec<(String, Value)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (path, body) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad line {line}"));
            (path.to_owned(), ok!(serde_json::from_str(body)))
        })
        .collect()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn peer_responses_vectors_are_accepted() {
    let server = start(MockConfig::default()).await;
    let lines = vectors(include_str!("data/workflow_requests_responses.jsonl"));
    assert_eq!(lines.len(), 6);
    let mut replies = Vec::new();
    for (path, body) in &lines {
        assert_eq!(path, "/v1/responses");
        let raw = ok!(post_json(&server, path, body).await);
        assert_eq!(raw.status, 200, "{}", raw.text());
        assert!(
            raw.header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        replies.push(raw.json());
        // The same body streamed.
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let raw = ok!(post_json(&server, path, &streamed).await);
        assert_eq!(raw.status, 200);
        assert!(
            raw.header("content-type")
                .is_some_and(|c| c.starts_with("text/event-stream"))
        );
        let events = sse_events(&raw.text());
        for (name, data) in &events {
            let event: Value = ok!(serde_json::from_str(data));
            assert_eq!(
                name.as_deref(),
                event["type"].as_str(),
                "event: line matches type"
            );
        }
        assert_eq!(
            events.last().and_then(|e| e.0.as_deref()),
            Some("response.completed")
        );
    }
    // Same answers as the peer mock recorded (its planner reply feeds the next stage).
    assert_eq!(output_text(&replies[0]), "reply 0ef48f27d74c5551");
    let call = &replies[3]["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "lookup_facts");
    let args: Value = ok!(serde_json::from_str(
        call["arguments"].as_str().unwrap_or("")
    ));
    assert_eq!(
        args,
        json!({"query": "arg:b935634aad675ba2.query:06c790e5", "limit": 698})
    );
    assert_eq!(output_text(&replies[4]), "reply b935634aad675ba2");
    let report: Value = ok!(serde_json::from_str(&output_text(&replies[5])));
    for key in ["title", "summary", "key_points", "confidence"] {
        assert!(report.get(key).is_some(), "{report}");
    }
    assert_eq!(server.stats().responses, 12);
}

#[tokio::test]
async fn peer_chat_vectors_are_accepted() {
    let server = start(MockConfig::default()).await;
    let lines = vectors(include_str!("data/workflow_requests_chat.jsonl"));
    assert_eq!(lines.len(), 6);
    let mut replies = Vec::new();
    for (path, body) in &lines {
        assert_eq!(path, "/v1/chat/completions");
        let raw = ok!(post_json(&server, path, body).await);
        assert_eq!(raw.status, 200, "{}", raw.text());
        replies.push(raw.json());
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        streamed["stream_options"] = json!({"include_usage": true});
        let raw = ok!(post_json(&server, path, &streamed).await);
        assert_eq!(raw.status, 200);
        let events = sse_events(&raw.text());
        assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
        assert!(events.iter().all(|(name, _)| name.is_none()));
        let usage_chunk: Value = ok!(serde_json::from_str(&events[events.len() - 2].1));
        assert!(
            usage_chunk["usage"]["total_tokens"]
                .as_u64()
                .is_some_and(|n| n > 0)
        );
        assert_eq!(usage_chunk["choices"], json!([]));
    }
    assert_eq!(
        replies[0]["choices"][0]["message"]["content"],
        "reply 0ef48f27d74c5551"
    );
    assert_eq!(replies[3]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(replies[4]["choices"][0]["finish_reason"], "stop");
    let report = replies[5]["choices"][0]["message"]["content"]
        .as_str()
        .map(serde_json::from_str::<Value>);
    assert!(matches!(report, Some(Ok(Value::Object(_)))));
}

#[tokio::test]
async fn errors_look_like_openai() {
    let server = start(MockConfig::default()).await;
    let addr = server.addr();
    let raw = ok!(raw_request(addr, "POST", "/v1/responses", Some(b"{not json"), &[]).await);
    assert_eq!(raw.status, 400);
    assert_eq!(raw.json()["error"]["type"], "invalid_request_error");
    let raw = ok!(post_json(&server, "/v1/chat/completions", &json!({"model": "m"})).await);
    assert_eq!(raw.status, 400);
    assert_eq!(raw.json()["error"]["param"], "messages");
    let raw = ok!(post_json(&server, "/v1/responses", &json!({"input": "x"})).await);
    assert_eq!(raw.status, 400);
    assert_eq!(raw.json()["error"]["param"], "model");
    let raw = ok!(raw_request(addr, "GET", "/v1/nope", None, &[]).await);
    assert_eq!(raw.status, 404);
    assert!(raw.json()["error"]["message"].is_string());
    let stats = server.stats();
    assert_eq!((stats.bad_requests, stats.other), (3, 1));
}

#[tokio::test]
async fn control_endpoints() {
    let server = start(MockConfig::default()).await;
    let addr = server.addr();
    let raw = ok!(post_json(
        &server,
        "/v1/responses",
        &json!({"model": "m", "input": "a"})
    )
    .await);
    assert!(raw.header("x-request-id").is_some());
    let stats = ok!(raw_request(addr, "GET", "/stats", None, &[]).await).json();
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["responses"], 1);
    assert_eq!(stats["per_model"]["m"], 1);
    let log = ok!(raw_request(addr, "GET", "/requests", None, &[]).await).json();
    assert_eq!(log.as_array().map(Vec::len), Some(1));
    assert_eq!(log[0]["has_authorization"], false);
    let reset = ok!(raw_request(addr, "POST", "/reset", Some(b""), &[]).await);
    assert_eq!(reset.status, 204);
    assert_eq!(server.stats().requests, 0);
    let models = ok!(raw_request(addr, "GET", "/v1/models", None, &[]).await).json();
    assert_eq!(models["object"], "list");
}

#[tokio::test]
async fn log_can_be_capped_or_bodiless() {
    let config = MockConfig {
        log_capacity: 2,
        log_bodies: false,
        ..MockConfig::default()
    };
    let server = start(config).await;
    for i in 0..3 {
        let body = json!({"model": "m", "input": format!("q{i}")});
        assert_eq!(
            ok!(post_json(&server, "/v1/responses", &body).await).status,
            200
        );
    }
    let log = server.requests();
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert!(log.iter().all(|r| r.body.is_none()));
}

#[tokio::test]
async fn binary_serves_rules_file() {
    let dir = std::env::temp_dir().join(format!("mock-openai-test-{}", std::process::id()));
    ok!(std::fs::create_dir_all(&dir));
    let rules = dir.join("rules.json");
    ok!(std::fs::write(
        &rules,
        r#"{"rules": [{"match": {"user_contains": "ping"}, "reply": {"text": "pong"}}]}"#
    ));
    let mut child = ok!(Command::new(env!("CARGO_BIN_EXE_mock-openai"))
        .args(["--port", "0", "--latency-ms", "5", "--style", "no_usage"])
        .args(["--style", "bare_usage", "--rules"])
        .arg(&rules)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn());
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let line = match line {
        Ok(l) => l,
        Err(e) => {
            let _ = child.kill();
            panic!("no listening line: {e}");
        }
    };
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .map(str::to_owned);
    let addr = url.and_then(|u| u.parse().ok());
    let result = match addr {
        Some(addr) => {
            raw_request(
                addr,
                "POST",
                "/v1/chat/completions",
                Some(br#"{"model":"m","messages":[{"role":"user","content":"ping"}]}"#),
                &[],
            )
            .await
        }
        None => Err(format!("bad line {line:?}")),
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let raw = ok!(result);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.json()["choices"][0]["message"]["content"], "pong");
    // --style applies globally.
    assert!(raw.json().get("usage").is_none(), "{}", raw.text());
    // Unknown style names are refused at startup.
    let refused = ok!(Command::new(env!("CARGO_BIN_EXE_mock-openai"))
        .args(["--port", "0", "--style", "shiny"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("shiny"));
}

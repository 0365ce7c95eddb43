//! The host reads every reply the official SDKs read: each reply style of
//! the mock (a deviation from OpenAI's exact bodies seen in vLLM, Ollama,
//! llama.cpp, LM Studio, LiteLLM or gateways) × both APIs × streamed and
//! not, through the real `host` binary, with plain text, a tool round trip
//! and structured output in one workflow. And the errors such servers send
//! read as advice.

use e2e::{Ran, mock};
use mock_openai::MockServer;
use serde_json::{Value, json};

/// Every reply style the mock knows (see tests/mock_openai/README.md).
const STYLES: &[&str] = &[
    "no_usage",
    "bare_usage",
    "minimal",
    "extra",
    "data_only",
    "responses_done",
    "no_done",
    "usage_in_choice",
    "whole_tool_call",
    "split_tool_args",
    "role_in_content",
    "finish_on_content",
    "keepalive",
    "crlf",
];

/// Three stages: plain text, a calculator round trip, structured output.
fn spec(server: &MockServer, api: &str) -> Value {
    let model = json!({"provider": "mock", "name": "gpt-4.1-mini"});
    json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": api,
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000,
            "retry": {"max_attempts": 1}
        }},
        "agents": {
            "greeter": {"instructions": "Greet.", "model": model},
            "calc": {"instructions": "CALC: add with the calculator.", "model": model,
                     "tools": ["calculator#add"]},
            "writer": {"instructions": "Report.", "model": model, "output_schema": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["title", "n"], "additionalProperties": false
            }}
        },
        "workflow": {"key": "styles", "stages": [
            {"name": "text", "steps": [{"agent": "greeter"}]},
            {"name": "tool", "steps": [{"agent": "calc"}]},
            {"name": "structured", "steps": [{"agent": "writer"}]}
        ]}
    })
}

fn mock_config(styles: &[&str]) -> Value {
    json!({
        "styles": styles,
        "rules": [
            {"match": {"instructions_contains": "CALC", "has_tool_result": false},
             "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [2, 3]}}]}},
            {"match": {"instructions_contains": "CALC", "has_tool_result": true},
             "reply": {"text": "the sum is 5"}}
        ]
    })
}

async fn run(server: &MockServer, api: &str, stream: bool) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = e2e::write_spec(dir.path(), &spec(server, api));
    let mut cmd = e2e::host!()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .arg("--input")
        .arg("hello");
    if stream {
        cmd = cmd.arg("--stream");
    }
    cmd.ran().await
}

/// Text of the tool result the calc agent's second request carried.
fn tool_result(body: &Value) -> Option<String> {
    let items = body["input"].as_array().or(body["messages"].as_array())?;
    items
        .iter()
        .find(|i| i["type"] == "function_call_output" || i["role"] == "tool")
        .and_then(|i| i["output"].as_str().or(i["content"].as_str()))
        .map(str::to_owned)
}

async fn conforms(styles: &[&str]) {
    let server = mock(mock_config(styles)).await;
    for api in ["responses", "chat"] {
        for stream in [false, true] {
            server.reset();
            let ran = run(&server, api, stream).await;
            let what = format!("styles {styles:?}, {api}, stream {stream}");
            assert!(
                ran.out.status.success(),
                "{what}: host failed\n{}",
                ran.stderr
            );
            let output: Value = serde_json::from_str(ran.stdout.trim())
                .unwrap_or_else(|e| panic!("{what}: the output is not JSON ({e}): {}", ran.stdout));
            assert!(
                output["title"].is_string() && output["n"].is_i64(),
                "{what}: {output}"
            );
            let bodies: Vec<Value> = server
                .requests()
                .into_iter()
                .filter_map(|r| r.body)
                .collect();
            assert_eq!(
                bodies.len(),
                4,
                "{what}: text, tool call, tool result, report"
            );
            assert!(
                bodies
                    .iter()
                    .all(|b| b["stream"].as_bool().unwrap_or(false) == stream),
                "{what}"
            );
            assert_eq!(
                bodies.iter().find_map(tool_result).as_deref(),
                Some("5"),
                "{what}: the tool ran with the model's arguments"
            );
            let unreported = ran.stderr.contains("unreported usage");
            assert_eq!(
                unreported,
                styles.contains(&"no_usage"),
                "{what}: usage is unknown exactly when the server sent none\n{}",
                ran.stderr
            );
        }
    }
    server.shutdown().await.expect("shutdown");
}

macro_rules! style_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            conforms(&[stringify!($name)]).await;
        }
    )*};
}

mod style {
    use super::conforms;
    style_tests!(
        no_usage,
        bare_usage,
        minimal,
        extra,
        data_only,
        responses_done,
        no_done,
        usage_in_choice,
        whole_tool_call,
        split_tool_args,
        role_in_content,
        finish_on_content,
        keepalive,
        crlf,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_style_at_once() {
    // All together (`whole_tool_call` excludes `split_tool_args`): a bare
    // server that streams every odd way at once.
    let all: Vec<&str> = STYLES
        .iter()
        .copied()
        .filter(|s| *s != "whole_tool_call")
        .collect();
    conforms(&all).await;
}

#[test]
fn the_list_is_every_style_the_mock_knows() {
    let known: Vec<&str> = mock_openai::Style::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(STYLES, known.as_slice());
}

/// A run against a mock whose every model request gets `fault`.
async fn failing(fault: Value, api: &str, base_suffix: &str) -> Ran {
    let server = mock(json!({"rules": [{"reply": {"fault": fault}}]})).await;
    let mut s = spec(&server, api);
    let base = server.base_url();
    s["providers"]["mock"]["base_url"] =
        json!(format!("{}{base_suffix}", base.trim_end_matches("/v1")));
    // The key is paired with the mock's `/v1` URL only; these calls fail
    // anyway.
    if let Some(provider) = s["providers"]["mock"].as_object_mut() {
        provider.remove("api_key_env");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = e2e::write_spec(dir.path(), &s);
    e2e::host!()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .arg("--input")
        .arg("hello")
        .ran()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_suggests_the_other_api_or_a_missing_v1() {
    let not_found = json!({"kind": "raw", "status": 404, "content_type": "text/plain",
                           "body": "404 page not found"});
    let ran = failing(not_found.clone(), "responses", "/v1").await;
    assert!(!ran.out.status.success());
    assert!(
        ran.stderr.contains("HTTP 404: 404 page not found")
            && ran.stderr.contains("`api: chat`")
            && !ran.stderr.contains("`/v1`"),
        "{}",
        ran.stderr
    );
    let ran = failing(not_found, "chat", "").await;
    assert!(
        ran.stderr.contains("`/v1`") && ran.stderr.contains("`api: responses`"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_413_names_the_body_limit_and_long_bodies_are_cut() {
    let page = format!(
        "<html><body>{}</body></html>",
        "413 Request Entity Too Large ".repeat(100)
    );
    let ran = failing(
        json!({"kind": "raw", "status": 413, "content_type": "text/html", "body": page}),
        "chat",
        "/v1",
    )
    .await;
    assert!(!ran.out.status.success());
    let line = ran
        .stderr
        .lines()
        .find(|l| l.contains("HTTP 413"))
        .unwrap_or_else(|| panic!("no HTTP 413 line:\n{}", ran.stderr));
    assert!(line.contains("over the server's body limit"), "{line}");
    assert!(
        line.len() < 600,
        "the error page is cut to an excerpt: {line}"
    );

    let ran = failing(
        json!({"kind": "error", "status": 400, "message": "context length exceeded", "code": "context_length_exceeded"}),
        "responses",
        "/v1",
    )
    .await;
    assert!(
        ran.stderr.contains("HTTP 400") && ran.stderr.contains("context length exceeded"),
        "{}",
        ran.stderr
    );
}

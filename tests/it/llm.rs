//! The `llm` module against the mock OpenAI server (loopback): both APIs,
//! streamed and not, tools, structured output, retries, timeouts, faults;
//! and the offline scripted provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host::llm::{
    Api, Egress, Item, LlmError, ModelRequest, ModelResponse, ModelSettings, OutputSchema,
    Provider, ProviderConfig, RetryPolicy, Role, StreamEvent, ToolSpec, build_provider,
};
use host::secret::Secret;
use mock_openai::{Fault, Match, MockConfig, MockServer, Reply, Rule};
use serde_json::{Value, json};

const MODEL: &str = "gpt-4.1-mini";
const KEY: &str = "sk-test-key-0123456789";
const MODES: [(Api, bool); 4] = [
    (Api::Responses, false),
    (Api::Responses, true),
    (Api::Chat, false),
    (Api::Chat, true),
];

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e}", stringify!($e)),
        }
    };
}

async fn start(config: MockConfig) -> MockServer {
    ok!(MockServer::start(config).await)
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
    }
}

fn provider_with(
    server: &MockServer,
    api: Api,
    retry: RetryPolicy,
    timeout: Duration,
) -> Arc<dyn Provider> {
    ok!(build_provider(
        ProviderConfig::compatible("mock", server.base_url())
            .with_egress(Egress::allowing_private())
            .with_api(api)
            .with_api_key(Secret::new(KEY))
            .with_timeout(timeout)
            .with_retry(retry)
    ))
}

fn provider(server: &MockServer, api: Api) -> Arc<dyn Provider> {
    provider_with(server, api, fast_retry(4), Duration::from_secs(10))
}

fn request(input: &str, stream: bool) -> ModelRequest {
    ModelRequest {
        settings: ModelSettings::new(MODEL),
        instructions: Some("You are terse.".into()),
        input: vec![Item::user(input)],
        stream,
        agent: "tester".into(),
        step: "s1".into(),
        turn: 1,
        ..ModelRequest::default()
    }
}

/// Collects streamed text deltas.
#[derive(Default, Clone)]
struct Deltas(Arc<Mutex<Vec<String>>>);

impl Deltas {
    fn sink(&self) -> impl Fn(StreamEvent) + Send + Sync + 'static {
        let store = self.0.clone();
        move |event| {
            if let StreamEvent::TextDelta(text) = event
                && let Ok(mut store) = store.lock()
            {
                store.push(text);
            }
        }
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

async fn respond(
    provider: &dyn Provider,
    request: &ModelRequest,
    deltas: &Deltas,
) -> Result<ModelResponse, LlmError> {
    let sink = deltas.sink();
    provider.respond(request, Some(&sink)).await
}

fn label(api: Api, stream: bool) -> String {
    format!("{api} stream={stream}")
}

#[tokio::test]
async fn text_reply_in_every_mode() {
    let server = start(MockConfig::default()).await;
    for (api, stream) in MODES {
        let provider = provider(&server, api);
        let deltas = Deltas::default();
        let response = ok!(respond(&*provider, &request("hello there", stream), &deltas).await);
        let label = label(api, stream);
        let expected = mock_openai::default_text("hello there");
        assert_eq!(
            response.text().as_deref(),
            Some(expected.as_str()),
            "{label}"
        );
        assert_eq!(response.attempts, 1, "{label}");
        assert!(response.id.is_some(), "{label}");
        assert_eq!(response.model, MODEL, "{label}");
        assert!(
            response.usage.input_tokens > 0,
            "{label}: {:?}",
            response.usage
        );
        assert!(
            response.usage.output_tokens > 0,
            "{label}: {:?}",
            response.usage
        );
        assert!(
            response.usage.total_tokens >= response.usage.input_tokens,
            "{label}"
        );
        assert!(response.function_calls().is_empty(), "{label}");
        let deltas = deltas.all();
        if stream {
            assert!(deltas.len() >= 2, "{label}: deltas {deltas:?}");
            assert_eq!(deltas.concat(), expected, "{label}");
        } else {
            assert!(deltas.is_empty(), "{label}: {deltas:?}");
        }
    }

    // What went over the wire.
    let log = server.requests();
    assert_eq!(log.len(), 4);
    for entry in &log {
        assert!(entry.has_authorization);
        assert_eq!(entry.auth_scheme.as_deref(), Some("Bearer"));
    }
    let responses_body = ok!(log[0].body.clone().ok_or("no body"));
    assert_eq!(log[0].path, "/v1/responses");
    assert_eq!(responses_body["instructions"], "You are terse.");
    assert_eq!(responses_body["input"][0]["role"], "user");
    assert_eq!(responses_body["input"][0]["content"], "hello there");
    assert!(log[1].stream);
    let chat_body = ok!(log[2].body.clone().ok_or("no body"));
    assert_eq!(log[2].path, "/v1/chat/completions");
    assert_eq!(
        chat_body["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );
    assert_eq!(
        chat_body["messages"][1],
        json!({"role": "user", "content": "hello there"})
    );
    let chat_stream_body = ok!(log[3].body.clone().ok_or("no body"));
    assert_eq!(chat_stream_body["stream_options"]["include_usage"], true);
}

fn lookup_tool() -> ToolSpec {
    ToolSpec {
        name: "lookup_facts".into(),
        description: "Look up facts about a topic.".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "what to look up."},
                "limit": {"type": "integer", "description": "maximum number of facts."}
            },
            "required": ["query", "limit"],
            "additionalProperties": false
        }),
        strict: true,
    }
}

#[tokio::test]
async fn tool_call_round_trip_in_every_mode() {
    let server = start(MockConfig::default()).await;
    for (api, stream) in MODES {
        let label = label(api, stream);
        let provider = provider(&server, api);
        let mut req = request("facts about Lisbon", stream);
        req.instructions = Some("Always consult lookup_facts first. [[use_tool]]".into());
        req.tools = vec![lookup_tool()];

        let starts = Arc::new(Mutex::new(Vec::new()));
        let seen = starts.clone();
        let sink = move |event: StreamEvent| {
            if let StreamEvent::FunctionCallStarted { name, .. } = event
                && let Ok(mut seen) = seen.lock()
            {
                seen.push(name);
            }
        };
        let first = ok!(provider.respond(&req, Some(&sink)).await);
        let calls = first.function_calls();
        assert_eq!(calls.len(), 1, "{label}: {:?}", first.output);
        assert_eq!(calls[0].name, "lookup_facts", "{label}");
        let args: Value = ok!(serde_json::from_str(calls[0].arguments));
        assert_eq!(
            args,
            mock_openai::default_tool_arguments(&lookup_tool().parameters, "facts about Lisbon"),
            "{label}"
        );
        if stream {
            assert_eq!(
                starts.lock().map(|s| s.clone()).unwrap_or_default(),
                vec!["lookup_facts".to_string()],
                "{label}"
            );
        }
        let call_id = calls[0].call_id.to_string();
        assert!(!call_id.is_empty(), "{label}");

        req.input.extend(first.output.iter().cloned());
        req.input
            .push(Item::function_call_output(&call_id, "Lisbon has 7 hills."));
        req.turn = 2;
        let second = ok!(provider.respond(&req, None).await);
        assert!(
            second.function_calls().is_empty(),
            "{label}: {:?}",
            second.output
        );
        assert_eq!(
            second.text(),
            Some(mock_openai::default_text("facts about Lisbon")),
            "{label}"
        );

        // The second request carried the call and its output.
        let log = server.requests();
        let body = ok!(log[log.len() - 1].body.clone().ok_or("no body"));
        match api {
            Api::Responses => {
                let input = ok!(body["input"].as_array().ok_or("no input"));
                assert_eq!(input[1]["type"], "function_call", "{label}");
                assert_eq!(input[1]["call_id"], call_id.as_str(), "{label}");
                assert_eq!(
                    input[2],
                    json!({"type": "function_call_output", "call_id": call_id, "output": "Lisbon has 7 hills."}),
                    "{label}"
                );
                assert_eq!(body["tools"][0]["type"], "function", "{label}");
                assert_eq!(body["tools"][0]["name"], "lookup_facts", "{label}");
                assert_eq!(body["tools"][0]["strict"], true, "{label}");
            }
            Api::Chat => {
                let messages = ok!(body["messages"].as_array().ok_or("no messages"));
                assert_eq!(messages[0]["role"], "system", "{label}");
                assert_eq!(messages[2]["role"], "assistant", "{label}");
                assert_eq!(
                    messages[2]["tool_calls"][0]["id"],
                    call_id.as_str(),
                    "{label}"
                );
                assert_eq!(
                    messages[3],
                    json!({"role": "tool", "tool_call_id": call_id, "content": "Lisbon has 7 hills."}),
                    "{label}"
                );
                assert_eq!(body["tools"][0]["type"], "function", "{label}");
                assert_eq!(
                    body["tools"][0]["function"]["name"], "lookup_facts",
                    "{label}"
                );
                assert_eq!(body["tools"][0]["function"]["strict"], true, "{label}");
            }
        }
    }
}

fn report_schema() -> Value {
    json!({
        "type": "object",
        "title": "Report",
        "properties": {
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "key_points": {"type": "array", "items": {"type": "string"}},
            "confidence": {"type": "number"}
        },
        "required": ["title", "summary", "key_points", "confidence"],
        "additionalProperties": false
    })
}

#[tokio::test]
async fn structured_output_in_every_mode() {
    let server = start(MockConfig::default()).await;
    let validator = ok!(jsonschema::validator_for(&report_schema()));
    for (api, stream) in MODES {
        let label = label(api, stream);
        let provider = provider(&server, api);
        let mut req = request("notes for the report", stream);
        req.output_schema = Some(OutputSchema {
            name: "final_output".into(),
            schema: report_schema(),
            strict: true,
        });
        let deltas = Deltas::default();
        let response = ok!(respond(&*provider, &req, &deltas).await);
        let text = ok!(response.text().ok_or("no text"));
        let value: Value = ok!(serde_json::from_str(&text));
        assert!(validator.is_valid(&value), "{label}: {value}");
        assert_eq!(
            value,
            mock_openai::default_json(&report_schema(), "notes for the report"),
            "{label}"
        );
        if stream {
            assert_eq!(deltas.all().concat(), text, "{label}");
        }
        let log = server.requests();
        let body = ok!(log[log.len() - 1].body.clone().ok_or("no body"));
        let format = match api {
            Api::Responses => body["text"]["format"].clone(),
            Api::Chat => body["response_format"]["json_schema"].clone(),
        };
        assert_eq!(format["name"], "final_output", "{label}");
        assert_eq!(format["strict"], true, "{label}");
        assert_eq!(format["schema"], report_schema(), "{label}");
    }
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    for (api, stream) in [(Api::Responses, false), (Api::Chat, true)] {
        let label = label(api, stream);
        let server = start(
            MockConfig::default().with_rule(
                Rule::new(Reply::Fault(Fault::RateLimit {
                    retry_after_secs: 1,
                    message: None,
                }))
                .named("limit")
                .when(Match::any().times(1)),
            ),
        )
        .await;
        // Backoff alone would wait at most 5 ms: the wait comes from the header.
        let provider = provider(&server, api);
        let started = Instant::now();
        let response = ok!(provider.respond(&request("hi", stream), None).await);
        let waited = started.elapsed();
        assert_eq!(response.attempts, 2, "{label}");
        assert!(waited >= Duration::from_millis(950), "{label}: {waited:?}");
        assert!(waited < Duration::from_secs(3), "{label}: {waited:?}");
        let stats = server.stats();
        assert_eq!(stats.faults_by_kind.get("rate_limit"), Some(&1), "{label}");
        assert_eq!(stats.responses + stats.chat, 2, "{label}");
        let log = server.requests();
        let gap = log[1].offset.saturating_sub(log[0].offset);
        assert!(gap >= Duration::from_millis(950), "{label}: gap {gap:?}");
    }
}

#[tokio::test]
async fn recovers_after_a_server_error() {
    let server = start(MockConfig::default()).await;
    for (api, stream) in MODES {
        let label = label(api, stream);
        ok!(server.set_rules(vec![
            Rule::new(Reply::Fault(Fault::ServerError { message: None }))
                .named("boom")
                .when(Match::any().times(1))
        ]));
        let provider = provider(&server, api);
        let response = ok!(provider.respond(&request("hi", stream), None).await);
        assert_eq!(response.attempts, 2, "{label}");
        assert_eq!(
            response.text(),
            Some(mock_openai::default_text("hi")),
            "{label}"
        );
    }
}

#[tokio::test]
async fn repeated_server_errors_exhaust_the_budget() {
    let server = start(
        MockConfig::default().with_rule(
            Rule::new(Reply::Fault(Fault::ServerError {
                message: Some("the engine is on fire".into()),
            }))
            .named("boom"),
        ),
    )
    .await;
    let provider = provider_with(&server, Api::Chat, fast_retry(3), Duration::from_secs(5));
    let err = match provider.respond(&request("hi", false), None).await {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e,
    };
    let text = err.to_string();
    match &err {
        LlmError::RetryBudgetExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 3);
            assert!(
                matches!(**last, LlmError::Http { status: 500, .. }),
                "{last:?}"
            );
        }
        other => panic!("expected RetryBudgetExhausted, got {other:?}"),
    }
    assert!(text.contains("provider `mock`"), "{text}");
    assert!(text.contains("3 attempt"), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(text.contains("the engine is on fire"), "{text}");
    assert_eq!(err.status(), Some(500));
    assert_eq!(server.stats().chat, 3);
}

#[tokio::test]
async fn non_retryable_errors_are_not_retried_and_hide_the_key() {
    let server = start(
        MockConfig::default().with_rule(Rule::new(Reply::Fault(Fault::Error {
            status: 401,
            message: Some(format!("Incorrect API key provided: {KEY}")),
            error_type: Some("invalid_request_error".into()),
            code: Some("invalid_api_key".into()),
        }))),
    )
    .await;
    for api in [Api::Responses, Api::Chat] {
        let provider = provider(&server, api);
        let err = match provider.respond(&request("hi", false), None).await {
            Ok(r) => panic!("expected an error, got {r:?}"),
            Err(e) => e,
        };
        assert!(matches!(err, LlmError::Http { status: 401, .. }), "{err:?}");
        let text = err.to_string();
        assert!(!text.contains(KEY), "{text}");
        assert!(!format!("{err:?}").contains(KEY));
        assert!(text.contains("Incorrect API key provided"), "{text}");
    }
    assert_eq!(server.stats().faults, 2);
}

#[tokio::test]
async fn a_hanging_server_hits_the_timeout() {
    let server = start(MockConfig::default().with_rule(Rule::new(Reply::Fault(Fault::Hang)))).await;
    for (api, stream) in [(Api::Responses, false), (Api::Chat, true)] {
        let label = label(api, stream);
        let provider = provider_with(&server, api, fast_retry(2), Duration::from_millis(300));
        let started = Instant::now();
        let err = match provider.respond(&request("hi", stream), None).await {
            Ok(r) => panic!("{label}: expected a timeout, got {r:?}"),
            Err(e) => e,
        };
        let waited = started.elapsed();
        match &err {
            LlmError::RetryBudgetExhausted {
                attempts: 2, last, ..
            } => {
                assert!(
                    matches!(**last, LlmError::Timeout { .. }),
                    "{label}: {last:?}"
                );
            }
            other => panic!("{label}: expected 2 timed-out attempts, got {other:?}"),
        }
        assert!(err.to_string().contains("timed out after 300 ms"), "{err}");
        assert!(waited >= Duration::from_millis(600), "{label}: {waited:?}");
        assert!(waited < Duration::from_secs(3), "{label}: {waited:?}");

        // Without retries the timeout comes back as is.
        let provider = provider_with(
            &server,
            api,
            RetryPolicy::none(),
            Duration::from_millis(200),
        );
        let err = match provider.respond(&request("hi", stream), None).await {
            Ok(r) => panic!("{label}: expected a timeout, got {r:?}"),
            Err(e) => e,
        };
        assert!(matches!(err, LlmError::Timeout { .. }), "{label}: {err:?}");
    }
    ok!(server.shutdown().await);
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let server =
        start(MockConfig::default().with_rule(Rule::new(Reply::Fault(Fault::Malformed)))).await;
    for (api, stream) in MODES {
        let label = label(api, stream);
        server.reset();
        let provider = provider(&server, api);
        let err = match provider.respond(&request("hi", stream), None).await {
            Ok(r) => panic!("{label}: expected an error, got {r:?}"),
            Err(e) => e,
        };
        assert!(
            matches!(err, LlmError::MalformedResponse { .. }),
            "{label}: {err:?}"
        );
        assert!(
            err.to_string().contains("malformed response"),
            "{label}: {err}"
        );
        assert_eq!(
            server.stats().faults,
            1,
            "{label}: malformed answers are not retried"
        );
    }
}

#[tokio::test]
async fn truncated_answers() {
    let server = start(MockConfig::default()).await;
    for (api, stream) in MODES {
        let label = label(api, stream);

        // Cut once, nobody saw any text yet: retried transparently.
        ok!(server.set_rules(vec![
            Rule::new(Reply::Fault(Fault::TruncatedStream { after_events: None }))
                .named("cut")
                .when(Match::any().times(1))
        ]));
        let provider = provider(&server, api);
        let response = ok!(provider.respond(&request("hi", stream), None).await);
        assert_eq!(response.attempts, 2, "{label}");
        assert_eq!(
            response.text(),
            Some(mock_openai::default_text("hi")),
            "{label}"
        );

        if !stream {
            continue;
        }
        // Cut after some text reached the listener: a clear error, no retry
        // (the listener would see the text twice).
        server.reset();
        ok!(server.set_rules(vec![
            Rule::new(Reply::Fault(Fault::TruncatedStream { after_events: None })).named("cut")
        ]));
        let deltas = Deltas::default();
        let err = match respond(&*provider, &request("hi", true), &deltas).await {
            Ok(r) => panic!("{label}: expected an error, got {r:?}"),
            Err(e) => e,
        };
        let seen = deltas.all();
        assert!(
            !seen.is_empty(),
            "{label}: the cut should come after some text"
        );
        assert!(
            matches!(err, LlmError::StreamTruncated { .. }),
            "{label}: {err:?}"
        );
        assert!(err.to_string().contains("ended early"), "{label}: {err}");
        assert_eq!(server.stats().faults, 1, "{label}");
        assert!(
            mock_openai::default_text("hi").starts_with(&seen.concat()),
            "{label}: {seen:?}"
        );

        // Always cut, no listener: retried until the budget is gone.
        let err = match provider.respond(&request("hi", true), None).await {
            Ok(r) => panic!("{label}: expected an error, got {r:?}"),
            Err(e) => e,
        };
        assert!(
            matches!(err.root(), LlmError::StreamTruncated { .. }),
            "{label}: {err:?}"
        );
        assert!(
            matches!(err, LlmError::RetryBudgetExhausted { attempts: 4, .. }),
            "{label}: {err:?}"
        );
    }
}

#[tokio::test]
async fn extra_headers_and_settings_are_sent() {
    let server = start(MockConfig::default()).await;
    let provider = provider(&server, Api::Responses);
    let mut req = request("hi", false);
    req.settings.temperature = Some(0.25);
    req.settings.max_output_tokens = Some(64);
    req.settings
        .extra_headers
        .insert("OpenAI-Beta".into(), "assistants=v2".into());
    ok!(provider.respond(&req, None).await);
    let log = server.requests();
    assert_eq!(
        log[0].headers.get("openai-beta").map(String::as_str),
        Some("assistants=v2")
    );
    let body = ok!(log[0].body.clone().ok_or("no body"));
    assert_eq!(body["temperature"], 0.25);
    assert_eq!(body["max_output_tokens"], 64);

    req.settings
        .extra_headers
        .insert("bad header".into(), "x".into());
    let err = match provider.respond(&req, None).await {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e,
    };
    assert!(matches!(err, LlmError::InvalidRequest { .. }), "{err:?}");
}

#[tokio::test]
async fn unreachable_server_is_a_connection_error() {
    // A port nothing listens on: bind, note the port, close.
    let port = {
        let listener = ok!(std::net::TcpListener::bind("127.0.0.1:0"));
        ok!(listener.local_addr()).port()
    };
    let provider = ok!(build_provider(
        ProviderConfig::compatible("down", format!("http://127.0.0.1:{port}/v1"))
            .with_egress(Egress::allowing_private())
            .with_retry(fast_retry(2))
    ));
    let err = match provider.respond(&request("hi", false), None).await {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e,
    };
    assert!(matches!(err.root(), LlmError::Connection { .. }), "{err:?}");
    assert!(err.to_string().contains("provider `down`"), "{err}");
}

// ---------------------------------------------------------------- scripted

fn script_provider(script: &Value) -> (tempfile::TempDir, Arc<dyn Provider>) {
    let dir = ok!(tempfile::tempdir());
    let path = dir.path().join("script.json");
    ok!(std::fs::write(&path, script.to_string()));
    let provider = ok!(build_provider(ProviderConfig::scripted("offline", &path)));
    (dir, provider)
}

fn agent_request(agent: &str, turn: u32, input: &str) -> ModelRequest {
    ModelRequest {
        settings: ModelSettings::new("scripted-model"),
        instructions: Some(format!("You are the {agent}.")),
        input: vec![Item::user(input)],
        agent: agent.into(),
        step: "main".into(),
        turn,
        ..ModelRequest::default()
    }
}

#[tokio::test]
async fn scripted_rules_tools_handoffs_and_default() {
    let (_dir, provider) = script_provider(&json!({
        "replies": [
            {"when": {"agent": "calc", "has_tool_result": false},
             "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [1, 2]}}]}},
            {"when": {"agent": "calc", "has_tool_result": true},
             "reply": {"text": "The sum is {{tool_output}}."}},
            {"when": {"agent": "triage", "input_contains": "write"}, "reply": {"handoff": "writer"}},
            {"when": {"agent": "planner", "turn": 1, "instructions_contains": "planner"},
             "reply": {"text": "Plan for: {{input}}"}}
        ],
        "default": {"text": "default reply to {{agent}}"}
    }));
    assert!(provider.is_offline());
    assert_eq!(provider.name(), "offline");

    // Tool call, then text with the tool's output.
    let mut req = agent_request("calc", 1, "add 1 and 2");
    let first = ok!(provider.respond(&req, None).await);
    let calls = first.function_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "add");
    assert_eq!(calls[0].arguments, r#"{"numbers":[1,2]}"#);
    let call_id = calls[0].call_id.to_string();
    req.input.extend(first.output.clone());
    req.input.push(Item::function_call_output(call_id, "3"));
    req.turn = 2;
    let second = ok!(provider.respond(&req, None).await);
    assert_eq!(second.text().as_deref(), Some("The sum is 3."));
    assert!(second.usage.input_tokens > 0 && second.usage.output_tokens > 0);
    assert_eq!(
        second.usage.total_tokens,
        second.usage.input_tokens + second.usage.output_tokens
    );

    // Handoff.
    let handoff = ok!(provider
        .respond(&agent_request("triage", 1, "please write a poem"), None)
        .await);
    assert_eq!(handoff.function_calls()[0].name, "transfer_to_writer");

    // Templating and conditions; deterministic.
    let req = agent_request("planner", 1, "a trip to Lisbon");
    let plan = ok!(provider.respond(&req, None).await);
    assert_eq!(plan.text().as_deref(), Some("Plan for: a trip to Lisbon"));
    assert_eq!(ok!(provider.respond(&req, None).await), plan);

    // Turn 2 of the planner falls through to the default.
    let other = ok!(provider
        .respond(&agent_request("planner", 2, "again"), None)
        .await);
    assert_eq!(other.text().as_deref(), Some("default reply to planner"));

    // Streaming: word deltas that add up to the text.
    let mut req = agent_request("planner", 1, "a trip to Lisbon");
    req.stream = true;
    let deltas = Deltas::default();
    let streamed = ok!(respond(&*provider, &req, &deltas).await);
    assert!(deltas.all().len() > 1);
    assert_eq!(Some(deltas.all().concat()), streamed.text());
}

#[tokio::test]
async fn scripted_structured_output() {
    let (_dir, provider) = script_provider(&json!({
        "replies": [
            {"when": {"agent": "fixed"}, "reply": {"json": {"title": "T", "summary": "S", "key_points": [], "confidence": 0.5}}}
        ],
        "default": {"text": "not json"}
    }));
    let schema = report_schema();
    let validator = ok!(jsonschema::validator_for(&schema));
    let mut req = agent_request("writer", 1, "notes");
    req.output_schema = Some(OutputSchema {
        name: "final_output".into(),
        schema: schema.clone(),
        strict: true,
    });
    // No `json` reply: a value generated from the schema.
    let generated = ok!(provider.respond(&req, None).await);
    let value: Value = ok!(serde_json::from_str(&ok!(generated
        .text()
        .ok_or("no text"))));
    assert!(validator.is_valid(&value), "{value}");
    assert_eq!(ok!(provider.respond(&req, None).await), generated);

    req.agent = "fixed".into();
    let fixed = ok!(provider.respond(&req, None).await);
    let value: Value = ok!(serde_json::from_str(&ok!(fixed.text().ok_or("no text"))));
    assert_eq!(value["title"], "T");
    assert!(validator.is_valid(&value));
}

#[tokio::test]
async fn scripted_errors_are_explained() {
    let (dir, provider) = script_provider(&json!({
        "replies": [
            {"name": "writer-only", "when": {"agent": "writer"}, "reply": {"text": "x"}},
            {"when": {"agent": "planner", "turn": 3}, "reply": {"text": "y"}}
        ]
    }));
    let err = match provider
        .respond(&agent_request("planner", 2, "plan it"), None)
        .await
    {
        Ok(r) => panic!("expected no match, got {r:?}"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, LlmError::Script { .. }), "{err:?}");
    for needle in [
        "provider `offline`",
        "script.json",
        "agent `planner`",
        "turn 2",
        "plan it",
        "tried 2 rule(s)",
        "`writer-only`: agent is `planner`, not `writer`",
        "turn is 2, not 3",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in: {text}");
    }

    // A bad script names the file and the problem.
    let path = dir.path().join("bad.json");
    ok!(std::fs::write(
        &path,
        r#"{"replies": [{"when": {"agent": "a"}, "reply": {"say": "x"}}]}"#
    ));
    let err = match build_provider(ProviderConfig::scripted("offline", &path)) {
        Ok(_) => panic!("expected a script error"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(text.contains("bad.json"), "{text}");
    assert!(text.contains("say"), "{text}");
    let missing = dir.path().join("missing.json");
    let err = match build_provider(ProviderConfig::scripted("offline", &missing)) {
        Ok(_) => panic!("expected a script error"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("missing.json"), "{err}");
}

#[test]
fn roles_are_lowercase_on_the_wire() {
    assert_eq!(
        ok!(serde_json::to_value(Role::Developer)),
        Value::String("developer".into())
    );
}

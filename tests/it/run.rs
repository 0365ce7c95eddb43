//! `host run` end to end: the real binary, real plugins, and the mock
//! OpenAI-compatible server on loopback (one per test).

use e2e::{Ran, mock};
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn agent(instructions: &str) -> Value {
    json!({"instructions": instructions, "model": {"provider": "mock", "name": "gpt-4.1-mini"}})
}

/// A spec whose only provider is the mock, speaking `api`.
fn spec(server: &MockServer, api: &str, agents: Value, workflow: Value) -> Value {
    json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": api,
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 5000,
            "retry": {"max_attempts": 3, "initial_backoff_ms": 20, "max_backoff_ms": 200}
        }},
        "agents": agents,
        "workflow": workflow,
    })
}

/// A one-step workflow running agent `a` over Chat Completions.
fn single(server: &MockServer, a: Value) -> Value {
    spec(
        server,
        "chat",
        json!({ "a": a }),
        json!({"key": "g", "steps": [{"agent": "a"}]}),
    )
}

async fn run_spec(spec: &Value, extra: &[&str]) -> Ran {
    let cx = e2e::test_context!();
    let path = cx.write_spec(spec);
    run_file(&path, extra).await
}

async fn run_file(path: &Path, extra: &[&str]) -> Ran {
    run_file_env(path, extra, &[]).await
}

async fn run_file_env(path: &Path, extra: &[&str], env: &[(&str, &str)]) -> Ran {
    e2e::host!()
        .arg("run")
        .arg(path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(extra)
        .envs(env.iter().copied())
        .ran()
        .await
}

/// The last user message of each logged model request, in arrival order.
fn user_inputs(server: &MockServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .map(|b| {
            if let Some(msgs) = b["messages"].as_array() {
                msgs.iter()
                    .rev()
                    .find(|m| m["role"] == "user")
                    .map(|m| m["content"].as_str().unwrap_or_default().to_string())
                    .unwrap_or_default()
            } else if let Some(items) = b["input"].as_array() {
                items
                    .iter()
                    .rev()
                    .find(|m| m["role"] == "user")
                    .map(|m| match &m["content"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default()
            } else {
                b["input"].as_str().unwrap_or_default().to_string()
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sequential_steps_feed_each_other() {
    let server = mock(json!({"rules": [
        {"match": {"instructions_contains": "FIRST"}, "reply": {"text": "first says hello"}},
        {"match": {"instructions_contains": "SECOND"}, "reply": {"text": "second got it"}}
    ]}))
    .await;
    let s = spec(
        &server,
        "chat",
        json!({"a": agent("FIRST agent"), "b": agent("SECOND agent")}),
        json!({"key": "seq", "steps": [{"agent": "a"}, {"agent": "b"}]}),
    );
    let ran = run_spec(&s, &["--input", "start"]).await;
    ran.ok();
    assert_eq!(ran.stdout.trim(), "second got it");
    assert_eq!(user_inputs(&server), ["start", "first says hello"]);
    assert!(
        ran.stderr.contains("✓ a") && ran.stderr.contains("✓ b"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_branches_really_overlap() {
    let server = mock(json!({"latency_ms": 300})).await;
    let steps: Vec<Value> = (0..4).map(|i| json!({"agent": format!("r{i}")})).collect();
    let agents: serde_json::Map<String, Value> = (0..4)
        .map(|i| (format!("r{i}"), agent(&format!("researcher {i}"))))
        .collect();
    let s = spec(
        &server,
        "responses",
        Value::Object(agents),
        json!({"key": "par", "stages": [{"name": "fan", "mode": "parallel", "steps": steps}]}),
    );
    let ran = run_spec(&s, &["--input", "topic"]).await;
    ran.ok();
    let stats = server.stats();
    assert_eq!(
        stats.max_in_flight, 4,
        "branches did not overlap: {stats:?}"
    );
    // Four 300 ms calls in parallel, not 1.2 s in sequence. The run's own
    // time (from its trace) excludes process start and plugin loading.
    let run_ms: u64 = ran
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("✓ completed in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        (300..1150).contains(&run_ms),
        "run took {run_ms} ms (process {:?})",
        ran.elapsed
    );
    // No reducer and several outputs: a JSON array in branch order.
    assert_eq!(ran.json().as_array().map(Vec::len), Some(4));
}

#[tokio::test(flavor = "multi_thread")]
async fn guard_skips_and_mapper_shapes_input_and_reducer_merges() {
    let server = mock(json!({"rules": [
        {"match": {"instructions_contains": "R1"}, "reply": {"text": "one"}},
        {"match": {"instructions_contains": "R2"}, "reply": {"text": "two"}},
        {"match": {"instructions_contains": "WRITER"}, "reply": {"text": "done"}}
    ]}))
    .await;
    let s = spec(
        &server,
        "chat",
        json!({"r1": agent("R1"), "r2": agent("R2"), "r3": agent("R3"), "w": agent("WRITER")}),
        json!({"key": "hooks", "stages": [
            {"name": "fan", "mode": "parallel", "steps": [
                {"agent": "r1", "input_mapper": {"plugin": "template_mapper", "config": {"template": "[aspect 1] {{input}}"}}},
                {"agent": "r2", "input_mapper": {"plugin": "template_mapper", "config": {"template": "[aspect 2] {{input}}"}}},
                {"agent": "r3", "guard": {"plugin": "keyword_guard", "config": {"min_length": 10000}}}
            ], "reducer": {"plugin": "concat", "config": {"separator": " | "}}},
            {"name": "write", "steps": [{"agent": "w"}]}
        ]}),
    );
    let ran = run_spec(&s, &["--input", "topic"]).await;
    ran.ok();
    let mut inputs = user_inputs(&server);
    let last = inputs.pop();
    inputs.sort();
    assert_eq!(
        inputs,
        ["[aspect 1] topic", "[aspect 2] topic"],
        "r3 must be skipped"
    );
    assert_eq!(
        last.as_deref(),
        Some("one | two"),
        "reducer output, in branch order"
    );
    assert!(
        ran.stderr.contains("- r3 [2] skipped (guard)"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_branch_error_fail_and_continue() {
    let rules = json!({"rules": [
        {"match": {"instructions_contains": "BROKEN"}, "reply": {"fault": {"kind": "server_error"}}},
        {"match": {"instructions_contains": "GOOD"}, "reply": {"text": "fine"}}
    ]});
    let workflow = |mode: &str| {
        json!({"key": "errs", "stages": [{"name": "fan", "mode": "parallel", "on_branch_error": mode,
        "steps": [{"agent": "good"}, {"agent": "broken"}], "reducer": "js_collect"}]})
    };
    let server = mock(rules.clone()).await;
    let ran = run_spec(
        &spec(
            &server,
            "chat",
            json!({"good": agent("GOOD"), "broken": agent("BROKEN")}),
            workflow("fail"),
        ),
        &["--input", "x"],
    )
    .await;
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("stage `fan`, step `broken`"),
        "{}",
        ran.stderr
    );

    let server = mock(rules).await;
    let ran = run_spec(
        &spec(
            &server,
            "chat",
            json!({"good": agent("GOOD"), "broken": agent("BROKEN")}),
            workflow("continue"),
        ),
        &["--input", "x"],
    )
    .await;
    ran.ok();
    let out = ran.json();
    assert_eq!(out["results"], json!({"good": "fine"}));
    assert!(
        out["failed"]["broken"]
            .as_str()
            .unwrap_or_default()
            .contains("500"),
        "{out}"
    );
}

/// Fail fast: the slow branch is stopped, not waited for (its error says
/// so, not a timeout), and its `step.started` still gets its
/// `step.failed`, before `run.failed`.
#[tokio::test(flavor = "multi_thread")]
async fn fail_fast_ends_every_started_branch() {
    let server = mock(json!({"rules": [
        {"match": {"instructions_contains": "BROKEN"}, "reply": {"fault": {"kind": "error", "status": 400}}},
        {"match": {"instructions_contains": "SLOW"}, "latency_ms": 60000, "reply": {"text": "late"}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    let sink = format!("jsonl:{}", events.display());
    let ran = run_spec(
        &spec(
            &server,
            "chat",
            json!({"slow": agent("SLOW"), "broken": agent("BROKEN")}),
            json!({"key": "ff", "stages": [{"name": "fan", "mode": "parallel",
                "steps": [{"agent": "slow"}, {"agent": "broken"}], "reducer": "js_collect"}]}),
        ),
        &["--input", "x", "--callback", &sink],
    )
    .await;
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    let events: Vec<Value> = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect();
    let of = |kind: &str, branch: u64| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["type"] == kind && e["branch_index"] == branch)
            .collect()
    };
    for branch in [0, 1] {
        assert_eq!(of("step.started", branch).len(), 1, "{events:#?}");
        assert_eq!(of("step.failed", branch).len(), 1, "{events:#?}");
        assert!(of("step.completed", branch).is_empty(), "{events:#?}");
    }
    let stopped = of("step.failed", 0)[0];
    assert_eq!(
        stopped["data"]["error"], "stopped: branch 1 (step `broken`) failed",
        "{stopped}"
    );
    let position = |e: &Value| events.iter().position(|x| x == e).expect("position");
    assert!(position(of("step.failed", 1)[0]) < position(stopped));
    let last = events.last().expect("events");
    assert_eq!(last["type"], "run.failed", "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_schema_pass_and_fail() {
    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}, "score": {"type": "number"}},
        "required": ["title", "score"], "additionalProperties": false});
    let server = mock(json!({})).await;
    let mut a = agent("Write a report.");
    a["output_schema"] = schema.clone();
    let s = spec(
        &server,
        "responses",
        json!({"writer": a}),
        json!({"key": "schema", "steps": [{"agent": "writer"}], "output_schema": schema}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    ran.ok();
    let out = ran.json();
    assert!(
        out["title"].is_string() && out["score"].is_number(),
        "{out}"
    );
    let body = server
        .requests()
        .into_iter()
        .find_map(|r| r.body)
        .expect("request");
    assert_eq!(body["text"]["format"]["type"], "json_schema", "{body}");

    // The model answers JSON missing a required field: the step fails.
    let server = mock(json!({"rules": [{"reply": {"json": {"title": "only a title"}}}]})).await;
    let s = spec(
        &server,
        "chat",
        json!({"writer": a}),
        json!({"key": "schema", "steps": [{"agent": "writer"}]}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    assert_eq!(ran.code(), Some(1));
    assert!(
        ran.stderr.contains("does not match its output schema") && ran.stderr.contains("score"),
        "{}",
        ran.stderr
    );

    // A final parallel stage does not inherit the workflow schema: its step
    // passes, and the workflow's own check on the final output fails.
    let server = mock(json!({"rules": [{"reply": {"text": "plain text"}}]})).await;
    let s = spec(
        &server,
        "chat",
        json!({"writer": agent("plain")}),
        json!({"key": "schema", "output_schema": schema,
            "stages": [{"name": "last", "mode": "parallel", "steps": [{"agent": "writer"}]}]}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    assert_eq!(ran.code(), Some(1));
    assert!(
        ran.stderr
            .contains("does not match the workflow's output schema"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_round_trip_and_two_calls_in_one_turn() {
    let server = mock(json!({"rules": [
        {"match": {"has_tool_result": false}, "reply": {"tool_calls": [
            {"name": "add", "arguments": {"numbers": [2, 3]}},
            {"name": "multiply", "arguments": {"numbers": [4, 5]}}
        ]}},
        {"match": {"has_tool_result": true}, "reply": {"text": "sum and product computed"}}
    ]}))
    .await;
    let mut a = agent("Use the calculator.");
    a["tools"] = json!(["calculator"]);
    let s = spec(
        &server,
        "chat",
        json!({"calc": a}),
        json!({"key": "tools", "steps": [{"agent": "calc"}]}),
    );
    let ran = run_spec(&s, &["--input", "compute"]).await;
    ran.ok();
    assert_eq!(ran.stdout.trim(), "sum and product computed");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let second = reqs[1].body.as_ref().expect("body");
    let tool_msgs: Vec<&Value> = second["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    let outputs: Vec<&str> = tool_msgs
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outputs, ["5", "20"], "both tool results, in call order");
    let tools = reqs[0].body.as_ref().expect("body")["tools"]
        .as_array()
        .map(Vec::len);
    assert_eq!(tools, Some(3), "add, multiply, evaluate offered");
    assert!(
        ran.stderr.contains("tool add") && ran.stderr.contains("tool multiply"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_error_goes_back_to_the_model() {
    let server = mock(json!({"rules": [
        {"match": {"has_tool_result": false}, "reply": {"tool_calls": [{"name": "evaluate", "arguments": {"expression": "1/0"}}]}},
        {"match": {"has_tool_result": true}, "reply": {"text": "could not divide"}}
    ]})).await;
    let mut a = agent("calc");
    a["tools"] = json!(["calculator#evaluate"]);
    let s = spec(
        &server,
        "responses",
        json!({"calc": a}),
        json!({"key": "t", "steps": [{"agent": "calc"}]}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    ran.ok();
    let second = server.requests()[1].body.clone().expect("body");
    let output = second["input"]
        .as_array()
        .expect("input")
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .expect("tool output")["output"]
        .clone();
    assert!(
        output
            .as_str()
            .unwrap_or_default()
            .contains("division by zero"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_turns_exceeded_is_a_clear_error() {
    let server = mock(json!({"rules": [{"reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [1]}}]}}]})).await;
    let mut a = agent("loop");
    a["tools"] = json!(["calculator#add"]);
    let s = spec(
        &server,
        "chat",
        json!({"looper": a}),
        json!({"key": "t", "steps": [{"agent": "looper", "max_turns": 3}]}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    assert_eq!(ran.code(), Some(1));
    assert!(
        ran.stderr
            .contains("agent `looper` reached max_turns (3) without a final output"),
        "{}",
        ran.stderr
    );
    assert_eq!(server.stats().requests, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn guardrails_trip_in_every_phase() {
    let tripped = |ran: &Ran, phase: &str| {
        assert_eq!(ran.code(), Some(1), "{phase}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(&format!(
                "{phase} guardrail `pii_guardrail#pii_guardrail` tripped"
            )),
            "{phase}: {}",
            ran.stderr
        );
    };
    // input
    let server = mock(json!({})).await;
    let mut a = agent("a");
    a["input_guardrails"] = json!(["pii_guardrail"]);
    let ran = run_spec(
        &single(&server, a),
        &["--input", "mail me: ann@example.com"],
    )
    .await;
    tripped(&ran, "input");
    assert_eq!(
        server.stats().requests,
        0,
        "no model call after an input tripwire"
    );
    // output
    let server = mock(json!({"rules": [{"reply": {"text": "call me at +1 415 555 0100"}}]})).await;
    let mut a = agent("a");
    a["output_guardrails"] = json!(["pii_guardrail"]);
    let ran = run_spec(&single(&server, a), &["--input", "hi"]).await;
    tripped(&ran, "output");
    // tool input
    let server = mock(json!({"rules": [{"match": {"has_tool_result": false}, "reply": {"tool_calls": [{"name": "lookup_facts", "arguments": {"query": "bob@example.org", "limit": 2}}]}}, {"reply": {"text": "ok"}}]})).await;
    let mut a = agent("a");
    a["tools"] = json!(["lookup_facts"]);
    a["tool_guardrails"] = json!(["pii_guardrail"]);
    let ran = run_spec(&single(&server, a), &["--input", "hi"]).await;
    tripped(&ran, "tool_input");
    // tool output: only the result holds a 10-digit number
    let server = mock(json!({"rules": [{"match": {"has_tool_result": false}, "reply": {"tool_calls": [{"name": "evaluate", "arguments": {"expression": "5551234*1000+567"}}]}}, {"reply": {"text": "ok"}}]})).await;
    let mut a = agent("a");
    a["tools"] = json!(["calculator#evaluate"]);
    a["tool_guardrails"] = json!([{"plugin": "pii_guardrail", "config": {"min_phone_digits": 10}}]);
    let ran = run_spec(&single(&server, a), &["--input", "hi"]).await;
    tripped(&ran, "tool_output");
}

#[tokio::test(flavor = "multi_thread")]
async fn handoff_to_another_agent() {
    let server = mock(json!({"rules": [
        {"match": {"instructions_contains": "TRIAGE"}, "reply": {"tool_calls": [{"name": "transfer_to_billing", "arguments": {}}]}},
        {"match": {"instructions_contains": "BILLING"}, "reply": {"text": "billing handled it"}}
    ]})).await;
    let mut triage = agent("TRIAGE: route the request");
    triage["handoffs"] = json!(["billing"]);
    let mut billing = agent("BILLING specialist");
    billing["handoff_description"] = json!("Handles invoices and refunds");
    let s = spec(
        &server,
        "responses",
        json!({"triage": triage, "billing": billing}),
        json!({"key": "h", "steps": [{"agent": "triage"}], "allow_handoff_agents": true}),
    );
    let ran = run_spec(&s, &["--input", "refund please"]).await;
    ran.ok();
    assert_eq!(ran.stdout.trim(), "billing handled it");
    assert!(
        ran.stderr.contains("handoff triage → billing"),
        "{}",
        ran.stderr
    );
    let first = server.requests()[0].body.clone().expect("body");
    let tool = &first["tools"][0];
    assert_eq!(tool["name"], "transfer_to_billing");
    assert_eq!(tool["description"], "Handles invoices and refunds");
}

#[tokio::test(flavor = "multi_thread")]
async fn both_apis_with_and_without_streaming() {
    for api in ["responses", "chat"] {
        for stream in [false, true] {
            let server =
                mock(json!({"rules": [{"reply": {"text": "streamed or not, the same text"}}]}))
                    .await;
            let s = spec(
                &server,
                api,
                json!({"a": agent("a")}),
                json!({"key": "s", "steps": [{"agent": "a"}]}),
            );
            let mut args = vec!["--input", "x"];
            if stream {
                args.push("--stream");
            }
            let ran = run_spec(&s, &args).await;
            ran.ok();
            assert_eq!(
                ran.stdout.trim(),
                "streamed or not, the same text",
                "{api} stream={stream}"
            );
            let st = server.stats();
            // `chat` / `responses` count every request, the `_stream` fields the streamed ones.
            let (total, streamed) = if api == "chat" {
                (st.chat, st.chat_stream)
            } else {
                (st.responses, st.responses_stream)
            };
            assert_eq!(
                (total, streamed),
                (1, u64::from(stream)),
                "{api} stream={stream}: {st:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recovers_after_429_and_500() {
    let server = mock(json!({"rules": [
        {"match": {"times": 1}, "reply": {"fault": {"kind": "rate_limit", "retry_after_secs": 1}}},
        {"match": {"times": 1}, "reply": {"fault": {"kind": "server_error"}}},
        {"reply": {"text": "third time lucky"}}
    ]}))
    .await;
    let s = spec(
        &server,
        "chat",
        json!({"a": agent("a")}),
        json!({"key": "r", "steps": [{"agent": "a"}]}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    ran.ok();
    assert_eq!(ran.stdout.trim(), "third time lucky");
    assert_eq!(server.stats().requests, 3);
    assert!(
        ran.elapsed >= Duration::from_millis(950),
        "Retry-After: 1 not honoured: {:?}",
        ran.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clear_failure_after_the_retry_budget() {
    let server = mock(json!({"rules": [{"reply": {"fault": {"kind": "server_error", "message": "upstream exploded"}}}]})).await;
    let s = spec(
        &server,
        "responses",
        json!({"a": agent("a")}),
        json!({"key": "r", "steps": [{"agent": "a"}]}),
    );
    let ran = run_spec(&s, &["--input", "x"]).await;
    assert_eq!(ran.code(), Some(1));
    assert_eq!(server.stats().requests, 3, "max_attempts is 3");
    assert!(
        ran.stderr.contains("3 attempts") || ran.stderr.contains("after 3"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("upstream exploded"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("sk-test-not-a-real-key"),
        "the key leaked: {}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hang_hits_the_request_timeout() {
    let server = mock(json!({"rules": [{"reply": {"fault": {"kind": "hang"}}}]})).await;
    let mut s = spec(
        &server,
        "chat",
        json!({"a": agent("a")}),
        json!({"key": "r", "steps": [{"agent": "a"}]}),
    );
    s["providers"]["mock"]["timeout_ms"] = json!(300);
    s["providers"]["mock"]["retry"]["max_attempts"] = json!(2);
    let ran = run_spec(&s, &["--input", "x"]).await;
    assert_eq!(ran.code(), Some(1));
    assert!(
        ran.stderr.to_lowercase().contains("timed out") || ran.stderr.contains("timeout"),
        "{}",
        ran.stderr
    );
    assert!(ran.elapsed < Duration::from_secs(10), "{:?}", ran.elapsed);
    assert_eq!(server.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_specs_exit_2_with_json_paths() {
    let server = mock(json!({})).await;
    let cases = [
        (
            json!({"key": "v", "steps": [{"agent": "nobody"}]}),
            "$.workflow.steps[0].agent",
        ),
        (
            json!({"key": "v", "stages": [{"name": "s", "steps": [{"agent": "a", "guard": "concat"}]}]}),
            "$.workflow.stages[0].steps[0].guard",
        ),
        (
            json!({"key": "v", "stages": [{"name": "s", "steps": [{"agent": "a"}], "reducer": "concat"}]}),
            "$.workflow.stages[0].reducer",
        ),
        (
            json!({"key": "v", "stages": [{"name": "s", "steps": []}]}),
            "$.workflow.stages[0].steps",
        ),
        (
            json!({"key": "v", "stages": [{"name": "s", "steps": [{"agent": "a", "input_mapper": "nope#x"}]}]}),
            "$.workflow.stages[0].steps[0].input_mapper",
        ),
    ];
    for (workflow, path) in cases {
        let s = spec(&server, "chat", json!({"a": agent("a")}), workflow);
        let ran = run_spec(&s, &["--input", "x"]).await;
        assert_eq!(ran.code(), Some(2), "{path}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(path),
            "expected {path} in:\n{}",
            ran.stderr
        );
    }
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_runs_offline() {
    let examples = e2e::repo_root().join("examples");
    let mut names: Vec<_> = std::fs::read_dir(&examples)
        .expect("examples")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("spec.json").is_file())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    for dir in names {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let api = crate::common::ExampleApi::start(name.as_deref().unwrap_or_default());
        let mut args = vec!["--offline"];
        if let Some(api) = &api {
            args.extend(api.args());
        }
        let ran = run_file_env(
            &dir.join("spec.json"),
            &args,
            &[crate::common::ExampleApi::ENV],
        )
        .await;
        drop(api);
        ran.ok();
        assert!(
            !ran.stdout.trim().is_empty(),
            "{}: empty output",
            dir.display()
        );
        assert!(
            ran.stderr.contains("offline"),
            "{}: not labelled offline",
            dir.display()
        );
    }
}

/// The README's promise: the same example runs against a real model when a
/// base URL (a local OpenAI-compatible server; no key needed) is given.
#[tokio::test(flavor = "multi_thread")]
async fn examples_run_against_a_server_given_by_openai_base_url() {
    let server = mock(json!({})).await;
    let spec = e2e::repo_root().join("examples/analysis_parallel/spec.json");
    let url = server.base_url();
    let ran = run_file_env(&spec, &[], &[("OPENAI_BASE_URL", url.as_str())]).await;
    ran.ok();
    let stats = server.stats();
    assert_eq!((stats.requests, stats.responses), (3, 3), "{stats:?}");
    assert!(!ran.stderr.contains("offline"), "{}", ran.stderr);
    assert!(
        server.requests().iter().all(|r| !r.has_authorization),
        "no key was set, none may be sent"
    );
}

/// `--quiet` is "errors only": a retried model call's warning is not
/// printed with it (and is without it).
#[tokio::test(flavor = "multi_thread")]
async fn quiet_prints_no_retry_warnings() {
    for quiet in [false, true] {
        let server = mock(json!({"rules": [
            {"match": {"times": 1}, "reply": {"fault": {"kind": "error", "status": 500}}},
            {"reply": {"text": "hello"}}
        ]}))
        .await;
        let s = single(&server, agent("Say hello"));
        let cx = e2e::test_context!();
        let path = cx.write_spec(&s);
        let extra: &[&str] = if quiet {
            &["--input", "hi", "--quiet"]
        } else {
            &["--input", "hi", "--no-progress"]
        };
        let ran = e2e::host!()
            .arg("run")
            .arg(&path)
            .arg("--plugins")
            .arg(e2e::plugins_dir())
            .args(extra)
            .env_remove("RUST_LOG")
            .ran()
            .await;
        ran.ok();
        assert_eq!(server.stats().requests, 2, "one retry");
        assert_eq!(
            ran.stderr.contains("retrying"),
            !quiet,
            "quiet: {quiet}\n{}",
            ran.stderr
        );
    }
}

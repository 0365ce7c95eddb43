//! The Go workflow runner's request, as its users send it, end to end with
//! the real `host` binary:
//!
//! - its getting-started request (`examples/simple_assistant/spec.json`)
//!   runs unchanged, offline and against the mock OpenAI server, printing
//!   like the Go runner's console printer, and `host runs show --json`
//!   gives its run summary and execution state;
//! - the corpus of Go requests in `tests/data/go/valid` runs offline, and
//!   every request of `tests/data/go/invalid` is refused at its Go path;
//! - the Go callback envelope reaches a real HTTP server on loopback, and a
//!   failing endpoint does not fail the run;
//! - the built-in guardrails trip and pass, take `config.pattern`, and give
//!   way to a plugin of the same name.

use crate::outbox::{Server, free_addr};
use e2e::{Ran, TestContext, within};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn example() -> PathBuf {
    e2e::repo_root().join("examples/simple_assistant/spec.json")
}

fn getting_started() -> Value {
    serde_json::from_str(&std::fs::read_to_string(example()).expect("example")).expect("json")
}

fn data(dir: &str) -> PathBuf {
    e2e::repo_root().join("tests/data/go").join(dir)
}

/// `request` and `script` as `spec.json` and `script.json` in the
/// context's folder; returns the spec's path.
fn write(cx: &TestContext, request: &Value, script: Value) -> PathBuf {
    std::fs::write(cx.dir().join("script.json"), script.to_string()).expect("script");
    cx.write_spec(request)
}

async fn run(cx: &TestContext, spec: &Path, plugins: &Path, extra: &[&str]) -> Ran {
    cx.host()
        .arg("run")
        .arg(spec)
        .arg("--plugins")
        .arg(plugins)
        .args(["--offline", "--no-progress"])
        .args(extra)
        .ran()
        .await
}

async fn show(cx: &TestContext, run_id: &str) -> Value {
    let ran = cx
        .host()
        .args(["runs", "show", run_id, "--json"])
        .ran()
        .await;
    ran.ok();
    ran.json()
}

// ------------------------------------------------ the getting-started request

#[tokio::test(flavor = "multi_thread")]
async fn the_getting_started_request_runs_offline_unchanged() {
    let cx = e2e::test_context!();
    let ran = cx
        .host()
        .args([
            "run",
            "examples/simple_assistant/spec.json",
            "--offline",
            "--no-progress",
        ])
        .in_repo_root()
        .ran()
        .await;
    ran.ok();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines[0], "user: List three fun facts about Mars.",
        "{}",
        ran.stdout
    );
    assert!(
        lines[1].starts_with("agent assistant: 1. A day on Mars lasts"),
        "{}",
        ran.stdout
    );
    assert_eq!(
        lines[2..7],
        [
            "---",
            "Session summary",
            "  turns: 1",
            "  starting agent: assistant",
            "  final agent: assistant"
        ],
        "{}",
        ran.stdout
    );
    assert!(lines[7].starts_with("  runtime: "), "{}", ran.stdout);
    // Then the final output, as `host run` prints it after a `stdout` sink.
    assert!(
        ran.stdout.trim_end().ends_with("Phobos and Deimos."),
        "{}",
        ran.stdout
    );

    // The Go runner's run summary and execution state, per run.
    let shown = show(&cx, &ran.run_id()).await;
    let summary = &shown["summary"];
    assert_eq!(summary["workflow_name"], "simple_assistant");
    assert_eq!(summary["session_id"], "demo-simple");
    assert!(
        summary["final_output"]
            .as_str()
            .is_some_and(|o| o.starts_with("1. A day on Mars")),
        "{shown:#}"
    );
    assert!(summary["last_response_id"].is_string(), "{shown:#}");
    let state = &shown["execution_state"];
    assert_eq!(state["status"], "completed");
    assert_eq!(state["session_id"], "demo-simple");
    assert_eq!(state["workflow_name"], "simple_assistant");
    assert_eq!(state["last_agent"], "assistant");
    assert_eq!(state["last_query"], "List three fun facts about Mars.");
    assert_eq!(state["last_error"], "");
    assert_eq!(state["pending_approvals"], json!([]));
    assert_eq!(state["final_output"], summary["final_output"]);
    assert!(
        state["updated_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    // The session is the request's, for the request's account and user.
    assert_eq!(shown["account_id"], "acct-456");
    assert_eq!(shown["user_id"], "user-123");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_getting_started_request_runs_against_the_mock_server() {
    let cx = e2e::test_context!(json!({"rules": [
        {"match": {"instructions_contains": "planetary science"},
         "reply": {"text": "Mars has the tallest volcano in the solar system."}}
    ]}))
    .await;
    let ran = cx
        .host()
        .arg("run")
        .arg(example())
        .args(["--plugins", "no-such-folder", "--no-progress"])
        .env("OPENAI_BASE_URL", cx.mock().base_url())
        .env_remove("OPENAI_API_KEY")
        .ran()
        .await;
    ran.ok();
    assert!(
        ran.stdout
            .contains("agent assistant: Mars has the tallest volcano in the solar system."),
        "{}",
        ran.stdout
    );
    let stats = cx.mock().stats();
    assert_eq!(stats.requests, 1);
}

// ------------------------------------------------------------- the corpus

#[tokio::test(flavor = "multi_thread")]
async fn the_go_corpus_runs_offline() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data("valid"))
        .expect("corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "script.json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let cx = e2e::test_context!();
        let ran = run(
            &cx,
            &file,
            &e2e::plugins_dir(),
            &["--deliver-timeout", "0.2"],
        )
        .await;
        assert!(
            ran.code() == Some(0),
            "{}: {}\n{}",
            file.display(),
            ran.stdout,
            ran.stderr
        );
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        match name {
            // stdout_verbose: agent switches and the final output, by display name.
            "every_field" => {
                for line in [
                    "user: Write a short research note about Mars.",
                    "[agent switch] -> Triage Desk",
                    // An agent offered as a tool, called and answering.
                    "tool ask_json_helper called by Triage Desk",
                    "tool function_call_output output: {\"facts\":5}",
                    "handoff Triage Desk -> Writer",
                    "[agent switch] -> Writer",
                    "agent Writer: {\"title\":\"Mars in five facts\"}",
                    "  starting agent: Writer",
                    "  final output: {\"title\":\"Mars in five facts\"}",
                ] {
                    assert!(ran.stdout.contains(line), "{line:?} in:\n{}", ran.stdout);
                }
            }
            "complex" => {
                assert!(
                    ran.stdout.contains("handoff supervisor -> writer"),
                    "{}",
                    ran.stdout
                );
                assert!(
                    !ran.stdout.contains("[agent switch]"),
                    "stdout is not verbose"
                );
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_broken_go_request_is_refused_at_its_go_path() {
    let dir = data("invalid");
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("read"))
            .expect("expected.json");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("invalid corpus")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "expected.json")
        .collect();
    files.sort();
    let listed: Vec<String> = expected.keys().map(|k| format!("{k}.json")).collect();
    assert_eq!(files, listed, "every broken request has an expectation");
    for (name, want) in &expected {
        let file = dir.join(format!("{name}.json"));
        let out = e2e::host!()
            .arg("validate")
            .arg(&file)
            .arg("--plugins")
            .arg(e2e::plugins_dir())
            .output()
            .await;
        let stderr = e2e::text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let path = want["path"].as_str().expect("path");
        let message = want["message"].as_str().expect("message");
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("error: {path}: ")))
            .unwrap_or_else(|| panic!("{name}: no error at {path}:\n{stderr}"));
        assert!(line.contains(message), "{name}: {line}");
    }
}

// ------------------------------------------------------ the Go envelope

/// The getting-started request with an http callback to `url` and the
/// calculator tool, and a script that calls it.
fn with_callback(cx: &TestContext, url: &str) -> PathBuf {
    let mut request = getting_started();
    request["callback"] = json!({"target": url});
    request["workflow"]["agents"][0]["display_name"] = json!("Astro");
    request["workflow"]["agents"][0]["tools"] = json!([{"type": "plugin", "name": "calculator"}]);
    write(
        cx,
        &request,
        json!({"replies": [
            {"when": {"agent": "assistant", "has_tool_result": false},
             "reply": {"tool_calls": [{"name": "evaluate", "arguments": {"expression": "12 * 7"}}]}},
            {"when": {"agent": "assistant"}, "reply": {"text": "It is {{tool_output}}."}}
        ]}),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_go_envelope_reaches_a_real_server() {
    let cx = e2e::test_context!();
    let addr = free_addr();
    let server = Server::start(&addr, Arc::new(|_| (200, Duration::ZERO))).await;
    let spec = with_callback(&cx, &format!("http://{addr}/events"));
    let ran = run(
        &cx,
        &spec,
        &e2e::plugins_dir(),
        &["--deliver-timeout", "10"],
    )
    .await;
    ran.ok();
    let received = within(10, "the Go events", async {
        loop {
            let r = server.received();
            if r.iter().any(|r| r.json()["type"] == "run.completed") {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let events: Vec<Value> = received.iter().map(|r| r.json()).collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"run.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"run.completed"), "{types:?}");
    for e in &events {
        let keys: Vec<&str> = e
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["metadata", "payload", "timestamp", "type"], "{e}");
        assert!(
            e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{e}"
        );
        assert_eq!(e["metadata"]["run_id"], ran.run_id());
    }
    assert_eq!(
        events[0]["payload"],
        json!({"workflow": "simple_assistant", "session": "demo-simple",
               "query": "List three fun facts about Mars."})
    );
    let payloads: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "run.event")
        .map(|e| &e["payload"])
        .collect();
    assert_eq!(
        payloads[0],
        &json!({"event_kind": "agent_updated", "agent_name": "Astro"})
    );
    let items: Vec<&Value> = payloads
        .iter()
        .filter(|p| p["event_kind"] == "run_item")
        .copied()
        .collect();
    assert_eq!(
        items,
        [
            &json!({"event_kind": "run_item", "name": "tool_called", "item": {
                "type": "tool_call_item", "agent": "Astro",
                "tool_call": "responses.ResponseFunctionToolCall", "function_name": "evaluate"}}),
            &json!({"event_kind": "run_item", "name": "tool_output", "item": {
                "type": "tool_call_output_item", "agent": "Astro", "output": "84"}}),
            &json!({"event_kind": "run_item", "name": "message_output_created", "item": {
                "type": "message_output_item", "agent": "Astro", "text": "It is 84."}}),
        ]
    );
    let done = &events[events.len() - 1]["payload"];
    assert_eq!(done["final_output"], "It is 84.");
    assert!(done["last_response_id"].is_string(), "{done}");
    // Posted in order, each with its own idempotency key.
    let keys: Vec<&str> = received.iter().map(|r| r.key()).collect();
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(keys, unique);
    assert!(received.iter().all(|r| r.path == "/events"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_callback_endpoint_does_not_fail_the_run() {
    let cx = e2e::test_context!();
    let addr = free_addr();
    let server = Server::start(&addr, Arc::new(|_| (500, Duration::ZERO))).await;
    let spec = with_callback(&cx, &format!("http://{addr}/events"));
    let ran = run(&cx, &spec, &e2e::plugins_dir(), &["--deliver-timeout", "1"]).await;
    ran.ok();
    assert_eq!(ran.stdout.trim(), "It is 84.");
    assert!(!server.received().is_empty(), "the endpoint was tried");
    let shown = show(&cx, &ran.run_id()).await;
    assert_eq!(shown["execution_state"]["status"], "completed");
    // Nothing answers at all: the same.
    let cx = e2e::test_context!();
    let spec = with_callback(&cx, &format!("http://{}/events", free_addr()));
    run(
        &cx,
        &spec,
        &e2e::plugins_dir(),
        &["--deliver-timeout", "0.2"],
    )
    .await
    .ok();
}

// ---------------------------------------------------- built-in guardrails

/// The getting-started request whose assistant answers `reply`, with
/// guardrails set by `edit`.
fn guarded(cx: &TestContext, query: &str, reply: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut request = getting_started();
    request["query"] = json!(query);
    edit(&mut request["workflow"]["agents"][0]);
    write(
        cx,
        &request,
        json!({"replies": [{"when": {"agent": "assistant"}, "reply": {"text": reply}}]}),
    )
}

#[track_caller]
fn tripped(ran: &Ran, phase: &str, guardrail: &str) {
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    let needle = format!("{phase} guardrail `{guardrail}#{guardrail}` tripped");
    assert!(ran.stderr.contains(&needle), "{needle}: {}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_built_in_guardrails_trip_and_pass_without_a_plugins_folder() {
    let none = Path::new("no-such-plugins-folder");
    let input = |g: &str| {
        let g = g.to_string();
        move |a: &mut Value| a["input_guardrails"] = json!([{"name": g}])
    };
    for (guardrail, trips, passes) in [
        (
            "math_homework_input",
            "Solve this math problem: 2+2",
            "Tell me about Mars",
        ),
        (
            "basic_profanity_input",
            "What the hell is Mars?",
            "Hello, what is Mars?",
        ),
    ] {
        let cx = e2e::test_context!();
        let spec = guarded(&cx, trips, "ok", input(guardrail));
        tripped(&run(&cx, &spec, none, &[]).await, "input", guardrail);
        let spec = guarded(&cx, passes, "ok", input(guardrail));
        run(&cx, &spec, none, &[]).await.ok();
    }
    let output = |g: &str, config: Value| {
        let g = g.to_string();
        move |a: &mut Value| a["output_guardrails"] = json!([{"name": g, "config": config}])
    };
    for (guardrail, config, trips, passes) in [
        (
            "basic_profanity_output",
            json!({}),
            "Damn, Mars is cold.",
            "Mars is cold.",
        ),
        (
            "phone_number_output",
            json!({}),
            "Call 555-123-4567.",
            "Mars has 2 moons.",
        ),
        (
            "phone_number_output",
            json!({"pattern": "\\bSECRET-\\d+\\b"}),
            "The code is SECRET-42.",
            "Call 555-123-4567.",
        ),
    ] {
        let cx = e2e::test_context!();
        let spec = guarded(&cx, "q", trips, output(guardrail, config.clone()));
        tripped(&run(&cx, &spec, none, &[]).await, "output", guardrail);
        let spec = guarded(&cx, "q", passes, output(guardrail, config));
        run(&cx, &spec, none, &[]).await.ok();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_of_the_same_name_replaces_a_built_in_guardrail() {
    let cx = e2e::test_context!();
    let plugins = cx.dir().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    let edit = |a: &mut Value| a["output_guardrails"] = json!([{"name": "phone_number_output"}]);
    // The built-in preset lets an e-mail address through...
    let spec = guarded(&cx, "q", "Write to ann@example.com.", edit);
    run(&cx, &spec, &plugins, &[]).await.ok();
    // ...the PII plugin under its name does not.
    std::fs::copy(
        e2e::plugins_dir().join("pii_guardrail.wasm"),
        plugins.join("phone_number_output.wasm"),
    )
    .expect("copy plugin");
    let ran = run(&cx, &spec, &plugins, &[]).await;
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("output guardrail `phone_number_output#pii_guardrail` tripped"),
        "{}",
        ran.stderr
    );
    // `host plugins list` shows the plugin, and the presets it does not replace.
    let listed = cx
        .host()
        .args(["plugins", "list", "--json", "--plugins"])
        .arg(&plugins)
        .ran()
        .await;
    listed.ok();
    let listed = listed.json();
    let names = |key: &str| -> Vec<String> {
        listed[key]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(names("plugins"), ["phone_number_output"]);
    assert_eq!(
        names("builtin"),
        [
            "math_homework_input",
            "basic_profanity_input",
            "basic_profanity_output"
        ]
    );
    let empty = cx.dir().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let table = cx
        .host()
        .args(["plugins", "list", "--plugins"])
        .arg(&empty)
        .ran()
        .await;
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("phone_number_output") && l.contains("built-in")),
        "{}\n{}",
        table.stdout,
        table.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guardrail_target_checks_one_field_of_a_structured_output() {
    let none = Path::new("no-such-plugins-folder");
    let schema = json!({
        "type": "object",
        "properties": {"response": {"type": "string"}, "reasoning": {"type": "string"}},
        "required": ["response", "reasoning"],
        "additionalProperties": false
    });
    for (reply, trips) in [
        (
            json!({"response": "Call the front desk.", "reasoning": "its line is 555-123-4567"}),
            false,
        ),
        (
            json!({"response": "Call 555-123-4567.", "reasoning": "the front desk"}),
            true,
        ),
    ] {
        let cx = e2e::test_context!();
        let path = guarded(&cx, "Who do I call?", &reply.to_string(), |agent| {
            agent["output_type"] = json!({"name": "answer", "strict": true, "schema": schema});
            agent["output_guardrails"] =
                json!([{"name": "phone_number_output", "target": "response"}]);
        });
        let ran = run(&cx, &path, none, &[]).await;
        if trips {
            tripped(&ran, "output", "phone_number_output");
        } else {
            ran.ok();
            assert!(ran.stdout.contains("front desk"), "{}", ran.stdout);
        }
    }
}

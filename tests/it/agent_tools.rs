//! Agents offered as tools (`agent_tools`), through the real binary and the
//! mock OpenAI server: the model calls one like any tool, the agent runs
//! its own turns on the `input` it was given, and its final output goes
//! back as the tool's result; its calls are journaled under the call, so a
//! pause for approval inside it resumes without asking any model twice.

use e2e::{TestContext, text};
use mock_openai::MockServer;
use serde_json::{Value, json};

fn spec(server: &MockServer, api: &str, translator_tools: Value) -> Value {
    json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": api,
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000, "retry": {"max_attempts": 1}
        }},
        "agents": {
            "manager": {
                "instructions": "You manage. MANAGER",
                "model": {"provider": "mock", "name": "gpt-4.1-mini"},
                "agent_tools": [{"agent": "translator", "tool_name": "translate",
                                 "description": "Translate text to French."}]
            },
            "translator": {
                "instructions": "You translate. TRANSLATOR",
                "model": {"provider": "mock", "name": "gpt-4.1-nano"},
                "tools": translator_tools
            }
        },
        "workflow": {"key": "delegate", "steps": [{"agent": "manager"}]},
        "run": {"input": "say hello in French",
                "callback": [{"type": "jsonl", "path": "events.jsonl"}]}
    })
}

/// The manager delegates once, then answers with what came back; the
/// translator answers `bonjour`, after adding 2 and 3 when it has a tool.
fn rules() -> Value {
    json!({"rules": [
        {"name": "delegate", "match": {"instructions_contains": "MANAGER", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "translate", "arguments": {"input": "hello"}, "call_id": "call_tr_1"}]}},
        {"name": "final", "match": {"instructions_contains": "MANAGER", "has_tool_result": true},
         "reply": {"text": "The French is bonjour."}},
        {"name": "add", "match": {"instructions_contains": "TRANSLATOR", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [2, 3]}, "call_id": "call_add_1"}]}},
        {"name": "translate", "match": {"instructions_contains": "TRANSLATOR"},
         "reply": {"text": "bonjour"}}
    ]})
}

/// Which agent made each request, in order, by its instructions.
fn callers(server: &MockServer) -> Vec<&'static str> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .map(|b| {
            if b.to_string().contains("MANAGER") {
                "manager"
            } else {
                "translator"
            }
        })
        .collect()
}

fn events(cx: &TestContext) -> Vec<Value> {
    std::fs::read_to_string(cx.dir().join("events.jsonl"))
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_offered_as_a_tool_answers_its_caller_on_both_apis() {
    for api in ["responses", "chat"] {
        // The translator has no tool: it answers at once.
        let mut config = rules();
        config["rules"]
            .as_array_mut()
            .expect("rules")
            .retain(|r| r["name"] != "add");
        let cx = e2e::test_context!(config).await;
        let path = cx.write_spec(&spec(cx.mock(), api, json!([])));
        let ran = cx.host().arg("run").arg(&path).ran().await;
        assert!(ran.out.status.success(), "{api}: {}", ran.stderr);
        assert_eq!(ran.stdout.trim(), "The French is bonjour.", "{api}");
        assert_eq!(
            callers(cx.mock()),
            ["manager", "translator", "manager"],
            "{api}"
        );

        let bodies: Vec<Value> = cx
            .mock()
            .requests()
            .into_iter()
            .filter_map(|r| r.body)
            .collect();
        // Offered like any function tool, with the `input` parameter.
        let tool = &bodies[0]["tools"][0];
        let (name, description, parameters) = match api {
            "responses" => (&tool["name"], &tool["description"], &tool["parameters"]),
            _ => (
                &tool["function"]["name"],
                &tool["function"]["description"],
                &tool["function"]["parameters"],
            ),
        };
        assert_eq!(name, "translate", "{api}: {tool}");
        assert_eq!(description, "Translate text to French.");
        assert_eq!(
            parameters,
            &json!({"type": "object", "properties": {"input": {"type": "string"}},
                    "required": ["input"], "additionalProperties": false})
        );
        // The translator gets the call's input as its user message, with
        // its own model and no tools; the manager gets its answer back.
        let nested = bodies[1].to_string();
        assert_eq!(bodies[1]["model"], "gpt-4.1-nano", "{api}");
        assert!(nested.contains("\"hello\""), "{api}: {nested}");
        assert!(!nested.contains("say hello in French"), "{api}: {nested}");
        assert!(
            bodies[2].to_string().contains("bonjour"),
            "{api}: {}",
            bodies[2]
        );

        // Shown as a tool call and its result.
        let events = events(&cx);
        let called = events
            .iter()
            .find(|e| e["type"] == "tool.called")
            .expect("tool.called");
        assert_eq!(called["data"]["tool"], "translate");
        let result = events
            .iter()
            .find(|e| e["type"] == "tool.result")
            .expect("tool.result");
        assert_eq!(result["data"]["output"], "bonjour");
        assert_eq!(result["data"]["error"], false);

        // The nested call's tokens count in the run's usage.
        let shown = cx
            .host()
            .args(["runs", "show", &ran.run_id(), "--json"])
            .ran()
            .await;
        shown.ok();
        let usage = shown.json()["usage"].clone();
        for model in ["gpt-4.1-mini", "gpt-4.1-nano"] {
            assert!(
                usage[model]["output_tokens"]
                    .as_u64()
                    .is_some_and(|t| t > 0),
                "{api}: {model} in {usage:#}"
            );
        }

        // A replay serves everything from the journal.
        let before = cx.mock().requests().len();
        let replayed = cx.host().args(["replay", &ran.run_id()]).ran().await;
        assert!(replayed.out.status.success(), "{}", replayed.stderr);
        assert_eq!(
            cx.mock().requests().len(),
            before,
            "{api}: replay asked a model"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_inside_an_agent_tool_pauses_the_run_and_resumes_without_asking_twice() {
    let cx = e2e::test_context!(rules()).await;
    let tools = json!([{"plugin": "calculator#add", "approval": "always"}]);
    let path = cx.write_spec(&spec(cx.mock(), "responses", tools));
    let plugins = e2e::plugins_dir();
    let out = cx
        .host()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(&plugins)
        .output()
        .await;
    assert_eq!(out.status.code(), Some(3), "paused: {}", text(&out.stderr));
    assert_eq!(callers(cx.mock()), ["manager", "translator"]);

    let listed = cx.host().args(["approvals", "list", "--json"]).ran().await;
    listed.ok();
    let pending = listed.json();
    assert_eq!(pending[0]["call_id"], "call_add_1", "{pending:#}");
    assert_eq!(pending[0]["tool"], "add", "{pending:#}");
    let run_id = pending[0]["run_id"].as_str().expect("run id").to_owned();
    cx.host()
        .args(["approve", &run_id, "call_add_1"])
        .ran()
        .await
        .ok();
    let resumed = cx
        .host()
        .args(["resume", &run_id, "--plugins"])
        .arg(&plugins)
        .ran()
        .await;
    assert!(resumed.out.status.success(), "{}", resumed.stderr);
    assert!(
        resumed.stdout.contains("The French is bonjour."),
        "{}",
        resumed.stdout
    );
    // Neither the manager's first call nor the translator's is repeated.
    assert_eq!(
        callers(cx.mock()),
        ["manager", "translator", "translator", "manager"]
    );
    let third = cx.mock().requests()[2].body.clone().expect("body");
    assert!(third.to_string().contains("call_add_1"), "{third}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_that_offer_each_other_as_tools_are_refused_with_their_path() {
    let cx = e2e::test_context!();
    let mut doc = json!({
        "providers": {"p": {"type": "scripted", "script": "script.json"}},
        "agents": {
            "a": {"model": "m", "agent_tools": [{"agent": "b"}]},
            "b": {"model": "m", "agent_tools": [{"agent": "a"}]},
            "c": {"model": "m", "agent_tools": [{"agent": "ghost"}, {"agent": "c"},
                                                 {"agent": "a", "tool_name": "bad name"}]}
        },
        "workflow": {"steps": [{"agent": "a"}]},
        "run": {"input": "x"}
    });
    std::fs::write(cx.dir().join("script.json"), r#"{"replies": []}"#).expect("script");
    let path = cx.write_spec(&doc);
    let out = cx.host().arg("validate").arg(&path).output().await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for (at, message) in [
        ("$.agents.a.agent_tools[0].agent", "a → b → a"),
        ("$.agents.b.agent_tools[0].agent", "b → a → b"),
        ("$.agents.c.agent_tools[0].agent", "unknown agent `ghost`"),
        ("$.agents.c.agent_tools[1].agent", "offered to itself"),
        ("$.agents.c.agent_tools[2].tool_name", "not a tool name"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("error: {at}: ")) && l.contains(message)),
            "{at}: {message} in:\n{stderr}"
        );
    }
    // Without the cycle and the bad entries, it validates.
    doc["agents"]["b"]["agent_tools"] = json!([]);
    doc["agents"]["c"]["agent_tools"] = json!([{"agent": "a", "tool_name": "ask_a"}]);
    let path = cx.write_spec(&doc);
    let out = cx.host().arg("validate").arg(&path).output().await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

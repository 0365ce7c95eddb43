//! An agent's request settings reach the model as the APIs document them:
//! a stored prompt, `reasoning.summary`, verbosity, `metadata`,
//! `tool_choice` and `extra_query`, on the Responses API and (where it has
//! them) on Chat Completions; the Responses-only ones are refused for a
//! Chat provider at their path, and `extra_query` values never reach the
//! stored spec.

use e2e::{TestContext, text};
use mock_openai::MockServer;
use serde_json::{Value, json};

fn spec(server: &MockServer, api: &str, model: Value, agent: Value) -> Value {
    let mut a = json!({
        "instructions": "Add the numbers.",
        "model": model,
        "tools": ["calculator#add"]
    });
    if let (Some(a), Some(extra)) = (a.as_object_mut(), agent.as_object()) {
        a.extend(extra.clone());
    }
    json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": api,
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000, "retry": {"max_attempts": 1}
        }},
        "agents": {"a": a},
        "workflow": {"key": "settings", "steps": [{"agent": "a"}]},
        "run": {"input": "2 and 3"}
    })
}

fn settings(name: &str) -> Value {
    json!({
        "provider": "mock", "name": name,
        "reasoning_effort": "low",
        "reasoning_summary": "concise",
        "verbosity": "low",
        "metadata": {"team": "research", "ticket": "T-1"},
        "tool_choice": "add",
        "extra_query": {"api-version": "2025-04-01-preview", "deployment": "blue-query-token"}
    })
}

async fn run(cx: &TestContext, spec: &Value) -> e2e::Ran {
    let path = cx.write_spec(spec);
    cx.host()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .ran()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn request_settings_reach_the_responses_api_as_documented() {
    let cx = e2e::test_context!(json!({})).await;
    let prompt = json!({"prompt": {"id": "pmpt_abc", "version": "3"}});
    let ran = run(
        &cx,
        &spec(cx.mock(), "responses", settings("gpt-5"), prompt),
    )
    .await;
    assert!(ran.out.status.success(), "{}", ran.stderr);
    let request = &cx.mock().requests()[0];
    let body = request.body.clone().expect("body");
    assert_eq!(body["prompt"], json!({"id": "pmpt_abc", "version": "3"}));
    assert_eq!(
        body["reasoning"],
        json!({"effort": "low", "summary": "concise"})
    );
    // No `text.format` without a schema, as the official SDKs send it.
    assert_eq!(body["text"], json!({"verbosity": "low"}));
    assert_eq!(
        body["metadata"],
        json!({"team": "research", "ticket": "T-1"})
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "name": "add"})
    );
    let query = request.query.clone().unwrap_or_default();
    assert!(
        query.contains("api-version=2025-04-01-preview")
            && query.contains("deployment=blue-query-token"),
        "{query}"
    );

    // Query values are kept out of the run database, like header values.
    crate::secrets::db_holds_none(cx.db(), &["blue-query-token"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_settings_reach_chat_completions_where_it_has_them() {
    let cx = e2e::test_context!(json!({})).await;
    let mut model = settings("gpt-5");
    model
        .as_object_mut()
        .expect("model")
        .remove("reasoning_summary");
    model["tool_choice"] = json!("required");
    let ran = run(&cx, &spec(cx.mock(), "chat", model, json!({}))).await;
    assert!(ran.out.status.success(), "{}", ran.stderr);
    let request = &cx.mock().requests()[0];
    let body = request.body.clone().expect("body");
    assert_eq!(body["verbosity"], "low");
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["metadata"]["team"], "research");
    assert_eq!(body["tool_choice"], "required");
    assert!(
        request
            .query
            .as_deref()
            .unwrap_or("")
            .contains("api-version=")
    );

    // A named tool, in Chat's shape.
    cx.mock().reset();
    let mut model = settings("gpt-5");
    model
        .as_object_mut()
        .expect("model")
        .remove("reasoning_summary");
    let ran = run(&cx, &spec(cx.mock(), "chat", model, json!({}))).await;
    assert!(ran.out.status.success(), "{}", ran.stderr);
    let body = cx.mock().requests()[0].body.clone().expect("body");
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "add"}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_only_settings_and_unknown_tool_choices_are_refused_at_their_path() {
    let cx = e2e::test_context!(json!({})).await;
    let mut model = settings("gpt-5");
    model["tool_choice"] = json!("multiply");
    let doc = spec(
        cx.mock(),
        "chat",
        model,
        json!({"prompt": {"id": "pmpt_abc"}}),
    );
    let path = cx.write_spec(&doc);
    let out = cx
        .host()
        .arg("validate")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .output()
        .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for (at, message) in [
        ("$.agents.a.prompt", "needs the Responses API"),
        (
            "$.agents.a.model.reasoning_summary",
            "needs the Responses API",
        ),
        (
            "$.agents.a.model.tool_choice",
            "`multiply`, which is no tool of agent `a`",
        ),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("error: {at}: ")) && l.contains(message)),
            "{at}: {message} in:\n{stderr}"
        );
    }
    assert_eq!(cx.mock().requests().len(), 0);
}

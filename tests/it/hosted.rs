//! Hosted tools of the Responses API through the real binary and the mock:
//! offered as OpenAI documents them, their calls journaled, shown as
//! events and under the run's steps, streamed and not; hosted MCP with
//! `require_approval` waits for a person like any other approval.

use e2e::{mock, text, write_spec};
use host::store::{RunFilter, RunStore, Scope, SqliteStore};
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::path::Path;

fn spec(server: &MockServer, api: &str, hosted: Value) -> Value {
    json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": api,
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000, "retry": {"max_attempts": 1}
        }},
        "agents": {"a": {
            "instructions": "Research it. [[use_hosted]]",
            "model": {"provider": "mock", "name": "gpt-4.1-mini"},
            "hosted_tools": hosted
        }},
        "workflow": {"key": "hosted", "steps": [{"agent": "a"}]},
        "run": {"input": "what is new in rust", "callback": [{"type": "jsonl", "path": "events.jsonl"}]}
    })
}

fn every_tool() -> Value {
    json!([
        {"type": "web_search", "search_context_size": "low",
         "user_location": {"type": "approximate", "city": "Paris"}},
        {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 3},
        {"type": "code_interpreter"},
        {"type": "image_generation", "options": {"size": "1024x1024"}},
        {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp"}
    ])
}

async fn only_run_id(db: &Path) -> String {
    let store = SqliteStore::open(db).expect("open db");
    let runs = store
        .list_runs(&Scope::Operator, RunFilter::default())
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].run_id.clone()
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hosted_tools_run_on_the_provider_streamed_and_not() {
    let server = mock(json!({})).await;
    for stream in [false, true] {
        server.reset();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_spec(dir.path(), &spec(&server, "responses", every_tool()));
        let db = e2e::fresh_db();
        let mut cmd = e2e::host!()
            .db(&db)
            .arg("run")
            .arg(&path)
            .arg("--plugins")
            .arg(e2e::plugins_dir());
        if stream {
            cmd = cmd.arg("--stream");
        }
        let ran = cmd.ran().await;
        assert!(ran.out.status.success(), "{}", ran.stderr);
        assert!(ran.stdout.trim().starts_with("reply "), "{}", ran.stdout);

        // Sent as OpenAI documents them.
        let body = server.requests()[0].body.clone().expect("body");
        assert_eq!(
            body["tools"],
            json!([
                {"type": "web_search", "user_location": {"type": "approximate", "city": "Paris"},
                 "search_context_size": "low"},
                {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 3},
                {"type": "code_interpreter", "container": {"type": "auto"}},
                {"type": "image_generation", "size": "1024x1024"},
                {"type": "mcp", "server_label": "deepwiki",
                 "server_url": "https://mcp.deepwiki.com/mcp", "require_approval": "never"}
            ])
        );
        assert_eq!(
            server.requests().len(),
            1,
            "hosted calls need no second turn"
        );

        // Shown as events: each call with its result, marked hosted.
        let events = events(dir.path());
        let called: Vec<String> = events
            .iter()
            .filter(|e| e["type"] == "tool.called" && e["data"]["hosted"] == true)
            .map(|e| e["data"]["tool"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            called[..4],
            [
                "web_search",
                "file_search",
                "code_interpreter",
                "image_generation"
            ],
            "stream {stream}: {called:?}"
        );
        assert!(called[4].starts_with("mcp:deepwiki."), "{called:?}");
        let results = events
            .iter()
            .filter(|e| e["type"] == "tool.result" && e["data"]["hosted"] == true)
            .count();
        assert_eq!(results, 5);
        let image = events
            .iter()
            .find(|e| e["type"] == "tool.result" && e["data"]["tool"] == "image_generation")
            .expect("image result");
        assert!(
            image["data"]["output"]
                .as_str()
                .is_some_and(|o| o.contains("base64 characters")),
            "an image's bytes are not copied into events: {image}"
        );

        // Journaled with the response, listed under the step.
        let run_id = only_run_id(&db).await;
        let shown = e2e::host!()
            .db(&db)
            .args(["runs", "show", &run_id])
            .ran()
            .await;
        assert!(shown.out.status.success(), "{}", shown.stderr);
        for tool in [
            "hosted web_search(",
            "hosted file_search(",
            "hosted mcp:deepwiki.",
        ] {
            assert!(shown.stdout.contains(tool), "{tool} in:\n{}", shown.stdout);
        }
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn hosted_mcp_with_required_approval_waits_for_a_person() {
    let server = mock(json!({})).await;
    for stream in [false, true] {
        server.reset();
        let dir = tempfile::tempdir().expect("tempdir");
        let tools = json!([{"type": "mcp", "server_label": "deepwiki",
                            "server_url": "https://mcp.deepwiki.com/mcp", "require_approval": "always"}]);
        let path = write_spec(dir.path(), &spec(&server, "responses", tools));
        let db = e2e::fresh_db();
        let mut args = vec!["run", path.to_str().expect("utf-8")];
        if stream {
            args.push("--stream");
        }
        let out = e2e::host!().db(&db).args(&args).output().await;
        assert_eq!(out.status.code(), Some(3), "paused: {}", text(&out.stderr));
        let body = server.requests()[0].body.clone().expect("body");
        assert_eq!(body["tools"][0]["require_approval"], "always");
        let run_id = only_run_id(&db).await;
        assert_eq!(server.requests().len(), 1);
        let listed = e2e::host!()
            .db(&db)
            .args(["approvals", "list", "--json"])
            .output()
            .await;
        let pending: Value = serde_json::from_slice(&listed.stdout).unwrap_or(Value::Null);
        let call_id = pending
            .as_array()
            .and_then(|p| p.first())
            .and_then(|p| p["call_id"].as_str())
            .unwrap_or_else(|| panic!("one pending approval: {}", text(&listed.stdout)))
            .to_owned();
        let approved = e2e::host!()
            .db(&db)
            .args(["approve", &run_id, &call_id])
            .output()
            .await;
        assert!(approved.status.success(), "{}", text(&approved.stderr));
        let resumed = e2e::host!().db(&db).args(["resume", &run_id]).ran().await;
        assert!(resumed.out.status.success(), "{}", resumed.stderr);
        let second = server.requests()[1].body.clone().expect("body");
        let answer = second["input"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["type"] == "mcp_approval_response"))
            .cloned()
            .unwrap_or_else(|| panic!("no approval response in {second}"));
        assert_eq!(answer["approval_request_id"], call_id);
        assert_eq!(answer["approve"], true);
        let shown = e2e::host!()
            .db(&db)
            .args(["runs", "show", &run_id])
            .ran()
            .await;
        assert!(
            shown.stdout.contains("hosted mcp:deepwiki."),
            "the approved call ran on the provider:\n{}",
            shown.stdout
        );
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_completions_cannot_carry_hosted_tools() {
    let server = mock(json!({})).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_spec(
        dir.path(),
        &spec(&server, "chat", json!([{"type": "web_search"}])),
    );
    let ran = e2e::host!().arg("run").arg(&path).ran().await;
    assert!(!ran.out.status.success());
    assert!(
        ran.stderr.contains("$.agents.a.hosted_tools") && ran.stderr.contains("api"),
        "{}",
        ran.stderr
    );
    assert!(server.requests().is_empty(), "refused before any call");
}

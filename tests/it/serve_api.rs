//! `host serve` end to end: a real server process, the mock model server,
//! real plugins and a SQLite file. Every endpoint and its error shapes, the
//! idempotency key, Server-Sent Events live and resumed, approvals over
//! HTTP, cancel, replay, tenancy.

use crate::serve_support::{Serve, mock_provider, write_workflow};
use e2e::mock;
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::path::Path;

/// Two sequential agents (a pipeline) on the mock model.
fn pipeline(server: &MockServer) -> Value {
    json!({
        "providers": mock_provider(&server.base_url()),
        "agents": {
            "writer": {"instructions": "AGENT writer", "model": {"provider": "mock", "name": "gpt-4.1-mini"}},
            "editor": {"instructions": "AGENT editor", "model": {"provider": "mock", "name": "gpt-4.1-mini"}}
        },
        "workflow": {"key": "pipeline", "name": "Pipeline", "stages": [
            {"name": "draft", "mode": "sequential", "steps": [{"agent": "writer"}]},
            {"name": "edit", "mode": "sequential", "steps": [{"agent": "editor"}]}
        ]}
    })
}

/// One agent whose `calculator#add` needs approval.
fn approval(server: &MockServer) -> Value {
    json!({
        "providers": mock_provider(&server.base_url()),
        "agents": {"a": {
            "instructions": "AGENT a: add numbers.",
            "model": {"provider": "mock", "name": "gpt-4.1-mini"},
            "tools": [{"plugin": "calculator#add", "approval": "always"}]
        }},
        "workflow": {"key": "approve", "steps": [{"agent": "a"}]}
    })
}

fn mock_config() -> Value {
    json!({"rules": [
        {"name": "call-add", "match": {"instructions_contains": "AGENT a", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [2, 3]}, "call_id": "call_add_1"}]}},
        {"name": "slow", "match": {"instructions_contains": "AGENT slow"}, "latency_ms": 30000,
         "reply": {"text": "late"}}
    ]})
}

fn slow(server: &MockServer) -> Value {
    json!({
        "providers": mock_provider(&server.base_url()),
        "agents": {"s": {"instructions": "AGENT slow", "model": {"provider": "mock", "name": "gpt-4.1-mini"}}},
        "workflow": {"key": "slow", "steps": [{"agent": "s"}]}
    })
}

async fn server_with(
    dir: &Path,
    server: &MockServer,
    extra: &[&str],
) -> (Serve, tempfile::TempDir) {
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows).expect("workflows dir");
    write_workflow(&workflows, "pipeline", &pipeline(server));
    write_workflow(&workflows, "approve", &approval(server));
    write_workflow(&workflows, "slow", &slow(server));
    // Refers to a plugin that does not exist: reported, not served.
    let mut broken = pipeline(server);
    broken["workflow"]["key"] = json!("broken");
    broken["workflow"]["stages"][0]["reducer"] = json!({"plugin": "no_such_plugin"});
    write_workflow(&workflows, "broken", &broken);
    let plugins = e2e::plugin_dir(&["calculator", "concat"]);
    let mut args = vec![
        "--plugins",
        plugins.path().to_str().expect("utf-8"),
        "--workflows",
        workflows.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let serve = Serve::start(e2e::host!(), &args).await;
    (serve, plugins)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_catalog_openapi_and_metrics() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _plugins) = server_with(dir.path(), &model, &[]).await;
    assert!(
        s.log().contains("single tenant, loopback only"),
        "{}",
        s.log()
    );

    let (code, body) = s.get("/healthz").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")));
    let (code, body) = s.get("/readyz").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ready")));

    let (code, body) = s.get("/v1/workflows").await;
    assert_eq!(code, 200, "{body}");
    let keys: Vec<&str> = body["workflows"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|w| w["key"].as_str())
        .collect();
    assert_eq!(keys, ["approve", "pipeline", "slow"], "{body}");
    let problems = body["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(problems[0]["file"], "broken.json");
    let errors = problems[0]["errors"].to_string();
    assert!(
        errors.contains("no_such_plugin") && errors.contains("$.workflow"),
        "{errors}"
    );
    assert!(s.log().contains("broken.json not served"), "{}", s.log());

    let (code, body) = s.get("/v1/plugins").await;
    assert_eq!(code, 200);
    let calc = body["plugins"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["name"] == "calculator")
        .cloned()
        .expect("calculator");
    assert_eq!(calc["kinds"], json!(["tool"]));
    assert_eq!(calc["digest"].as_str().map(str::len), Some(64), "{calc}");
    assert!(calc["loaded_at_ms"].as_u64().is_some());
    assert!(calc["entries"].as_array().is_some_and(|e| !e.is_empty()));

    let (code, doc) = s.get("/v1/openapi.json").await;
    assert_eq!(code, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    for path in [
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/runs/{id}/events",
        "/v1/runs/{id}/cancel",
        "/v1/runs/{id}/resume",
        "/v1/runs/{id}/replay",
        "/v1/approvals",
        "/v1/runs/{id}/approvals/{call_id}",
        "/v1/plugins",
        "/v1/workflows",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"].get("CreateRun").is_some());

    let id = s.start_run("pipeline", json!("hello")).await;
    s.wait_status(&id, &["completed"], 30).await;
    let (code, ctype, text) = s.get_text("/metrics").await;
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    for metric in [
        "host_runs_accepted_total 1",
        "host_runs_finished_total{status=\"completed\"} 1",
        "host_run_duration_seconds_count{workflow=\"pipeline\"} 1",
        "host_step_duration_seconds",
        "host_model_tokens_total{model=\"gpt-4.1-mini\",direction=\"input\"}",
        "host_queue_depth",
        "host_reloads_total{what=\"workflow\",outcome=\"failed\"} 1",
        "host_runs_running 0",
    ] {
        assert!(text.contains(metric), "{metric} missing:\n{text}");
    }
    let (code, body) = s.get("/v1/nope").await;
    assert_eq!((code, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_start_list_read_stream_and_refuse_bad_requests() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _plugins) = server_with(dir.path(), &model, &[]).await;

    // Bad requests: problem documents with a stable code and JSON paths.
    let r = s.post_raw("/v1/runs", "{not json").await;
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "bad_request");
    for (request, code, path) in [
        (
            json!({"workflow": "nope", "input": "x"}),
            "unknown_workflow",
            "$.workflow",
        ),
        (
            json!({"workflow": "broken", "input": "x"}),
            "unknown_workflow",
            "$.workflow",
        ),
        (json!({"workflow": "pipeline"}), "invalid_input", "$.input"),
        (
            json!({"spec": pipeline(&model), "input": "x"}),
            "inline_specs_disabled",
            "$.spec",
        ),
        (
            json!({"workflow": "pipeline", "input": "x", "callback": "ftp://x"}),
            "invalid_callback",
            "$.callback",
        ),
    ] {
        let (status, body) = s.post("/v1/runs", &request).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some(code)),
            "{request}: {body}"
        );
        assert_eq!(body["errors"][0]["path"], path, "{body}");
        assert_eq!(body["status"], 422);
    }
    let (status, body) = s
        .post(
            "/v1/runs",
            &json!({"workflow": "pipeline", "input": "x", "extra": 1}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );

    // A run: 202 at once, then its whole event stream, closing after the end.
    let (status, accepted) = s
        .post(
            "/v1/runs",
            &json!({"workflow": "pipeline", "input": "topic one", "metadata": {"ticket": 7}}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["run_id"].as_str().expect("id").to_owned();
    assert_eq!(accepted["events_url"], format!("/v1/runs/{id}/events"));
    let (code, events) = s.events(&id, None, usize::MAX).await;
    assert_eq!(code, 200);
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "ids are 1, 2, 3…"
    );
    assert_eq!(
        events.first().map(|e| e.event.as_str()),
        Some("run.started")
    );
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("run.completed")
    );
    assert!(
        events
            .iter()
            .all(|e| e.data["run_id"] == id.as_str() && e.data["type"] == e.event.as_str())
    );

    // Resumed from the middle: exactly the rest.
    let cut = ids[ids.len() / 2];
    let (_, rest) = s.events(&id, Some(cut), usize::MAX).await;
    assert_eq!(
        rest.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[ids.len() / 2 + 1..].to_vec()
    );
    assert_eq!(rest, events[ids.len() / 2 + 1..].to_vec());
    let (code, _) = {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/runs/{id}/events", s.base))
            .header("last-event-id", "x")
            .send()
            .await
            .expect("GET");
        (r.status().as_u16(), ())
    };
    assert_eq!(code, 400);

    // The run as stored: steps, usage, output, metadata.
    let (code, run) = s.get(&format!("/v1/runs/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["workflow"], "pipeline");
    assert_eq!(run["input"], "topic one");
    assert_eq!(run["metadata"], json!({"ticket": 7}));
    assert!(run["output"].is_string(), "{run}");
    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(
        steps
            .iter()
            .map(|s| s["stage"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["draft", "edit"]
    );
    assert!(
        steps
            .iter()
            .all(|s| s["status"] == "completed" && s["turns"] == 1)
    );
    assert!(
        run["usage"]["gpt-4.1-mini"]["input_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{run}"
    );

    // Idempotency: the same key is the same run, and it ran once.
    let before = model.requests().len();
    let headers = [("Idempotency-Key", "order-42")];
    let (s1, a1) = s
        .post_with(
            "/v1/runs",
            &json!({"workflow": "pipeline", "input": "once"}),
            &headers,
        )
        .await;
    let (s2, a2) = s
        .post_with(
            "/v1/runs",
            &json!({"workflow": "pipeline", "input": "once"}),
            &headers,
        )
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a1["run_id"], a2["run_id"]);
    let idem = a1["run_id"].as_str().expect("id").to_owned();
    s.wait_status(&idem, &["completed"], 30).await;
    assert_eq!(model.requests().len() - before, 2, "two agents, one run");

    // Listing: newest first, filters, cursor pagination, unknown run 404.
    let (_, all) = s.get("/v1/runs?limit=500").await;
    assert_eq!(all["runs"].as_array().map(Vec::len), Some(2));
    let (_, page1) = s
        .get("/v1/runs?limit=1&status=completed&workflow=pipeline")
        .await;
    assert_eq!(page1["runs"][0]["run_id"], idem.as_str());
    let cursor = page1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, page2) = s.get(&format!("/v1/runs?limit=1&cursor={cursor}")).await;
    assert_eq!(page2["runs"][0]["run_id"], id.as_str());
    assert!(page2["next_cursor"].is_null(), "{page2}");
    let (_, none) = s.get("/v1/runs?workflow=approve").await;
    assert_eq!(none["runs"], json!([]));
    let (code, body) = s.get("/v1/runs?status=bogus").await;
    assert_eq!((code, body["code"].as_str()), (400, Some("bad_request")));
    for path in ["/v1/runs/nope", "/v1/runs/nope/events"] {
        let (code, body) = s.get(path).await;
        assert_eq!(
            (code, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    for path in [
        "/v1/runs/nope/cancel",
        "/v1/runs/nope/resume",
        "/v1/runs/nope/replay",
    ] {
        let (code, body) = s.post(path, &json!({})).await;
        assert_eq!(
            (code, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }

    // Replay with the current plugins: zero model calls, nothing changed.
    let before = model.requests().len();
    let (code, report) = s.post(&format!("/v1/runs/{id}/replay"), &json!({})).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["run_id"], id.as_str());
    assert_eq!(report["output_changed"], false);
    assert_eq!(report["model_calls"]["calls"], 0);
    assert_eq!(model.requests().len(), before);
    // A finished run neither resumes nor cancels.
    let (code, body) = s.post(&format!("/v1/runs/{id}/resume"), &json!({})).await;
    assert_eq!((code, body["code"].as_str()), (409, Some("conflict")));
    let (code, _) = s.post(&format!("/v1/runs/{id}/cancel"), &json!({})).await;
    assert_eq!(code, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_over_http_continue_the_run_and_cancel_stops_one() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _plugins) = server_with(dir.path(), &model, &[]).await;

    let id = s.start_run("approve", json!("what is 2 + 3?")).await;
    s.wait_status(&id, &["waiting_approval"], 30).await;
    let (code, list) = s.get("/v1/approvals").await;
    assert_eq!(code, 200);
    let pending = list["approvals"].as_array().expect("list");
    assert_eq!(pending.len(), 1, "{list}");
    assert_eq!(pending[0]["call_id"], "call_add_1");
    assert_eq!(pending[0]["tool"], "add");
    assert_eq!(pending[0]["run_id"], id.as_str());
    // The stream stays open while the run waits; read what is there.
    let (_, so_far) = s.events(&id, None, 4).await;
    assert_eq!(so_far.len(), 4);

    let (code, body) = s
        .post(
            &format!("/v1/runs/{id}/approvals/nope"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (code, body) = s
        .post(
            &format!("/v1/runs/{id}/approvals/call_add_1"),
            &json!({"decision": "maybe"}),
        )
        .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("invalid_decision")),
        "{body}"
    );
    let (code, body) = s
        .post(
            &format!("/v1/runs/{id}/approvals/call_add_1"),
            &json!({"decision": "approve", "reason": "fine"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["resumed"], true);
    let run = s.wait_status(&id, &["completed"], 30).await;
    assert!(run["output"].is_string(), "{run}");
    let (_, events) = s.events(&id, None, usize::MAX).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert!(
        kinds.contains(&"approval.requested") && kinds.contains(&"approval.resolved"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"run.completed"));
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "one numbering across the pause"
    );
    let tool_results = model
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .filter(|b| b.to_string().contains("\"role\":\"tool\""))
        .count();
    assert_eq!(tool_results, 1, "the model saw the tool's result once");
    let (_, list) = s.get("/v1/approvals").await;
    assert_eq!(list["approvals"], json!([]));

    // Cancel a run waiting on a slow model: it ends cancelled, at once.
    let slow = s.start_run("slow", json!("x")).await;
    s.wait_status(&slow, &["running"], 30).await;
    let (code, body) = s.post(&format!("/v1/runs/{slow}/cancel"), &json!({})).await;
    assert_eq!(code, 202, "{body}");
    s.wait_status(&slow, &["cancelled"], 10).await;
    let (_, events) = s.events(&slow, None, usize::MAX).await;
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("run.cancelled")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_see_only_their_own_runs() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\ntoken = \"token-of-acme-0123456789\"\naccount = \"acme\"\nuser = \"ann\"\n\n\
         [[token]]\ntoken_env = \"GLOBEX_TOKEN\"\naccount = \"globex\"\n",
    )
    .expect("tokens");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("dir");
    write_workflow(&workflows, "approve", &approval(&model));
    write_workflow(&workflows, "pipeline", &pipeline(&model));
    let plugins = e2e::plugin_dir(&["calculator"]);
    let s = Serve::start(
        e2e::host!().env("GLOBEX_TOKEN", "token-of-globex-0123456789"),
        &[
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
            "--workflows",
            workflows.to_str().expect("utf-8"),
            "--tokens",
            tokens.to_str().expect("utf-8"),
        ],
    )
    .await;
    let acme = s.as_token("token-of-acme-0123456789");
    let globex = s.as_token("token-of-globex-0123456789");
    let wrong = s.as_token("token-of-nobody-0123456789");

    // No token or a wrong one: 401 everywhere under /v1.
    for api in [&s.api, &wrong] {
        let (code, body) = api.get("/v1/runs").await;
        assert_eq!(
            (code, body["code"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
        let (code, _) = api
            .post("/v1/runs", &json!({"workflow": "pipeline", "input": "x"}))
            .await;
        assert_eq!(code, 401);
        let (code, _) = api.get("/v1/plugins").await;
        assert_eq!(code, 401);
    }

    let (code, accepted) = acme
        .post(
            "/v1/runs",
            &json!({"workflow": "approve", "input": "2+3", "session": {"id": "s1"}}),
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["run_id"].as_str().expect("id").to_owned();
    acme.wait_status(&id, &["waiting_approval"], 30).await;
    let done = acme.start_run("pipeline", json!("acme secret topic")).await;
    acme.wait_status(&done, &["completed"], 30).await;

    // Globex sees none of it: every endpoint answers as for an unknown run.
    let (_, list) = globex.get("/v1/runs").await;
    assert_eq!(list["runs"], json!([]));
    let (_, list) = globex.get("/v1/approvals").await;
    assert_eq!(list["approvals"], json!([]));
    for run in [&id, &done] {
        for path in [format!("/v1/runs/{run}"), format!("/v1/runs/{run}/events")] {
            let (code, body) = globex.get(&path).await;
            assert_eq!(code, 404, "{path}: {body}");
            assert!(!body.to_string().contains("acme secret"), "{body}");
        }
        for path in ["cancel", "resume", "replay", "approvals/call_add_1"] {
            let (code, body) = globex
                .post(
                    &format!("/v1/runs/{run}/{path}"),
                    &json!({"decision": "approve"}),
                )
                .await;
            assert_eq!(code, 404, "{path}: {body}");
        }
        let (code, _) = globex.events(run, None, 10).await;
        assert_eq!(code, 404);
    }
    // The same Idempotency-Key in two accounts names two runs.
    let key = [("Idempotency-Key", "k-1")];
    let (_, a) = acme
        .post_with(
            "/v1/runs",
            &json!({"workflow": "pipeline", "input": "a"}),
            &key,
        )
        .await;
    let (_, g) = globex
        .post_with(
            "/v1/runs",
            &json!({"workflow": "pipeline", "input": "g"}),
            &key,
        )
        .await;
    assert_ne!(a["run_id"], g["run_id"]);
    let (code, _) = globex
        .get(&format!("/v1/runs/{}", a["run_id"].as_str().unwrap_or("")))
        .await;
    assert_eq!(code, 404);

    // Still waiting: globex's decision did nothing; acme's continues it.
    let run = acme.wait_status(&id, &["waiting_approval"], 5).await;
    assert_eq!(run["session_id"], "s1");
    let (code, _) = acme
        .post(
            &format!("/v1/runs/{id}/approvals/call_add_1"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(code, 200);
    acme.wait_status(&id, &["completed"], 30).await;
    let (_, mine) = acme.get("/v1/runs").await;
    assert_eq!(mine["runs"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_address_without_tokens_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = e2e::host!()
        .args([
            "serve",
            "--workflows",
            dir.path().to_str().expect("utf-8"),
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        e2e::text(&out.stderr).contains("not a loopback address"),
        "{}",
        e2e::text(&out.stderr)
    );
}

/// The README's `curl` session: `examples/serve` offline, one run, its
/// events live to the end, its output.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_session_runs_offline() {
    let root = e2e::repo_root();
    let plugins = e2e::plugins_dir();
    let workflows = root.join("examples/serve");
    let s = Serve::start(
        e2e::host!(),
        &[
            "--plugins",
            plugins.to_str().expect("utf-8"),
            "--workflows",
            workflows.to_str().expect("utf-8"),
            "--offline",
        ],
    )
    .await;
    let (_, list) = s.get("/v1/workflows").await;
    assert_eq!(list["problems"], json!([]), "{list}");
    let id = s
        .start_run("analysis_parallel", json!("remote work and offices"))
        .await;
    let (_, events) = s.events(&id, None, usize::MAX).await;
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("run.completed")
    );
    let (_, run) = s.get(&format!("/v1/runs/{id}")).await;
    assert_eq!(run["status"], "completed");
    assert!(
        run["output"].as_str().is_some_and(|o| !o.is_empty()),
        "{run}"
    );
    assert!(
        run["served"]
            .as_array()
            .is_some_and(|s| s.iter().any(|c| c["plugin"] == "concat")),
        "{run}"
    );
}

/// Capacity: `--max-runs 1 --max-queued 1` runs one, queues one, refuses
/// the third with 429 and `Retry-After`; inline specs when enabled.
#[tokio::test(flavor = "multi_thread")]
async fn over_capacity_is_429_and_inline_specs_run_when_enabled() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _plugins) = server_with(
        dir.path(),
        &model,
        &[
            "--max-runs",
            "1",
            "--max-queued",
            "1",
            "--allow-inline-specs",
        ],
    )
    .await;
    let first = s.start_run("slow", json!("1")).await;
    s.wait_status(&first, &["running"], 30).await;
    let second = s.start_run("slow", json!("2")).await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/runs", s.base))
        .json(&json!({"workflow": "slow", "input": "3"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "over_capacity");
    let (_, run) = s.get(&format!("/v1/runs/{second}")).await;
    assert_eq!(run["status"], "queued");
    let (_, health) = s.get("/readyz").await;
    assert_eq!(
        (health["running"].as_u64(), health["queued"].as_u64()),
        (Some(1), Some(1))
    );
    // Cancelling the queued one frees its place at once.
    let (code, _) = s
        .post(&format!("/v1/runs/{second}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 202);
    s.wait_status(&second, &["cancelled"], 5).await;
    let (_, events) = s.events(&second, None, usize::MAX).await;
    assert_eq!(
        events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["run.cancelled"]
    );
    let (code, _) = s
        .post(&format!("/v1/runs/{first}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 202);
    s.wait_status(&first, &["cancelled"], 10).await;

    // An inline spec runs like a registered one; a bad one names its paths.
    let (code, accepted) = s
        .post(
            "/v1/runs",
            &json!({"spec": pipeline(&model), "input": "inline"}),
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["run_id"].as_str().expect("id").to_owned();
    let run = s.wait_status(&id, &["completed"], 30).await;
    assert_eq!(run["workflow"], "pipeline");
    let mut bad = pipeline(&model);
    bad["agents"]["writer"]["model"]["provider"] = json!("nowhere");
    let (code, body) = s
        .post("/v1/runs", &json!({"spec": bad, "input": "x"}))
        .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("invalid_spec")),
        "{body}"
    );
    assert!(
        body["errors"][0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("$.spec.agents.writer")),
        "{body}"
    );
}

/// Workflow files are watched: a new one registers, a broken edit keeps the
/// version that served, a removal stops serving it. A plugin file removed
/// fails the step that needs it, with its name; a corrupt one shows on the
/// plugin stream.
#[tokio::test(flavor = "multi_thread")]
async fn workflow_and_plugin_files_swap_live() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("dir");
    let plugins = e2e::plugin_dir(&["concat"]);
    let s = Serve::start(
        e2e::host!(),
        &[
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
            "--workflows",
            workflows.to_str().expect("utf-8"),
        ],
    )
    .await;
    let wait_for = |want: Vec<&'static str>| {
        let s = s.api.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let (_, list) = s.get("/v1/workflows").await;
                let keys: Vec<String> = list["workflows"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .filter_map(|w| w["key"].as_str().map(str::to_owned))
                    .collect();
                if keys == want {
                    return list;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "workflows {keys:?}, want {want:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    // A new file registers.
    let mut spec = pipeline(&model);
    spec["workflow"]["stages"] = json!([{"name": "both", "mode": "parallel",
        "steps": [{"agent": "writer"}, {"agent": "editor"}], "reducer": {"plugin": "concat"}}]);
    write_workflow(&workflows, "pipeline", &spec);
    wait_for(vec!["pipeline"]).await;
    let id = s.start_run("pipeline", json!("x")).await;
    s.wait_status(&id, &["completed"], 30).await;

    // A broken edit: the previous version keeps serving; the problem shows.
    std::fs::write(workflows.join("pipeline.json"), "{\"agents\": ").expect("write");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, list) = s.get("/v1/workflows").await;
        if list["problems"].as_array().is_some_and(|p| !p.is_empty()) {
            assert_eq!(list["workflows"][0]["key"], "pipeline", "{list}");
            assert_eq!(list["problems"][0]["errors"][0]["path"], "$", "{list}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let id = s.start_run("pipeline", json!("still served")).await;
    s.wait_status(&id, &["completed"], 30).await;

    // The plugin stream reports a corrupt build; the old one keeps serving.
    let notices = {
        let base = s.base.clone();
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .get(format!("{base}/v1/plugins/events"))
                .send()
                .await
                .expect("GET");
            let mut text = String::new();
            let mut stream = futures::StreamExt::boxed(resp.bytes_stream());
            while let Some(Ok(chunk)) = futures::StreamExt::next(&mut stream).await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if text.contains("plugin.reload_failed") && text.contains("\n\n") {
                    break;
                }
            }
            text
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let concat = plugins.path().join("concat.wasm");
    let good = std::fs::read(&concat).expect("read");
    std::fs::write(&concat, &good[..good.len() / 2]).expect("truncate");
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), notices)
        .await
        .expect("a notice")
        .expect("task");
    assert!(
        text.contains("event: plugin.reload_failed") && text.contains("\"plugin\":\"concat\""),
        "{text}"
    );
    let id = s.start_run("pipeline", json!("old build")).await;
    s.wait_status(&id, &["completed"], 30).await;

    // Removed: runs that need it fail that step, naming the plugin.
    std::fs::remove_file(&concat).expect("remove");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, list) = s.get("/v1/plugins").await;
        if list["plugins"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["name"] != "concat"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let id = s.start_run("pipeline", json!("no reducer")).await;
    let run = s.wait_status(&id, &["failed"], 30).await;
    assert!(
        run["error"].as_str().is_some_and(|e| e.contains("concat")),
        "{run}"
    );

    // Removing the workflow file stops serving it.
    std::fs::remove_file(workflows.join("pipeline.json")).expect("remove");
    wait_for(vec![]).await;
    let (code, body) = s
        .post("/v1/runs", &json!({"workflow": "pipeline", "input": "x"}))
        .await;
    assert_eq!(
        (code, body["code"].as_str()),
        (422, Some("unknown_workflow"))
    );
}

/// `--retain`: finished runs older than the retention are pruned.
#[tokio::test(flavor = "multi_thread")]
async fn finished_runs_past_the_retention_are_pruned() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // 0.0005 h = 1.8 s.
    let (s, _plugins) = server_with(dir.path(), &model, &["--retain", "0.0005"]).await;
    let id = s.start_run("pipeline", json!("short-lived")).await;
    s.wait_status(&id, &["completed"], 30).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (code, _) = s.get(&format!("/v1/runs/{id}")).await;
        if code == 404 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "run {id} not pruned");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(s.log().contains("pruned finished runs"), "{}", s.log());
}

/// Workflows served by one `host serve` share each loaded plugin, yet each
/// runs it under its own spec's limits (`plugins.NAME.timeout_ms`): the
/// same 500 ms tool call fails in the workflow that allows the plugin
/// 200 ms and succeeds in the one that leaves the default (1 s).
#[tokio::test(flavor = "multi_thread")]
async fn each_workflow_runs_a_shared_plugin_under_its_own_limits() {
    let model = mock(json!({"rules": [
        {"name": "slow", "match": {"instructions_contains": "AGENT", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "slow_echo", "arguments": {"text": "hi", "ms": 500}}]}},
        {"name": "done", "match": {"has_tool_result": true}, "reply": {"text": "done"}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("workflows dir");
    let spec = |key: &str, plugins: Value| {
        json!({
            "providers": mock_provider(&model.base_url()),
            "plugins": plugins,
            "agents": {"a": {
                "instructions": "AGENT a",
                "model": {"provider": "mock", "name": "gpt-4.1-mini"},
                "tools": [{"plugin": "slow_tool#slow_echo"}]
            }},
            "workflow": {"key": key, "steps": [{"agent": "a"}]}
        })
    };
    write_workflow(
        &workflows,
        "tight",
        &spec("tight", json!({"slow_tool": {"timeout_ms": 200}})),
    );
    write_workflow(&workflows, "loose", &spec("loose", json!({})));
    let plugins = e2e::plugin_dir(&["slow_tool"]);
    let s = Serve::start(
        e2e::host!(),
        &[
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
            "--workflows",
            workflows.to_str().expect("utf-8"),
        ],
    )
    .await;
    let tool_result = |key: &'static str| {
        let s = &s;
        async move {
            let id = s.start_run(key, json!("go")).await;
            let run = s.wait_status(&id, &["completed", "failed"], 60).await;
            assert_eq!(run["status"], "completed", "{key}: {run}");
            let (_, events) = s.events(&id, None, 100).await;
            let result = events
                .into_iter()
                .find(|e| e.event == "tool.result")
                .unwrap_or_else(|| panic!("{key}: no tool.result"));
            result.data["data"].clone()
        }
    };
    let tight = tool_result("tight").await;
    assert_eq!(tight["error"], true, "{tight}");
    let output = tight["output"].as_str().unwrap_or_default();
    assert!(output.contains("deadline of 200 ms exceeded"), "{output}");
    let loose = tool_result("loose").await;
    assert_eq!(loose["error"], false, "{loose}");
    assert_eq!(loose["output"], "echo: hi", "{loose}");
}

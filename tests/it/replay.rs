//! `host replay` tells the truth: every hook whose output changed, and
//! where the replay diverged — a step whose model input is no longer the
//! recorded one gets no recorded answer; by default the replay stops there
//! and pays for nothing, with `--live` it calls the model from there.

use e2e::mock;
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::path::Path;

/// `host ARGS` on `db`, the example's OpenAI provider pointed at `server`.
async fn host(db: &Path, server: &MockServer, args: &[&str]) -> e2e::Ran {
    e2e::host!()
        .db(db)
        .env("OPENAI_BASE_URL", server.base_url())
        .args(args)
        .ran()
        .await
}

/// `host replay RUN --plugins DIR --json EXTRA`: the report.
async fn replay(db: &Path, server: &MockServer, run: &str, dir: &Path, extra: &[&str]) -> Value {
    let mut extra = extra.to_vec();
    extra.push("--json");
    let ran = replay_text(db, server, run, dir, &extra).await;
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.stdout))
}

/// `host replay RUN --plugins DIR EXTRA`, succeeded: its readable report.
async fn replay_text(
    db: &Path,
    server: &MockServer,
    run: &str,
    dir: &Path,
    extra: &[&str],
) -> e2e::Ran {
    let dir = dir.to_str().expect("utf-8");
    let mut args = vec!["replay", run, "--plugins", dir];
    args.extend(extra);
    let ran = host(db, server, &args).await;
    ran.ok();
    ran
}

/// Runs `spec` with the plugins of `dir`; the run's id.
async fn run(db: &Path, server: &MockServer, spec: &Path, dir: &Path) -> String {
    let ran = host(
        db,
        server,
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            dir.to_str().expect("utf-8"),
            "--no-progress",
        ],
    )
    .await;
    ran.ok();
    ran.run_id()
}

fn requests(server: &MockServer) -> usize {
    server.requests().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_replay_reports_nothing_changed() {
    let server = mock(json!({})).await;
    let db = e2e::fresh_db();
    let spec = e2e::repo_root().join("examples/analysis_parallel/spec.json");
    let dir = e2e::plugin_folder(&[("concat", "concat")]);
    let run_id = run(&db, &server, &spec, dir.path()).await;
    assert_eq!(requests(&server), 3);
    server.reset();
    let report = replay(&db, &server, &run_id, dir.path(), &[]).await;
    assert_eq!(report["changed_steps"], json!([]), "{report}");
    assert_eq!(report["changed_hooks"], json!([]), "{report}");
    assert_eq!(report["divergence"], Value::Null, "{report}");
    assert_eq!(report["diverged_steps"], json!([]), "{report}");
    assert_eq!(report["output_changed"], false, "{report}");
    assert_eq!(report["output"], report["original_output"], "{report}");
    assert_eq!(report["model_calls"]["calls"], 0, "{report}");
    assert_eq!(requests(&server), 0, "a replay that matches pays nothing");
    let ran = replay_text(&db, &server, &run_id, dir.path(), &[]).await;
    assert!(
        ran.stderr.contains("final output unchanged")
            && ran.stderr.contains("no step output changed")
            && ran.stderr.contains("no hook output changed")
            && !ran.stderr.contains("diverged"),
        "{}",
        ran.stderr
    );
}

/// The case: `analysis_parallel` with another reducer. The
/// reducer's change is reported; the synthesizer's input changed, so its
/// recorded answer does not apply: the replay stops there without a model
/// call, or with `--live` makes exactly that one call.
#[tokio::test(flavor = "multi_thread")]
async fn a_swapped_reducer_is_reported_and_the_synthesizer_diverges() {
    let server = mock(json!({})).await;
    let db = e2e::fresh_db();
    let spec = e2e::repo_root().join("examples/analysis_parallel/spec.json");
    let original = e2e::plugin_folder(&[("concat", "concat")]);
    let run_id = run(&db, &server, &spec, original.path()).await;
    server.reset();
    let swapped = e2e::plugin_folder(&[("concat", "js_collect")]);

    let report = replay(&db, &server, &run_id, swapped.path(), &[]).await;
    assert_eq!(requests(&server), 0, "no model call without --live");
    let hooks = report["changed_hooks"].as_array().expect("hooks");
    assert_eq!(hooks.len(), 1, "{report}");
    assert_eq!(hooks[0]["kind"], "reducer");
    assert_eq!(hooks[0]["stage"], "analyze");
    assert_eq!(hooks[0]["key"], "analyze/reduce");
    assert!(hooks[0]["before"].is_string(), "concat's text: {report}");
    assert_eq!(
        hooks[0]["after"]["count"], 2,
        "js_collect's object: {report}"
    );
    let d = &report["divergence"];
    assert_eq!(d["stage"], "synthesize", "{report}");
    assert_eq!(d["step"], "synthesizer");
    assert_eq!(d["cause"], "input_changed");
    assert_eq!(d["key"], "synthesize/0/t1/model");
    assert_eq!(
        d["message"],
        "diverged at stage synthesize, step synthesizer: its input changed; \
         downstream outputs cannot be known without calling the model"
    );
    assert_eq!(
        report["diverged_steps"],
        json!([{"agent": "synthesizer", "stage": "synthesize", "step": "synthesizer", "step_index": 0}])
    );
    assert_eq!(report["output"], Value::Null, "{report}");
    assert_eq!(report["output_changed"], Value::Null, "{report}");
    assert_eq!(report["changed_steps"], json!([]), "{report}");
    let ran = replay_text(&db, &server, &run_id, swapped.path(), &[]).await;
    assert!(
        ran.stderr.contains("final output UNKNOWN")
            && ran
                .stderr
                .contains("diverged at stage synthesize, step synthesizer")
            && ran.stderr.contains("changed reducer: analyze (concat)"),
        "{}",
        ran.stderr
    );
    assert_eq!(requests(&server), 0);

    // --live: the model answers from the divergence on — one call, the
    // synthesizer's, with the new reducer's output in its input.
    let report = replay(&db, &server, &run_id, swapped.path(), &["--live"]).await;
    assert_eq!(requests(&server), 1, "exactly the diverged call");
    let body = server.requests()[0].body.clone().expect("body").to_string();
    assert!(body.contains("results"), "the new reducer's output: {body}");
    assert_eq!(report["after_divergence"], "call_model");
    assert_eq!(report["model_calls"]["calls"], 1, "{report}");
    assert!(
        report["model_calls"]["input_tokens"].as_u64() > Some(0),
        "{report}"
    );
    assert_eq!(report["divergence"]["stage"], "synthesize");
    assert!(report["output"].is_string(), "{report}");
    assert!(report["output_changed"].is_boolean(), "{report}");
    let ran = replay_text(&db, &server, &run_id, swapped.path(), &["--live"]).await;
    assert!(
        ran.stderr
            .contains("with 1 model call(s) after the divergence"),
        "{}",
        ran.stderr
    );
    server.reset();

    // --offline: the spec's scripted provider answers the diverged call.
    let report = replay(&db, &server, &run_id, swapped.path(), &["--offline"]).await;
    assert_eq!(
        requests(&server),
        0,
        "the scripted provider, not the server"
    );
    assert_eq!(report["model_calls"]["calls"], 1, "{report}");
    assert_eq!(report["divergence"]["stage"], "synthesize");
    let script: Value = serde_json::from_str(
        &std::fs::read_to_string(e2e::repo_root().join("examples/analysis_parallel/script.json"))
            .expect("script"),
    )
    .expect("script json");
    let scripted = script["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .find(|r| r["when"]["agent"] == "synthesizer")
        .map(|r| r["reply"]["text"].clone())
        .expect("a synthesizer reply");
    assert_eq!(report["output"], scripted, "{report}");
}

/// A two-step workflow on the mock: `a` behind a guard `gate` and an input
/// mapper `shape`, then `b`.
fn gated_spec(server: &MockServer) -> Value {
    let agent = |n: &str| json!({"instructions": format!("AGENT {n}: go."), "model": {"provider": "mock", "name": "gpt-4.1-mini"}});
    json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": "chat",
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 5000, "retry": {"max_attempts": 1}
        }},
        "agents": {"a": agent("a"), "b": agent("b")},
        "workflow": {"key": "gated", "steps": [
            {"agent": "a",
             "guard": {"plugin": "gate", "config": {"pattern": ".", "keywords": ["zzz-never"]}},
             "input_mapper": {"plugin": "shape", "config": {"template": "Question: {{input}}"}}},
            {"agent": "b"}
        ]},
        "run": {"input": "remote work"}
    })
}

/// A guard that now says no: the guard's change and the skipped step are
/// reported, and the next step, whose input is now the run's input instead
/// of the skipped step's answer, diverged.
#[tokio::test(flavor = "multi_thread")]
async fn a_swapped_guard_that_skips_a_step_is_reported() {
    let server = mock(json!({})).await;
    let db = e2e::fresh_db();
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = e2e::write_spec(tmp.path(), &gated_spec(&server));
    let original = e2e::plugin_folder(&[("gate", "py_regex_guard"), ("shape", "template_mapper")]);
    let run_id = run(&db, &server, &spec, original.path()).await;
    assert_eq!(requests(&server), 2);
    server.reset();
    let swapped = e2e::plugin_folder(&[("gate", "keyword_guard"), ("shape", "template_mapper")]);
    let report = replay(&db, &server, &run_id, swapped.path(), &[]).await;
    assert_eq!(requests(&server), 0);
    let hooks = report["changed_hooks"].as_array().expect("hooks");
    let guard = hooks
        .iter()
        .find(|h| h["kind"] == "guard")
        .unwrap_or_else(|| panic!("no guard change: {report}"));
    assert_eq!(
        (guard["before"].clone(), guard["after"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(guard["step_index"], 0);
    // The mapper did not run again: its output is gone.
    let mapper = hooks
        .iter()
        .find(|h| h["kind"] == "input_mapper")
        .unwrap_or_else(|| panic!("no mapper change: {report}"));
    assert_eq!(mapper["after"], Value::Null, "{report}");
    let steps = report["changed_steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{report}");
    assert_eq!(steps[0]["step_index"], 0);
    assert_eq!(steps[0]["after"], json!({"skipped": true}));
    assert_eq!(report["divergence"]["step_index"], 1, "{report}");
    assert_eq!(report["divergence"]["agent"], "b");
    assert_eq!(report["output"], Value::Null);
}

/// A mapper that now gives the step another input: the mapper's change is
/// reported and the step diverged at its first model call.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_mapper_is_reported_and_its_step_diverges() {
    let server = mock(json!({})).await;
    let db = e2e::fresh_db();
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = e2e::write_spec(tmp.path(), &gated_spec(&server));
    let original = e2e::plugin_folder(&[("gate", "py_regex_guard"), ("shape", "template_mapper")]);
    let run_id = run(&db, &server, &spec, original.path()).await;
    server.reset();
    // The `counter` test guest renders every input as a number.
    let changed = e2e::plugin_folder(&[("gate", "py_regex_guard"), ("shape", "counter")]);
    let report = replay(&db, &server, &run_id, changed.path(), &[]).await;
    assert_eq!(requests(&server), 0);
    let hooks = report["changed_hooks"].as_array().expect("hooks");
    assert_eq!(hooks.len(), 1, "{report}");
    assert_eq!(hooks[0]["kind"], "input_mapper");
    assert_eq!(hooks[0]["before"], "Question: remote work");
    assert_eq!(hooks[0]["after"], 1);
    assert_eq!(report["divergence"]["step_index"], 0, "{report}");
    assert_eq!(report["divergence"]["key"], "main/0/t1/model");
    let diverged: Vec<_> = report["diverged_steps"]
        .as_array()
        .expect("diverged")
        .iter()
        .map(|s| s["step_index"].clone())
        .collect();
    assert_eq!(diverged, vec![json!(0), json!(1)], "{report}");
}

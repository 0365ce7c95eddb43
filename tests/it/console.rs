//! The web console of `host serve` (docs/CONSOLE.md): its page and assets
//! with their security headers, and the browser tests in
//! `tests/console/console.test.mjs`, run here with `node --test` in Debian's
//! headless Chromium against a real server (tokens, the mock model, a
//! workflow with an approval, a slow one, a parallel one with a reducer to
//! swap, and one of 50 steps ending in a 1 MB answer).
//!
//! The browser tests need `/usr/bin/chromium` (or `$CHROMIUM`) and
//! `tests/console/node_modules` (both installed by `.ci/setup`). Without
//! them the test fails, unless `HOST_SKIP_BROWSER_TESTS=1` is set outside CI.
//!
//! `CONSOLE_DOC_SHOTS=docs/console` also writes the four screenshots the
//! docs show (`bash tests/console/screenshots.sh`).

use crate::serve_support::{Serve, mock_provider, write_workflow};
use e2e::mock;
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

const ACME: &str = "token-of-acme-0123456789";
const GLOBEX: &str = "token-of-globex-0123456789";

fn model() -> Value {
    json!({"provider": "mock", "name": "gpt-4.1-mini"})
}

fn agent(name: &str) -> Value {
    json!({"instructions": format!("AGENT {name}"), "model": model()})
}

/// The console's workflows, on the mock model.
fn workflows(server: &MockServer, dir: &Path) {
    let providers = mock_provider(&server.base_url());
    write_workflow(
        dir,
        "approve",
        &json!({
            "providers": providers,
            "agents": {"adder": {
                "instructions": "AGENT adder: add numbers.",
                "model": model(),
                "tools": [{"plugin": "calculator#add", "approval": "always"}]
            }},
            "workflow": {"key": "approve", "name": "Add, with approval", "steps": [{"agent": "adder"}]}
        }),
    );
    write_workflow(
        dir,
        "slow",
        &json!({
            "providers": providers,
            "agents": {"slow": agent("slow")},
            "workflow": {"key": "slow", "steps": [{"agent": "slow"}]}
        }),
    );
    write_workflow(
        dir,
        "swap",
        &json!({
            "providers": providers,
            "agents": {
                "planner": agent("planner"),
                "economist": agent("economist"),
                "architect": agent("architect"),
                "sociologist": agent("sociologist")
            },
            "workflow": {"key": "swap", "name": "Plan, research in parallel, merge", "stages": [
                {"name": "plan", "mode": "sequential", "steps": [{"agent": "planner"}]},
                {"name": "research", "mode": "parallel",
                 "steps": [{"agent": "economist"}, {"agent": "architect"}, {"agent": "sociologist"}],
                 "reducer": {"plugin": "red#tagged"}}
            ]}
        }),
    );
    let mut steps: Vec<Value> = (1..50)
        .map(|i| json!({"name": format!("step_{i:02}"), "agent": "w"}))
        .collect();
    steps.push(json!({"name": "step_50", "agent": "big"}));
    write_workflow(
        dir,
        "long",
        &json!({
            "providers": providers,
            "agents": {"w": agent("w"), "big": agent("big")},
            "workflow": {"key": "long", "name": "Fifty steps", "stages": [
                {"name": "all", "mode": "sequential", "steps": steps}
            ]}
        }),
    );
}

fn mock_config() -> Value {
    json!({"rules": [
        {"name": "call-add", "match": {"instructions_contains": "AGENT adder", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [2, 3]}, "call_id": "call_add_1"}]}},
        {"name": "sum", "match": {"instructions_contains": "AGENT adder"}, "reply": {"text": "2 + 3 = 5"}},
        {"name": "slow", "match": {"instructions_contains": "AGENT slow"}, "latency_ms": 30000,
         "reply": {"text": "late"}},
        {"name": "big", "match": {"instructions_contains": "AGENT big"},
         "reply": {"text": "x".repeat(1_000_000)}},
        {"name": "planner", "match": {"instructions_contains": "AGENT planner"}, "latency_ms": 150,
         "reply": {"text": "Look at costs, buildings and people."}},
        {"name": "economist", "match": {"instructions_contains": "AGENT economist"}, "latency_ms": 300,
         "reply": {"text": "Offices cost 12% of revenue."}},
        {"name": "architect", "match": {"instructions_contains": "AGENT architect"}, "latency_ms": 200,
         "reply": {"text": "Open plans lose to quiet rooms."}},
        {"name": "sociologist", "match": {"instructions_contains": "AGENT sociologist"}, "latency_ms": 250,
         "reply": {"text": "Teams meet twice a week."}}
    ]})
}

/// A server with tokens for two accounts, the console's workflows, and a
/// plugins folder of its own (the test swaps `red.wasm` in it).
async fn console_server(model: &MockServer, dir: &Path) -> Serve {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\ntoken = \"{ACME}\"\naccount = \"acme\"\nuser = \"ann\"\n\n\
             [[token]]\ntoken = \"{GLOBEX}\"\naccount = \"globex\"\n"
        ),
    )
    .expect("tokens");
    let workflows = dir.join("workflows");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&workflows).expect("dir");
    std::fs::create_dir_all(&plugins).expect("dir");
    std::fs::copy(e2e::plugin("calculator"), plugins.join("calculator.wasm")).expect("copy");
    std::fs::copy(e2e::guests::REDUCER_V1, plugins.join("red.wasm")).expect("copy");
    self::workflows(model, &workflows);
    Serve::start(
        e2e::host!(),
        &[
            "--plugins",
            plugins.to_str().expect("utf-8"),
            "--workflows",
            workflows.to_str().expect("utf-8"),
            "--tokens",
            tokens.to_str().expect("utf-8"),
        ],
    )
    .await
}

/// The page needs no token; its data does. Every console response carries
/// a strict Content Security Policy.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_without_a_token_with_strict_headers() {
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = console_server(&model, dir.path()).await;
    for (path, ctype, marker) in [
        (
            "/",
            "text/html",
            "<script type=\"module\" src=\"/console.js\">",
        ),
        ("/console.js", "text/javascript", "/v1/runs"),
        ("/lib.js", "text/javascript", "text/event-stream"),
        ("/run.js", "text/javascript", "/replay"),
        ("/console.css", "text/css", "prefers-color-scheme: dark"),
        ("/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert!(header("content-type").starts_with(ctype), "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-frame-options"), "DENY");
        let body = r.text().await.expect("body");
        assert!(body.contains(marker), "{path}");
        // No inline script: every <script> has a src.
        if path == "/" {
            assert_eq!(body.matches("<script").count(), 1);
        }
    }
    // The data is not: the API still wants a token.
    let (code, _) = s.get("/v1/runs").await;
    assert_eq!(code, 401);
    let (code, _) = s.as_token(ACME).get("/v1/runs").await;
    assert_eq!(code, 200);
}

fn browser() -> Option<PathBuf> {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let driver = e2e::repo_root().join("tests/console/node_modules/playwright-core/package.json");
    let missing: Vec<String> = [&chromium, &driver]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(chromium);
    }
    let skip = std::env::var_os("HOST_SKIP_BROWSER_TESTS").is_some_and(|v| v == "1")
        && std::env::var_os("CI").is_none();
    assert!(
        skip,
        "the console's browser tests need {}: run .ci/setup (apt chromium; npm ci in tests/console), \
         or set HOST_SKIP_BROWSER_TESTS=1 outside CI",
        missing.join(" and ")
    );
    eprintln!("console browser tests skipped (HOST_SKIP_BROWSER_TESTS=1)");
    None
}

/// Sign in, approve, reject, cancel, a parallel timeline, replay after a reducer
/// swap, the live runs list and its filters, another account, a wrong
/// token, 50 steps and 1 MB, phone width and dark mode — in Chromium.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_real_browser() {
    let Some(chromium) = browser() else { return };
    let model = mock(mock_config()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = console_server(&model, dir.path()).await;
    let shots = e2e::target_dir().join("console-screenshots");
    let started = Instant::now();
    let mut node = tokio::process::Command::new("node");
    node.arg("--test")
        .arg("--test-reporter=spec")
        .arg("--test-concurrency=1")
        .arg("console.test.mjs")
        .current_dir(e2e::repo_root().join("tests/console"))
        .env("CONSOLE_URL", &s.base)
        .env("CONSOLE_TOKEN", ACME)
        .env("CONSOLE_OTHER_TOKEN", GLOBEX)
        .env("CONSOLE_SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .env("RED_PLUGIN", dir.path().join("plugins/red.wasm"))
        .env("REDUCER_V2", e2e::guests::REDUCER_V2)
        .kill_on_drop(true);
    if let Some(docs) = std::env::var_os("CONSOLE_DOC_SHOTS") {
        node.env("CONSOLE_DOC_SHOTS", e2e::repo_root().join(docs));
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), node.output())
        .await
        .expect("the browser tests did not finish in 10 minutes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the console's browser tests failed ({:?}); screenshots in {}\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        shots.display(),
        s.log()
    );
    // They ran (and were not all skipped).
    assert!(
        stdout.contains("pass 9") && stdout.contains("fail 0"),
        "{stdout}"
    );
    for name in [
        "wrong-token",
        "approval-waiting",
        "cancelled",
        "parallel-timeline",
        "replay-report",
        "runs-list",
    ] {
        let png = shots.join(format!("{name}.png"));
        let meta = std::fs::metadata(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            meta.modified()
                .expect("mtime")
                .elapsed()
                .is_ok_and(|age| age <= started.elapsed()),
            "{name}.png is from this run"
        );
    }
}

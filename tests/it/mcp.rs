//! MCP servers as tools, end to end: the real `host` binary, the reference
//! MCP server (`@modelcontextprotocol/server-everything`, installed from npm
//! by `.ci/setup`) over stdio and over Streamable HTTP, a small stdio server
//! on the official TypeScript SDK with a visible side effect
//! (`tests/fixtures/mcp/ledger.mjs`), and the mock OpenAI server.

use e2e::{mock, ok, text, write_spec};
use host::store::{JournalKind, RunFilter, RunRecord, RunStatus, RunStore, Scope, SqliteStore};
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixtures() -> PathBuf {
    e2e::repo_root().join("tests/fixtures/mcp")
}

/// The reference server's entry point; missing means `.ci/setup` did not run.
fn everything() -> String {
    let js = fixtures().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        js.is_file(),
        "{} is missing: run .ci/setup (npm ci in tests/fixtures/mcp)",
        js.display()
    );
    js.to_string_lossy().into_owned()
}

fn provider(server: &MockServer) -> Value {
    json!({"mock": {
        "type": "openai_compatible", "base_url": server.base_url(), "api": "chat",
        "api_key_env": "MOCK_API_KEY", "timeout_ms": 20000,
        "retry": {"max_attempts": 2, "initial_backoff_ms": 20, "max_backoff_ms": 100}
    }})
}

fn spec(server: &MockServer, mcp_servers: Value, tools: Value) -> Value {
    json!({
        "providers": provider(server),
        "mcp_servers": mcp_servers,
        "agents": {"a": {
            "instructions": "AGENT a: use the tools.",
            "model": {"provider": "mock", "name": "gpt-4.1-mini"},
            "tools": tools
        }},
        "workflow": {"key": "mcp", "steps": [{"agent": "a", "max_turns": 6}]},
        "run": {"input": "go"}
    })
}

/// The model calls `calls` first (one turn), then answers with text.
fn one_turn(calls: Value) -> Value {
    json!({"rules": [{"name": "call", "match": {"has_tool_result": false}, "reply": {"tool_calls": calls}}]})
}

async fn host(db: &Path, args: &[&str]) -> std::process::Output {
    e2e::host!().db(db).args(args).output().await
}

async fn runs(db: &Path) -> Vec<RunRecord> {
    let store = SqliteStore::open(db).expect("open db");
    store
        .list_runs(&Scope::Operator, RunFilter::default())
        .await
        .expect("runs")
}

/// The `tool_result` journal entries of the only run.
async fn tool_results(db: &Path) -> Vec<Value> {
    let run = runs(db).await.remove(0);
    let store = SqliteStore::open(db).expect("open db");
    store
        .journal(&Scope::Operator, &run.run_id)
        .await
        .expect("journal")
        .into_iter()
        .filter(|r| r.entry.kind == JournalKind::ToolResult)
        .map(|r| r.entry.data)
        .collect()
}

/// The tool outputs the model received, in order (the last request holds
/// the whole conversation).
fn tool_outputs(server: &MockServer) -> Vec<String> {
    server
        .requests()
        .last()
        .and_then(|r| r.body.as_ref())
        .into_iter()
        .flat_map(|b| {
            b["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m["role"] == "tool")
                .map(|m| m["content"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

/// The tools offered in the first model request.
fn offered(server: &MockServer) -> Vec<Value> {
    let requests = server.requests();
    let body = requests[0].body.as_ref().expect("body");
    body["tools"].as_array().cloned().unwrap_or_default()
}

fn run_args(spec: &Path) -> Vec<String> {
    vec!["run".into(), spec.to_string_lossy().into_owned()]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_round_trip_with_env_passed_by_name_only() {
    let server = mock(one_turn(json!([
        {"name": "mcp__everything__get-sum", "arguments": {"a": 2, "b": 3}, "call_id": "c_sum"},
        {"name": "mcp__everything__get-env", "arguments": {}, "call_id": "c_env"},
        {"name": "mcp__everything__get-sum", "arguments": {"a": "two"}, "call_id": "c_bad"}
    ])))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = json!({"everything": {
        "command": "node", "args": [everything(), "stdio"], "env": ["MCP_VISIBLE"]
    }});
    let spec = write_spec(
        dir.path(),
        &spec(
            &server,
            servers,
            json!(["mcp:everything#get-sum", "mcp:everything#get-env"]),
        ),
    );
    let db = e2e::fresh_db();
    let out = e2e::host!()
        .db(&db)
        .args(run_args(&spec))
        .env("MCP_VISIBLE", "passed-by-name")
        .env("MCP_HIDDEN", "host-only-value")
        .output()
        .await;
    let stdout = ok(&out);
    assert!(stdout.starts_with("reply "), "{stdout}");

    // Exactly the two referenced tools, with the server's schema, named
    // to the API's rules.
    let tools = offered(&server);
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["mcp__everything__get-sum", "mcp__everything__get-env"]
    );
    assert_eq!(
        tools[0]["function"]["parameters"]["properties"]["a"]["type"],
        "number"
    );

    let outputs = tool_outputs(&server);
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert_eq!(outputs[0], "The sum of 2 and 3 is 5.");
    // Only PATH and the named variable reach the server.
    assert!(outputs[1].contains("passed-by-name"), "{}", outputs[1]);
    assert!(!outputs[1].contains("host-only-value"), "{}", outputs[1]);
    assert!(!outputs[1].contains(e2e::MOCK_API_KEY), "{}", outputs[1]);
    // Bad arguments never reach the server: the model hears why.
    assert!(
        outputs[2].starts_with("error: invalid arguments") && outputs[2].contains("/a"),
        "{}",
        outputs[2]
    );

    // Journaled like a plugin tool's result, naming the server.
    let results = tool_results(&db).await;
    let sum = results
        .iter()
        .find(|r| r["call_id"] == "c_sum")
        .expect("c_sum journaled");
    assert_eq!(sum["plugin"], "mcp:everything");
    assert_eq!(sum["output"], "The sum of 2 and 3 is 5.");
    assert_eq!(sum["error"], false);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_unknown_mcp_servers_with_their_path() {
    let server = mock(one_turn(json!([{"name": "x", "arguments": {}}]))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = json!({"everything": {"command": "node", "args": [everything(), "stdio"]},
                         "both": {"command": "node", "url": "http://127.0.0.1:1/mcp"}});
    let spec = write_spec(
        dir.path(),
        &spec(
            &server,
            servers,
            json!(["mcp:everythin", {"plugin": "mcp:everything#echo", "config": {"a": 1}}]),
        ),
    );
    let out = e2e::host!()
        .args(["validate", spec.to_str().expect("utf-8")])
        .output()
        .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("$.agents.a.tools[0]: unknown MCP server `everythin`")
            && err.contains("did you mean `everything`?"),
        "{err}"
    );
    assert!(err.contains("$.agents.a.tools[1].config"), "{err}");
    assert!(
        err.contains("$.mcp_servers.both: an MCP server needs exactly one"),
        "{err}"
    );
    server.shutdown().await.expect("shutdown");
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The reference server in Streamable HTTP mode on `port`, until dropped.
async fn http_server(port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new("node")
        .args([everything(), "streamableHttp".into()])
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the reference server");
    wait_for_port(port).await;
    child
}

async fn wait_for_port(port: u16) {
    e2e::within(30, "the HTTP MCP server listens", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamable_http_server_round_trip_keeps_its_header_secret() {
    let port = free_port();
    let _mcp = http_server(port).await;
    let server = mock(one_turn(json!([
        {"name": "mcp__web__echo", "arguments": {"message": "over http"}, "call_id": "c_echo"},
        {"name": "mcp__web__get-structured-content", "arguments": {"location": "Chicago"}, "call_id": "c_st"}
    ])))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = json!({"web": {
        "url": format!("http://127.0.0.1:{port}/mcp"),
        "headers_env": {"X-Mcp-Token": "MCP_TOKEN"}
    }});
    let spec = write_spec(dir.path(), &spec(&server, servers, json!(["mcp:web"])));
    let db = e2e::fresh_db();
    let secret = "mcp-header-secret-4b1d";
    let events = dir.path().join("events.jsonl");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let run = || {
        e2e::host!()
            .db(&db)
            .args(run_args(&spec))
            .arg("--callback")
            .arg(format!("jsonl:{}", events.display()))
            .env("MCP_TOKEN", secret)
            .env("RUST_LOG", "debug")
    };
    // The variable is the operator's: unpaired with the server's URL, the
    // spec is refused before the server is contacted.
    let refused = run().output().await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let err = text(&refused.stderr);
    assert!(
        err.contains("$.mcp_servers.web.headers_env['X-Mcp-Token']")
            && err.contains(&format!("--credential MCP_TOKEN={url}")),
        "{err}"
    );
    assert!(!err.contains(secret), "{err}");
    let pairs = format!(
        "{} MCP_TOKEN={url}",
        e2e::mock_credentials().unwrap_or_default()
    );
    let out = run().env("HOST_CREDENTIALS", pairs).output().await;
    let stdout = ok(&out);
    let outputs = tool_outputs(&server);
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(outputs[0], "Echo: over http");
    assert!(outputs[1].contains("Light rain"), "{}", outputs[1]);
    // The structured result is journaled beside the text.
    let results = tool_results(&db).await;
    let st = results
        .iter()
        .find(|r| r["call_id"] == "c_st")
        .expect("journaled");
    assert_eq!(st["structured"]["humidity"], 82, "{st}");
    // Every tool of the server was offered.
    assert!(offered(&server).len() > 5);
    // The header's value is in no output, log or database.
    let events = std::fs::read_to_string(&events).expect("events");
    assert!(events.contains("mcp__web__echo"), "{events}");
    for (what, haystack) in [
        ("stdout", stdout),
        ("stderr", text(&out.stderr)),
        ("events", events),
    ] {
        assert!(!haystack.contains(secret), "{what} holds the secret");
    }
    let bytes = std::fs::read(&db).expect("db");
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the database holds the secret"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_mcp_call_resumes_without_repeating_a_completed_one() {
    approved_call_resumes(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_streamable_http_too() {
    approved_call_resumes(true).await;
}

/// The ledger (the completed call with a side effect) over stdio, or over
/// Streamable HTTP when `http`; the echo waits for an approval given by
/// another process, and a third resumes the run.
async fn approved_call_resumes(http: bool) {
    let server = mock(json!({"rules": [
        {"name": "append", "match": {"has_tool_result": false, "times": 1},
         "reply": {"tool_calls": [{"name": "mcp__ledger__append", "arguments": {"line": "paid"}, "call_id": "c_app"}]}},
        {"name": "echo", "match": {"tool_result_for": "mcp__ledger__append", "times": 1},
         "reply": {"tool_calls": [{"name": "mcp__everything__echo", "arguments": {"message": "approved"}, "call_id": "c_echo"}]}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("ledger.txt");
    let mut servers = json!({
        "ledger": {"command": "node", "args": ["ledger.mjs"], "cwd": fixtures(), "env": ["LEDGER_FILE"]},
        "everything": {"command": "node", "args": [everything(), "stdio"]}
    });
    let _http_ledger = if http {
        let port = free_port();
        let child = tokio::process::Command::new("node")
            .arg(fixtures().join("ledger.mjs"))
            .args(["--http", &port.to_string()])
            .env("LEDGER_FILE", &ledger)
            .kill_on_drop(true)
            .spawn()
            .expect("node ledger.mjs --http");
        wait_for_port(port).await;
        servers["ledger"] = json!({"url": format!("http://127.0.0.1:{port}/mcp")});
        Some(child)
    } else {
        None
    };
    let spec = write_spec(
        dir.path(),
        &spec(
            &server,
            servers,
            json!(["mcp:ledger", {"plugin": "mcp:everything#echo", "approval": "always"}]),
        ),
    );
    let db = e2e::fresh_db();
    let run = |args: Vec<String>| e2e::host!().db(&db).args(args).env("LEDGER_FILE", &ledger);
    // The append runs; the echo waits for a human: the process exits 3.
    let out = run(run_args(&spec)).output().await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let lines = || std::fs::read_to_string(&ledger).unwrap_or_default();
    assert_eq!(lines(), "paid\n");
    let run_id = runs(&db).await.remove(0).run_id;
    assert_eq!(runs(&db).await[0].status, RunStatus::WaitingApproval);

    // Another process approves; a third resumes and completes the run.
    ok(&host(&db, &["approve", &run_id, "c_echo", "--by", "ops"]).await);
    let resumed = run(vec!["resume".into(), run_id.clone()]).output().await;
    let output = ok(&resumed);
    assert!(output.starts_with("reply "), "{output}");
    assert_eq!(runs(&db).await[0].status, RunStatus::Completed);
    // The completed MCP call was not made again; the approved one ran.
    assert_eq!(lines(), "paid\n");
    assert_eq!(
        tool_outputs(&server).last().map(String::as_str),
        Some("Echo: approved")
    );
    let results = tool_results(&db).await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0]["structured"], json!({"lines": 1}));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_call_fails_that_call_and_is_restarted() {
    let server = mock(json!({"rules": [
        {"name": "long", "match": {"has_tool_result": false},
         "reply": {"tool_calls": [{"name": "mcp__everything__trigger-long-running-operation",
                                   "arguments": {"duration": 8, "steps": 8}, "call_id": "c_long"}]}},
        {"name": "sum", "match": {"tool_result_for": "mcp__everything__trigger-long-running-operation", "times": 1},
         "latency_ms": 2000,
         "reply": {"tool_calls": [{"name": "mcp__everything__get-sum", "arguments": {"a": 1, "b": 2}, "call_id": "c_sum"}]}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let script = format!(
        "echo $$ >> '{}'; exec node '{}' stdio",
        pids.display(),
        everything()
    );
    let servers =
        json!({"everything": {"command": "sh", "args": ["-c", script], "timeout_ms": 20000}});
    let spec = write_spec(
        dir.path(),
        &spec(&server, servers, json!(["mcp:everything"])),
    );
    let db = e2e::fresh_db();
    let child = e2e::host!()
        .db(&db)
        .args(run_args(&spec))
        .env("RUST_LOG", "warn,host::mcp=info")
        .tokio()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("host");
    let read_pids = || -> Vec<String> {
        std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    // Once the model asked for the long call, the server is mid-call.
    e2e::within(60, "the long call starts", async {
        while server.requests().is_empty() || read_pids().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = read_pids()[0].clone();
    let killed = std::process::Command::new("kill")
        .args(["-9", &first])
        .status()
        .expect("kill");
    assert!(killed.success());

    let out = e2e::within(60, "the run ends", child.wait_with_output())
        .await
        .expect("host output");
    let stdout = ok(&out);
    assert!(stdout.starts_with("reply "), "{stdout}");
    let outputs = tool_outputs(&server);
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(
        outputs[0].starts_with("error: MCP server `everything`")
            && outputs[0].contains("trigger-long-running-operation"),
        "{}",
        outputs[0]
    );
    // The host started the server again, and the run went on with it.
    let all = read_pids();
    assert!(all.len() >= 2, "not restarted: {all:?}");
    assert_eq!(outputs[1], "The sum of 1 and 2 is 3.");
    assert_eq!(runs(&db).await[0].status, RunStatus::Completed);
    // Each server's stderr was drained into the log under its name, the
    // restart was logged, and the host stopped the restarted server at exit.
    let log = text(&out.stderr);
    assert!(
        log.contains("Starting default (STDIO) server") && log.contains("everything"),
        "{log}"
    );
    assert!(log.contains("MCP server stopped; restarting"), "{log}");
    let last = all.last().expect("a pid").clone();
    let alive = std::process::Command::new("kill")
        .args(["-0", &last])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!alive.success(), "server {last} outlived the host");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_its_deadline_is_a_clear_error() {
    let server = mock(one_turn(json!([
        {"name": "mcp__everything__trigger-long-running-operation",
         "arguments": {"duration": 10, "steps": 2}, "call_id": "c_slow"}
    ])))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = json!({"everything": {"command": "node", "args": [everything(), "stdio"], "timeout_ms": 800}});
    let spec = write_spec(
        dir.path(),
        &spec(&server, servers, json!(["mcp:everything"])),
    );
    let db = e2e::fresh_db();
    let started = std::time::Instant::now();
    ok(&e2e::host!().db(&db).args(run_args(&spec)).output().await);
    assert!(started.elapsed() < Duration::from_secs(9));
    let outputs = tool_outputs(&server);
    assert_eq!(
        outputs,
        [
            "error: MCP server `everything`: tool `trigger-long-running-operation` did not answer within 800 ms"
        ]
    );
    server.shutdown().await.expect("shutdown");
}

/// The tool names offered in request `i`.
fn offered_names(server: &MockServer, i: usize) -> Vec<String> {
    let requests = server.requests();
    requests[i].body.as_ref().expect("body")["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_tool_list_reaches_the_model_and_named_tools_are_checked() {
    let server = mock(json!({"rules": [
        {"name": "unlock", "match": {"has_tool_result": false, "times": 1},
         "reply": {"tool_calls": [{"name": "mcp__ledger__unlock", "arguments": {}, "call_id": "c_unlock"}]}},
        // A slow turn: the host hears `tools/list_changed` meanwhile.
        {"name": "wait", "match": {"tool_result_for": "mcp__ledger__unlock", "times": 1}, "latency_ms": 1000,
         "reply": {"tool_calls": [{"name": "mcp__ledger__append", "arguments": {"line": "x"}, "call_id": "c_app"}]}},
        {"name": "bonus", "match": {"tool_result_for": "mcp__ledger__append", "times": 1},
         "reply": {"tool_calls": [{"name": "mcp__ledger__bonus", "arguments": {}, "call_id": "c_bonus"}]}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = json!({"ledger": {"command": "node", "args": ["ledger.mjs"], "cwd": fixtures(), "env": ["LEDGER_FILE"]}});
    let spec_path = write_spec(
        dir.path(),
        &spec(&server, servers.clone(), json!(["mcp:ledger"])),
    );
    let db = e2e::fresh_db();
    let ledger = dir.path().join("ledger.txt");
    let out = e2e::host!()
        .db(&db)
        .args(run_args(&spec_path))
        .env("LEDGER_FILE", &ledger)
        .output()
        .await;
    ok(&out);
    assert!(!offered_names(&server, 0).contains(&"mcp__ledger__bonus".to_owned()));
    assert!(offered_names(&server, 2).contains(&"mcp__ledger__bonus".to_owned()));
    assert_eq!(
        tool_outputs(&server).last().map(String::as_str),
        Some("bonus!")
    );

    // A named tool the server does not offer is refused before any run.
    let other = tempfile::tempdir().expect("tempdir");
    let bad = write_spec(
        other.path(),
        &spec(&server, servers, json!(["mcp:ledger#apend"])),
    );
    let out = e2e::host!()
        .db(e2e::fresh_db())
        .args(run_args(&bad))
        .env("LEDGER_FILE", &ledger)
        .output()
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("$.agents.a.tools[0]: MCP server `ledger` has no tool `apend`")
            && err.contains("append"),
        "{err}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_start_fails_only_its_calls() {
    let server = mock(one_turn(json!([
        {"name": "mcp__broken__anything", "arguments": {}, "call_id": "c_x"}
    ])))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = json!({"broken": {"command": "/nonexistent/mcp-server"}});
    let spec = write_spec(dir.path(), &spec(&server, servers, json!(["mcp:broken"])));
    let out = e2e::host!()
        .db(e2e::fresh_db())
        .args(run_args(&spec))
        .output()
        .await;
    let stdout = ok(&out);
    assert!(stdout.starts_with("reply "), "{stdout}");
    let log = text(&out.stderr);
    assert!(
        log.contains("MCP server `broken` could not start")
            && log.contains("/nonexistent/mcp-server"),
        "{log}"
    );
    // It offered nothing; the model's call of a tool it never had is an error it reads.
    assert!(offered(&server).is_empty());
    let outputs = tool_outputs(&server);
    assert_eq!(outputs.len(), 1);
    assert!(outputs[0].starts_with("error: unknown tool"), "{outputs:?}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_that_dies_mid_call_fails_it_and_is_reconnected() {
    let port = free_port();
    let mut first = http_server(port).await;
    let server = mock(json!({"rules": [
        {"name": "long", "match": {"has_tool_result": false},
         "reply": {"tool_calls": [{"name": "mcp__web__trigger-long-running-operation",
                                   "arguments": {"duration": 8, "steps": 8}, "call_id": "c_long"}]}},
        {"name": "sum", "match": {"tool_result_for": "mcp__web__trigger-long-running-operation", "times": 1},
         "latency_ms": 3000,
         "reply": {"tool_calls": [{"name": "mcp__web__get-sum", "arguments": {"a": 4, "b": 5}, "call_id": "c_sum"}]}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let servers =
        json!({"web": {"url": format!("http://127.0.0.1:{port}/mcp"), "timeout_ms": 6000}});
    let spec = write_spec(dir.path(), &spec(&server, servers, json!(["mcp:web"])));
    let child = e2e::host!()
        .db(e2e::fresh_db())
        .args(run_args(&spec))
        .tokio()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("host");
    e2e::within(60, "the long call starts", async {
        while server.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.kill().await.expect("kill the HTTP server");
    // The same server comes back on the same address.
    let _second = http_server(port).await;
    let out = e2e::within(60, "the run ends", child.wait_with_output())
        .await
        .expect("host output");
    ok(&out);
    let outputs = tool_outputs(&server);
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(
        outputs[0].starts_with("error: MCP server `web`"),
        "{}",
        outputs[0]
    );
    assert_eq!(outputs[1], "The sum of 4 and 5 is 9.", "{outputs:?}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_is_reached_only_under_the_egress_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = json!({
        "providers": {"openai": {"type": "openai"}},
        "mcp_servers": {"inside": {"url": "http://127.0.0.2:9/mcp"}},
        "agents": {"a": {"instructions": "x", "model": "gpt-4o-mini", "tools": ["mcp:inside"]}},
        "workflow": {"key": "w", "steps": [{"agent": "a"}]},
        "run": {"input": "go"}
    });
    let spec = write_spec(dir.path(), &spec);
    std::fs::write(
        dir.path().join("script.json"),
        r#"{"replies": [{"when": {"agent": "a"}, "reply": {"text": "hi"}}]}"#,
    )
    .expect("script");
    // The tests allow 127.0.0.1 only: 127.0.0.2 is another loopback address.
    let out = e2e::host!()
        .args(run_args(&spec))
        .arg("--offline")
        .output()
        .await;
    let err = text(&out.stderr);
    assert!(
        err.contains("MCP server `inside` could not start: refused by the operator's egress policy: 127.0.0.2:9 is a loopback address"),
        "{err}"
    );
}

//! Durable runs end to end: the real `host` binary on a real SQLite file,
//! real plugins, the mock OpenAI server — `kill -9` and resume, approvals
//! across processes, sessions and memory strategies, replay, bad databases.

use e2e::{mock, ok, text, write_spec};
use host::store::{JournalKind, RunFilter, RunRecord, RunStatus, RunStore, Scope, SqliteStore};
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

fn provider(server: &MockServer, api: &str) -> Value {
    json!({"mock": {
        "type": "openai_compatible", "base_url": server.base_url(), "api": api,
        "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000,
        "retry": {"max_attempts": 2, "initial_backoff_ms": 20, "max_backoff_ms": 100}
    }})
}

/// `host ARGS` on the run database `db`.
fn host_cmd(db: &Path, args: &[&str]) -> tokio::process::Command {
    e2e::host!().db(db).args(args).tokio()
}

async fn host(db: &Path, args: &[&str]) -> Output {
    e2e::host!().db(db).args(args).output().await
}

async fn runs(db: &Path) -> Vec<RunRecord> {
    let store = SqliteStore::open(db).expect("open db");
    store
        .list_runs(&Scope::Operator, RunFilter::default())
        .await
        .expect("runs")
}

async fn only_run(db: &Path) -> RunRecord {
    let mut all = runs(db).await;
    assert_eq!(all.len(), 1, "expected one run: {all:?}");
    all.remove(0)
}

/// The journal keys of a run's recorded model responses.
async fn recorded_models(db: &Path, run_id: &str) -> BTreeSet<String> {
    let store = SqliteStore::open(db).expect("open db");
    store
        .journal(&Scope::Operator, run_id)
        .await
        .expect("journal")
        .into_iter()
        .filter(|r| r.entry.kind == JournalKind::ModelResponse)
        .map(|r| r.entry.key)
        .collect()
}

/// (agent marker, turn) of a Chat Completions request: agents' system
/// prompts start with `AGENT <name>:`; the turn is 1 + the number of
/// assistant messages in the request.
fn request_key(body: &Value) -> (String, usize) {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let agent = system
        .strip_prefix("AGENT ")
        .and_then(|s| s.split(':').next())
        .unwrap_or("?")
        .to_owned();
    let assistants = messages.iter().filter(|m| m["role"] == "assistant").count();
    (agent, assistants + 1)
}

fn request_keys(server: &MockServer) -> Vec<(String, usize)> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .map(request_key)
        .collect()
}

// ---------------------------------------------------------------------------
// kill -9 and resume

/// Agent, model latency (ms), tool latency (ms) if it calls the slow tool.
const CRASH_AGENTS: [(&str, u64, Option<u64>); 11] = [
    ("planner", 60, None),
    ("tooler", 50, Some(90)),
    ("r1", 35, Some(80)),
    ("r2", 70, None),
    ("r3", 140, None),
    ("r4", 95, Some(45)),
    ("writer", 60, None),
    ("checker", 45, Some(90)),
    ("editor", 55, None),
    ("v1", 40, None),
    ("v2", 100, None),
];

/// Model calls of one uninterrupted run.
const CRASH_CALLS: usize = 15;

/// Four stages: sequential (a plain step, a step with a slow tool call),
/// parallel (four branches of different latencies, two with tools, merged by
/// a reducer), sequential (three steps, one with a tool) and parallel again
/// (two branches). Run with `--stream`: every model response is streamed
/// (SSE spread over the mock's latency). Latencies differ per agent so the
/// run passes through many distinct recorded states.
fn crash_spec(server: &MockServer) -> Value {
    let mut agents = serde_json::Map::new();
    for (name, _, tool_ms) in CRASH_AGENTS {
        let tools = if tool_ms.is_some() {
            json!(["slow_tool"])
        } else {
            json!([])
        };
        agents.insert(
            name.to_string(),
            json!({
                "instructions": format!("AGENT {name}: do your part."),
                "model": {"provider": "mock", "name": "gpt-4.1-mini"},
                "tools": tools,
            }),
        );
    }
    json!({
        "providers": provider(server, "chat"),
        "agents": agents,
        "workflow": {"key": "crashy", "stages": [
            {"name": "plan", "mode": "sequential", "steps": [{"agent": "planner"}, {"agent": "tooler"}]},
            {"name": "research", "mode": "parallel",
             "steps": [{"agent": "r1"}, {"agent": "r2"}, {"agent": "r3"}, {"agent": "r4"}],
             "reducer": "concat"},
            {"name": "write", "mode": "sequential",
             "steps": [{"agent": "writer"}, {"agent": "checker"}, {"agent": "editor"}]},
            {"name": "review", "mode": "parallel", "steps": [{"agent": "v1"}, {"agent": "v2"}]}
        ]},
        "run": {"input": "write about durable workflows"}
    })
}

/// The agent a model journal key (`stage/i/tN/model`) belongs to.
fn key_agent(key: &str) -> String {
    let mut parts = key.split('/');
    let (stage, index) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let agents: &[&str] = match stage {
        "plan" => &["planner", "tooler"],
        "research" => &["r1", "r2", "r3", "r4"],
        "write" => &["writer", "checker", "editor"],
        "review" => &["v1", "v2"],
        _ => &[],
    };
    index
        .parse::<usize>()
        .ok()
        .and_then(|i| agents.get(i))
        .unwrap_or(&"?")
        .to_string()
}

fn crash_mock_config() -> Value {
    let mut rules = Vec::new();
    for (name, model_ms, tool_ms) in CRASH_AGENTS {
        if let Some(ms) = tool_ms {
            rules.push(json!({
                "name": format!("{name}-tool"),
                "match": {"instructions_contains": format!("AGENT {name}:"), "has_tool_result": false},
                "reply": {"tool_calls": [{"name": "slow_echo", "arguments": {"text": name, "ms": ms}}]},
                "latency_ms": model_ms
            }));
        }
        rules.push(json!({
            "name": name,
            "match": {"instructions_contains": format!("AGENT {name}:")},
            "reply": "default",
            "latency_ms": model_ms
        }));
    }
    json!({"spread_stream_latency": true, "stream_chunks": 6, "rules": rules})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
pub(crate) async fn kill_9_anywhere_then_resume_completes_without_paying_twice() {
    let server = mock(crash_mock_config()).await;
    let plugins = e2e::plugin_dir(&["slow_tool", "concat"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), &crash_spec(&server));
    let spec_arg = spec.display().to_string();
    let plugins_arg = plugins.path().display().to_string();
    let run_args = [
        "run",
        &spec_arg,
        "--plugins",
        &plugins_arg,
        "--stream",
        "--quiet",
    ];

    // The uninterrupted reference.
    let db = e2e::fresh_db();
    let started = tokio::time::Instant::now();
    let reference = ok(&host(&db, &run_args).await);
    let duration = started.elapsed();
    let reference_run = only_run(&db).await;
    let reference_requests = request_keys(&server);
    assert_eq!(
        reference_requests.len(),
        CRASH_CALLS,
        "{reference_requests:?}"
    );

    // Kill points spread over the whole run: between stages, mid parallel
    // stage, during tool calls, during streamed responses.
    const POINTS: u32 = 30;
    let mut observed: BTreeSet<Vec<String>> = BTreeSet::new();
    let (mut mid_tool, mut mid_stream, mut mid_parallel) = (0, 0, 0);
    for k in 0..POINTS {
        server.reset();
        let db = e2e::fresh_db();
        let at = duration.mul_f64((f64::from(k) + 0.5) / f64::from(POINTS));
        let mut child = host_cmd(&db, &run_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn host");
        tokio::time::sleep(at).await;
        child.start_kill().expect("kill -9"); // SIGKILL on unix
        let _ = child.wait().await;
        if !db.exists() || runs(&db).await.is_empty() {
            observed.insert(vec!["(not started)".into()]);
            continue;
        }
        let run = only_run(&db).await;
        let store = SqliteStore::open(&db).expect("db");
        let journal = store
            .journal(&Scope::Operator, &run.run_id)
            .await
            .expect("journal");
        drop(store);
        let at_kill: Vec<String> = journal.iter().map(|r| r.entry.key.clone()).collect();
        let recorded = recorded_models(&db, &run.run_id).await;
        let is_recorded = |(agent, turn): &(String, usize)| {
            recorded
                .iter()
                .any(|k| k.ends_with(&format!("/t{turn}/model")) && key_agent(k) == *agent)
        };
        let before = request_keys(&server);
        let in_flight: Vec<(String, usize)> =
            before.iter().filter(|k| !is_recorded(k)).cloned().collect();
        let tools_asked = journal
            .iter()
            .filter(|r| r.entry.kind == JournalKind::ModelResponse)
            .filter(|r| r.entry.data["response"].to_string().contains("slow_echo"))
            .count();
        let tools_done = journal
            .iter()
            .filter(|r| r.entry.kind == JournalKind::ToolResult)
            .count();
        let research_started = at_kill.iter().any(|k| k == "plan/1/done");
        let research_done = at_kill.iter().any(|k| k == "research/reduce");
        if run.status == RunStatus::Running {
            mid_tool += usize::from(tools_asked > tools_done);
            mid_stream += usize::from(!in_flight.is_empty());
            mid_parallel += usize::from(research_started && !research_done);
        }
        observed.insert(at_kill.clone());

        if run.status != RunStatus::Completed {
            let resumed = host(&db, &["resume", "--all", "--quiet"]).await;
            let output = ok(&resumed);
            assert_eq!(output, reference, "kill at {at:?}: resumed output differs");
        }
        let after = only_run(&db).await;
        assert_eq!(after.status, RunStatus::Completed);
        assert_eq!(after.output, reference_run.output);
        assert_eq!(
            after.usage, reference_run.usage,
            "usage counts every call once"
        );

        // No model request twice for the same step and turn, except one
        // in flight (sent, not recorded) at the kill.
        let all = request_keys(&server);
        let mut counts: BTreeMap<&(String, usize), usize> = BTreeMap::new();
        for key in &all {
            *counts.entry(key).or_default() += 1;
        }
        for (key, n) in counts {
            let allowed = if in_flight.contains(key) { 2 } else { 1 };
            assert!(
                n <= allowed,
                "kill at {at:?}: {key:?} was requested {n} times\nat kill: {at_kill:?}\nbefore: {before:?}\nall: {all:?}"
            );
        }
        assert_eq!(
            all.len(),
            CRASH_CALLS + in_flight.len(),
            "kill at {at:?}: every call once, plus the ones in flight at the kill\nall: {all:?}"
        );
    }
    eprintln!(
        "{POINTS} kills: {} distinct recorded states; {mid_tool} during a tool call, {mid_stream} during a streamed response, {mid_parallel} mid parallel stage",
        observed.len()
    );
    assert!(
        observed.len() >= 20,
        "{POINTS} kills reached only {} distinct recorded states",
        observed.len()
    );
    assert!(mid_tool >= 1, "no kill landed during a tool call");
    assert!(mid_stream >= 1, "no kill landed during a streamed response");
    assert!(mid_parallel >= 1, "no kill landed mid parallel stage");
    server.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// Approvals

/// One agent with `calculator#add` behind an approval; the model calls it
/// once, then answers with text.
fn approval_spec(server: &MockServer) -> Value {
    json!({
        "providers": provider(server, "chat"),
        "agents": {"a": {
            "instructions": "AGENT a: add numbers.",
            "model": {"provider": "mock", "name": "gpt-4.1-mini"},
            "tools": [{"plugin": "calculator#add", "approval": "always"}]
        }},
        "workflow": {"key": "approve", "steps": [{"agent": "a"}]},
        "run": {"input": "what is 2 + 3?"}
    })
}

fn approval_mock() -> Value {
    json!({"rules": [{
        "name": "call-add",
        "match": {"has_tool_result": false},
        "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [2, 3]}, "call_id": "call_add_1"}]}
    }]})
}

/// The tool outputs the model received, per request.
fn tool_outputs(server: &MockServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
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

async fn pending_calls(db: &Path) -> Vec<Value> {
    let out = host(db, &["approvals", "list", "--json"]).await;
    serde_json::from_str::<Vec<Value>>(&ok(&out)).expect("approvals json")
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_pauses_the_run_and_another_process_approves() {
    let server = mock(approval_mock()).await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), &approval_spec(&server));
    let db = e2e::fresh_db();
    let args = [
        "run",
        spec.to_str().expect("utf-8"),
        "--plugins",
        plugins.path().to_str().expect("utf-8"),
    ];

    // The run pauses and the process exits 3.
    let out = host(&db, &args).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("call_add_1"),
        "{}",
        text(&out.stderr)
    );
    let run = only_run(&db).await;
    assert_eq!(run.status, RunStatus::WaitingApproval);
    let pending = pending_calls(&db).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["call_id"], "call_add_1");
    assert_eq!(pending[0]["tool"], "add");
    assert_eq!(pending[0]["run_id"], run.run_id.as_str());
    let show = ok(&host(&db, &["runs", "show", &run.run_id]).await);
    assert!(
        show.contains("waiting_approval") && show.contains("call_add_1"),
        "{show}"
    );

    // Resuming before a decision keeps waiting (exit 3), calls nothing.
    let early = host(&db, &["resume", &run.run_id]).await;
    assert_eq!(early.status.code(), Some(3), "{}", text(&early.stderr));
    assert_eq!(server.requests().len(), 1);

    // Unknown calls are refused clearly.
    let bad = host(&db, &["approve", &run.run_id, "call_nope"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("call_add_1"),
        "{}",
        text(&bad.stderr)
    );

    // Another process approves; a third resumes and completes the run.
    ok(&host(&db, &["approve", &run.run_id, "call_add_1", "--by", "ops"]).await);
    assert!(pending_calls(&db).await.is_empty());
    let resumed = host(&db, &["resume", &run.run_id]).await;
    let output = ok(&resumed);
    assert!(output.starts_with("reply "), "{output}");
    let run = only_run(&db).await;
    assert_eq!(run.status, RunStatus::Completed);
    // The first model call was not made again; the tool ran after approval.
    assert_eq!(server.requests().len(), 2);
    assert_eq!(tool_outputs(&server), vec!["5".to_string()]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_reaches_the_model_with_its_reason() {
    let server = mock(approval_mock()).await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), &approval_spec(&server));
    let db = e2e::fresh_db();
    let out = host(
        &db,
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run = only_run(&db).await;
    ok(&host(
        &db,
        &[
            "reject",
            &run.run_id,
            "call_add_1",
            "--reason",
            "budget frozen",
        ],
    )
    .await);
    ok(&host(&db, &["resume", "--all"]).await);
    let outputs = tool_outputs(&server);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        outputs[0].contains("rejected") && outputs[0].contains("budget frozen"),
        "{outputs:?}"
    );
    assert_eq!(only_run(&db).await.status, RunStatus::Completed);
    server.shutdown().await.expect("shutdown");
}

/// `host run --wait-approval` on the approval spec, started and waiting
/// for its call to be decided.
struct WaitingRun {
    db: PathBuf,
    child: tokio::process::Child,
    run_id: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl WaitingRun {
    async fn start(server: &MockServer) -> WaitingRun {
        Self::start_with(server, &[]).await
    }

    /// With more `host run` arguments.
    async fn start_with(server: &MockServer, extra: &[&str]) -> WaitingRun {
        let plugins = e2e::plugin_dir(&["calculator"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = write_spec(dir.path(), &approval_spec(server));
        let db = e2e::fresh_db();
        let mut args = vec![
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
            "--wait-approval",
        ];
        args.extend_from_slice(extra);
        let child = host_cmd(&db, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let run_id = loop {
            if db.exists()
                && let Some(p) = pending_calls(&db).await.first()
            {
                break p["run_id"].as_str().unwrap_or_default().to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no pending approval"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        WaitingRun {
            db,
            child,
            run_id,
            _dirs: (plugins, dir),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_approval_continues_in_the_same_process() {
    let server = mock(approval_mock()).await;
    let waiting = WaitingRun::start(&server).await;
    let (db, child, run_id) = (&waiting.db, waiting.child, waiting.run_id.clone());
    assert_eq!(only_run(db).await.status, RunStatus::WaitingApproval);
    ok(&host(db, &["approve", &run_id, "call_add_1"]).await);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the waiting run finishes")
        .expect("wait");
    let output = ok(&out);
    assert!(output.starts_with("reply "), "{output}");
    assert!(
        text(&out.stderr).contains("approved"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tool_outputs(&server), vec!["5".to_string()]);
    assert_eq!(only_run(db).await.status, RunStatus::Completed);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn hosted_mcp_approval_requests_take_the_same_path() {
    let server = mock(json!({"rules": [
        {"name": "ask", "match": {"mcp_approval": "none"},
         "reply": {"mcp_approval_request": {"server_label": "deepwiki", "name": "ask_question",
                   "arguments": {"repo": "openai/codex"}, "id": "mcpr_1"}}},
        {"name": "yes", "match": {"mcp_approval": "approved"}, "reply": {"text": "the MCP tool ran"}},
        {"name": "no", "match": {"mcp_approval": "denied"}, "reply": {"text": "the MCP tool was refused"}}
    ]}))
    .await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = json!({
        "providers": provider(&server, "responses"),
        "agents": {"a": {"instructions": "AGENT a: use MCP.", "model": {"provider": "mock", "name": "gpt-4.1-mini"}}},
        "workflow": {"key": "mcp", "steps": [{"agent": "a"}]},
        "run": {"input": "ask deepwiki"}
    });
    let spec = write_spec(dir.path(), &spec);
    for (decision, expected) in [
        ("approve", "the MCP tool ran"),
        ("reject", "the MCP tool was refused"),
    ] {
        server.reset();
        let db = e2e::fresh_db();
        let out = host(
            &db,
            &[
                "run",
                spec.to_str().expect("utf-8"),
                "--plugins",
                plugins.path().to_str().expect("utf-8"),
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let pending = pending_calls(&db).await;
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0]["kind"], "mcp");
        assert_eq!(pending[0]["tool"], "deepwiki.ask_question");
        let run_id = pending[0]["run_id"].as_str().expect("run id").to_owned();
        let mut args = vec![decision, run_id.as_str(), "mcpr_1"];
        if decision == "reject" {
            args.extend(["--reason", "not this repo"]);
        }
        ok(&host(&db, &args).await);
        let output = ok(&host(&db, &["resume", &run_id]).await);
        assert_eq!(output.trim(), expected);
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "the first call is not repeated");
        let input = &requests[1].body.as_ref().expect("body")["input"];
        let answer = input
            .as_array()
            .and_then(|items| items.iter().find(|i| i["type"] == "mcp_approval_response"))
            .unwrap_or_else(|| panic!("no mcp_approval_response in {input}"));
        assert_eq!(answer["approval_request_id"], "mcpr_1");
        assert_eq!(answer["approve"], decision == "approve");
    }
    server.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// Sessions and memory strategies

/// (role, content) of every message of a Chat Completions request.
fn messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The user messages of request `n` (0-based) since the last reset.
fn user_messages(server: &MockServer, n: usize) -> Vec<String> {
    let requests = server.requests();
    let body = requests[n].body.as_ref().expect("body");
    messages(body)
        .into_iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, c)| c)
        .collect()
}

fn session_spec(server: &MockServer, memory: Value, tools: Value) -> Value {
    let mut agent = json!({
        "instructions": "AGENT chat: answer.",
        "model": {"provider": "mock", "name": "gpt-4.1-mini"},
        "tools": tools,
    });
    if !memory.is_null() {
        agent["memory"] = memory;
    }
    json!({
        "providers": provider(server, "chat"),
        "agents": {"chat": agent},
        "workflow": {"key": "chat", "steps": [{"agent": "chat"}]}
    })
}

struct Session<'a> {
    db: PathBuf,
    spec: PathBuf,
    plugins: &'a Path,
}

impl Session<'_> {
    async fn say(&self, input: &str, session: &str, account: &str) -> String {
        ok(&host(
            &self.db,
            &[
                "run",
                self.spec.to_str().expect("utf-8"),
                "--plugins",
                self.plugins.to_str().expect("utf-8"),
                "--input",
                input,
                "--session",
                session,
                "--account",
                account,
                "--user",
                "u1",
            ],
        )
        .await)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_isolated_by_account() {
    let server = mock(json!({})).await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Session {
        db: e2e::fresh_db(),
        spec: write_spec(dir.path(), &session_spec(&server, Value::Null, json!([]))),
        plugins: plugins.path(),
    };
    s.say("my secret is tulip", "s1", "acme").await;
    server.reset();
    // Same session id and user, another account: sees nothing.
    s.say("what is my secret?", "s1", "globex").await;
    assert_eq!(user_messages(&server, 0), vec!["what is my secret?"]);
    server.reset();
    // The right account sees its history, in order.
    s.say("what is my secret?", "s1", "acme").await;
    let body = server.requests()[0].body.clone().expect("body");
    let m = messages(&body);
    assert_eq!(m[1], ("user".into(), "my secret is tulip".into()), "{m:?}");
    assert_eq!(m[2].0, "assistant", "{m:?}");
    assert_eq!(m[3], ("user".into(), "what is my secret?".into()), "{m:?}");
    // Two runs of one session are two run records.
    let all = runs(&s.db).await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.session_id.as_deref() == Some("s1")));
    server.shutdown().await.expect("shutdown");
}

/// The account and user of a run come from the caller, not the spec: run
/// as account `globex`, a spec that names `acme`'s session is refused
/// before any model call, and nothing of `acme`'s is read or recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_spec_cannot_name_another_accounts_session() {
    let server = mock(json!({})).await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Session {
        db: e2e::fresh_db(),
        spec: write_spec(dir.path(), &session_spec(&server, Value::Null, json!([]))),
        plugins: plugins.path(),
    };
    s.say("my secret is tulip", "s1", "acme").await;
    server.reset();
    let mut spec = session_spec(&server, Value::Null, json!([]));
    spec["run"] = json!({"session": {"id": "s1", "account_id": "acme", "user_id": "u1"}});
    let other = tempfile::tempdir().expect("tempdir");
    let hostile = write_spec(other.path(), &spec);
    let out = host(
        &s.db,
        &[
            "run",
            hostile.to_str().expect("utf-8"),
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
            "--input",
            "what is my secret?",
            "--account",
            "globex",
            "--user",
            "u1",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "refused as bad input: {}",
        text(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"acme\"") && stderr.contains("\"globex\""),
        "says whose session and whose run: {stderr}"
    );
    assert!(server.requests().is_empty(), "no model call was made");
    let all = runs(&s.db).await;
    assert_eq!(all.len(), 1, "no run was created: {all:?}");
    assert_eq!(
        (all[0].account_id.as_str(), all[0].user_id.as_str()),
        ("acme", "u1")
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn trim_keeps_the_last_user_turns() {
    let server = mock(json!({})).await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let memory = json!({"strategy": "trim", "max_turns": 2});
    let s = Session {
        db: e2e::fresh_db(),
        spec: write_spec(dir.path(), &session_spec(&server, memory, json!([]))),
        plugins: plugins.path(),
    };
    for q in ["q1", "q2", "q3"] {
        s.say(q, "t", "acme").await;
    }
    server.reset();
    s.say("q4", "t", "acme").await;
    assert_eq!(user_messages(&server, 0), vec!["q2", "q3", "q4"]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn summarize_replaces_older_turns_with_a_stored_summary() {
    let server = mock(json!({"rules": [{
        "name": "summary",
        "match": {"instructions_contains": "Summarize the conversation"},
        "reply": {"text": "SUMMARY: the user asked q1."}
    }]}))
    .await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let memory = json!({"strategy": "summarize", "keep_last": 1, "max_summary_tokens": 64});
    let s = Session {
        db: e2e::fresh_db(),
        spec: write_spec(dir.path(), &session_spec(&server, memory, json!([]))),
        plugins: plugins.path(),
    };
    s.say("q1", "m", "acme").await;
    s.say("q2", "m", "acme").await;
    server.reset();
    s.say("q3", "m", "acme").await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "a summary call, then the agent's");
    // The summarizer saw the older turn only.
    let summary_req = messages(requests[0].body.as_ref().expect("body"));
    let transcript = &summary_req.last().expect("message").1;
    assert!(transcript.contains("user: q1"), "{transcript}");
    assert!(!transcript.contains("q2"), "{transcript}");
    // The agent got the summary, then the last turn, then the new input.
    let m = messages(requests[1].body.as_ref().expect("body"));
    assert!(
        m.iter()
            .any(|(r, c)| r == "system" && c.contains("SUMMARY: the user asked q1.")),
        "{m:?}"
    );
    assert_eq!(user_messages(&server, 1), vec!["q2", "q3"]);

    // The summary is stored: the next run does not summarize q1 again
    // (only q2 is newly summarized, together with the stored summary).
    server.reset();
    s.say("q4", "m", "acme").await;
    let requests = server.requests();
    let transcript = messages(requests[0].body.as_ref().expect("body"))
        .last()
        .expect("message")
        .1
        .clone();
    assert!(
        transcript.contains("Earlier summary: SUMMARY"),
        "{transcript}"
    );
    assert!(
        transcript.contains("user: q2") && !transcript.contains("user: q1"),
        "{transcript}"
    );
    assert_eq!(user_messages(&server, 1), vec!["q3", "q4"]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_drops_tool_items_past_the_token_budget() {
    let long = "x".repeat(600);
    let server = mock(json!({"rules": [{
        "name": "tool",
        "match": {"has_tool_result": false, "user_contains": "look"},
        "reply": {"tool_calls": [{"name": "slow_echo", "arguments": {"text": long, "ms": 0}}]}
    }]}))
    .await;
    let plugins = e2e::plugin_dir(&["slow_tool"]);
    for (memory, tool_items_kept) in [
        (json!({"strategy": "compact", "max_tokens": 80}), false),
        (Value::Null, true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Session {
            db: e2e::fresh_db(),
            spec: write_spec(
                dir.path(),
                &session_spec(&server, memory, json!(["slow_tool"])),
            ),
            plugins: plugins.path(),
        };
        s.say("look it up", "c", "acme").await;
        server.reset();
        s.say("thanks", "c", "acme").await;
        let m = messages(server.requests()[0].body.as_ref().expect("body"));
        let has_tool = m.iter().any(|(r, _)| r == "tool");
        assert_eq!(has_tool, tool_items_kept, "{m:?}");
        // The conversation itself is kept.
        assert_eq!(user_messages(&server, 0), vec!["look it up", "thanks"]);
        assert!(m.iter().any(|(r, _)| r == "assistant"), "{m:?}");
        server.reset();
    }
    server.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// Replay

#[tokio::test(flavor = "multi_thread")]
async fn replay_with_a_changed_reducer_makes_no_model_call() {
    let server = mock(json!({})).await;
    let plugins = e2e::plugin_dir(&[]);
    std::fs::copy(
        e2e::plugins_dir().join("concat.wasm"),
        plugins.path().join("merge.wasm"),
    )
    .expect("copy");
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = |n: &str| json!({"instructions": format!("AGENT {n}: go."), "model": {"provider": "mock", "name": "gpt-4.1-mini"}});
    let spec = json!({
        "providers": provider(&server, "chat"),
        "agents": {"a": agent("a"), "b": agent("b"), "c": agent("c")},
        "workflow": {"key": "replayed", "stages": [
            {"name": "first", "mode": "sequential", "steps": [{"agent": "a"}]},
            {"name": "fan", "mode": "parallel", "steps": [{"agent": "b"}, {"agent": "c"}], "reducer": "merge"}
        ]},
        "run": {"input": "topic"}
    });
    let spec = write_spec(dir.path(), &spec);
    let db = e2e::fresh_db();
    let original = ok(&host(
        &db,
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
        ],
    )
    .await);
    assert!(
        original.contains("\n\n"),
        "concat joins with blank lines: {original}"
    );
    let run = only_run(&db).await;
    server.reset();

    // Same plugins: the same output, and no model call.
    let same = host(&db, &["replay", &run.run_id, "--json"]).await;
    let report: Value = serde_json::from_str(&ok(&same)).expect("json");
    assert_eq!(report["output_changed"], false, "{report}");
    assert_eq!(server.requests().len(), 0);

    // A new reducer build (the JavaScript collector under the same name).
    std::fs::copy(
        e2e::plugins_dir().join("js_collect.wasm"),
        plugins.path().join("merge.wasm"),
    )
    .expect("swap reducer");
    let changed = host(&db, &["replay", &run.run_id, "--json"]).await;
    let report: Value = serde_json::from_str(&ok(&changed)).expect("json");
    assert_eq!(report["output_changed"], true, "{report}");
    assert_eq!(report["output"]["count"], 2, "{report}");
    // The parallel stage is last: no step changed, the reducer did, and the
    // report says so.
    assert_eq!(report["changed_steps"], json!([]), "{report}");
    assert_eq!(report["changed_hooks"][0]["kind"], "reducer", "{report}");
    assert_eq!(report["changed_hooks"][0]["key"], "fan/reduce", "{report}");
    assert_eq!(report["divergence"], Value::Null, "{report}");
    assert!(report["output"]["results"]["b"].is_string(), "{report}");
    assert_eq!(server.requests().len(), 0, "a replay never calls the model");
    // The human-readable form says what changed; the recorded run is untouched.
    let text_report = host(&db, &["replay", &run.run_id]).await;
    assert!(
        text(&text_report.stderr).contains("CHANGED"),
        "{}",
        text(&text_report.stderr)
    );
    assert_eq!(only_run(&db).await.output, run.output);
    assert_eq!(server.requests().len(), 0);
    server.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// Bad databases

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_database_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    std::fs::write(&db, vec![0x5a_u8; 8192]).expect("write garbage");
    for args in [
        vec!["run", "examples/simple_assistant/spec.json", "--offline"],
        vec!["runs", "list"],
        vec!["resume", "--all"],
    ] {
        let out = e2e::host!()
            .db(&db)
            .args(&args)
            .in_repo_root()
            .output()
            .await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&db.display().to_string()), "{args:?}: {err}");
        assert!(err.contains("not a database"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_is_a_clear_error() {
    let db = e2e::fresh_db();
    // Create it, then hold an exclusive lock from another process.
    ok(&host(&db, &["runs", "list"]).await);
    let mut locker = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)",
            db.to_str().expect("utf-8"),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with sqlite3");
    let mut line = String::new();
    {
        use tokio::io::AsyncBufReadExt;
        let stdout = locker.stdout.take().expect("stdout");
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("read");
    }
    assert_eq!(line.trim(), "locked");
    let spec = e2e::repo_root().join("examples/simple_assistant/spec.json");
    let out = host(
        &db,
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--offline",
            "--plugins",
            e2e::plugins_dir().to_str().expect("utf-8"),
        ],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("locked"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = locker.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_branches_write_the_session_in_branch_order() {
    // Branch b answers last but comes first: the session gets whole
    // branches in branch order, after the stage, in one transaction.
    let server = mock(json!({"rules": [
        {"name": "b", "match": {"instructions_contains": "AGENT b:"}, "reply": {"text": "from b"}, "latency_ms": 150},
        {"name": "c", "match": {"instructions_contains": "AGENT c:"}, "reply": {"text": "from c"}}
    ]}))
    .await;
    let plugins = e2e::plugin_dir(&["concat"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = |n: &str| json!({"instructions": format!("AGENT {n}: go."), "model": {"provider": "mock", "name": "gpt-4.1-mini"}});
    let spec = json!({
        "providers": provider(&server, "chat"),
        "agents": {"b": agent("b"), "c": agent("c"), "d": agent("d")},
        "workflow": {"key": "fan", "stages": [
            {"name": "fan", "mode": "parallel", "steps": [{"agent": "b"}, {"agent": "c"}], "reducer": "concat"},
            {"name": "after", "mode": "sequential", "steps": [{"agent": "d"}]}
        ]}
    });
    let s = Session {
        db: e2e::fresh_db(),
        spec: write_spec(dir.path(), &spec),
        plugins: plugins.path(),
    };
    s.say("topic", "p", "acme").await;
    let requests = server.requests();
    let d = requests
        .iter()
        .filter_map(|r| r.body.as_ref())
        .find(|b| request_key(b).0 == "d")
        .expect("d's request");
    let m: Vec<(String, String)> = messages(d).into_iter().skip(1).collect();
    assert_eq!(
        m,
        vec![
            ("user".into(), "topic".into()),
            ("assistant".into(), "from b".into()),
            ("user".into(), "topic".into()),
            ("assistant".into(), "from c".into()),
            ("user".into(), "from b\n\nfrom c".into()),
        ]
    );
    server.shutdown().await.expect("shutdown");
}

/// `wasm` with a custom section appended: the same behaviour, a new digest
/// (what a rebuild of a plugin looks like to the host).
fn rebuilt(wasm: &[u8]) -> Vec<u8> {
    let name = b"rebuilt";
    let payload = b"2";
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_changed_before_resume_is_reported_and_serves_only_new_calls() {
    let server = mock(approval_mock()).await;
    let plugins = e2e::plugin_dir(&["calculator", "template_mapper"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = approval_spec(&server);
    spec["workflow"]["steps"][0]["input_mapper"] =
        json!({"plugin": "template_mapper", "config": {"template": "[mapped] {{input}}"}});
    let spec = write_spec(dir.path(), &spec);
    let db = e2e::fresh_db();
    let out = host(
        &db,
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run = only_run(&db).await;
    // Rebuild the mapper (already used) while the run waits.
    let mapper = plugins.path().join("template_mapper.wasm");
    let bytes = std::fs::read(&mapper).expect("read");
    std::fs::write(&mapper, rebuilt(&bytes)).expect("write");
    ok(&host(&db, &["approve", &run.run_id, "call_add_1"]).await);
    let resumed = host(&db, &["resume", &run.run_id]).await;
    ok(&resumed);
    let err = text(&resumed.stderr);
    assert!(
        err.contains("plugin template_mapper changed since the run started"),
        "{err}"
    );
    assert!(!err.contains("plugin calculator changed"), "{err}");
    // The mapped input was not recomputed: the model saw it once, before.
    assert_eq!(user_messages(&server, 1), vec!["[mapped] what is 2 + 3?"]);
    server.shutdown().await.expect("shutdown");
}

/// Sends SIGINT, as a terminal's Ctrl-C does.
fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(status.success());
}

/// Ctrl-C cancels the run: recorded `cancelled`, `run.cancelled` as the
/// sinks' last event, exit code 130 — whether the run waits for a human or
/// for the model.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_the_run() {
    // Waiting for an approval.
    let server = mock(approval_mock()).await;
    let events_dir = tempfile::tempdir().expect("tempdir");
    let events = events_dir.path().join("events.jsonl");
    let sink = format!("jsonl:{}", events.display());
    let waiting = WaitingRun::start_with(&server, &["--callback", &sink]).await;
    interrupt(&waiting.child);
    let out = tokio::time::timeout(Duration::from_secs(30), waiting.child.wait_with_output())
        .await
        .expect("the run stops")
        .expect("wait");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled: interrupted"), "{err}");
    assert_eq!(only_run(&waiting.db).await.status, RunStatus::Cancelled);
    let types: Vec<String> = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("event json");
            e["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("run.started"));
    assert!(types.iter().any(|t| t == "approval.requested"), "{types:?}");
    assert_eq!(
        types.last().map(String::as_str),
        Some("run.cancelled"),
        "{types:?}"
    );
    server.shutdown().await.expect("shutdown");

    // In the middle of a model call that would take a minute.
    let server = mock(json!({"latency_ms": 60_000})).await;
    let plugins = e2e::plugin_dir(&["calculator"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(dir.path(), &approval_spec(&server));
    let db = e2e::fresh_db();
    let child = host_cmd(
        &db,
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            plugins.path().to_str().expect("utf-8"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no model request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = tokio::time::Instant::now();
    interrupt(&child);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the run stops")
        .expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the model call was not awaited"
    );
    assert_eq!(only_run(&db).await.status, RunStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_list_show_and_cancel() {
    let server = mock(approval_mock()).await;
    // A run waiting in another process (--wait-approval) …
    let waiting = WaitingRun::start(&server).await;
    let (db, child) = (waiting.db.clone(), waiting.child);
    let run = only_run(&db).await;
    let listed = ok(&host(&db, &["runs", "list", "--status", "waiting_approval"]).await);
    assert!(listed.contains(&run.run_id), "{listed}");
    let bad = host(&db, &["runs", "list", "--status", "sleeping"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("waiting_approval"),
        "{}",
        text(&bad.stderr)
    );

    // … is cancelled from this one, and stops.
    ok(&host(&db, &["runs", "cancel", &run.run_id]).await);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the waiting run stops")
        .expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cancelled"),
        "{}",
        text(&out.stderr)
    );
    let listed = ok(&host(&db, &["runs", "list", "--status", "cancelled", "--json"]).await);
    let listed: Vec<Value> = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["run_id"], run.run_id.as_str());
    // A cancelled run stays cancelled.
    let again = host(&db, &["resume", &run.run_id]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("cancelled"),
        "{}",
        text(&again.stderr)
    );
    let show = ok(&host(&db, &["runs", "show", &run.run_id, "--json"]).await);
    let show: Value = serde_json::from_str(&show).expect("json");
    assert_eq!(show["status"], "cancelled");
    assert_eq!(show["steps"], json!([]));
    assert_eq!(
        server.requests().len(),
        1,
        "the tool's answer was never asked for"
    );
    server.shutdown().await.expect("shutdown");
}

/// A URL of another database server given as the database is refused
/// (from the flag and from `HOST_DB`) instead of becoming a SQLite file in
/// a folder named `mysql:`; a PostgreSQL URL is a server, and one that does
/// not answer fails naming it, without its password.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_url_is_refused_not_taken_for_a_path() {
    let url = "mysql://app:pw-not-shown@localhost:3306/runs";
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in [
        e2e::host!().args(["runs", "list", "--db", url]),
        e2e::host!().db(url).args(["runs", "list"]),
    ] {
        let out = cmd.current_dir(dir.path()).output().await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("`mysql://…` is a URL") && stderr.contains("SQLite file"),
            "{stderr}"
        );
        assert!(!stderr.contains("pw-not-shown"), "{stderr}");
    }
    // Port 1 on loopback: nothing listens there.
    let pg = "postgres://app:pw-not-shown@127.0.0.1:1/runs";
    let out = e2e::host!()
        .args(["runs", "list", "--db", pg])
        .current_dir(dir.path())
        .output()
        .await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot open the run database postgres://app@127.0.0.1:1/runs"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-not-shown"), "{stderr}");
    let created: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert!(created.is_empty(), "created {created:?}");
}

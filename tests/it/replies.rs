//! Model replies are untrusted input (issue 15, items 12–14): the reply
//! limits against real loopback servers that misbehave, tool calls per turn
//! and duplicate call ids through the real `host` binary, approvals bound to
//! one exact call, and the idempotency key tools get.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use e2e::{TestContext, within};
use host::journal::{ApprovalAnswer, Decision, call_digest};
use host::llm::{
    Api, Item, LlmError, ModelRequest, ModelSettings, ProviderConfig, ReplyLimits, RetryPolicy,
    build_provider,
};
use host::store::{JournalEntry, JournalKind, RunStore, SqliteStore};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// A raw HTTP server that misbehaves

/// What the server does once it has read a request.
#[derive(Clone, Copy)]
enum Misbehave {
    /// `200`, no length, then `prefix` and `a`s until `total` bytes or the
    /// client hangs up.
    Endless {
        content_type: &'static str,
        prefix: &'static [u8],
        total: u64,
        declared_length: Option<u64>,
        status: u16,
    },
    /// `200` SSE, then a comment line every `every`, for `total`.
    Trickle { every: Duration, total: Duration },
}

/// A loopback server answering every request with `how`; returns its base
/// URL and the count of body bytes it managed to write.
async fn raw_server(how: Misbehave) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, how, counter.clone()));
        }
    });
    (url, written)
}

async fn serve(socket: TcpStream, how: Misbehave, written: Arc<AtomicU64>) {
    let mut reader = BufReader::new(socket);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).await.is_err() {
        return;
    }
    let mut socket = reader.into_inner();
    match how {
        Misbehave::Endless {
            content_type,
            prefix,
            total,
            declared_length,
            status,
        } => {
            let length = declared_length
                .map(|n| format!("content-length: {n}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n{length}connection: close\r\n\r\n"
            );
            if socket.write_all(head.as_bytes()).await.is_err()
                || socket.write_all(prefix).await.is_err()
            {
                return;
            }
            let chunk = vec![b'a'; 64 << 10];
            let mut sent = 0u64;
            while sent < total {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len() as u64;
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        Misbehave::Trickle { every, total } => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let started = Instant::now();
            while started.elapsed() < total {
                if socket.write_all(b": still thinking\n").await.is_err() {
                    return;
                }
                written.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(every).await;
            }
        }
    }
    let _ = socket.shutdown().await;
}

fn request(stream: bool) -> ModelRequest {
    ModelRequest {
        settings: ModelSettings::new("m"),
        input: vec![Item::user("hi")],
        stream,
        agent: "a".into(),
        step: "s".into(),
        turn: 1,
        ..ModelRequest::default()
    }
}

/// One call against `url` with `limits`, no retries, a 10 s idle timeout.
async fn call(url: &str, limits: ReplyLimits, stream: bool) -> (Result<(), LlmError>, Duration) {
    let provider = build_provider(
        ProviderConfig::compatible("raw", url)
            .with_api(Api::Chat)
            .with_timeout(Duration::from_secs(10))
            .with_retry(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            })
            .with_limits(limits)
            // The misbehaving servers listen on loopback.
            .with_egress(host::llm::Egress::allowing_private()),
    )
    .expect("provider");
    let started = Instant::now();
    let result = within(
        60,
        "the model call",
        provider.respond(&request(stream), None),
    )
    .await;
    (result.map(|_| ()), started.elapsed())
}

fn limit_error(result: Result<(), LlmError>) -> String {
    match result {
        Err(e @ LlmError::ReplyLimit { .. }) => e.to_string(),
        other => panic!("expected a reply-limit error, got {other:?}"),
    }
}

const MIB: u64 = 1 << 20;

/// The host stopped reading soon after a cap: the server's writes stall
/// (or fail) once the kernel's socket buffers are full, far short of the
/// GiB it would send to a reader that kept going. Waits for the count to
/// settle rather than sampling it at a fixed time, so a loaded machine
/// that closes the socket late does not fail the test; loopback buffers
/// here hold up to ~36 MiB, so 256 MiB is a bound the kernel cannot reach
/// but a host that read on would.
async fn assert_stopped_reading(written: &AtomicU64) {
    let mut last = written.load(Ordering::Relaxed);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = written.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last < 256 * MIB, "the server got {last} bytes out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_line_with_no_end_is_cut_at_the_line_cap() {
    let (url, written) = raw_server(Misbehave::Endless {
        content_type: "text/event-stream",
        prefix: b"data: ",
        total: 1 << 30,
        declared_length: None,
        status: 200,
    })
    .await;
    let limits = ReplyLimits {
        max_line_bytes: MIB as usize,
        ..ReplyLimits::default()
    };
    let (result, _) = call(&url, limits, true).await;
    let message = limit_error(result);
    assert!(
        message.contains("stream line too long") && message.contains("max_line_bytes"),
        "{message}"
    );
    assert_stopped_reading(&written).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_cap_is_refused() {
    let limits = ReplyLimits {
        max_body_bytes: MIB,
        ..ReplyLimits::default()
    };
    // Without a length: cut while reading.
    let (url, written) = raw_server(Misbehave::Endless {
        content_type: "application/json",
        prefix: b"{\"x\": \"",
        total: 1 << 30,
        declared_length: None,
        status: 200,
    })
    .await;
    let message = limit_error(call(&url, limits, false).await.0);
    assert!(
        message.contains("response body too large") && message.contains("max_body_bytes"),
        "{message}"
    );
    assert_stopped_reading(&written).await;
    // A declared length over the cap: refused before reading.
    let (url, _) = raw_server(Misbehave::Endless {
        content_type: "application/json",
        prefix: b"{",
        total: 4 * MIB,
        declared_length: Some(1 << 40),
        status: 200,
    })
    .await;
    let message = limit_error(call(&url, limits, false).await.0);
    assert!(message.contains("response body too large"), "{message}");
    // A streamed answer counts all its bytes against the same cap.
    let (url, _) = raw_server(Misbehave::Endless {
        content_type: "text/event-stream",
        prefix: b"",
        total: 1 << 30,
        declared_length: None,
        status: 200,
    })
    .await;
    let limits = ReplyLimits {
        max_body_bytes: MIB,
        max_line_bytes: 1 << 30,
        ..ReplyLimits::default()
    };
    let message = limit_error(call(&url, limits, true).await.0);
    assert!(message.contains("response body too large"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_body_is_read_only_in_part() {
    let (url, written) = raw_server(Misbehave::Endless {
        content_type: "text/plain",
        prefix: b"boom ",
        total: 1 << 30,
        declared_length: None,
        status: 500,
    })
    .await;
    let (result, elapsed) = call(&url, ReplyLimits::default(), false).await;
    match result {
        Err(LlmError::Http {
            status: 500,
            message,
            ..
        }) => assert!(message.starts_with("boom aaa") && message.len() < 1000),
        other => panic!("expected HTTP 500, got {other:?}"),
    }
    assert_stopped_reading(&written).await;
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_never_ends_is_cut_at_the_duration_cap() {
    let (url, _) = raw_server(Misbehave::Trickle {
        every: Duration::from_millis(100),
        total: Duration::from_secs(60),
    })
    .await;
    let limits = ReplyLimits {
        max_stream_secs: 1,
        ..ReplyLimits::default()
    };
    let (result, elapsed) = call(&url, limits, true).await;
    let message = limit_error(result);
    assert!(
        message.contains("stream took too long") && message.contains("max_stream_secs"),
        "{message}"
    );
    // The idle timeout (10 s) never fired: the total did.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

// ---------------------------------------------------------------------------
// Through the `host` binary, offline

/// A spec beside `script.json` whose agent `a` has `tool` (with approval
/// when asked) and whose script answers the first turn with `calls`, later
/// turns with the last tool output.
fn offline_spec(cx: &TestContext, tool: &str, approval: bool, calls: Value) -> PathBuf {
    let script = json!({"replies": [
        {"when": {"has_tool_result": false}, "reply": {"tool_calls": calls}},
        {"when": {"has_tool_result": true}, "reply": {"text": "done: {{tool_output}}"}}
    ]});
    std::fs::write(cx.dir().join("script.json"), script.to_string()).expect("script");
    let mut spec = json!({
        "providers": {"offline": {"type": "scripted", "script": "script.json"}},
        "agents": {"a": {
            "instructions": "use the tool",
            "model": {"provider": "offline", "name": "m"},
            "tools": [{"plugin": tool, "approval": if approval { "always" } else { "never" }}]
        }},
        "workflow": {"key": "replies", "steps": [{"agent": "a"}]},
        "run": {"input": "go"}
    });
    if tool.starts_with("idempotency_key") {
        spec["plugins"] = json!({"idempotency_key": {"timeout_ms": 10000}});
    }
    cx.write_spec(&spec)
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

async fn journal(db: &Path, run_id: &str) -> Vec<host::store::JournalRecord> {
    let store = SqliteStore::open(db).expect("open db");
    store
        .journal(&host::store::Scope::Operator, run_id)
        .await
        .expect("journal")
}

async fn only_run_id(db: &Path) -> String {
    let store = SqliteStore::open(db).expect("open db");
    let runs = store
        .list_runs(
            &host::store::Scope::Operator,
            host::store::RunFilter::default(),
        )
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].run_id.clone()
}

fn of_kind(records: &[host::store::JournalRecord], kind: JournalKind) -> usize {
    records.iter().filter(|r| r.entry.kind == kind).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn more_tool_calls_than_the_operator_allows_run_none() {
    let cx = e2e::test_context!();
    let calls = json!([
        {"name": "add", "arguments": {"numbers": [1, 1]}},
        {"name": "add", "arguments": {"numbers": [2, 2]}},
        {"name": "add", "arguments": {"numbers": [3, 3]}}
    ]);
    let spec = offline_spec(&cx, "calculator#add", false, calls);
    let config = cx.dir().join("host.toml");
    std::fs::write(&config, "[models]\nmax_tool_calls_per_turn = 2\n").expect("config");
    let plugins = e2e::plugin_dir(&["calculator"]);
    let ran = cx
        .host()
        .args(["run", arg(&spec), "--plugins", arg(plugins.path())])
        .args(["--config", arg(&config)])
        .ran()
        .await;
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("too many tool calls in one turn")
            && ran.stderr.contains("max_tool_calls_per_turn = 2"),
        "{}",
        ran.stderr
    );
    let records = journal(cx.db(), &only_run_id(cx.db()).await).await;
    assert_eq!(of_kind(&records, JournalKind::ToolResult), 0, "{records:?}");

    // The default (64) lets the same three calls run.
    let ran = cx
        .host()
        .args(["run", arg(&spec), "--plugins", arg(plugins.path())])
        .ran()
        .await;
    ran.ok();
}

/// The audit's H5 recipe: two calls share `call_id: "x"` with different
/// arguments behind `approval: always`.
fn duplicate_calls() -> Value {
    json!([
        {"name": "add", "arguments": {"numbers": [1, 1]}, "call_id": "x"},
        {"name": "add", "arguments": {"numbers": [1000000, 1]}, "call_id": "x"}
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn two_calls_sharing_a_call_id_are_refused_before_any_approval() {
    let cx = e2e::test_context!();
    let spec = offline_spec(&cx, "calculator#add", true, duplicate_calls());
    let plugins = e2e::plugin_dir(&["calculator"]);
    let ran = cx
        .host()
        .args(["run", arg(&spec), "--plugins", arg(plugins.path())])
        .ran()
        .await;
    // Not paused for approval (3): failed, saying why.
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("share the call id `x`"),
        "{}",
        ran.stderr
    );
    let run_id = only_run_id(cx.db()).await;
    let pending = cx.host().args(["approvals", "list", "--json"]).ran().await;
    pending.ok();
    assert_eq!(pending.json(), json!([]));
    // Approving `x` has nothing to approve, and nothing ever ran.
    let approve = cx.host().args(["approve", &run_id, "x"]).ran().await;
    assert_ne!(approve.code(), Some(0), "{}", approve.stderr);
    let records = journal(cx.db(), &run_id).await;
    assert_eq!(of_kind(&records, JournalKind::ApprovalRequested), 0);
    assert_eq!(of_kind(&records, JournalKind::ToolResult), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_applies_only_to_the_call_it_was_made_on() {
    let cx = e2e::test_context!();
    let calls = json!([{"name": "add", "arguments": {"numbers": [1000000, 1]}, "call_id": "x"}]);
    let spec = offline_spec(&cx, "calculator#add", true, calls);
    let plugins = e2e::plugin_dir(&["calculator"]);
    let run = |args: Vec<String>| {
        let cx = &cx;
        async move { cx.host().args(args).ran().await }
    };
    let paused = run(vec![
        "run".into(),
        arg(&spec).into(),
        "--plugins".into(),
        arg(plugins.path()).into(),
    ])
    .await;
    assert_eq!(paused.code(), Some(3), "{}", paused.stderr);
    let run_id = only_run_id(cx.db()).await;

    // The listing names the exact call: its key and argument digest.
    let listed = run(vec!["approvals".into(), "list".into(), "--json".into()]).await;
    let pending = listed.json();
    let key = pending[0]["key"].as_str().expect("key").to_owned();
    assert!(key.ends_with("/0/t1/approval/x"), "{key}");
    assert_eq!(
        pending[0]["digest"],
        call_digest("add", r#"{"numbers":[1000000,1]}"#)
    );
    let table = run(vec!["approvals".into(), "list".into()]).await;
    assert!(table.stdout.contains(&key), "{}", table.stdout);

    // A decision made on another call ({"numbers": [1, 1]}) under the same
    // key, as the shared-id confusion produced, does not run this one.
    let forged = ApprovalAnswer {
        call_id: "x".into(),
        tool: "add".into(),
        decision: Decision::approve(),
        by: Some("someone".into()),
        digest: Some(call_digest("add", r#"{"numbers":[1,1]}"#)),
    };
    let store = SqliteStore::open(cx.db()).expect("open db");
    store
        .append(
            &run_id,
            JournalEntry::new(
                JournalKind::ApprovalDecision,
                key.clone(),
                serde_json::to_value(&forged).expect("json"),
            ),
        )
        .await
        .expect("append");
    drop(store);
    let resumed = run(vec!["resume".into(), run_id.clone()]).await;
    assert_eq!(resumed.code(), Some(1), "{}", resumed.stderr);
    assert!(
        resumed
            .stderr
            .contains("the decision recorded was for another call"),
        "{}",
        resumed.stderr
    );
    let records = journal(cx.db(), &run_id).await;
    assert_eq!(of_kind(&records, JournalKind::ToolResult), 0, "{records:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approving_by_key_runs_exactly_that_call() {
    let cx = e2e::test_context!();
    let calls = json!([{"name": "add", "arguments": {"numbers": [2, 3]}, "call_id": "x"}]);
    let spec = offline_spec(&cx, "calculator#add", true, calls);
    let plugins = e2e::plugin_dir(&["calculator"]);
    let paused = cx
        .host()
        .args(["run", arg(&spec), "--plugins", arg(plugins.path())])
        .ran()
        .await;
    assert_eq!(paused.code(), Some(3), "{}", paused.stderr);
    let run_id = only_run_id(cx.db()).await;
    let pending = cx.host().args(["approvals", "list", "--json"]).ran().await;
    let key = pending.json()[0]["key"].as_str().expect("key").to_owned();
    cx.host().args(["approve", &run_id, &key]).ran().await.ok();
    let resumed = cx.host().args(["resume", &run_id]).ran().await;
    resumed.ok();
    assert!(resumed.stdout.contains("done: 5"), "{}", resumed.stdout);
}

// ---------------------------------------------------------------------------
// Idempotency keys

/// The `output` of every `tool_result` entry, by key.
fn tool_outputs(records: &[host::store::JournalRecord]) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r.entry.kind == JournalKind::ToolResult)
        .map(|r| {
            (
                r.entry.key.clone(),
                r.entry.data["output"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tool_call_gets_its_own_idempotency_key() {
    let cx = e2e::test_context!();
    let calls = json!([
        {"name": "whoami", "arguments": {"note": "same"}, "call_id": "c1"},
        {"name": "whoami", "arguments": {"note": "same"}, "call_id": "c2"}
    ]);
    let spec = offline_spec(&cx, "idempotency_key#whoami", false, calls);
    let plugins = e2e::plugin_dir(&["idempotency_key"]);
    cx.host()
        .args(["run", arg(&spec), "--plugins", arg(plugins.path())])
        .ran()
        .await
        .ok();
    let run_id = only_run_id(cx.db()).await;
    let outputs = tool_outputs(&journal(cx.db(), &run_id).await);
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    for (key, output) in &outputs {
        assert_eq!(output, &format!("{run_id}/{key}"));
    }
    assert_ne!(outputs[0].1, outputs[1].1);
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn the_idempotency_key_survives_a_crash_and_resume() {
    let cx = e2e::test_context!();
    let calls = json!([{"name": "whoami", "arguments": {"ms": 4000}, "call_id": "slow"}]);
    let spec = offline_spec(&cx, "idempotency_key#whoami", false, calls);
    let plugins = e2e::plugin_dir(&["idempotency_key"]);

    // Killed while the tool runs, after it logged the key it was given.
    let mut child = cx
        .host()
        .args(["run", arg(&spec), "--plugins", arg(plugins.path())])
        .tokio()
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn host");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = within(60, "the tool's log line", async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((_, key)) = line.split_once("idempotency key: ") {
                // The log line goes on with the record's fields.
                return key.split_whitespace().next().unwrap_or("").to_owned();
            }
        }
        panic!("host ended without the tool's log line");
    })
    .await;
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    let run_id = only_run_id(cx.db()).await;
    assert_eq!(
        tool_outputs(&journal(cx.db(), &run_id).await),
        vec![],
        "the kill came after the tool's result was recorded"
    );

    // The resumed run makes the call again, with the same key.
    let resumed = cx.host().args(["resume", &run_id]).ran().await;
    resumed.ok();
    let outputs = tool_outputs(&journal(cx.db(), &run_id).await);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0].1, first);
    assert_eq!(first, format!("{run_id}/{}", outputs[0].0));
}

#[tokio::test]
async fn components_of_both_wit_versions_load() {
    let rt = crate::common::runtime();
    let registry = host::plugin::Registry::new(rt);
    let dir = e2e::plugin_dir(&["idempotency_key"]);
    // A component exporting the 0.1.0 interfaces, built from WAT: the
    // example plugins are rebuilt against 0.1.1 by plugins/build.sh.
    crate::hostile_limits::hostile_tool(dir.path(), "ok_tool", "lookup", 100);
    within(
        300,
        "load",
        registry.load_dir(dir.path(), &host::plugin::LoadOptions::default()),
    )
    .await
    .expect("load");
    let version = |name: &str| registry.get(name).expect(name).wit_version().to_owned();
    assert_eq!(version("ok_tool"), "0.1.0");
    assert_eq!(version("idempotency_key"), "0.1.1");
}

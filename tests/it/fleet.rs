//! A fleet on one PostgreSQL database (docs/SCALING.md): two `host serve`
//! and one `host worker` share a throwaway cluster (`e2e::postgres`); one
//! of them is `kill -9`ed with runs in flight.

use crate::outbox::Server as Receiver;
use crate::serve_support::{Api, Serve, mock_provider, write_workflow};
use e2e::mock;
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Three sequential agents: each run makes three model requests, one at a
/// time, whose bodies name the run's input (so a repeat is seen).
fn chain_workflow(server: &MockServer) -> Value {
    let agent = |name: &str| {
        json!({"instructions": format!("AGENT {name}"),
               "model": {"provider": "mock", "name": "gpt-4.1-mini"}})
    };
    json!({
        "providers": mock_provider(&server.base_url()),
        "agents": {"one": agent("one"), "two": agent("two"), "three": agent("three")},
        "workflow": {"key": "chain", "stages": [
            {"name": "s1", "mode": "sequential", "steps": [{"agent": "one"}]},
            {"name": "s2", "mode": "sequential", "steps": [{"agent": "two"}]},
            {"name": "s3", "mode": "sequential", "steps": [{"agent": "three"}]}
        ]}
    })
}

/// A scratch folder with an empty `plugins/` and `workflows/chain.json`.
fn setup(model: &MockServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("workflows")).expect("dir");
    std::fs::create_dir_all(dir.path().join("plugins")).expect("dir");
    write_workflow(
        &dir.path().join("workflows"),
        "chain",
        &chain_workflow(model),
    );
    dir
}

fn folders(dir: &Path) -> [String; 4] {
    [
        "--plugins".to_owned(),
        dir.join("plugins").display().to_string(),
        "--workflows".to_owned(),
        dir.join("workflows").display().to_string(),
    ]
}

/// `host serve` on the database `url`, a fleet member with a short lease.
async fn serve(url: &str, dir: &Path, max_runs: &str) -> Serve {
    let folders = folders(dir);
    let mut args: Vec<&str> = folders.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--lease", "3", "--max-runs", max_runs]);
    Serve::start(e2e::host!().db(url), &args).await
}

/// `host worker` on the database `url` (killed when dropped).
fn worker(url: &str, dir: &Path) -> tokio::process::Child {
    let mut cmd = e2e::host!()
        .db(url)
        .arg("worker")
        .args(folders(dir))
        .args(["--lease", "3", "--max-runs", "32"])
        .tokio();
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.spawn().expect("start host worker")
}

async fn start_run(api: &Api, input: &str, callback: &str) -> String {
    let (status, body) = api
        .post(
            "/v1/runs",
            &json!({"workflow": "chain", "input": input, "callback": callback}),
        )
        .await;
    assert_eq!(status, 202, "{body}\n{}", api.log());
    body["run_id"].as_str().expect("run_id").to_owned()
}

/// A connection to the fleet's database, for what the API does not show.
async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(conn);
    client
}

async fn count(db: &tokio_postgres::Client, query: &str) -> i64 {
    db.query_one(query, &[]).await.expect(query).get(0)
}

/// The model requests made more than once (each body names its run's
/// input and step, so a body seen twice is a request made twice).
fn repeated_requests(model: &MockServer) -> usize {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in model.requests() {
        let body = r.body.expect("the mock logs every body");
        *seen.entry(body.to_string()).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

/// Runs `n` inputs through the fleet, waits for all: run id → (input,
/// output).
async fn wait_all(api: &Api, ids: &[(String, String)]) -> BTreeMap<String, Value> {
    let mut outputs = BTreeMap::new();
    for (id, input) in ids {
        let run = api.wait_status(id, &["completed", "failed"], 180).await;
        assert_eq!(run["status"], "completed", "{run}\n{}", api.log());
        outputs.insert(input.clone(), run["output"].clone());
    }
    outputs
}

/// Every run's events reached the callback: seqs 1..=n with none missing,
/// the last `run.completed`, and first deliveries in seq order per run.
fn check_deliveries(receiver: &Receiver, ids: &[(String, String)]) -> usize {
    let mut by_run: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in receiver.received() {
        let event = r.json();
        let run = event["run_id"].as_str().expect("run_id").to_owned();
        by_run.entry(run).or_default().push(event);
    }
    let mut total = 0;
    for (id, _) in ids {
        let events = by_run.get(id).unwrap_or_else(|| panic!("no event of {id}"));
        let mut firsts: Vec<u64> = Vec::new();
        for e in events {
            let seq = e["seq"].as_u64().expect("seq");
            if !firsts.contains(&seq) {
                firsts.push(seq);
            }
        }
        let in_order = firsts.windows(2).all(|w| w[0] < w[1]);
        assert!(
            in_order,
            "{id}: events first delivered out of order: {firsts:?}"
        );
        let last = *firsts.last().expect("events");
        assert_eq!(
            firsts,
            (1..=last).collect::<Vec<_>>(),
            "{id}: an event is missing"
        );
        let final_type = events
            .iter()
            .find(|e| e["seq"].as_u64() == Some(last))
            .map(|e| e["type"].clone());
        assert_eq!(final_type, Some(json!("run.completed")), "{id}");
        total += firsts.len();
    }
    total
}

/// Two `host serve` and one `host worker` on one database, 300 runs
/// accepted by both servers, one server `kill -9`ed mid-way: every run
/// completes with the output an uninterrupted run gives, no model request
/// is repeated apart from those in flight at the kill (at most one per
/// run the killed server held), every callback event is delivered, in
/// order per run, and the runs were spread over the three processes.
#[tokio::test(flavor = "multi_thread")]
async fn three_workers_300_runs_one_killed_loses_nothing() {
    let Some(url) = e2e::postgres::database() else {
        return;
    };
    let model = mock(json!({"latency_ms": 300})).await;
    let dir = setup(&model);
    let hook_addr = crate::outbox::free_addr();
    let receiver = Receiver::start(&hook_addr, Arc::new(|_| (200, Duration::ZERO))).await;
    let hook = format!("http://{hook_addr}/hook");

    let a = serve(&url, dir.path(), "32").await;
    let mut b = serve(&url, dir.path(), "32").await;
    let _c = worker(&url, dir.path());
    let db = sql(&url).await;
    let started = Instant::now();
    let runs = 300;
    // Accepted by both servers, 16 requests at a time.
    let mut posting = tokio::task::JoinSet::new();
    let mut ids = Vec::new();
    for i in 0..runs {
        let input = format!("fleet topic #{i}");
        let api = if i % 2 == 0 {
            a.api.clone()
        } else {
            b.api.clone()
        };
        let hook = hook.clone();
        if posting.len() >= 16
            && let Some(done) = posting.join_next().await
        {
            ids.push(done.expect("post"));
        }
        posting.spawn(async move { (i, start_run(&api, &input, &hook).await, input) });
    }
    while let Some(done) = posting.join_next().await {
        ids.push(done.expect("post"));
    }
    ids.sort();
    assert_eq!(ids.len(), runs);
    let ids: Vec<(String, String)> = ids.into_iter().map(|(_, id, input)| (id, input)).collect();
    // Mid-way: about a third of the model requests made.
    let deadline = Instant::now() + Duration::from_secs(60);
    while model.requests().len() < runs {
        assert!(
            Instant::now() < deadline,
            "runs did not progress\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = b.child.id().expect("pid");
    b.kill9().await;
    // At most one request in flight per run the killed server executed
    // (the chain's requests are sequential).
    let held = count(
        &db,
        &format!(
            "SELECT COUNT(*) FROM runs WHERE lease_owner LIKE '%:{pid}:%' \
             AND status IN ('queued', 'running')"
        ),
    )
    .await as usize;
    let at_kill = model.requests().len();
    assert!(
        held > 0,
        "the killed server executed no run ({at_kill} requests made)"
    );
    assert!(
        at_kill < 5 * runs / 2,
        "killed too late: {at_kill} requests made"
    );

    let outputs = wait_all(&a.api, &ids).await;
    let elapsed = started.elapsed();
    let repeated = repeated_requests(&model);
    assert!(
        repeated <= held,
        "{repeated} model requests repeated; the killed server held {held} runs"
    );
    assert_eq!(
        model.requests().len(),
        3 * runs + repeated,
        "three requests a run, plus the repeats"
    );
    // The others took part: server a's metrics count the runs it finished.
    let finished = |api: &Api| {
        let api = api.clone();
        async move {
            let (_, _, text) = api.get_text("/metrics").await;
            text.lines()
                .filter(|l| l.starts_with("host_runs_finished_total") && l.contains("completed"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as usize
        }
    };
    let by_a = finished(&a.api).await;
    assert!(
        by_a > 0 && by_a < runs,
        "server a finished {by_a} of {runs}: the others took part"
    );

    // Every event delivered (the outbox drains), in order per run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(
        &db,
        "SELECT COUNT(*) FROM outbox WHERE state <> 'delivered'",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "outbox not drained\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = count(&db, "SELECT COUNT(*) FROM outbox WHERE state = 'dead'").await;
    assert_eq!(dead, 0);
    let delivered = check_deliveries(&receiver, &ids);

    // The same inputs, uninterrupted, on a fresh database and one server:
    // the same outputs.
    drop(a);
    let Some(fresh) = e2e::postgres::database() else {
        unreachable!("the cluster is running")
    };
    let solo = serve(&fresh, dir.path(), "64").await;
    let mut solo_ids = Vec::new();
    for (_, input) in &ids {
        solo_ids.push((solo.start_run("chain", json!(input)).await, input.clone()));
    }
    let uninterrupted = wait_all(&solo.api, &solo_ids).await;
    assert_eq!(
        outputs, uninterrupted,
        "outputs differ from uninterrupted runs"
    );
    println!(
        "fleet: {runs} runs in {:.1} s, {at_kill} model requests before the kill, \
         {held} runs held by the killed server, {repeated} repeated; server a finished \
         {by_a}; {delivered} events delivered",
        elapsed.as_secs_f64()
    );
}

/// An approval given through the other server continues the run: server a
/// accepts the run, which pauses for approval of `calculator#add`; server
/// b (each with its own plugins folder) approves it; the run completes,
/// and a's event stream, which reads the shared store, ends with
/// `run.completed`. The journal records the digest of the plugin that
/// served the call.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_through_another_server_continues_the_run() {
    let Some(url) = e2e::postgres::database() else {
        return;
    };
    let model = mock(json!({"rules": [
        {"name": "call-add", "match": {"instructions_contains": "AGENT a", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "add", "arguments": {"numbers": [2, 3]}, "call_id": "call_add_1"}]}}
    ]}))
    .await;
    let workflows = tempfile::tempdir().expect("tempdir");
    write_workflow(
        workflows.path(),
        "approve",
        &json!({
            "providers": mock_provider(&model.base_url()),
            "agents": {"a": {
                "instructions": "AGENT a: add numbers.",
                "model": {"provider": "mock", "name": "gpt-4.1-mini"},
                "tools": [{"plugin": "calculator#add", "approval": "always"}]
            }},
            "workflow": {"key": "approve", "steps": [{"agent": "a"}]}
        }),
    );
    let start = |plugins: &Path| {
        let args = [
            "--plugins".to_owned(),
            plugins.display().to_string(),
            "--workflows".to_owned(),
            workflows.path().display().to_string(),
            "--lease".to_owned(),
            "3".to_owned(),
        ];
        let url = url.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Serve::start(e2e::host!().db(&url), &args).await
        }
    };
    let (plugins_a, plugins_b) = (
        e2e::plugin_dir(&["calculator"]),
        e2e::plugin_dir(&["calculator"]),
    );
    let a = start(plugins_a.path()).await;
    let b = start(plugins_b.path()).await;

    let id = a.start_run("approve", json!("what is 2 + 3?")).await;
    b.wait_status(&id, &["waiting_approval"], 60).await;
    let (code, list) = b.get("/v1/approvals").await;
    assert_eq!(code, 200);
    assert_eq!(list["approvals"][0]["run_id"], id.as_str(), "{list}");
    let (code, body) = b
        .post(
            &format!("/v1/runs/{id}/approvals/call_add_1"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["resumed"], true, "{body}");
    let run = a.wait_status(&id, &["completed", "failed"], 60).await;
    assert_eq!(run["status"], "completed", "{run}\n{}", b.log());
    let (_, events) = a.events(&id, None, usize::MAX).await;
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("run.completed")
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());

    let db = sql(&url).await;
    let digests = db
        .query(
            "SELECT plugin_digest FROM journal WHERE run_id = $1 AND kind = 'tool_result'",
            &[&id],
        )
        .await
        .expect("journal");
    assert_eq!(digests.len(), 1, "one tool call");
    let digest: Option<String> = digests[0].get(0);
    assert!(
        digest.is_some_and(|d| d.len() == 64),
        "the journal records the plugin's digest"
    );
}

/// A stream of a run that another worker executes follows it by the
/// store's notifications (`LISTEN`), not by polling: with the safety-net
/// poll set to ten minutes, the stream still gets every event and ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_follows_a_run_on_another_worker_by_notification() {
    let Some(url) = e2e::postgres::database() else {
        return;
    };
    let model = mock(json!({"rules": [
        {"name": "hold", "match": {"instructions_contains": "AGENT hold"}, "latency_ms": 20000,
         "reply": {"text": "late"}}
    ]}))
    .await;
    let dir = setup(&model);
    write_workflow(
        &dir.path().join("workflows"),
        "hold",
        &json!({
            "providers": mock_provider(&model.base_url()),
            "agents": {"hold": {"instructions": "AGENT hold",
                                "model": {"provider": "mock", "name": "gpt-4.1-mini"}}},
            "workflow": {"key": "hold", "steps": [{"agent": "hold"}]}
        }),
    );
    let folders = folders(dir.path());
    let mut args: Vec<&str> = folders.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--lease", "3", "--max-runs", "1"]);
    let a = Serve::start(
        e2e::host!().db(&url).env("HOST_STREAM_POLL_MS", "600000"),
        &args,
    )
    .await;
    // Server a's one slot is taken, so the next run waits in the store
    // for the worker.
    let held = a.start_run("hold", json!("x")).await;
    a.wait_status(&held, &["running"], 60).await;
    let _worker = worker(&url, dir.path());
    let id = a.start_run("chain", json!("followed")).await;
    let (status, events) = a.events(&id, None, 1000).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(types.first(), Some(&"run.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"run.completed"), "{types:?}");
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "no gap");
    let run = a.wait_status(&id, &["completed"], 60).await;
    assert_eq!(run["status"], "completed", "{run}");
}

//! `host serve` under load and across restarts: a reducer hot-swapped while
//! hundreds of runs use it, `kill -9` with runs in flight, SIGTERM.

use crate::serve_support::{Api, Serve, mock_provider, write_workflow};
use e2e::mock;
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

/// A parallel stage of two agents merged by the reducer `red` (whichever
/// build `red.wasm` holds), then nothing else: the run's output is the
/// reducer's.
fn swap_workflow(server: &MockServer) -> Value {
    json!({
        "providers": mock_provider(&server.base_url()),
        "agents": {
            "a": {"instructions": "AGENT a", "model": {"provider": "mock", "name": "gpt-4.1-mini"}},
            "b": {"instructions": "AGENT b", "model": {"provider": "mock", "name": "gpt-4.1-mini"}}
        },
        "workflow": {"key": "swap", "stages": [
            {"name": "both", "mode": "parallel", "steps": [{"agent": "a"}, {"agent": "b"}],
             "reducer": {"plugin": "red#tagged"}}
        ]}
    })
}

/// Three sequential agents on a slow model: long enough to be interrupted.
fn chain_workflow(server: &MockServer) -> Value {
    json!({
        "providers": mock_provider(&server.base_url()),
        "agents": {
            "one": {"instructions": "AGENT one", "model": {"provider": "mock", "name": "gpt-4.1-mini"}},
            "two": {"instructions": "AGENT two", "model": {"provider": "mock", "name": "gpt-4.1-mini"}},
            "three": {"instructions": "AGENT three", "model": {"provider": "mock", "name": "gpt-4.1-mini"}}
        },
        "workflow": {"key": "chain", "stages": [
            {"name": "s1", "mode": "sequential", "steps": [{"agent": "one"}]},
            {"name": "s2", "mode": "sequential", "steps": [{"agent": "two"}]},
            {"name": "s3", "mode": "sequential", "steps": [{"agent": "three"}]}
        ]}
    })
}

fn digest(path: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).expect("read guest"),
    ))
}

async fn serving_digest(api: &Api, plugin: &str) -> Option<String> {
    let (_, body) = api.get("/v1/plugins").await;
    body["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == plugin)
        .and_then(|p| p["digest"].as_str().map(str::to_owned))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// 300 runs at concurrency 32 while `red.wasm` is replaced 10 times (two
/// builds alternating, by `cp` and by write-then-rename) and once by a
/// corrupt file: no run fails, every output comes from the build its
/// journal records, and each new build serves soon after its write.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn a_reducer_swapped_under_load_fails_no_run() {
    // Slow enough that the load outlasts the swaps (~10 rounds of 32 runs).
    let model = mock(json!({"latency_ms": 400})).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join("workflows");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&workflows).expect("dir");
    std::fs::create_dir_all(&plugins).expect("dir");
    let builds = [e2e::guests::REDUCER_V1, e2e::guests::REDUCER_V2];
    let digests: BTreeMap<String, &str> =
        [(digest(builds[0]), "v1"), (digest(builds[1]), "v2")].into();
    let red = plugins.join("red.wasm");
    std::fs::copy(builds[0], &red).expect("copy");
    write_workflow(&workflows, "swap", &swap_workflow(&model));
    let s = Serve::start(
        e2e::host!(),
        &[
            "--plugins",
            plugins.to_str().expect("utf-8"),
            "--workflows",
            workflows.to_str().expect("utf-8"),
            "--max-runs",
            "32",
        ],
    )
    .await;

    let runs: usize = 300;
    let load = {
        let api = s.api.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..runs {
                if set.len() >= 32 {
                    ids.push(set.join_next().await.expect("task").expect("run"));
                }
                let api = api.clone();
                set.spawn(async move {
                    let id = api.start_run("swap", json!(format!("topic #{i}"))).await;
                    api.wait_status(&id, &["completed", "failed", "cancelled"], 120)
                        .await;
                    id
                });
            }
            while let Some(id) = set.join_next().await {
                ids.push(id.expect("run"));
            }
            ids
        })
    };

    // The swaps, while the load runs.
    let mut latencies = Vec::new();
    for n in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let build = builds[(n + 1) % 2];
        let want = digest(build);
        let written = Instant::now();
        if n % 2 == 0 {
            // `cp` over the file: truncate, then write in chunks.
            std::fs::copy(build, &red).expect("cp");
        } else {
            let tmp = plugins.join(".red.wasm.tmp");
            std::fs::copy(build, &tmp).expect("write tmp");
            std::fs::rename(&tmp, &red).expect("rename");
        }
        loop {
            if serving_digest(&s, "red").await.as_deref() == Some(want.as_str()) {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(10),
                "build {n} never served\n{}",
                s.log()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    // A corrupt file: reported, and the last good build keeps serving.
    let good = serving_digest(&s, "red").await.expect("serving");
    std::fs::write(&red, b"\0asm\x0d\0\x01\0 this is not a component").expect("corrupt");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = s.get("/v1/plugins").await;
        let red = body["plugins"]
            .as_array()
            .and_then(|l| l.iter().find(|p| p["name"] == "red").cloned())
            .expect("red");
        if red["last_reload_error"].is_string() {
            assert_eq!(red["digest"].as_str(), Some(good.as_str()), "{red}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the corrupt file was not reported\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.log().contains("did not reload"), "{}", s.log());

    let ids = load.await.expect("load");
    assert_eq!(ids.len(), runs);
    let mut by_build: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &ids {
        let (_, run) = s.get(&format!("/v1/runs/{id}")).await;
        assert_eq!(run["status"], "completed", "{run}\n{}", s.log());
        let served: Vec<&Value> = run["served"]
            .as_array()
            .expect("served")
            .iter()
            .filter(|v| v["plugin"] == "red")
            .collect();
        assert_eq!(served.len(), 1, "{run}");
        let build = digests[served[0]["digest"].as_str().expect("digest")];
        let output = run["output"].as_str().expect("text output");
        assert!(
            output.starts_with(&format!("{build}: ")),
            "run {id}: output {output:?} from build {build}"
        );
        *by_build.entry(build).or_default() += 1;
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "hot swap: {runs} runs, 0 failed, by build {by_build:?}; new build serving after write (ms): \
         min {:.1} p50 {:.1} p90 {:.1} max {:.1}",
        latencies[0],
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies[latencies.len() - 1]
    );
    assert!(by_build.len() == 2, "both builds served runs: {by_build:?}");
}

/// The model requests of each run, by their user input (each run's input
/// is distinct, so a body seen twice is a request made twice).
fn repeated_requests(model: &MockServer) -> usize {
    let requests = model.requests();
    assert!(
        requests.iter().all(|r| r.body.is_some()),
        "the mock logs every body"
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in requests {
        if let Some(body) = &r.body {
            *seen.entry(body.to_string()).or_default() += 1;
        }
    }
    seen.values().map(|n| n - 1).sum()
}

/// Model responses recorded in every run's journal.
async fn recorded_model_calls(db: &Path) -> usize {
    use host::store::{JournalKind, RunFilter, RunStore, Scope, SqliteStore};
    let store = SqliteStore::open(db).expect("open db");
    let mut n = 0;
    for run in store
        .list_runs(&Scope::Operator, RunFilter::default())
        .await
        .expect("runs")
    {
        let journal = store
            .journal(&Scope::Operator, &run.run_id)
            .await
            .expect("journal");
        n += journal
            .iter()
            .filter(|r| r.entry.kind == JournalKind::ModelResponse)
            .count();
    }
    n
}

/// A scratch folder with an empty `plugins/` and `workflows/chain.json`,
/// and a fresh database.
fn chain_setup(model: &MockServer) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).expect("dir");
    std::fs::create_dir_all(dir.path().join("plugins")).expect("dir");
    write_workflow(&workflows, "chain", &chain_workflow(model));
    (dir, e2e::fresh_db())
}

async fn chain_server(db: &Path, plugins: &Path, workflows: &Path, extra: &[&str]) -> Serve {
    let mut args = vec![
        "--plugins",
        plugins.to_str().expect("utf-8"),
        "--workflows",
        workflows.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    Serve::start(e2e::host!().db(db), &args).await
}

async fn start_chain_runs(api: &Api, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            api.start_run("chain", json!(format!("chain topic #{i}")))
                .await,
        );
    }
    ids
}

/// `kill -9` of the server with 50 runs in flight, then a restart: all
/// complete with the outputs of uninterrupted runs, and no model request
/// is made twice apart from those in flight at the kill.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_50_runs_in_flight_then_restart_completes_them_all() {
    let model = mock(json!({"latency_ms": 200})).await;
    let (dir, db) = chain_setup(&model);
    let (plugins, workflows) = (dir.path().join("plugins"), dir.path().join("workflows"));

    let mut s = chain_server(&db, &plugins, &workflows, &[]).await;
    let ids = start_chain_runs(&s, 50).await;
    // Mid-way: some runs have made calls, none has finished all three.
    let deadline = Instant::now() + Duration::from_secs(30);
    while model.requests().len() < 60 {
        assert!(
            Instant::now() < deadline,
            "runs did not progress\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.kill9().await;
    // In flight at the kill: requests made whose response no journal had
    // recorded (sent, or answered but not yet committed).
    let at_kill = model.requests().len();
    let recorded = recorded_model_calls(&db).await;
    let in_flight_max = at_kill - recorded;
    assert!(
        in_flight_max > 0 && in_flight_max <= 50,
        "{in_flight_max} in flight"
    );

    let s = chain_server(&db, &plugins, &workflows, &[]).await;
    let mut outputs = BTreeMap::new();
    for id in &ids {
        let run = s.wait_status(id, &["completed", "failed"], 120).await;
        assert_eq!(run["status"], "completed", "{run}\n{}", s.log());
        outputs.insert(
            run["input"].as_str().expect("input").to_owned(),
            run["output"].clone(),
        );
    }
    let repeated = repeated_requests(&model);
    assert!(
        repeated <= in_flight_max,
        "{repeated} model requests repeated (at most those in flight at the kill)"
    );
    assert!(model.requests().len() >= at_kill);

    // The same inputs, uninterrupted, on a fresh database: the same outputs.
    drop(s);
    let fresh = e2e::fresh_db();
    let s = chain_server(&fresh, &plugins, &workflows, &[]).await;
    for i in 0..50 {
        let input = format!("chain topic #{i}");
        let id = s.start_run("chain", json!(input)).await;
        let run = s.wait_status(&id, &["completed"], 120).await;
        assert_eq!(outputs[&input], run["output"], "{input}");
    }
    println!(
        "kill -9: {at_kill} requests before the kill, {in_flight_max} in flight, {repeated} repeated after the restart"
    );
}

/// SIGTERM during runs: the server stops accepting, exits 0 within the
/// grace period, and the next start completes every run.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_runs_then_restart_completes_them_all() {
    let model = mock(json!({"latency_ms": 300})).await;
    let (dir, db) = chain_setup(&model);
    let (plugins, workflows) = (dir.path().join("plugins"), dir.path().join("workflows"));

    let mut s = chain_server(
        &db,
        &plugins,
        &workflows,
        &["--shutdown-grace", "0.2", "--max-runs", "4"],
    )
    .await;
    let ids = start_chain_runs(&s, 12).await;
    // A client following a run's events must not hold the shutdown.
    let follower = {
        let (api, id) = (s.api.clone(), ids[11].clone());
        tokio::spawn(async move { api.events(&id, None, usize::MAX).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stopping = Instant::now();
    let status = s.terminate(30).await;
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    let (_, seen) = follower.await.expect("follower");
    assert!(
        seen.last().is_none_or(|e| e.event != "run.completed"),
        "the stream ended with the server"
    );
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert!(s.log().contains("stay resumable"), "{}", s.log());

    // Runs that finished while the first server stopped: their stored
    // events may lack the last ones (docs/API.md, "Restart without loss").
    let finished_at_stop: BTreeSet<String> = {
        use host::store::{RunFilter, RunStore, Scope, SqliteStore};
        let store = SqliteStore::open(&db).expect("db");
        store
            .list_runs(&Scope::Operator, RunFilter::default())
            .await
            .expect("runs")
            .into_iter()
            .filter(|r| r.status.is_terminal())
            .map(|r| r.run_id)
            .collect()
    };
    let s = chain_server(&db, &plugins, &workflows, &[]).await;
    let mut done = BTreeSet::new();
    for id in &ids {
        let run = s.wait_status(id, &["completed", "failed"], 120).await;
        assert_eq!(run["status"], "completed", "{run}");
        done.insert(id.clone());
        // Each run's event ids run 1, 2, 3… across the two processes, and
        // a run the second server finished ends with its final event.
        let (_, events) = s.events(id, None, usize::MAX).await;
        let got: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>(), "{id}");
        if !finished_at_stop.contains(id) {
            assert_eq!(
                events.last().map(|e| e.event.as_str()),
                Some("run.completed"),
                "{id}"
            );
        }
    }
    assert!(
        finished_at_stop.len() < ids.len(),
        "some runs were left to the second server"
    );
    assert_eq!(done.len(), 12);
}

//! `host serve` benchmarks: a client in this process, the server and the
//! model server in processes of their own (started by
//! `host/benches/serve.sh`), so each one's CPU and memory are its own.
//!
//! ```text
//! cargo bench -p host --bench serve -- overhead --server URL --base-url MOCK [--runs 300]
//!     [--spec examples/peer_workflow/spec.json --workflow peer_workflow]
//! cargo bench -p host --bench serve -- closed-loop --server URL --server-pid PID [--mock-pid PID]
//!     [--workflow peer_workflow] [--concurrency 128] [--duration 10] [--warmup 3]
//! cargo bench -p host --bench serve -- hold --server URL --server-pid PID [--workflow one_agent] [--runs 10000]
//! cargo bench -p host --bench serve -- idle --server-pid PID
//! ```
//!
//! - `overhead`: POST → completed (the SSE stream's end) one run at a time
//!   through the API, against the same workflow run one at a time by the
//!   library (`Runner::run` on a SQLite store, as the server records runs):
//!   what the API adds per run.
//! - `closed-loop`: N clients each start a run and follow its events to
//!   the end, back to back: workflows/s, latency, the server's CPU per
//!   workflow and its peak RSS.
//! - `hold`: `--runs` runs started at once on a slow model: the server's
//!   RSS while they all wait.
//! - `idle`: the server's RSS with nothing to do.
//!
//! docs/BENCHMARKS.md has the numbers and the commands that made them.

mod support;

use futures::StreamExt;
use host::engine::Runner;
use host::plan::{self, CompileOptions};
use host::plugin::{Registry, Runtime, RuntimeOptions};
use host::spec::Spec;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Args, cpu_seconds, repo};

/// A `/proc/PID/status` field in MiB (`VmRSS`, `VmHWM`).
fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client")
}

/// Starts a run of `workflow` and follows its events to the end; whether
/// it completed.
async fn run_through_api(
    http: &reqwest::Client,
    server: &str,
    workflow: &str,
    input: &str,
) -> Result<(), String> {
    let accepted: Value = http
        .post(format!("{server}/v1/runs"))
        .json(&json!({"workflow": workflow, "input": input}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let id = accepted["run_id"]
        .as_str()
        .ok_or_else(|| format!("not accepted: {accepted}"))?;
    let resp = http
        .get(format!("{server}/v1/runs/{id}/events"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = resp.bytes_stream();
    let mut tail = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if tail.len() > 4096 {
            tail.drain(..tail.len() - 2048);
        }
    }
    if tail.contains("event: run.completed") {
        Ok(())
    } else {
        Err(format!(
            "run {id} did not complete: …{}",
            &tail[tail.len().saturating_sub(300)..]
        ))
    }
}

async fn library_runner(spec_path: &Path, store: Arc<dyn host::store::Store>) -> Runner {
    let spec = Spec::from_json_str(
        &std::fs::read_to_string(spec_path).expect("spec"),
        spec_path.parent().unwrap_or(Path::new(".")),
    )
    .expect("spec");
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(repo().join("target/bench-plugin-cache")),
        cache_key_file: Some(repo().join("target/bench-plugin-cache.key")),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let registry = Arc::new(Registry::new(rt));
    registry
        .load_dir(&repo().join("plugins"), &plan::load_options(&spec))
        .await
        .expect("plugins");
    let workflow = plan::compile(&spec, &registry, &CompileOptions::default()).expect("build");
    Runner::new(Arc::new(workflow), registry).with_store(store)
}

fn mean_ms(v: &[f64]) -> f64 {
    (v.iter().sum::<f64>() / v.len().max(1) as f64 * 1e5).round() / 100.0
}

async fn overhead(args: &Args) {
    let server = args.get("server").expect("--server URL");
    let base_url = args.get("base-url").expect("--base-url of the mock");
    let workflow = args.get("workflow").unwrap_or("peer_workflow");
    let spec = repo().join(
        args.get("spec")
            .unwrap_or("examples/peer_workflow/spec.json"),
    );
    let runs = args.num("runs", 300.0) as usize;
    // SAFETY: set before any other thread reads the environment.
    unsafe {
        std::env::set_var("OPENAI_BASE_URL", base_url);
        std::env::set_var("OPENAI_API_KEY", "sk-mock");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(host::store::SqliteStore::open(dir.path().join("lib.db")).expect("db"));
    let runner = library_runner(&spec, store).await;
    let http = client();
    for i in 0..30 {
        runner
            .run(json!(format!("warm-up {i}")))
            .await
            .expect("run");
        run_through_api(&http, server, workflow, &format!("warm-up {i}"))
            .await
            .expect("api run");
    }
    // Interleaved, so both paths see the same machine.
    let (mut lib, mut api) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let t0 = Instant::now();
        runner.run(json!(format!("topic #{i}"))).await.expect("run");
        lib.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        run_through_api(&http, server, workflow, &format!("topic #{i}"))
            .await
            .expect("api run");
        api.push(t0.elapsed().as_secs_f64());
    }
    let (l, a) = (mean_ms(&lib), mean_ms(&api));
    println!(
        "{}",
        json!({"mode": "overhead", "workflow": workflow, "runs": runs,
            "library_ms_per_run": l, "api_ms_per_run": a,
            "api_overhead_ms_per_run": ((a - l) * 100.0).round() / 100.0})
    );
}

async fn closed_loop(args: &Args) {
    let server = args.get("server").expect("--server URL").to_owned();
    let server_pid = args.get("server-pid").expect("--server-pid").to_owned();
    let mock_pid = args.get("mock-pid").map(str::to_owned);
    let workflow = args.get("workflow").unwrap_or("peer_workflow").to_owned();
    let duration = Duration::from_secs_f64(args.num("duration", 10.0));
    let warmup = Duration::from_secs_f64(args.num("warmup", 3.0));
    let c = args.num("concurrency", 128.0) as usize;
    let http = client();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let mut workers = Vec::new();
    for w in 0..c {
        let (http, server, workflow, stop, measuring, done, errors, latencies) = (
            http.clone(),
            server.clone(),
            workflow.clone(),
            stop.clone(),
            measuring.clone(),
            done.clone(),
            errors.clone(),
            latencies.clone(),
        );
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((w as u64 * 1000) / c as u64)).await;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let t0 = Instant::now();
                let r = run_through_api(
                    &http,
                    &server,
                    &workflow,
                    &format!("topic #{i} from worker {w}"),
                )
                .await;
                let dt = t0.elapsed().as_secs_f64();
                if measuring.load(Ordering::Relaxed) {
                    match r {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut l) = latencies.lock() {
                                l.push(dt);
                            }
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("first error: {e}");
                            }
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(warmup + Duration::from_secs(1)).await;
    let (s0, m0, c0) = (
        cpu_seconds(&server_pid),
        mock_pid.as_deref().map_or(0.0, cpu_seconds),
        cpu_seconds("self"),
    );
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let window = t0.elapsed().as_secs_f64();
    let (s1, m1, c1) = (
        cpu_seconds(&server_pid),
        mock_pid.as_deref().map_or(0.0, cpu_seconds),
        cpu_seconds("self"),
    );
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let done = done.load(Ordering::Relaxed) as f64;
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |v| (v * 1e5).round() / 100.0)
    };
    let per_wf = |a: f64, b: f64| {
        if done > 0.0 {
            ((b - a) / done * 1e6).round() / 1e3
        } else {
            0.0
        }
    };
    println!(
        "{}",
        json!({"mode": "closed-loop", "workflow": workflow, "concurrency": c,
            "window_s": (window * 100.0).round() / 100.0,
            "wf_per_s": (done / window * 10.0).round() / 10.0,
            "lat_mean_ms": mean_ms(&lat), "lat_p50_ms": pct(0.5), "lat_p99_ms": pct(0.99),
            "server_cpu_ms_per_wf": per_wf(s0, s1), "client_cpu_ms_per_wf": per_wf(c0, c1),
            "mock_cpu_ms_per_wf": if mock_pid.is_some() { per_wf(m0, m1) } else { 0.0 },
            "errors": errors.load(Ordering::Relaxed),
            "server_peak_rss_mib": status_mib(&server_pid, "VmHWM")})
    );
}

async fn hold(args: &Args) {
    let server = args.get("server").expect("--server URL").to_owned();
    let server_pid = args.get("server-pid").expect("--server-pid").to_owned();
    let workflow = args.get("workflow").unwrap_or("one_agent").to_owned();
    let runs = args.num("runs", 10_000.0) as usize;
    let http = client();
    let rss0 = status_mib(&server_pid, "VmRSS");
    let t0 = Instant::now();
    // Accept them all (64 requests at a time), then wait until every run
    // is executing (each waits on its one slow model call).
    let mut accepted = 0;
    let mut ids = Vec::with_capacity(runs);
    let mut pending = futures::stream::iter(0..runs)
        .map(|i| {
            let (http, server, workflow) = (http.clone(), server.clone(), workflow.clone());
            async move {
                let r: Value = http
                    .post(format!("{server}/v1/runs"))
                    .json(&json!({"workflow": workflow, "input": format!("hold #{i}")}))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                r["run_id"].as_str().map(str::to_owned)
            }
        })
        .buffer_unordered(64);
    while let Some(id) = pending.next().await {
        if let Some(id) = id {
            accepted += 1;
            ids.push(id);
        }
    }
    let accept_s = t0.elapsed().as_secs_f64();
    let mut running = 0;
    let mut peak = 0.0f64;
    for _ in 0..600 {
        let health: Value = http
            .get(format!("{server}/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        running = health["running"].as_u64().unwrap_or(0) as usize;
        peak = peak.max(status_mib(&server_pid, "VmRSS"));
        if running >= accepted || health["queued"] == 0 && running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_waiting = status_mib(&server_pid, "VmRSS");
    println!(
        "{}",
        json!({"mode": "hold", "workflow": workflow, "runs": runs, "accepted": accepted,
            "running_at_sample": running, "accept_s": (accept_s * 100.0).round() / 100.0,
            "rss_before_mib": rss0, "rss_waiting_mib": rss_waiting, "rss_peak_seen_mib": peak,
            "server_peak_rss_mib": status_mib(&server_pid, "VmHWM")})
    );
}

fn idle(args: &Args) {
    let pid = args.get("server-pid").expect("--server-pid");
    println!(
        "{}",
        json!({"mode": "idle", "rss_mib": status_mib(pid, "VmRSS"), "peak_rss_mib": status_mib(pid, "VmHWM")})
    );
}

fn main() {
    let (mode, args) = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        match mode.as_str() {
            "overhead" => overhead(&args).await,
            "closed-loop" => closed_loop(&args).await,
            "hold" => hold(&args).await,
            "idle" => idle(&args),
            other => eprintln!("unknown mode `{other}`: overhead, closed-loop, hold or idle"),
        }
    });
}

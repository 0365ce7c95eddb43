//! Workflow benchmarks: the engine in-process, the model server in another
//! process, so the host's CPU is measured apart from the mock's.
//!
//! ```text
//! cargo bench -p host --bench workflow -- closed-loop --base-url URL [--mock-pid PID]
//!     [--spec examples/peer_workflow/spec.json] [--concurrency 1,16,128]
//!     [--duration 10] [--warmup 3] [--api responses|chat] [--stream]
//! cargo bench -p host --bench workflow -- overhead [--spec ...] [--runs 2000]
//!     (closed-loop and overhead take [--store none|memory|sqlite|sqlite-memory]:
//!     where runs are journaled; sqlite is a fresh file in a temporary
//!     directory, sqlite-memory an in-memory SQLite database)
//! cargo bench -p host --bench workflow -- fanout --base-url URL [--branches 16] [--reps 20]
//! cargo bench -p host --bench workflow -- hold --base-url URL [--runs 10000]
//! ```
//!
//! - `closed-loop`: N workers each run the workflow back to back (the peer's
//!   method: warm-up, staggered starts, a measurement window); prints one
//!   JSON line per concurrency with workflows/s, latency and CPU per workflow
//!   (with a SQLite store also its commits and its time on its connection
//!   per workflow: `commits_per_wf`, `db_us_per_wf`).
//! - `overhead`: the same workflow on the offline scripted model: host time
//!   per step with no model time at all (plugins, events, bookkeeping).
//! - `fanout`: wall time of one parallel stage of `--branches` steps.
//! - `hold`: `--runs` runs started at once against a slow mock; peak RSS.
//!
//! See docs/BENCHMARKS.md for the numbers and the commands that made them.

mod support;

use host::engine::{RunRequest, Runner};
use host::plan::{self, CompileOptions};
use host::plugin::{Registry, Runtime, RuntimeOptions};
use host::spec::Spec;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Args, cpu_seconds, repo};

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Where `--store sqlite` keeps its database; removed when the bench ends.
fn sqlite_dir() -> PathBuf {
    std::env::temp_dir().join(format!("host-bench-{}", std::process::id()))
}

/// The run store named by `--store` (default: none), and the SQLite store
/// again when it is one (for its commit count and time).
fn store_of(
    args: &Args,
) -> (
    Option<Arc<dyn host::store::Store>>,
    Option<host::store::SqliteStore>,
) {
    let sqlite = match args.get("store").unwrap_or("none") {
        "none" => return (None, None),
        "memory" => return (Some(Arc::new(host::store::MemoryStore::new())), None),
        "sqlite" => {
            let dir = sqlite_dir();
            let _ = std::fs::remove_dir_all(&dir);
            host::store::SqliteStore::open(dir.join("bench.db")).expect("sqlite store")
        }
        // SQLite's own work without a file: splits the SQLite store's cost
        // into the SQL engine's and the file's (docs/BENCHMARKS.md).
        "sqlite-memory" => host::store::SqliteStore::open_in_memory().expect("sqlite store"),
        other => panic!("--store {other}: expected none, memory, sqlite or sqlite-memory"),
    };
    (Some(Arc::new(sqlite.clone())), Some(sqlite))
}

/// Commits the SQLite store has made so far, and its time on its
/// connection in µs (0 for any other store).
fn db_work(sqlite: &Option<host::store::SqliteStore>) -> (u64, f64) {
    sqlite
        .as_ref()
        .map_or((0, 0.0), |s| (s.commits(), s.busy().as_secs_f64() * 1e6))
}

async fn runner(
    spec_path: &Path,
    offline: bool,
    stream: bool,
    api: Option<&str>,
    base_url: Option<&str>,
    store: Option<Arc<dyn host::store::Store>>,
) -> Runner {
    if let Some(url) = base_url {
        // SAFETY: set before any other thread reads the environment.
        unsafe {
            std::env::set_var("OPENAI_BASE_URL", url);
            std::env::set_var("OPENAI_API_KEY", "sk-mock");
        }
    }
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(spec_path).expect("spec"))
        .expect("spec json");
    if let (Some(api), Some(providers)) =
        (api, doc.get_mut("providers").and_then(Value::as_object_mut))
    {
        for p in providers.values_mut() {
            if p["type"] != "scripted" {
                p["api"] = json!(api);
            }
        }
    }
    let spec = Spec::from_value(&doc, spec_path.parent().unwrap_or(Path::new("."))).expect("spec");
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(repo().join("target/bench-plugin-cache")),
        cache_key_file: Some(repo().join("target/bench-plugin-cache.key")),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let registry = Arc::new(Registry::new(rt));
    let report = registry
        .load_dir(&repo().join("plugins"), &plan::load_options(&spec))
        .await
        .expect("plugins");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let workflow = plan::compile(
        &spec,
        &registry,
        &CompileOptions {
            offline,
            stream,
            ..CompileOptions::default()
        },
    )
    .expect("build");
    let runner = Runner::new(Arc::new(workflow), registry);
    match store {
        Some(store) => runner.with_store(store),
        None => runner,
    }
}

async fn closed_loop(args: &Args) {
    let spec = repo().join(
        args.get("spec")
            .unwrap_or("examples/peer_workflow/spec.json"),
    );
    let base_url = args.get("base-url").expect("--base-url of a running mock");
    let (store, sqlite) = store_of(args);
    let runner = runner(
        &spec,
        false,
        args.get("stream").is_some(),
        args.get("api"),
        Some(base_url),
        store,
    )
    .await;
    let duration = Duration::from_secs_f64(args.num("duration", 10.0));
    let warmup = Duration::from_secs_f64(args.num("warmup", 3.0));
    let mock_pid = args.get("mock-pid").map(str::to_string);
    let levels: Vec<usize> = args
        .get("concurrency")
        .unwrap_or("1,16,128")
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    for c in levels {
        let stop = Arc::new(AtomicBool::new(false));
        let measuring = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
        let n = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for w in 0..c {
            let (runner, stop, measuring, done, errors, latencies, n) = (
                runner.clone(),
                stop.clone(),
                measuring.clone(),
                done.clone(),
                errors.clone(),
                latencies.clone(),
                n.clone(),
            );
            workers.push(tokio::spawn(async move {
                // Staggered starts, so workers do not move in lock-step.
                tokio::time::sleep(Duration::from_millis((w as u64 * 1000) / c as u64)).await;
                while !stop.load(Ordering::Relaxed) {
                    let i = n.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let r = runner
                        .run(json!(format!("topic #{} from worker {w}", i % 1000)))
                        .await;
                    let dt = t0.elapsed().as_secs_f64();
                    if measuring.load(Ordering::Relaxed) {
                        match r {
                            Ok(_) => {
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
        let (cpu0, mock0, db0) = (
            cpu_seconds("self"),
            mock_pid.as_deref().map_or(0.0, cpu_seconds),
            db_work(&sqlite),
        );
        measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(duration).await;
        measuring.store(false, Ordering::Relaxed);
        let window = t0.elapsed().as_secs_f64();
        let (cpu1, mock1, db1) = (
            cpu_seconds("self"),
            mock_pid.as_deref().map_or(0.0, cpu_seconds),
            db_work(&sqlite),
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
                .map_or(0.0, |v| v * 1e3)
        };
        let mean = if lat.is_empty() {
            0.0
        } else {
            lat.iter().sum::<f64>() / lat.len() as f64 * 1e3
        };
        println!(
            "{}",
            json!({
                "mode": "closed-loop", "spec": spec.file_name().map(|f| f.to_string_lossy().into_owned()),
                "store": args.get("store").unwrap_or("none"),
                "concurrency": c, "window_s": (window * 100.0).round() / 100.0,
                "wf_per_s": (done / window * 10.0).round() / 10.0,
                "lat_mean_ms": (mean * 100.0).round() / 100.0, "lat_p50_ms": (pct(0.5) * 100.0).round() / 100.0,
                "lat_p99_ms": (pct(0.99) * 100.0).round() / 100.0,
                "host_cpu_ms_per_wf": if done > 0.0 { ((cpu1 - cpu0) / done * 1e6).round() / 1e3 } else { 0.0 },
                "mock_cpu_ms_per_wf": if done > 0.0 && mock_pid.is_some() { ((mock1 - mock0) / done * 1e6).round() / 1e3 } else { 0.0 },
                "errors": errors.load(Ordering::Relaxed), "peak_rss_mib": (peak_rss_mib() * 10.0).round() / 10.0,
                // Workflows still running at either end of the window
                // make this approximate.
                "commits_per_wf": if done > 0.0 && sqlite.is_some() { ((db1.0 - db0.0) as f64 / done * 100.0).round() / 100.0 } else { 0.0 },
                "db_us_per_wf": if done > 0.0 && sqlite.is_some() { ((db1.1 - db0.1) / done).round() } else { 0.0 },
            })
        );
    }
}

async fn overhead(args: &Args) {
    let spec = repo().join(
        args.get("spec")
            .unwrap_or("examples/peer_workflow/spec.json"),
    );
    let runner = runner(&spec, true, false, None, None, store_of(args).0).await;
    let runs = args.num("runs", 2000.0) as u64;
    for _ in 0..50 {
        runner.run(json!("warm-up")).await.expect("run");
    }
    let steps = runner
        .workflow()
        .stages
        .iter()
        .map(|s| s.steps.len())
        .sum::<usize>() as f64;
    let cpu0 = cpu_seconds("self");
    let t0 = Instant::now();
    for i in 0..runs {
        runner.run(json!(format!("topic #{i}"))).await.expect("run");
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu0;
    println!(
        "{}",
        json!({
            "mode": "overhead", "spec": spec.file_name().map(|f| f.to_string_lossy().into_owned()),
            "store": args.get("store").unwrap_or("none"),
            "runs": runs, "steps_per_run": steps,
            "wall_us_per_run": (wall / runs as f64 * 1e7).round() / 10.0,
            "wall_us_per_step": (wall / runs as f64 / steps * 1e7).round() / 10.0,
            "cpu_us_per_run": (cpu / runs as f64 * 1e7).round() / 10.0,
        })
    );
}

async fn fanout(args: &Args) {
    let branches = args.num("branches", 16.0) as usize;
    let base_url = args.get("base-url").expect("--base-url of a running mock");
    let agents: serde_json::Map<String, Value> = (0..branches)
        .map(|i| (format!("b{i}"), json!({"instructions": format!("branch {i}"), "model": {"provider": "openai", "name": "gpt-4.1-mini"}})))
        .collect();
    let steps: Vec<Value> = (0..branches)
        .map(|i| json!({"agent": format!("b{i}")}))
        .collect();
    let doc = json!({
        "providers": {"openai": {"type": "openai"}},
        "agents": agents,
        "workflow": {"key": "fanout", "stages": [{"name": "fan", "mode": "parallel", "steps": steps, "reducer": "concat"}]}
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("spec.json");
    std::fs::write(&path, doc.to_string()).expect("write spec");
    let runner = runner(&path, false, false, None, Some(base_url), None).await;
    runner.run(json!("warm-up")).await.expect("run");
    let reps = args.num("reps", 20.0) as usize;
    let mut walls = Vec::new();
    for i in 0..reps {
        let t0 = Instant::now();
        runner
            .run(json!(format!("fan-out #{i}")))
            .await
            .expect("run");
        walls.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    walls.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"mode": "fanout", "branches": branches, "reps": reps,
            "wall_ms_median": (walls[reps / 2] * 100.0).round() / 100.0,
            "wall_ms_min": (walls[0] * 100.0).round() / 100.0,
            "wall_ms_max": (walls[reps - 1] * 100.0).round() / 100.0})
    );
}

async fn hold(args: &Args) {
    let spec = repo().join(
        args.get("spec")
            .unwrap_or("examples/peer_workflow/spec.json"),
    );
    let base_url = args.get("base-url").expect("--base-url of a slow mock");
    let runner = runner(&spec, false, false, None, Some(base_url), None).await;
    let runs = args.num("runs", 10_000.0) as usize;
    let rss0 = peak_rss_mib();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..runs)
        .map(|i| {
            runner.start(RunRequest {
                input: json!(format!("topic #{i}")),
                ..RunRequest::default()
            })
        })
        .collect();
    let mut ok = 0;
    let mut first_error = None;
    for h in handles {
        match h.wait().await {
            Ok(_) => ok += 1,
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    println!(
        "{}",
        json!({"mode": "hold", "runs": runs, "completed": ok, "first_error": first_error,
            "wall_s": (t0.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            "rss_before_mib": (rss0 * 10.0).round() / 10.0, "peak_rss_mib": (peak_rss_mib() * 10.0).round() / 10.0})
    );
}

// The same allocator as the `host` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let (mode, args) = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        match mode.as_str() {
            "closed-loop" => closed_loop(&args).await,
            "overhead" => overhead(&args).await,
            "fanout" => fanout(&args).await,
            "hold" => hold(&args).await,
            other => eprintln!("unknown mode `{other}`: closed-loop, overhead, fanout or hold"),
        }
    });
    // Every store is closed (the runners are dropped): the database goes.
    drop(rt);
    let _ = std::fs::remove_dir_all(sqlite_dir());
}

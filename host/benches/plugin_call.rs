//! Plugin call and load costs. Run with `cargo bench -p host --bench plugin_call`
//! after `plugins/build.sh`; results go in docs/BENCHMARKS.md.
//!
//! - `call/*`: one hook call in a fresh instance (store, instantiate, call,
//!   drop), per language;
//! - `tool/*`: a tool call with no network beside one that makes a granted
//!   HTTP request to a loopback server (what a grant and a request add);
//! - `load/cached/*`: loading the largest component with a warm compile cache;
//! - the first, uncached load is printed once (it takes seconds, so it is
//!   timed directly rather than sampled).

use criterion::{Criterion, criterion_group};
use host::llm::Egress;
use host::plugin::{
    CallContext, HttpGrant, Kind, Limits, Plugin, Registry, Runtime, RuntimeOptions, StepResult,
};
use host::spec::PluginSettings;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

fn runtime(cache: &Path) -> Arc<Runtime> {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.join("cache")),
        // Beside the cache, in the private (0700) temporary folder: the key's
        // folder must be writable by its owner only.
        cache_key_file: Some(cache.join("bench-plugin-cache.key")),
        ..RuntimeOptions::default()
    })
    .expect("runtime")
}

fn largest_plugin() -> PathBuf {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(plugins_dir())
        .expect("plugins dir: run plugins/build.sh")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .map(|p| (std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0), p))
        .collect();
    files.sort();
    files
        .pop()
        .expect("no plugins built: run plugins/build.sh")
        .1
}

fn bench_calls(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    // A persistent cache: setup then takes milliseconds, not a compile.
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-plugin-cache");
    let rt = runtime(&cache);
    let registry = Registry::new(rt.clone());
    for name in [
        "keyword_guard",
        "js_collect",
        "py_regex_guard",
        "rs_keywords",
        "js_keywords",
        "py_keywords",
        "go_keywords",
        "c_keywords",
        "c_word_count",
    ] {
        let path = plugins_dir().join(format!("{name}.wasm"));
        tokio
            .block_on(registry.load_file(&path, Limits::default()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let ctx = |entry: &str, config: serde_json::Value| CallContext {
        run_id: "01BENCH".into(),
        workflow_key: "bench".into(),
        stage: "s".into(),
        step: 0,
        entry: entry.into(),
        config,
        logical_time_ms: 0,
        idempotency_key: None,
        http: None,
        limits: None,
    };
    let input = json!("Plan a three-day trip to Lisbon with a food focus");
    let mut group = c.benchmark_group("call");

    let (guard, entry) = registry
        .resolve("keyword_guard", Kind::Guard)
        .expect("keyword_guard");
    let gctx = ctx(&entry, json!({"keywords": ["lisbon", "porto"]}));
    group.bench_function("rust_guard_fresh_instance", |b| {
        b.iter(|| {
            tokio
                .block_on(guard.guard(&rt, &gctx, &input, &[]))
                .expect("guard")
        })
    });

    let (reducer, entry) = registry
        .resolve("js_collect", Kind::Reducer)
        .expect("js_collect");
    let rctx = ctx(&entry, json!({}));
    let outputs: Vec<StepResult> = (0..3)
        .map(|i| StepResult {
            stage_name: "fan".into(),
            step_index: i,
            agent_key: format!("researcher_{i}"),
            parallel_group: Some("fan".into()),
            branch_index: Some(i),
            skipped: false,
            output: json!(format!("notes {i}")),
            error: None,
        })
        .collect();
    group.bench_function("js_reducer_fresh_instance", |b| {
        b.iter(|| {
            tokio
                .block_on(reducer.reduce(&rt, &rctx, &outputs, &[]))
                .expect("reduce")
        })
    });

    let (pyguard, entry) = registry
        .resolve("py_regex_guard", Kind::Guard)
        .expect("py_regex_guard");
    let pctx = ctx(&entry, json!({"pattern": "lisbon", "flags": "i"}));
    group.bench_function("python_guard_fresh_instance", |b| {
        b.iter(|| {
            tokio
                .block_on(pyguard.guard(&rt, &pctx, &input, &[]))
                .expect("guard")
        })
    });

    // The same keyword guard (docs/PLUGINS.md) written with each
    // language's SDK, and the C reducer.
    for name in [
        "rs_keywords",
        "js_keywords",
        "py_keywords",
        "go_keywords",
        "c_keywords",
    ] {
        let (plugin, entry) = registry.resolve(name, Kind::Guard).expect(name);
        let kctx = ctx(&entry, json!({"keywords": ["lisbon", "porto"]}));
        group.bench_function(format!("sdk_guard_fresh_instance/{name}"), |b| {
            b.iter(|| {
                tokio
                    .block_on(plugin.guard(&rt, &kctx, &input, &[]))
                    .expect("guard")
            })
        });
    }
    let (creducer, entry) = registry
        .resolve("c_word_count", Kind::Reducer)
        .expect("c_word_count");
    let cctx = ctx(&entry, json!({}));
    group.bench_function("c_reducer_fresh_instance", |b| {
        b.iter(|| {
            tokio
                .block_on(creducer.reduce(&rt, &cctx, &outputs, &[]))
                .expect("reduce")
        })
    });
    group.finish();
}

/// A tool call with no network (`calculator#add`) beside the `weather`
/// tool making one granted request to a loopback HTTP server: the grant's
/// checks, the host's client (pooled per origin) and the round trip.
fn bench_http(c: &mut Criterion) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/v1/weather",
        axum::routing::get(|| async { axum::Json(json!({"city": "Lisbon", "temp_c": 21})) }),
    );
    server.spawn(async move { axum::serve(listener, app).await });

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-plugin-cache");
    let rt = runtime(&cache);
    let registry = Registry::new(rt.clone());
    for name in ["calculator", "weather"] {
        let path = plugins_dir().join(format!("{name}.wasm"));
        tokio
            .block_on(registry.load_file(&path, Limits::default()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let settings: PluginSettings =
        serde_json::from_value(json!({"allowed_hosts": [origin]})).expect("settings");
    let grant =
        HttpGrant::from_settings("weather", &settings, &Egress::allowing_private(), |_| None)
            .expect("grant")
            .expect("a grant");
    let grant = Arc::new(grant);
    let call = |entry: &str, config: serde_json::Value| {
        CallContext {
            run_id: "01BENCH".into(),
            workflow_key: "bench".into(),
            entry: entry.into(),
            config,
            ..CallContext::default()
        }
        .with_idempotency_key("01BENCH/tool")
    };

    let mut group = c.benchmark_group("tool");
    let calculator = registry.get("calculator").expect("calculator");
    let add = call("add", json!({}));
    let numbers = json!({"numbers": [2, 3]});
    group.bench_function("no_network/calculator_add", |b| {
        b.iter(|| {
            tokio
                .block_on(calculator.invoke_tool(&rt, &add, &numbers))
                .expect("add")
        })
    });
    let weather = registry.get("weather").expect("weather");
    let get = call("get_weather", json!({"base_url": origin})).with_http(Some(grant));
    let city = json!({"city": "Lisbon"});
    // The same request from the host, without a plugin: the round trip.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{origin}/v1/weather?city=Lisbon");
    group.bench_function("baseline/host_reqwest_get", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let r = client.get(&url).send().await.expect("send");
                r.bytes().await.expect("body")
            })
        })
    });
    group.bench_function("one_granted_request/weather", |b| {
        b.iter(|| {
            let served = tokio
                .block_on(weather.invoke_tool(&rt, &get, &city))
                .expect("weather");
            assert_eq!(served.value["temp_c"], 21);
        })
    });
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let path = largest_plugin();
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let cache = tempfile::tempdir().expect("tempdir");
    let rt = runtime(cache.path());
    let started = Instant::now();
    let plugin = tokio
        .block_on(Plugin::load(&rt, &path, Limits::default()))
        .expect("load");
    println!(
        "load/uncached/{name}: {:.2} s ({:.1} MiB component, cache {:?})",
        started.elapsed().as_secs_f64(),
        size as f64 / (1 << 20) as f64,
        plugin.cache_outcome()
    );

    let mut group = c.benchmark_group("load");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function(format!("cached/{name}"), |b| {
        b.iter(|| {
            // A new runtime each time: what a fresh `host` process does.
            let rt = runtime(cache.path());
            let p = tokio
                .block_on(Plugin::load(&rt, &path, Limits::default()))
                .expect("load");
            assert_eq!(p.cache_outcome(), host::plugin::CacheOutcome::Hit);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_calls, bench_http, bench_load);

// The same allocator as the `host` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `HOST_BENCH_LOG=debug` shows each load's breakdown (read, sha256, ...).
    if let Ok(filter) = std::env::var("HOST_BENCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

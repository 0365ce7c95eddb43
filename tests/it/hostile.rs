//! Misbehaving plugins fail only their own call, with a clear error naming
//! the plugin; the host keeps serving. Also: fresh instance per call,
//! deterministic hooks, load failures, the compile cache and hot swap.

use crate::common::{ctx, result, runtime, within};
use host::plugin::{
    CacheOutcome, CallErrorKind, Kind, Limits, LoadError, LoadOptions, Plugin, Registry, Runtime,
    RuntimeOptions,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A registry with the test guests and the `concat` example plugin.
async fn guests() -> &'static Registry {
    static REG: tokio::sync::OnceCell<Registry> = tokio::sync::OnceCell::const_new();
    REG.get_or_init(|| async {
        let reg = Registry::new(runtime());
        let mut options = LoadOptions::default();
        // Enough memory to produce 100 MB, so the output cap is what stops
        // it; and enough time to write and hand over 100 MB on a loaded
        // machine, so the deadline does not stop it first.
        options.limits.insert(
            "hostile_output".into(),
            Limits {
                memory_bytes: 512 << 20,
                timeout: std::time::Duration::from_secs(30),
                ..Limits::default()
            },
        );
        let report = reg
            .load_dir(&e2e::guests_dir(), &options)
            .await
            .expect("guests dir");
        let failed: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
        assert_eq!(
            failed.len(),
            2,
            "only no_exports and not_wasm should fail: {failed:#?}"
        );
        reg.load_file(&e2e::plugin("concat"), Limits::default())
            .await
            .expect("concat");
        reg
    })
    .await
}

/// A good call that must keep working after every hostile one.
async fn healthy(reg: &Registry) {
    let (plugin, entry) = reg.resolve("concat", Kind::Reducer).unwrap();
    let mut c = ctx(json!({"separator": "+"}));
    c.entry = entry;
    let outputs = [
        result("s", "a", Some(0), json!("1")),
        result("s", "b", Some(1), json!("2")),
    ];
    let out = plugin
        .reduce(&runtime(), &c, &outputs, &[])
        .await
        .expect("healthy call");
    assert_eq!(out.value, json!("1+2"));
}

async fn call_mapper(
    reg: &Registry,
    name: &str,
    config: Value,
) -> Result<Value, host::plugin::CallError> {
    let (plugin, entry) = reg.resolve(name, Kind::InputMapper).unwrap();
    let mut c = ctx(config);
    c.entry = entry;
    plugin
        .map_input(&runtime(), &c, &json!("input"), &[])
        .await
        .map(|s| s.value)
}

async fn call_guard(reg: &Registry, name: &str) -> Result<bool, host::plugin::CallError> {
    let (plugin, entry) = reg.resolve(name, Kind::Guard).unwrap();
    let mut c = ctx(json!({}));
    c.entry = entry;
    plugin
        .guard(&runtime(), &c, &json!("input"), &[])
        .await
        .map(|s| s.value)
}

#[tokio::test]
pub(crate) async fn infinite_loop_stops_at_the_deadline() {
    let reg = within(120, "load guests", guests()).await;
    let started = Instant::now();
    let err = within(10, "looping guard", call_guard(reg, "hostile_loop"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        CallErrorKind::Timeout(Limits::DEFAULT_TIMEOUT),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped late: {:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("plugin `hostile_loop`") && msg.contains("hostile_loop.wasm"),
        "{msg}"
    );
    assert!(msg.contains("deadline of 1000 ms exceeded"), "{msg}");
    healthy(reg).await;
}

/// Epoch interruption yields to the executor: on a single-threaded runtime
/// other calls complete while a plugin loops.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_does_not_block_other_calls() {
    let reg = within(120, "load guests", guests()).await;
    let looping = tokio::spawn(async move { call_guard(reg, "hostile_loop").await });
    let started = Instant::now();
    for _ in 0..20 {
        healthy(reg).await;
    }
    let healthy_time = started.elapsed();
    assert!(!looping.is_finished(), "the loop should still be running");
    assert!(
        healthy_time < Duration::from_millis(900),
        "healthy calls were blocked: {healthy_time:?}"
    );
    let err = within(10, "looping guard", looping)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err.kind, CallErrorKind::Timeout(_)), "{err}");
}

#[tokio::test]
pub(crate) async fn memory_bomb_stops_at_the_cap() {
    let reg = within(120, "load guests", guests()).await;
    let err = within(
        20,
        "memory bomb",
        call_mapper(reg, "hostile_memory", json!({})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err.kind, CallErrorKind::Memory { limit, .. } if limit == Limits::DEFAULT_MEMORY_BYTES),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("plugin `hostile_memory`") && msg.contains("memory limit of 64 MiB exceeded"),
        "{msg}"
    );
    healthy(reg).await;
}

#[tokio::test]
pub(crate) async fn unbounded_recursion_traps() {
    let reg = within(120, "load guests", guests()).await;
    let err = within(
        20,
        "recursion",
        call_mapper(reg, "hostile_recursion", json!({})),
    )
    .await
    .unwrap_err();
    assert!(matches!(err.kind, CallErrorKind::Trap { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("plugin `hostile_recursion`"), "{msg}");
    assert!(
        msg.contains("stack overflow") || msg.contains("out-of-bounds memory access"),
        "{msg}"
    );
    healthy(reg).await;
}

#[tokio::test]
pub(crate) async fn a_panic_fails_the_call_with_its_message() {
    let reg = within(120, "load guests", guests()).await;
    let err = within(20, "panic", call_guard(reg, "hostile_panic"))
        .await
        .unwrap_err();
    let CallErrorKind::Trap { trap, stderr } = &err.kind else {
        panic!("expected a trap: {err}")
    };
    assert!(trap.contains("panicked"), "{trap}");
    let stderr = stderr.as_deref().unwrap_or_default();
    assert!(
        stderr.contains("hostile_panic: deliberate panic on input \"input\""),
        "{stderr}"
    );
    assert!(err.to_string().contains("plugin `hostile_panic`"));
    healthy(reg).await;
}

#[tokio::test]
pub(crate) async fn no_file_system_access() {
    let reg = within(120, "load guests", guests()).await;
    let err = within(20, "fs", call_mapper(reg, "hostile_fs", json!({})))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err.kind, CallErrorKind::Guest(m) if m.starts_with("cannot read /etc/passwd")),
        "{msg}"
    );
    assert!(!msg.contains("root:"), "leaked file content: {msg}");
    assert!(msg.contains("plugin `hostile_fs`"), "{msg}");
    healthy(reg).await;
}

#[tokio::test]
pub(crate) async fn no_environment_variables() {
    let reg = within(120, "load guests", guests()).await;
    // PATH is always set in the host process; the plugin must not see it.
    assert!(std::env::var_os("PATH").is_some());
    let err = within(
        20,
        "env",
        call_mapper(reg, "hostile_env", json!({"name": "PATH"})),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err.kind, CallErrorKind::Guest(m) if m.contains("cannot read environment variable PATH") && m.contains("(0 variables visible)")),
        "{msg}"
    );
    healthy(reg).await;
}

#[tokio::test]
pub(crate) async fn huge_output_is_rejected() {
    let reg = within(120, "load guests", guests()).await;
    let err = within(
        30,
        "big output",
        call_mapper(reg, "hostile_output", json!({})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err.kind, CallErrorKind::OutputTooLarge { size, limit } if size > 100 << 20 && limit == Limits::DEFAULT_OUTPUT_BYTES),
        "{err}"
    );
    assert!(err.to_string().contains("plugin `hostile_output`"));
    healthy(reg).await;
}

#[tokio::test]
async fn huge_output_under_the_default_memory_cap_stops_at_the_cap() {
    let reg = Registry::new(runtime());
    let plugin = reg
        .load_file(&e2e::guest("hostile_output"), Limits::default())
        .await
        .unwrap();
    let mut c = ctx(json!({}));
    c.entry = "hostile_output".into();
    let err = plugin
        .map_input(&runtime(), &c, &json!("x"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err.kind, CallErrorKind::Memory { .. }), "{err}");
}

#[tokio::test]
pub(crate) async fn bad_files_are_reported_and_do_not_stop_the_others() {
    let rt = runtime();
    let err = Plugin::load(&rt, &e2e::guest("no_exports"), Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::NoKnownExport { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no_exports.wasm: exports no known plugin interface"),
        "{err}"
    );
    let err = Plugin::load(&rt, &e2e::guest("not_wasm"), Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("not_wasm.wasm: not a WebAssembly file"),
        "{err}"
    );

    // A core module is not a component.
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = Plugin::load(&rt, &core, Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");

    let reg = within(120, "load guests", guests()).await;
    assert!(reg.get("counter").is_some() && reg.get("hostile_loop").is_some());
    assert!(reg.get("no_exports").is_none() && reg.get("not_wasm").is_none());
}

#[tokio::test]
pub(crate) async fn every_call_gets_a_fresh_instance() {
    let reg = within(120, "load guests", guests()).await;
    for _ in 0..5 {
        assert_eq!(
            call_mapper(reg, "counter", json!({})).await.unwrap(),
            json!(1)
        );
    }
}

#[tokio::test]
pub(crate) async fn hooks_see_a_deterministic_clock_and_random_source() {
    let reg = within(120, "load guests", guests()).await;
    let (plugin, entry) = reg.resolve("clock_random", Kind::InputMapper).unwrap();
    let call = |run_id: &str| {
        let mut c = ctx(json!({}));
        c.entry = entry.clone();
        c.run_id = run_id.into();
        let plugin = plugin.clone();
        async move {
            plugin
                .map_input(&runtime(), &c, &json!("x"), &[])
                .await
                .unwrap()
                .value
        }
    };
    let a = call("run-a").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = call("run-a").await;
    assert_eq!(a, b, "same call context, same clock and randomness");
    // The wall clock starts at the run's logical start time.
    let wall = a["wall_ns"].as_u64().unwrap();
    let start = 1_700_000_000_000u64 * 1_000_000;
    assert!(
        (start..start + 1_000_000).contains(&wall),
        "wall clock {wall}"
    );
    let c = call("run-b").await;
    assert_ne!(
        a["hash"], c["hash"],
        "another call context gets another random seed"
    );
}

#[tokio::test]
async fn compiled_components_are_cached_and_corruption_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let rt = || {
        Runtime::new(RuntimeOptions {
            cache_dir: Some(dir.path().to_owned()),
            cache_key_file: Some(keys.path().join("cache.key")),
            ..RuntimeOptions::default()
        })
        .unwrap()
    };
    let wasm = e2e::plugin("concat");
    let first = Plugin::load(&rt(), &wasm, Limits::default()).await.unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Miss);
    let second = Plugin::load(&rt(), &wasm, Limits::default()).await.unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);

    // One entry: the artifact wasmtime serialized, and its MAC file.
    let mut entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let artifact = entries[0].clone();
    let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(first.digest()) && name.ends_with(".cwasm"),
        "{name}"
    );
    assert!(entries[1].to_string_lossy().ends_with(".cwasm.mac"));

    // Flip a byte in the middle: detected, rebuilt, and the plugin works.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();
    let rebuilt = Plugin::load(&rt(), &wasm, Limits::default()).await.unwrap();
    assert_eq!(rebuilt.cache_outcome(), CacheOutcome::Rebuilt);
    // The MAC file lost (a crash between the two writes): same.
    std::fs::remove_file(&entries[1]).unwrap();
    let rebuilt = Plugin::load(&rt(), &wasm, Limits::default()).await.unwrap();
    assert_eq!(rebuilt.cache_outcome(), CacheOutcome::Rebuilt);
    // Truncated to nothing: same.
    std::fs::write(&artifact, b"").unwrap();
    let rt4 = rt();
    let again = Plugin::load(&rt4, &wasm, Limits::default()).await.unwrap();
    assert_eq!(again.cache_outcome(), CacheOutcome::Rebuilt);
    let mut c = ctx(json!({}));
    c.entry = "concat".into();
    let out = again
        .reduce(&rt4, &c, &[result("s", "a", Some(0), json!("ok"))], &[])
        .await
        .unwrap();
    assert_eq!(out.value, json!("ok"));
    let hit = Plugin::load(&rt(), &wasm, Limits::default()).await.unwrap();
    assert_eq!(hit.cache_outcome(), CacheOutcome::Hit);
}

/// Returns once each of `workers` has reported a call served by `digest`.
async fn served_by(
    served: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, String)>,
    workers: usize,
    digest: &str,
) {
    let mut pending: std::collections::BTreeSet<usize> = (0..workers).collect();
    while !pending.is_empty() {
        let (worker, by) = served.recv().await.expect("a worker ended early");
        if by == digest {
            pending.remove(&worker);
        }
    }
}

#[tokio::test]
async fn a_plugin_is_replaced_atomically_while_calls_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("merge.wasm");
    std::fs::copy(e2e::plugin("concat"), &path).unwrap();
    let reg = Arc::new(Registry::new(runtime()));
    let old = reg.load_file(&path, Limits::default()).await.unwrap();
    // The replacement is a different reducer with the same plugin name.
    std::fs::copy(e2e::plugin("js_collect"), &path).unwrap();
    let new = Arc::new(
        within(
            300,
            "compile js",
            Plugin::load(&runtime(), &path, Limits::default()),
        )
        .await
        .unwrap(),
    );
    assert_ne!(old.digest(), new.digest());

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Every call reports (worker, digest), so the swap happens once every
    // worker has been served by the old build, and the workers stop once
    // every one has been served by the new one: no sleeps.
    let (served_tx, mut served_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (reg, stop, served_tx) = (reg.clone(), stop.clone(), served_tx.clone());
        workers.push(tokio::spawn(async move {
            let mut digests = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || digests.len() < 5 {
                let plugin = reg.get("merge").unwrap();
                let entry = plugin.entries()[0].name.clone();
                let mut c = ctx(json!({}));
                c.entry = entry;
                let served = plugin
                    .reduce(
                        &runtime(),
                        &c,
                        &[result("s", "a", Some(0), json!("x"))],
                        &[],
                    )
                    .await
                    .expect("call during swap");
                digests.push(served.digest.to_string());
                let _ = served_tx.send((worker, served.digest.to_string()));
            }
            digests
        }));
    }
    drop(served_tx);
    within(
        30,
        "every worker served by the old build",
        served_by(&mut served_rx, 4, old.digest()),
    )
    .await;
    let replaced = reg.insert(new.clone()).expect("replaced the old build");
    assert_eq!(replaced.digest(), old.digest());
    within(
        30,
        "every worker served by the new build",
        served_by(&mut served_rx, 4, new.digest()),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut saw_old = false;
    for w in workers {
        let digests = within(30, "workers", w).await.unwrap();
        // Every call was served by exactly one build, old ones first.
        let first_new = digests
            .iter()
            .position(|d| d == new.digest())
            .expect("new build served calls");
        assert!(
            digests[first_new..].iter().all(|d| d == new.digest()),
            "went back to the old build"
        );
        saw_old |= digests[..first_new].iter().any(|d| d == old.digest());
    }
    assert!(saw_old, "some calls ran on the old build before the swap");
}

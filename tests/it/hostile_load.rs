//! What a hostile file, spec or cache entry can do to loading and to the
//! call slots: a run loads only the plugins its spec names, a plugin that
//! hangs holds only its share of the slots and waiting for a slot is
//! bounded, a spec cannot raise limits past the operator's ceilings, and
//! the compile cache runs only artifacts this host wrote.

use crate::common::{ctx, result, within};
use e2e::{ok, text};
use host::plugin::{
    CallErrorKind, Limits, LoadOptions, Plugin, PluginPolicy, Registry, Runtime, RuntimeOptions,
    SlotShortage,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------ item 6: load only

/// A plugins folder with copies of `plugins` (example plugins) and `guests`
/// (test guests, `not_wasm` included).
fn folder(plugins: &[&str], guests: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in plugins {
        std::fs::copy(e2e::plugin(name), dir.path().join(format!("{name}.wasm"))).expect("copy");
    }
    for name in guests {
        std::fs::copy(e2e::guest(name), dir.path().join(format!("{name}.wasm"))).expect("copy");
    }
    dir
}

fn example_spec(name: &str) -> PathBuf {
    e2e::repo_root()
        .join("examples")
        .join(name)
        .join("spec.json")
}

/// A broken file and a plugin the spec does not reference sit in the
/// folder: `host run` and `host validate` never read them (before: every
/// `*.wasm` was loaded, and the broken one warned on every run).
#[test]
fn a_run_loads_only_the_plugins_its_spec_names() {
    let dir = folder(&["concat"], &["not_wasm", "no_exports", "hostile_loop"]);
    let spec = example_spec("analysis_parallel");
    let out = e2e::host!()
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(dir.path())
        .args(["--offline", "--quiet", "--log", "host=debug,plugin=debug"])
        .output_blocking();
    ok(&out);
    let stderr = text(&out.stderr);
    for unrelated in ["not_wasm", "no_exports", "hostile_loop"] {
        assert!(
            !stderr.contains(unrelated),
            "`{unrelated}` was loaded:\n{stderr}"
        );
    }
    let out = e2e::host!()
        .arg("validate")
        .arg(&spec)
        .arg("--plugins")
        .arg(dir.path())
        .output_blocking();
    ok(&out);
    assert!(
        !text(&out.stderr).contains("not_wasm"),
        "{}",
        text(&out.stderr)
    );
}

/// The registry side: `load_for` loads the named plugins, nothing else, and
/// the "did you mean" hint still knows every file of the folder.
#[tokio::test]
async fn unknown_references_still_list_the_folder() {
    let dir = folder(&["concat", "calculator"], &["not_wasm"]);
    let doc = json!({
        "agents": {"a": {"instructions": "x", "model": {"name": "m"}, "tools": ["calculater"]}},
        "workflow": {"key": "w", "stages": [{"name": "s", "steps": [{"agent": "a"}]}]}
    });
    let spec = host::spec::Spec::from_value(&doc, dir.path()).expect("spec");
    let reg = Registry::new(crate::common::runtime());
    let report = within(
        120,
        "load",
        reg.load_for(dir.path(), &spec, &LoadOptions::default()),
    )
    .await
    .expect("folder");
    assert!(report.loaded.is_empty() && report.failed.is_empty());
    let errors = spec
        .validate(Some(&reg as &dyn host::spec::PluginCatalog))
        .unwrap_err()
        .to_string();
    assert!(errors.contains("unknown plugin `calculater`"), "{errors}");
    assert!(errors.contains("did you mean `calculator`?"), "{errors}");

    let doc = json!({
        "agents": {"a": {"instructions": "x", "model": {"name": "m"}, "tools": ["calculator"]}},
        "workflow": {"key": "w", "stages": [{"name": "s", "steps": [{"agent": "a"}]}]}
    });
    let spec = host::spec::Spec::from_value(&doc, dir.path()).expect("spec");
    let report = within(
        120,
        "load",
        reg.load_for(dir.path(), &spec, &LoadOptions::default()),
    )
    .await
    .expect("folder");
    let loaded: Vec<&str> = report.loaded.iter().map(|p| p.name()).collect();
    assert_eq!(loaded, ["calculator"]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
}

// ---------------------------------------------------- item 7: starvation

fn small_runtime(slots: u32, policy: PluginPolicy) -> Arc<Runtime> {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(e2e::test_cache_dir()),
        cache_key_file: Some(e2e::test_cache_key()),
        max_concurrent_calls: slots,
        policy,
    })
    .expect("runtime")
}

async fn looping(rt: &Arc<Runtime>, timeout: Duration) -> Arc<Plugin> {
    let limits = Limits {
        timeout,
        ..Limits::default()
    };
    Arc::new(
        within(
            120,
            "load hostile_loop",
            Plugin::load(rt, &e2e::guest("hostile_loop"), limits),
        )
        .await
        .expect("hostile_loop"),
    )
}

async fn concat(rt: &Arc<Runtime>) -> Arc<Plugin> {
    Arc::new(
        within(
            120,
            "load concat",
            Plugin::load(rt, &e2e::plugin("concat"), Limits::default()),
        )
        .await
        .expect("concat"),
    )
}

async fn guard(rt: Arc<Runtime>, plugin: Arc<Plugin>) -> Result<bool, host::plugin::CallError> {
    let mut c = ctx(json!({}));
    c.entry = "hostile_loop".into();
    plugin
        .guard(&rt, &c, &json!("x"), &[])
        .await
        .map(|s| s.value)
}

async fn reduce(rt: &Runtime, plugin: &Plugin) -> Result<Value, host::plugin::CallError> {
    let mut c = ctx(json!({}));
    c.entry = "concat".into();
    plugin
        .reduce(rt, &c, &[result("s", "a", Some(0), json!("ok"))], &[])
        .await
        .map(|s| s.value)
}

/// Eight calls of a plugin that loops until its (long) deadline on a host
/// with four slots: it gets two (half), the good plugin's calls keep
/// succeeding at once, and the looping calls beyond its share fail with a
/// clear error when their wait runs out (before: the looping plugin held
/// every slot and the good calls waited for its deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_holds_only_its_share_of_the_slots() {
    let rt = small_runtime(4, PluginPolicy::default());
    let bad = looping(&rt, Duration::from_secs(5)).await;
    let good = concat(&rt).await;
    reduce(&rt, &good).await.expect("warm-up call");
    let calls: Vec<_> = (0..8)
        .map(|_| tokio::spawn(guard(rt.clone(), bad.clone())))
        .collect();
    // Let the looping calls take what they can.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for _ in 0..10 {
        let out = reduce(&rt, &good).await.expect("the good plugin is served");
        assert_eq!(out, json!("ok"));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "good calls waited for the looping plugin: {took:?}"
    );
    let mut timeouts = 0;
    let mut no_slot = 0;
    for call in calls {
        let err = within(20, "looping call", call)
            .await
            .expect("task")
            .unwrap_err();
        match &err.kind {
            CallErrorKind::Timeout(_) => timeouts += 1,
            CallErrorKind::NoSlot {
                busy: SlotShortage::Plugin { cap },
                ..
            } => {
                assert_eq!(*cap, 2);
                let msg = err.to_string();
                assert!(
                    msg.contains("plugin `hostile_loop`")
                        && msg.contains("no free call slot within")
                        && msg.contains("this plugin already runs 2 calls"),
                    "{msg}"
                );
                no_slot += 1;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert!(
        timeouts >= 2 && no_slot >= 1,
        "{timeouts} timeouts, {no_slot} no slot"
    );
}

/// When every slot of the host is taken (here a share as large as the
/// pool), a call waits at most its own timeout and then fails naming the
/// cause (before: it waited until a slot freed, however long that took).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_slot_is_bounded() {
    let policy = PluginPolicy {
        max_concurrent_calls_per_plugin: Some(2),
        ..PluginPolicy::default()
    };
    let rt = small_runtime(2, policy);
    let bad = looping(&rt, Duration::from_secs(6)).await;
    let good = concat(&rt).await;
    let calls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(guard(rt.clone(), bad.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let err = within(20, "good call", reduce(&rt, &good))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(
            err.kind,
            CallErrorKind::NoSlot {
                busy: SlotShortage::Host { slots: 2 },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("all 2 plugin call slots of the host are busy"),
        "{err}"
    );
    assert!(
        waited >= Limits::DEFAULT_TIMEOUT && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    for call in calls {
        let _ = within(20, "looping call", call).await;
    }
    // Once they are gone, the slots are free again.
    assert_eq!(reduce(&rt, &good).await.expect("served"), json!("ok"));
}

/// A spec cannot raise a plugin's deadline past the operator's ceiling: it
/// is refused with the JSON path; the operator's host config raises the
/// ceiling (before: any `timeout_ms` was accepted).
#[test]
fn a_spec_timeout_above_the_ceiling_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut doc: Value = serde_json::from_str(
        &std::fs::read_to_string(example_spec("analysis_parallel")).expect("spec"),
    )
    .expect("json");
    doc["plugins"] = json!({"concat": {"timeout_ms": 600000, "output_kib": 1048576}});
    std::fs::copy(
        e2e::repo_root().join("examples/analysis_parallel/script.json"),
        tmp.path().join("script.json"),
    )
    .expect("script");
    let spec = e2e::write_spec(tmp.path(), &doc);
    for command in ["validate", "run"] {
        let out = e2e::host!()
            .arg(command)
            .arg(&spec)
            .arg("--plugins")
            .arg(e2e::plugins_dir())
            .args(if command == "run" {
                &["--offline"][..]
            } else {
                &[]
            })
            .output_blocking();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(
                "$.plugins.concat.timeout_ms: `timeout_ms` is 600000; this host allows at most 60000"
            ),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("$.plugins.concat.output_kib: `output_kib` is 1048576"),
            "{command}: {stderr}"
        );
    }
    let config = tmp.path().join("host.toml");
    std::fs::write(
        &config,
        "[plugins]\nmax_timeout_ms = 600000\nmax_output_kib = 1048576\n",
    )
    .expect("config");
    let out = e2e::host!()
        .arg("validate")
        .arg(&spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .arg("--config")
        .arg(&config)
        .output_blocking();
    ok(&out);
}

// ------------------------------------------------- item 8: the cache

/// The `.cwasm` of the plugin whose SHA-256 is `digest`, and its sidecar
/// (the file named after it with one more suffix: its MAC).
fn entry_of(cache: &Path, digest: &str) -> (PathBuf, PathBuf) {
    let files: Vec<String> = std::fs::read_dir(cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let artifact = files
        .iter()
        .find(|n| n.starts_with(digest) && n.ends_with(".cwasm"))
        .unwrap_or_else(|| panic!("no cache entry for {digest}: {files:?}"));
    let sidecar = files
        .iter()
        .find(|n| n.starts_with(&format!("{artifact}.")))
        .unwrap_or_else(|| panic!("no sidecar for {artifact}: {files:?}"));
    (cache.join(artifact), cache.join(sidecar))
}

fn list(plugins: &Path, cache: &Path, key: &Path) -> Value {
    let out = e2e::host!()
        .args(["plugins", "list", "--json", "--plugins"])
        .arg(plugins)
        .env("HOST_CACHE_DIR", cache)
        .env("HOST_CACHE_KEY", key)
        .output_blocking();
    serde_json::from_str(&ok(&out)).expect("JSON")
}

fn plugin_in<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing: {listing}"))
}

/// Another plugin's artifact with its own MAC file, copied under this
/// plugin's entry name: rejected and rebuilt, so `counter` runs its own
/// code (before: the checksum matched and `counter` ran `clock_random`'s
/// code, describing itself as `clock_random`).
#[test]
fn an_artifact_copied_under_another_plugins_name_is_rejected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plugins = folder(&[], &["counter", "clock_random"]);
    let cache = tmp.path().join("cache");
    let key = tmp.path().join("keys/cache.key");
    let first = list(plugins.path(), &cache, &key);
    let counter = plugin_in(&first, "counter");
    let clock = plugin_in(&first, "clock_random");
    assert_eq!(counter["entries"][0]["name"], "counter");
    let (victim, victim_mac) = entry_of(&cache, counter["sha256"].as_str().expect("digest"));
    let (other, other_mac) = entry_of(&cache, clock["sha256"].as_str().expect("digest"));
    std::fs::copy(&other, &victim).expect("copy artifact");
    std::fs::copy(&other_mac, &victim_mac).expect("copy MAC");

    let second = list(plugins.path(), &cache, &key);
    let counter = plugin_in(&second, "counter");
    assert_eq!(
        counter["entries"][0]["name"], "counter",
        "the planted artifact ran: {counter}"
    );
    assert_eq!(counter["cache"], "rebuilt", "{counter}");
    assert_eq!(plugin_in(&second, "clock_random")["cache"], "hit");
    // Rebuilt with a MAC of its own: a hit next time.
    let third = list(plugins.path(), &cache, &key);
    assert_eq!(plugin_in(&third, "counter")["cache"], "hit");
}

/// A cache directory its group may write is refused, with the reason and
/// what to do (before: used as it was).
#[cfg(unix)]
#[test]
fn a_group_writable_cache_dir_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o775)).expect("chmod");
    let out = e2e::host!()
        .args(["plugins", "check"])
        .arg(e2e::plugin("concat"))
        .env("HOST_CACHE_DIR", &cache)
        .env("HOST_CACHE_KEY", tmp.path().join("cache.key"))
        .output_blocking();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is writable by its group (mode 0775)") && stderr.contains("--no-cache"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&cache).expect("cache").count(),
        0,
        "nothing written"
    );
    // The library refuses it too.
    let err = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.clone()),
        cache_key_file: Some(tmp.path().join("cache.key")),
        ..RuntimeOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("writable by its group"), "{err}");
    // Fixed by the owner: accepted.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let out = e2e::host!()
        .args(["plugins", "check"])
        .arg(e2e::plugin("concat"))
        .env("HOST_CACHE_DIR", &cache)
        .env("HOST_CACHE_KEY", tmp.path().join("cache.key"))
        .output_blocking();
    ok(&out);
}

//! Hostile components the Rust toolchain would never produce, written as
//! component WAT here and built with the `wat` crate inside the test: many
//! memories in one component, `describe` results whose strings alias the
//! same bytes, tool definitions model APIs refuse. Also the host's own
//! bounds: file size, compile budget, guest output and `host.log` floods.

use crate::common::{ctx, runtime, within};
use host::plugin::{
    CallErrorKind, Limits, LoadError, MAX_TOOL_DESCRIPTION_CHARS, Plugin, PluginPolicy, Runtime,
    RuntimeOptions,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The component-level types of `workflow:plugin@0.1.0` the exports use.
const TYPES: &str = r#"
  (type $kind (enum "guard" "input-mapper" "reducer" "tool" "guardrail"))
  (type $entry (record (field "name" string) (field "kind" $kind) (field "description" string)))
  (type $describe-t (func (result (list $entry))))
  (type $ctx (record (field "run-id" string) (field "workflow-key" string) (field "stage" string)
    (field "step" u32) (field "entry" string) (field "config" string)))
  (type $sr (record (field "stage-name" string) (field "step-index" u32) (field "agent-key" string)
    (field "parallel-group" (option string)) (field "branch-index" (option u32))
    (field "skipped" bool) (field "output" string) (field "error" (option string))))
"#;

/// A guard plugin: `describe` and `guard.check`, lifted from core instance
/// `$main`.
const GUARD_EXPORTS: &str = r#"
  (type $check-t (func (param "ctx" $ctx) (param "input" string) (param "prior" (list $sr))
    (result (result bool (error string)))))
  (func $describe (type $describe-t) (canon lift (core func $main "describe") (memory (core memory $main "memory"))))
  (func $check (type $check-t) (canon lift (core func $main "check") (memory (core memory $main "memory"))
    (realloc (core func $main "realloc"))))
  (instance $d (export "kind" (type $kind)) (export "entry" (type $entry)) (export "describe" (func $describe)))
  (instance $g (export "call-context" (type $ctx)) (export "step-result" (type $sr)) (export "check" (func $check)))
  (export "workflow:plugin/describe@0.1.0" (instance $d))
  (export "workflow:plugin/guard@0.1.0" (instance $g))
"#;

/// A tool plugin: `describe`, `tool.definitions` and `tool.invoke`.
const TOOL_EXPORTS: &str = r#"
  (type $def (record (field "name" string) (field "description" string) (field "parameters" string)))
  (type $defs-t (func (result (list $def))))
  (type $invoke-t (func (param "ctx" $ctx) (param "name" string) (param "arguments" string)
    (result (result string (error string)))))
  (func $describe (type $describe-t) (canon lift (core func $main "describe") (memory (core memory $main "memory"))))
  (func $defs (type $defs-t) (canon lift (core func $main "definitions") (memory (core memory $main "memory"))))
  (func $invoke (type $invoke-t) (canon lift (core func $main "check") (memory (core memory $main "memory"))
    (realloc (core func $main "realloc"))))
  (instance $d (export "kind" (type $kind)) (export "entry" (type $entry)) (export "describe" (func $describe)))
  (instance $t (export "call-context" (type $ctx)) (export "tool-definition" (type $def))
    (export "definitions" (func $defs)) (export "invoke" (func $invoke)))
  (export "workflow:plugin/describe@0.1.0" (instance $d))
  (export "workflow:plugin/tool@0.1.0" (instance $t))
"#;

/// The core functions every main module has: a bump `realloc` from
/// `bump`, and a `check` (15 flat parameters: the call context, two
/// strings or lists) that runs `before` and returns `ok(true)` for a
/// guard, `ok("1")` for a tool.
fn main_common(bump: u32, before: &str) -> String {
    format!(
        r#"
    (global $bump (mut i32) (i32.const {bump}))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p))
    (func (export "check")
      (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      {before}
      (i32.store (i32.const 1024) (i32.const 0))
      (i32.store (i32.const 1028) (i32.const 1))
      (i32.store (i32.const 1032) (i32.const 1))
      (i32.const 1024))
"#
    )
}

/// `describe` returning `count` entries at `at` (20 bytes each: name,
/// kind, description), entry `i` named by the `name_len` bytes at 0 and
/// described by the `desc_len` bytes at `desc_at`: every entry aliases the
/// same bytes.
fn describe(at: u32, count: u32, kind: u32, name_len: u32, desc_at: u32, desc_len: u32) -> String {
    let ret = at - 8;
    format!(
        r#"
    (func (export "describe") (result i32)
      (local $i i32) (local $p i32)
      (local.set $p (i32.const {at}))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
        (i32.store (local.get $p) (i32.const 0))
        (i32.store offset=4 (local.get $p) (i32.const {name_len}))
        (i32.store8 offset=8 (local.get $p) (i32.const {kind}))
        (i32.store offset=12 (local.get $p) (i32.const {desc_at}))
        (i32.store offset=16 (local.get $p) (i32.const {desc_len}))
        (local.set $p (i32.add (local.get $p) (i32.const 20)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (i32.store (i32.const {ret}) (i32.const {at}))
      (i32.store offset=4 (i32.const {ret}) (i32.const {count}))
      (i32.const {ret}))
"#
    )
}

/// Builds component WAT into a `.wasm` file named `name` in `dir`.
fn build(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: {e}\n{wat}"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A guard whose `describe` lists `count` entries, each described by the
/// same `desc_len` bytes (zeros, valid UTF-8) of a 19 MiB memory.
fn hostile_alias(dir: &Path, name: &str, count: u32, desc_len: u32) -> PathBuf {
    let at = 17 << 20;
    let wat = format!(
        r#"(component
  (core module $M
    (memory (export "memory") 304)
    (data (i32.const 0) "g")
    {common}
    {describe})
  (core instance $main (instantiate $M))
  {TYPES}
  {GUARD_EXPORTS})"#,
        common = main_common(18 << 20, ""),
        describe = describe(at, count, 0, 1, 64 << 10, desc_len),
    );
    build(dir, name, &wat)
}

/// A guard whose component instantiates one core module `instances` times,
/// each with a memory of its own; `check` grows every one of them by
/// `grow_pages` pages.
fn hostile_memories(dir: &Path, name: &str, instances: usize, grow_pages: u32) -> PathBuf {
    let imports: String = (0..instances)
        .map(|i| format!("(import \"m{i}\" \"grow\" (func $grow{i} (result i32)))\n"))
        .collect();
    let grow_all: String = (0..instances)
        .map(|i| format!("(if (i32.lt_s (call $grow{i}) (i32.const 0)) (then unreachable))\n"))
        .collect();
    let core_instances: String = (0..instances)
        .map(|i| format!("(core instance $m{i} (instantiate $Mem))\n"))
        .collect();
    let with: String = (0..instances)
        .map(|i| format!("(with \"m{i}\" (instance $m{i}))"))
        .collect();
    let wat = format!(
        r#"(component
  (core module $Mem
    (memory 1)
    (func (export "grow") (result i32) (memory.grow (i32.const {grow_pages}))))
  {core_instances}
  (core module $M
    {imports}
    (memory (export "memory") 1)
    (data (i32.const 0) "hostile_memories")
    {common}
    {describe})
  (core instance $main (instantiate $M {with}))
  {TYPES}
  {GUARD_EXPORTS})"#,
        common = main_common(4096, &grow_all),
        describe = describe(2048, 1, 0, 16, 0, 0),
    );
    build(dir, name, &wat)
}

/// A tool plugin with one tool, `name_len` bytes of name at 0 (the text
/// `name`) and a description of `desc_len` zero bytes.
pub(crate) fn hostile_tool(dir: &Path, file: &str, name: &str, desc_len: u32) -> PathBuf {
    let n = name.len() as u32;
    let defs_at = 2048;
    let params_at = 512;
    let params = r#"{"type":"object"}"#;
    let wat = format!(
        r#"(component
  (core module $M
    (memory (export "memory") 64)
    (data (i32.const 0) "{name}")
    (data (i32.const {params_at}) "{params_escaped}")
    {common}
    {describe}
    (func (export "definitions") (result i32)
      (i32.store (i32.const {defs_at}) (i32.const 0))
      (i32.store offset=4 (i32.const {defs_at}) (i32.const {n}))
      (i32.store offset=8 (i32.const {defs_at}) (i32.const {desc_at}))
      (i32.store offset=12 (i32.const {defs_at}) (i32.const {desc_len}))
      (i32.store offset=16 (i32.const {defs_at}) (i32.const {params_at}))
      (i32.store offset=20 (i32.const {defs_at}) (i32.const {params_len}))
      (i32.store (i32.const 3000) (i32.const {defs_at}))
      (i32.store (i32.const 3004) (i32.const 1))
      (i32.const 3000)))
  (core instance $main (instantiate $M))
  {TYPES}
  {TOOL_EXPORTS})"#,
        params_escaped = params.replace('"', "\\\""),
        params_len = params.len(),
        desc_at = 64 << 10,
        common = main_common(7 << 19, ""),
        describe = describe(4096, 1, 3, n, 0, 0),
    );
    build(dir, file, &wat)
}

/// Runs `host` with `args`, stderr to a file, and returns its exit code,
/// its stderr and its peak resident memory (VmHWM, from `wait4`) in bytes.
fn host_peak_rss(args: &[&str], env: &[(&str, &str)]) -> (i32, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let mut cmd = e2e::host!().args(args).std();
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Reaped by wait4 below (which also gives the peak RSS), not by wait().
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    // ru_maxrss is in KiB on Linux.
    (code, stderr, usage.ru_maxrss as u64 * 1024)
}

/// Issue 15 item 5 (audit C2): `describe` listing one 16 MiB string 64
/// times made the host copy 1 GiB before the size check. Now the strings
/// are copied one at a time under the output budget: the load fails with a
/// clear error and the loading process grows by well under 50 MiB.
#[test]
fn aliased_describe_strings_cost_the_host_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let alias = hostile_alias(dir.path(), "hostile_alias", 64, 16 << 20);
    let small = hostile_alias(dir.path(), "small_alias", 1, 16);
    let check = |path: &Path| {
        host_peak_rss(
            &["--no-cache", "plugins", "check", path.to_str().unwrap()],
            &[],
        )
    };
    let (code, stderr, baseline) = check(&small);
    assert_eq!(code, 0, "the small variant loads: {stderr}");
    let (code, stderr, peak) = check(&alias);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("hostile_alias.wasm")
            && stderr.contains("describe.describe")
            && stderr.contains("exceeds the 4194304-byte limit"),
        "{stderr}"
    );
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < 50 << 20,
        "peak RSS grew by {} MiB (baseline {} MiB, hostile {} MiB)",
        grown >> 20,
        baseline >> 20,
        peak >> 20
    );
}

/// Issue 15 item 4 (audit H1): the memory cap is per call, over every
/// memory of the component; before, each of three 25 MiB memories was
/// under the 64 MiB cap and the call took 75 MiB. Calls of a good plugin at
/// the same time are unaffected.
#[tokio::test]
async fn many_memories_fail_their_own_call_while_others_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_memories(dir.path(), "hostile_memories", 3, 400);
    let rt = runtime();
    let hostile = Plugin::load(&rt, &path, Limits::default())
        .await
        .expect("loads: instantiating takes four pages");
    let counter = Plugin::load(&rt, &e2e::guest("counter"), Limits::default())
        .await
        .unwrap();
    let guard = |i: usize| {
        let hostile = &hostile;
        let rt = rt.clone();
        async move {
            let mut c = ctx(json!({}));
            c.entry = "hostile_memories".into();
            c.step = i as u32;
            hostile.guard(&rt, &c, &json!("x"), &[]).await
        }
    };
    let count = |_: usize| {
        let counter = &counter;
        let rt = rt.clone();
        async move {
            let mut c = ctx(json!({}));
            c.entry = "counter".into();
            counter.map_input(&rt, &c, &json!("x"), &[]).await
        }
    };
    let (bad, good) = within(
        60,
        "concurrent calls",
        futures::future::join(
            futures::future::join_all((0..8).map(guard)),
            futures::future::join_all((0..32).map(count)),
        ),
    )
    .await;
    for r in bad {
        let err = r.expect_err("three 25 MiB memories exceed the 64 MiB cap of the call");
        assert!(
            matches!(err.kind, CallErrorKind::Memory { limit, requested }
                if limit == Limits::DEFAULT_MEMORY_BYTES && requested > limit),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("plugin `hostile_memories`")
                && msg.contains("guard.check")
                && msg.contains("memory limit of 64 MiB exceeded"),
            "{msg}"
        );
    }
    for r in good {
        assert_eq!(r.expect("counter call").value, json!(1));
    }
}

/// Issue 15 item 4: a component instantiating a core module 64 times (each
/// with its own memory) is refused at load: it would take 64 of the pool's
/// memories in every call and starve the others.
#[tokio::test]
async fn a_component_with_too_many_instances_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_memories(dir.path(), "hostile_instances", 64, 1);
    let err = Plugin::load(&runtime(), &path, Limits::default())
        .await
        .expect_err("64 memories in one component");
    let msg = err.to_string();
    assert!(matches!(err, LoadError::Compile { .. }), "{msg}");
    assert!(
        msg.contains("hostile_instances.wasm")
            && msg.contains("exceeds the configured maximum")
            && msg.contains("pooling allocator"),
        "{msg}"
    );
}

/// Issue 15 item 12 (plugin half): a tool description of 3 MB would go to
/// the model on every turn, and model APIs refuse odd tool names. Both are
/// load errors naming the file and the export.
#[tokio::test]
async fn tool_definitions_are_held_to_what_model_apis_accept() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ok = hostile_tool(dir.path(), "ok_tool", "lookup", 100);
    let plugin = Plugin::load(&rt, &ok, Limits::default()).await.unwrap();
    assert_eq!(plugin.tools()[0].description.len(), 100);

    let big = hostile_tool(dir.path(), "big_tool", "lookup", 3 << 20);
    let err = Plugin::load(&rt, &big, Limits::default())
        .await
        .expect_err("3 MB description");
    let msg = err.to_string();
    assert!(
        msg.contains("big_tool.wasm")
            && msg.contains("tool.definitions")
            && msg.contains(&format!("accept at most {MAX_TOOL_DESCRIPTION_CHARS}")),
        "{msg}"
    );

    for (file, name) in [
        ("dotted_tool", "a.b"),
        ("long_tool", &"x".repeat(65) as &str),
    ] {
        let path = hostile_tool(dir.path(), file, name, 10);
        let err = Plugin::load(&rt, &path, Limits::default())
            .await
            .expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{file}.wasm"))
                && msg.contains("describe.describe")
                && msg.contains("a name model APIs refuse"),
            "{msg}"
        );
    }
}

/// Issue 15 item 5 (audit M7): the file's size is checked before it is
/// read; a sparse 1 GiB `.wasm` is refused at once.
#[tokio::test]
async fn an_oversized_wasm_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.wasm");
    let file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &file, b"\0asm\x0d\0\x01\0").unwrap();
    file.set_len(1 << 30).unwrap();
    let started = Instant::now();
    let err = Plugin::load(&runtime(), &path, Limits::default())
        .await
        .expect_err("1 GiB file");
    assert!(
        matches!(err, LoadError::TooLarge { size, limit, .. } if size == 1 << 30 && limit == PluginPolicy::DEFAULT_MAX_WASM_BYTES),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("huge.wasm: file of 1073741824 bytes exceeds the host's limit"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "read it?");

    // The limit is the operator's to set.
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: None,
        policy: PluginPolicy {
            max_wasm_bytes: 1024,
            ..PluginPolicy::default()
        },
        ..RuntimeOptions::default()
    })
    .unwrap();
    let err = Plugin::load(&rt, &e2e::plugin("concat"), Limits::default())
        .await
        .expect_err("concat is over 1 KiB");
    assert!(
        matches!(err, LoadError::TooLarge { limit: 1024, .. }),
        "{err}"
    );
}

/// Issue 15 item 5 (audit M7): compiling a new component has a time budget;
/// past it the load fails with a clear error instead of waiting.
#[tokio::test]
async fn compiling_past_the_budget_fails_the_load() {
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: None,
        policy: PluginPolicy {
            compile_timeout_ms: 1,
            ..PluginPolicy::default()
        },
        ..RuntimeOptions::default()
    })
    .unwrap();
    let err = within(
        30,
        "load",
        Plugin::load(&rt, &e2e::plugin("concat"), Limits::default()),
    )
    .await
    .expect_err("no component compiles in 1 ms");
    let msg = err.to_string();
    assert!(matches!(err, LoadError::Compile { .. }), "{msg}");
    assert!(
        msg.contains("concat.wasm") && msg.contains("compile budget of 0.001 s"),
        "{msg}"
    );
}

/// Issue 15 item 5 (audit L1, M8): a guest flooding stdout, stderr and
/// `host.log` while describing itself gets a bounded number of lines into
/// the host's log, one summary line each, and cannot forge log lines.
#[test]
pub(crate) fn a_flooding_guest_leaves_the_host_log_bounded() {
    let guest = e2e::guest("hostile_flood");
    // Flooding takes most of describe's default 1 s deadline in a debug
    // build, and all of it on a machine busy with the rest of the suite:
    // the deadline is not what this test is about.
    let out = e2e::host!()
        .args(["--no-cache", "plugins", "check", "--timeout-ms", "20000"])
        .arg(&guest)
        .env("RUST_LOG", "warn,plugin=trace")
        .output_blocking();
    let stderr = e2e::stderr(&out);
    assert!(
        out.status.success(),
        "{}",
        &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(2000))..]
    );
    assert!(
        stderr.len() < 160 << 10,
        "host stderr is {} KiB:\n{}",
        stderr.len() >> 10,
        &stderr[..stderr.floor_char_boundary(2000)]
    );
    for what in ["stream=\"stdout\"", "stream=\"stderr\""] {
        let lines = stderr
            .lines()
            .filter(|l| l.contains(what) && l.contains("flood-"))
            .count();
        assert!(
            lines <= host::plugin::MAX_OUTPUT_LINES,
            "{lines} {what} lines"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(what) && l.contains("dropped_lines")),
            "no summary for {what}"
        );
    }
    assert!(
        stderr.contains("plugin log records over the per-call limit were dropped"),
        "{}",
        &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(2000))..]
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("ERROR forged line")),
        "a log message forged a line"
    );
}

/// The `.wasm` size limit is the operator's: `[plugins] max_wasm_bytes` in
/// the host config file.
#[test]
fn the_operator_sets_the_file_size_limit_in_the_host_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    std::fs::write(&config, "[plugins]\nmax_wasm_bytes = 1000\n").unwrap();
    let out = e2e::host!()
        .arg("--config")
        .arg(&config)
        .args(["--no-cache", "plugins", "check"])
        .arg(e2e::plugin("concat"))
        .output_blocking();
    let stderr = e2e::stderr(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("concat.wasm: file of") && stderr.contains("limit of 1000 bytes"),
        "{stderr}"
    );
}

//! Event sinks and the terminal experience of `host run`, end to end.
//!
//! - Snapshots: every example (`examples/*/spec.json`, `--offline`) runs with
//!   the `stdout` and `jsonl` sinks; both outputs, normalised (below), must
//!   equal the `insta` snapshots `tests/snapshots/sinks/<example>.stdout.snap`
//!   and `.jsonl.snap` exactly. After an intended change, review the new
//!   output with `cargo insta review`, or accept it with
//!   `INSTA_UPDATE=always cargo test -p host --test it sinks::` and review
//!   the diff.
//! - Normalisation: the run id, timestamps, `seq`, elapsed times, plugin
//!   digests and local paths become placeholders (the run id, paths and
//!   durations in text through `insta` filters; the envelope fields by
//!   name, in the JSON). Branches of a parallel
//!   stage interleave differently from run to run, so within each parallel
//!   stage the lines (events) are stably sorted by branch index: one
//!   branch's lines keep their order, the branches follow each other. The
//!   real order is checked before that, on the raw events: `seq` is 1..n
//!   without gaps in file order, timestamps never go back, stages do not
//!   overlap, and every step's own events are in order (started first, one
//!   end last, model requests and responses alternating by turn, each tool
//!   result after its call).
//! - Live progress runs under a pseudo-terminal (util-linux `script`), with
//!   and without `NO_COLOR`, and piped.

use e2e::{mock, ok, text};
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

fn host(args: &[&str], env: &[(&str, &str)]) -> Output {
    e2e::host!()
        .args(args)
        .envs(env.iter().copied())
        .output_blocking()
}

fn example(name: &str) -> PathBuf {
    e2e::repo_root()
        .join("examples")
        .join(name)
        .join("spec.json")
}

/// `host run` on an example, offline, with extra arguments.
fn run_example(name: &str, extra: &[&str]) -> Output {
    let api = crate::common::ExampleApi::start(name);
    let spec = example(name);
    let plugins = e2e::plugins_dir();
    let mut args = vec![
        "run",
        spec.to_str().expect("utf-8 path"),
        "--plugins",
        plugins.to_str().expect("utf-8 path"),
        "--offline",
    ];
    if let Some(api) = &api {
        args.extend(api.args());
    }
    args.extend(extra);
    host(&args, &[crate::common::ExampleApi::ENV])
}

fn parse_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

// ---------------------------------------------------------------- ordering

/// The ordering guarantees of one run's events, in stream (file) order.
fn check_order(events: &[Value]) {
    assert!(!events.is_empty(), "no events");
    let run_id = &events[0]["run_id"];
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["seq"],
            json!(i + 1),
            "seq has a gap or is out of order at {e}"
        );
        assert_eq!(&e["run_id"], run_id, "{e}");
        assert_eq!(e["schema_version"], 1, "{e}");
    }
    for pair in events.windows(2) {
        let (a, b) = (
            pair[0]["timestamp"].as_str().unwrap_or_default(),
            pair[1]["timestamp"].as_str().unwrap_or_default(),
        );
        assert!(a <= b, "timestamps go back: {a} then {b}");
    }
    assert_eq!(events[0]["type"], "run.started");
    let terminal = ["run.completed", "run.failed", "run.cancelled"];
    let ends: Vec<usize> = (0..events.len())
        .filter(|&i| terminal.iter().any(|t| events[i]["type"] == *t))
        .collect();
    assert_eq!(
        ends,
        [events.len() - 1],
        "exactly one last event, at the end"
    );

    // Stages: one open at a time; every scoped event inside its own stage.
    let mut open: Option<&str> = None;
    for e in events {
        let stage = e["stage"].as_str();
        match e["type"].as_str().unwrap_or_default() {
            "stage.started" => {
                assert_eq!(open, None, "stages overlap at {e}");
                open = stage;
            }
            "stage.completed" => {
                assert_eq!(open, stage, "{e}");
                open = None;
            }
            _ if stage.is_some() => assert_eq!(open, stage, "outside its stage: {e}"),
            _ => {}
        }
    }

    // Each step's own events, in order.
    // An agent offered as a tool runs its own turns inside the step: its
    // events (marked with the call's id) are checked as a loop of their own.
    let mut steps: BTreeMap<(String, u64, String), Vec<&Value>> = BTreeMap::new();
    for e in events {
        if let (Some(stage), Some(index)) = (e["stage"].as_str(), e["step_index"].as_u64()) {
            let call = e["tool_call_id"].as_str().unwrap_or_default().to_string();
            steps
                .entry((stage.into(), index, call))
                .or_default()
                .push(e);
        }
    }
    for ((stage, index, call), evs) in &steps {
        let stage = if call.is_empty() {
            stage.clone()
        } else {
            format!("{stage} (agent tool {call})")
        };
        let kinds: Vec<&str> = evs
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect();
        let here = format!("{stage}[{index}]: {kinds:?}");
        if call.is_empty() {
            assert_eq!(kinds.first(), Some(&"step.started"), "{here}");
            let last = ["step.completed", "step.skipped", "step.failed"];
            let end_at: Vec<usize> = (0..kinds.len())
                .filter(|&i| last.contains(&kinds[i]))
                .collect();
            assert_eq!(end_at, [kinds.len() - 1], "one end, last: {here}");
        }
        let branch = &evs[0]["branch_index"];
        assert!(evs.iter().all(|e| &e["branch_index"] == branch), "{here}");
        let mut turn = 0;
        let mut waiting = false;
        let mut calls = Vec::new();
        for e in evs {
            match e["type"].as_str().unwrap_or_default() {
                "llm.request" => {
                    assert!(!waiting, "two requests without a response: {here}");
                    let t = e["data"]["turn"].as_u64().unwrap_or(0);
                    assert!(t > turn, "turns go up: {here}");
                    (turn, waiting) = (t, true);
                }
                "llm.delta" => assert!(waiting, "text outside a model call: {here}"),
                "llm.response" => {
                    assert!(waiting, "a response without a request: {here}");
                    assert_eq!(e["data"]["turn"].as_u64(), Some(turn), "{here}");
                    waiting = false;
                }
                "tool.called" => calls.push(e["data"]["call_id"].clone()),
                "tool.result" => assert!(
                    calls.contains(&e["data"]["call_id"]),
                    "a result before its call: {here}"
                ),
                _ => {}
            }
        }
        assert!(!waiting, "a request never answered: {here}");
    }
}

/// The order check catches what it claims to.
#[test]
fn the_order_check_can_fail() {
    let ev = |seq: u64, kind: &str, step: Option<u64>| {
        let mut e = json!({"type": kind, "schema_version": 1, "run_id": "r", "seq": seq,
            "timestamp": format!("2026-01-01T00:00:00.{seq:03}Z"), "workflow": "w", "data": null});
        if let Some(i) = step {
            e["stage"] = json!("s");
            e["step_index"] = json!(i);
            e["branch_index"] = json!(i);
        } else if kind.starts_with("stage.") {
            e["stage"] = json!("s");
        }
        e
    };
    let good = vec![
        ev(1, "run.started", None),
        ev(2, "stage.started", None),
        ev(3, "step.started", Some(0)),
        ev(4, "step.started", Some(1)),
        ev(5, "step.completed", Some(1)),
        ev(6, "step.completed", Some(0)),
        ev(7, "stage.completed", None),
        ev(8, "run.completed", None),
    ];
    check_order(&good);
    let fails = |events: Vec<Value>| std::panic::catch_unwind(|| check_order(&events)).is_err();
    let mut gap = good.clone();
    gap.remove(3);
    assert!(fails(gap), "a gap in seq");
    let mut swapped = good.clone();
    swapped[2]["type"] = json!("step.completed");
    swapped[5]["type"] = json!("step.started");
    assert!(fails(swapped), "a step that ends before it starts");
    let mut outside = good.clone();
    outside.swap(5, 6);
    outside[5]["seq"] = json!(6);
    outside[6]["seq"] = json!(7);
    assert!(fails(outside), "a step event after its stage ended");
}

// ----------------------------------------------------------- normalisation

/// Placeholders for what changes from run to run in the text of both
/// outputs: the run id and local paths, and in the readable lines also
/// durations. The snapshots apply them as `insta` filters;
/// [`Filters::apply`] does the same, to test the normalisation itself.
struct Filters {
    /// (regex, replacement), applied in this order.
    rules: Vec<(String, &'static str)>,
}

impl Filters {
    /// The run id, then the temporary folder and the repository root.
    fn new(run_id: &str, tmp: &Path) -> Self {
        Filters::ids_and_paths(
            run_id,
            &[
                (tmp.display().to_string(), "[TMP]"),
                (e2e::repo_root().display().to_string(), "[ROOT]"),
            ],
        )
    }

    fn ids_and_paths(run_id: &str, paths: &[(String, &'static str)]) -> Self {
        let mut rules = vec![(regex::escape(run_id), "[RUN_ID]")];
        rules.extend(paths.iter().map(|(p, name)| (regex::escape(p), *name)));
        Filters { rules }
    }

    /// Also `123 ms` → `[ELAPSED] ms` (the readable lines only: in the
    /// events, `elapsed_ms` is replaced by name).
    fn with_elapsed(mut self) -> Self {
        self.rules.push(("[0-9]+ ms".into(), "[ELAPSED] ms"));
        // The Go printer's `runtime: 1.234s`.
        self.rules
            .push(("runtime: [0-9][0-9.hmsµ]*".into(), "runtime: [ELAPSED]"));
        self
    }

    /// Snapshot settings: files in `tests/snapshots/sinks/`, named after
    /// the example, with these filters.
    fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots/sinks");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        for (regex, replacement) in &self.rules {
            settings.add_filter(regex, *replacement);
        }
        settings
    }

    fn apply(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (regex, replacement) in &self.rules {
            let regex = regex::Regex::new(regex).expect("a filter regex");
            text = regex.replace_all(&text, *replacement).into_owned();
        }
        text
    }
}

/// The branch a readable line is about: `  ✓ name [2] (…)` or `    [2] tool …`.
fn branch_of(line: &str) -> Option<u32> {
    let t = line.trim_start();
    let tag = if t.starts_with('[') {
        t
    } else {
        &t[t.find(" [")? + 1..]
    };
    let end = tag.find(']')?;
    tag[1..end].parse().ok()
}

/// The `stdout` sink's lines in a stable order (the filters come after).
/// Within a parallel stage (from its `▸ stage … (parallel, …)` line to the
/// next line that is not indented) lines are stably sorted by branch; each
/// must carry one.
fn normalize_lines(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push(line);
        i += 1;
        if line.starts_with("▸ stage ") && line.contains("(parallel,") {
            let mut section: Vec<(u32, &str)> = Vec::new();
            while i < lines.len() && lines[i].starts_with("  ") {
                let b = branch_of(lines[i]).unwrap_or_else(|| {
                    panic!(
                        "a line of a parallel stage without its branch: {}",
                        lines[i]
                    )
                });
                section.push((b, lines[i]));
                i += 1;
            }
            section.sort_by_key(|(b, _)| *b);
            out.extend(section.into_iter().map(|(_, l)| l));
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Fields whose values change from run to run, at any depth.
fn filter_value(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(filter_value),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match k.as_str() {
                    "elapsed_ms" => *v = json!("[ELAPSED]"),
                    "plugin_digest" if v.is_string() => *v = json!("[DIGEST]"),
                    _ => filter_value(v),
                }
            }
        }
        _ => {}
    }
}

/// The events in a stable order with stable envelopes (the filters come
/// after): envelope placeholders, then each parallel stage's events stably
/// sorted by branch; one compact JSON per line.
fn normalize_events(events: &[Value]) -> String {
    let mut events: Vec<Value> = events.to_vec();
    let mut i = 0;
    while i < events.len() {
        let e = &events[i];
        i += 1;
        if e["type"] == "stage.started" && e["data"]["mode"] == "parallel" {
            let start = i;
            while i < events.len()
                && events[i]["type"] != "stage.completed"
                && events[i]["step_index"].is_u64()
            {
                i += 1;
            }
            events[start..i].sort_by_key(|e| e["branch_index"].as_u64());
        }
    }
    let mut out = String::new();
    for mut e in events {
        e["run_id"] = json!("[RUN_ID]");
        e["seq"] = json!("[SEQ]");
        e["timestamp"] = json!("[TIMESTAMP]");
        filter_value(&mut e);
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

// --------------------------------------------------------------- snapshots

/// Runs an example with both sinks, checks the real order, compares both
/// normalised outputs with their snapshots.
fn example_snapshot(name: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let events_path = tmp.path().join("events.jsonl");
    let jsonl = format!("jsonl:{}", events_path.display());
    // An example whose spec prints on stdout itself (the Go request's
    // `stdout` mode) keeps its own printer.
    let spec = host::spec::Spec::from_path(&example(name)).expect("example spec");
    let own_stdout = spec.run.callback.iter().any(|c| {
        matches!(
            c,
            host::spec::Callback::Stdout { .. } | host::spec::Callback::StdoutVerbose { .. }
        )
    });
    let mut args = vec!["--quiet", "--callback", &jsonl];
    if !own_stdout {
        args.extend(["--callback", "stdout"]);
    }
    let out = run_example(name, &args);
    ok(&out);
    assert!(
        text(&out.stderr).trim().is_empty(),
        "--quiet: nothing on stderr: {}",
        text(&out.stderr)
    );
    let raw = std::fs::read_to_string(&events_path).expect("events file");
    // Each line is exactly the envelope as serde writes it (field order too).
    for line in raw.lines() {
        let event: host::events::Event =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
        assert_eq!(serde_json::to_string(&event).ok().as_deref(), Some(line));
    }
    let events = parse_jsonl(&raw);
    check_order(&events);
    assert_eq!(
        events.last().map(|e| &e["type"]),
        Some(&json!("run.completed"))
    );
    let run_id = events[0]["run_id"].as_str().expect("run id");
    let with_elapsed = Filters::new(run_id, tmp.path()).with_elapsed();
    with_elapsed.settings().bind(|| {
        insta::assert_snapshot!(
            format!("{name}.stdout"),
            normalize_lines(&text(&out.stdout))
        );
    });
    Filters::new(run_id, tmp.path()).settings().bind(|| {
        insta::assert_snapshot!(format!("{name}.jsonl"), normalize_events(&events));
    });
}

/// One snapshot test per example, and the list of examples they cover:
/// both come from one list, so an example cannot be listed without a test.
macro_rules! example_snapshots {
    ($($test:ident => $example:literal),* $(,)?) => {
        const EXAMPLES: &[&str] = &[$($example),*];
        $(
            #[test]
            fn $test() {
                example_snapshot($example);
            }
        )*
    };
}

example_snapshots! {
    snapshot_analysis_parallel => "analysis_parallel",
    snapshot_mcp_tools => "mcp_tools",
    snapshot_peer_workflow => "peer_workflow",
    snapshot_research_supervisor => "research_supervisor",
    snapshot_simple_assistant => "simple_assistant",
    snapshot_trip_planner => "trip_planner",
    snapshot_web_tools => "web_tools",
}

#[test]
fn every_example_has_a_snapshot_test() {
    let mut found: Vec<String> = std::fs::read_dir(e2e::repo_root().join("examples"))
        .expect("examples")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("spec.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(
        found, EXAMPLES,
        "add the new example to `example_snapshots!` (which makes its test)"
    );
}

#[test]
fn normalisation_keeps_a_branch_in_order_and_needs_its_tag() {
    let filters = Filters::ids_and_paths("RID", &[]).with_elapsed();
    let raw = "run RID · workflow w\n▸ stage s (parallel, 2 steps)\n  · b [1] started\n  · a [0] started\n    [1] tool t(x)\n  ✓ a [0] (1 turn, 12 ms)\n  ✓ b [1] (2 turns, 3 ms)\n✓ completed in 40 ms · 1 input / 2 output tokens\n";
    assert_eq!(
        filters.apply(&normalize_lines(raw)),
        "run [RUN_ID] · workflow w\n▸ stage s (parallel, 2 steps)\n  · a [0] started\n  ✓ a [0] (1 turn, [ELAPSED] ms)\n  · b [1] started\n    [1] tool t(x)\n  ✓ b [1] (2 turns, [ELAPSED] ms)\n✓ completed in [ELAPSED] ms · 1 input / 2 output tokens\n"
    );
    let untagged = "▸ stage s (parallel, 2 steps)\n    tool t(x)\n";
    assert!(std::panic::catch_unwind(|| normalize_lines(untagged)).is_err());
}

// ------------------------------------------------------ other sink behaviour

/// `jsonl:-`: stdout is JSON lines only, and the final output is the one
/// `host run` prints without sinks.
#[test]
fn jsonl_on_stdout_is_pure_json_lines() {
    let plain = run_example("analysis_parallel", &["--quiet"]);
    ok(&plain);
    let out = run_example("analysis_parallel", &["--callback", "jsonl:-"]);
    ok(&out);
    let events = parse_jsonl(&text(&out.stdout));
    check_order(&events);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "run.completed");
    assert_eq!(
        last["data"]["output"].as_str().map(str::trim_end),
        Some(text(&plain.stdout).trim_end())
    );
    // The trace still goes to stderr (not a terminal here: plain lines).
    assert!(
        text(&out.stderr).contains("✓ completed in "),
        "{}",
        text(&out.stderr)
    );
}

/// `stdout_verbose`: every event with its data, streamed text, and the
/// final output last, exactly as `host run` prints it alone.
#[test]
fn verbose_shows_data_and_streamed_text_and_ends_with_the_output() {
    let plain = run_example("trip_planner", &["--quiet"]);
    ok(&plain);
    let out = run_example(
        "trip_planner",
        &["--quiet", "--stream", "--callback", "stdout_verbose"],
    );
    ok(&out);
    let stdout = text(&out.stdout);
    for needle in [
        "  input: Three days in Lisbon",
        "▸ stage research (parallel, 3 steps)",
        "→ food_scout turn 1: gpt-4.1-mini on offline (scripted)",
        "[0] » Time Out Market",
        "handoff triage → budget_specialist · call ",
        "  - nightlife_scout [2] skipped: guard returned false",
        "  usage: gpt-4.1-mini ",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    let expected_tail = format!("\noutput:\n{}", text(&plain.stdout));
    assert!(stdout.ends_with(&expected_tail), "{stdout}");
    assert_eq!(stdout.matches("\noutput:\n").count(), 1, "the output once");
}

/// Control characters in a model's reply (a clipboard write `ESC ] 52`, a
/// screen clear `ESC [ 2 J`, a carriage return, an 8-bit CSI) and in the
/// tool call and result they lead to reach the terminal escaped: in the
/// `stdout` and `stdout_verbose` sinks and in the output `host run` prints
/// (before: written raw, so the terminal obeyed them).
#[test]
fn model_and_plugin_text_reaches_the_terminal_escaped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hostile = "\u{1b}]52;c;ZXZpbA==\u{7} \u{1b}[2J\r\u{9b}1m";
    let spec = json!({
        "providers": {"offline": {"type": "scripted", "script": "script.json"}},
        "agents": {"assistant": {
            "instructions": "Use the calculator.",
            "model": {"provider": "offline", "name": "gpt-4.1-mini"},
            "tools": ["calculator#evaluate"]
        }},
        "workflow": {"key": "hostile_text", "stages": [
            {"name": "answer", "mode": "sequential", "steps": [{"agent": "assistant"}]}
        ]},
        "run": {"input": "hi"}
    });
    let script = json!({"replies": [
        {"when": {"agent": "assistant", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "evaluate", "arguments": {"expression": format!("1 +{hostile}")}}]}},
        {"when": {"agent": "assistant"}, "reply": {"text": format!("done{hostile} {{{{tool_output}}}}")}}
    ]});
    std::fs::write(tmp.path().join("script.json"), script.to_string()).expect("script");
    let spec_path = e2e::write_spec(tmp.path(), &spec);
    // The plugin's path reaches the model in the tool's error (and so the
    // token counts): a copy in the temporary folder keeps its length the
    // same in every checkout.
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins dir");
    std::fs::copy(
        e2e::plugins_dir().join("calculator.wasm"),
        plugins.join("calculator.wasm"),
    )
    .expect("copy calculator.wasm");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            spec_path.to_str().expect("utf-8"),
            "--plugins",
            plugins.to_str().expect("utf-8"),
            "--quiet",
        ];
        args.extend(extra);
        let out = host(&args, &[]);
        ok(&out);
        text(&out.stdout)
    };
    let raw = |s: &str| s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    let lines = run(&["--callback", "stdout"]);
    let verbose = run(&["--callback", "stdout_verbose"]);
    let output = run(&[]);
    for (what, out) in [
        ("stdout", &lines),
        ("stdout_verbose", &verbose),
        ("output", &output),
    ] {
        assert!(!raw(out), "{what}: raw control characters: {out:?}");
        assert!(
            out.contains("done\\x1b]52;c;ZXZpbA==\\x07 \\x1b[2J\\r\\u{9b}1m"),
            "{what}: {out}"
        );
    }
    assert!(
        verbose.contains("tool evaluate({\"expression\":\"1 +\\u001b]52;"),
        "the arguments are JSON, escaped by JSON: {verbose}"
    );
    let run_id = lines
        .split_whitespace()
        .nth(1)
        .expect("run id on the first line")
        .to_owned();
    Filters::new(&run_id, tmp.path())
        .with_elapsed()
        .settings()
        .bind(|| insta::assert_snapshot!("hostile_text.stdout", lines));
}

/// Callbacks in the spec: a relative `jsonl` path is beside the spec, and a
/// second run appends.
#[test]
fn spec_callbacks_append_beside_the_spec() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = e2e::repo_root().join("examples/analysis_parallel");
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("spec.json")).expect("spec"))
            .expect("spec json");
    spec["run"]["callback"] = json!([{"type": "jsonl", "path": "events.jsonl"}]);
    std::fs::write(tmp.path().join("spec.json"), spec.to_string()).expect("write spec");
    std::fs::copy(dir.join("script.json"), tmp.path().join("script.json")).expect("script");
    let spec_path = tmp.path().join("spec.json");
    let plugins = e2e::plugins_dir();
    let args = [
        "run",
        spec_path.to_str().expect("utf-8"),
        "--plugins",
        plugins.to_str().expect("utf-8"),
        "--offline",
        "--quiet",
    ];
    ok(&host(&args, &[]));
    ok(&host(&args, &[]));
    let events = parse_jsonl(
        &std::fs::read_to_string(tmp.path().join("events.jsonl")).expect("events beside the spec"),
    );
    let split = events
        .iter()
        .position(|e| e["seq"] == 1 && e != &events[0])
        .expect("a second run");
    let (first, second) = events.split_at(split);
    check_order(first);
    check_order(second);
    assert_ne!(first[0]["run_id"], second[0]["run_id"]);
}

#[test]
fn bad_callbacks_exit_2_with_a_hint() {
    let missing = std::env::temp_dir().join("no-such-dir-for-host-sinks/e.jsonl");
    let missing = format!("jsonl:{}", missing.display());
    for (args, message) in [
        (
            vec!["--callback", "http:example.com/hook"],
            "callback `http:example.com/hook`: not an http(s) URL",
        ),
        (vec!["--callback", "syslog"], "unknown callback `syslog`"),
        (
            vec!["--callback", "jsonl"],
            "callback `jsonl` needs a target",
        ),
        (
            vec!["--callback", "stdout", "--callback", "jsonl:-"],
            "more than one callback writes to stdout: stdout, jsonl:-",
        ),
        (vec!["--callback", missing.as_str()], "cannot open `"),
    ] {
        let out = run_example("analysis_parallel", &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {message}")),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("hint: ") || message.starts_with("cannot open"),
            "{args:?}: {stderr}"
        );
        assert!(
            text(&out.stdout).is_empty(),
            "{args:?}: the run must not start"
        );
    }
}

/// A callback that cannot open fails `host run` before its run starts:
/// nothing is recorded (the run used to be recorded, then cancelled).
#[test]
fn a_callback_that_cannot_open_records_no_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("runs.db");
    let db = db.to_str().expect("utf-8");
    let missing = format!("jsonl:{}", tmp.path().join("no-such-dir/e.jsonl").display());
    let out = run_example("analysis_parallel", &["--db", db, "--callback", &missing]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let listed = host(&["runs", "list", "--db", db, "--json"], &[]);
    ok(&listed);
    let runs: Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(runs, json!([]), "no run may be recorded");
}

/// The Go runner's `callback` becomes an `http` sink: the run goes on
/// while nothing answers at the URL, and its inline secret reaches neither
/// stderr nor the run database.
#[test]
fn a_go_callback_runs_and_its_secret_is_never_stored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = e2e::repo_root().join("examples/simple_assistant");
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("spec.json")).expect("spec"))
            .expect("spec json");
    spec["callback"] = json!({"target": "http://127.0.0.1:9/hook", "secret": "hook-SECRET-456"});
    let path = tmp.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("write spec");
    std::fs::copy(dir.join("script.json"), tmp.path().join("script.json")).expect("script");
    let plugins = e2e::plugins_dir();
    let db = tmp.path().join("host.db");
    let db = db.to_str().expect("utf-8");
    let out = host(
        &[
            "run",
            path.to_str().expect("utf-8"),
            "--plugins",
            plugins.to_str().expect("utf-8"),
            "--offline",
            "--deliver-timeout",
            "0.2",
        ],
        &[("HOST_DB", db)],
    );
    ok(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not delivered yet"), "{stderr}");
    assert!(
        !stderr.contains("hook-SECRET-456"),
        "the secret leaked: {stderr}"
    );
    for file in [db.to_owned(), format!("{db}-wal")] {
        let stored = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&stored).contains("hook-SECRET-456"),
            "the secret is in {file}"
        );
    }
}

// ------------------------------------------------------------ the terminal

/// A two-stage workflow on the mock server: three parallel branches that
/// finish at different times (so frames show some done and some running),
/// then one step.
async fn slow_workflow(tmp: &Path) -> (MockServer, PathBuf) {
    let server = mock(json!({"rules": [
        {"match": {"instructions_contains": "FAST"}, "latency_ms": 50, "reply": {"text": "fast"}},
        {"match": {"instructions_contains": "MEDIUM"}, "latency_ms": 500, "reply": {"text": "medium"}},
        {"match": {"instructions_contains": "SLOW"}, "latency_ms": 900, "reply": {"text": "slow"}},
        {"reply": {"text": "written"}}
    ]}))
    .await;
    let agent = |instructions: &str| json!({"instructions": instructions, "model": {"provider": "mock", "name": "gpt-4.1-mini"}});
    let spec = json!({
        "providers": {"mock": {"type": "openai_compatible", "base_url": server.base_url(),
            "api": "chat", "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000}},
        "agents": {"fast": agent("FAST"), "medium": agent("MEDIUM"), "slow": agent("SLOW"), "writer": agent("WRITER")},
        "workflow": {"key": "live", "stages": [
            {"name": "fan", "mode": "parallel", "steps": [{"agent": "fast"}, {"agent": "medium"}, {"agent": "slow"}]},
            {"name": "write", "steps": [{"agent": "writer"}]}
        ]},
        "run": {"input": "topic"}
    });
    let path = tmp.join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("write spec");
    (server, path)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `host run SPEC extra…` with a pseudo-terminal as stdin, stdout and
/// stderr (util-linux `script`); returns everything written to it.
async fn under_pty(spec: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let plugins = e2e::plugins_dir();
    // The host's usual test environment, on a terminal that takes colours.
    let host = e2e::host!()
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied());
    let mut cmd = vec![
        shell_quote(&host.bin().display().to_string()),
        "run".into(),
        shell_quote(&spec.display().to_string()),
        "--plugins".into(),
        shell_quote(&plugins.display().to_string()),
    ];
    cmd.extend(extra.iter().map(|a| shell_quote(a)));
    let mut script = tokio::process::Command::new("script");
    script
        .args(["-q", "-e", "-c", &cmd.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in host.env_vars() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        script.output(),
    )
    .await
    .expect("host run under a pty timed out")
    .unwrap_or_else(|e| {
        panic!("cannot start util-linux `script` ({e}); the terminal tests need it (apt-get install bsdutils / util-linux)")
    });
    let all = text(&out.stdout);
    assert!(
        out.status.success(),
        "host run under a pty failed ({:?}):\n{all}\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    all
}

/// `ESC [ n A`: cursor up.
fn has_cursor_up(s: &str) -> bool {
    s.split("\x1b[").skip(1).any(|rest| {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        digits > 0 && rest[digits..].starts_with('A')
    })
}

/// `ESC [ … m`: a colour or style.
fn has_sgr(s: &str) -> bool {
    s.split("\x1b[").skip(1).any(|rest| {
        let params = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == ';')
                .len();
        rest[params..].starts_with('m')
    })
}

/// The frames of the live area: what is drawn after each `clear to end`.
fn frames(s: &str) -> Vec<String> {
    s.split("\x1b[J")
        .skip(1)
        .map(|f| f.replace("\r\n", "\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn live_progress_on_a_terminal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_server, spec) = slow_workflow(tmp.path()).await;
    let out = under_pty(&spec, &[], &[]).await;
    assert!(has_cursor_up(&out), "no redraw in place:\n{out:?}");
    assert!(
        has_sgr(&out),
        "colour on a terminal without NO_COLOR:\n{out:?}"
    );
    let frames = frames(&out);
    let plain: Vec<String> = frames.iter().map(|f| strip_sgr(f)).collect();
    assert!(
        plain.iter().any(|f| f.contains("stage 1/2 fan · parallel")
            && f.contains(" fast   [0] done")
            && f.contains(" slow   [2] running")),
        "no frame shows one branch done and another running:\n{plain:#?}"
    );
    assert!(
        plain
            .iter()
            .any(|f| f.contains("1 turn") && f.contains("tokens")),
        "{plain:#?}"
    );
    let end = plain.last().expect("frames");
    assert!(end.contains("✓ stage 2/2 write"), "{end}");
    assert!(
        end.contains("✓ completed in ") && end.contains("2 stages · 4 steps · "),
        "no summary:\n{end}"
    );
    // The final output follows, on stdout.
    assert!(end.trim_end().ends_with("written"), "{end}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_color_keeps_the_drawing_but_not_the_colours() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_server, spec) = slow_workflow(tmp.path()).await;
    let out = under_pty(&spec, &[], &[("NO_COLOR", "1")]).await;
    assert!(has_cursor_up(&out), "{out:?}");
    assert!(!has_sgr(&out), "colour codes despite NO_COLOR:\n{out:?}");
    assert!(out.contains("✓ completed in "), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_progress_and_pipes_get_the_plain_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_server, spec) = slow_workflow(tmp.path()).await;
    let expect_plain = |what: &str, s: &str| {
        assert!(!s.contains('\x1b'), "{what}: escape codes:\n{s:?}");
        for needle in [
            "▸ stage fan (parallel, 3 steps)",
            "  ✓ fast [0] (1 turn, ",
            "  ✓ slow [2] (1 turn, ",
            "▸ stage write (sequential, 1 step)",
            "✓ completed in ",
        ] {
            assert!(s.contains(needle), "{what}: missing `{needle}` in:\n{s}");
        }
    };
    let out = under_pty(&spec, &["--no-progress"], &[]).await;
    expect_plain("--no-progress on a terminal", &out);

    let plugins = e2e::plugins_dir();
    let piped = host(
        &[
            "run",
            spec.to_str().expect("utf-8"),
            "--plugins",
            plugins.to_str().expect("utf-8"),
        ],
        &[],
    );
    ok(&piped);
    expect_plain("piped", &text(&piped.stderr));
    assert_eq!(text(&piped.stdout), "written\n");

    let quiet = under_pty(&spec, &["--quiet"], &[]).await;
    assert_eq!(
        quiet.replace("\r\n", "\n"),
        "written\n",
        "--quiet: the output only"
    );
}

fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let params = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == ';')
                .len();
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            out.push_str("\x1b[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

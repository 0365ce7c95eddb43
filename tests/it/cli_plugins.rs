//! `host plugins list` and `host plugins check`, run as the real binary.

const HOST: &str = env!("CARGO_BIN_EXE_host");

#[test]
fn list_shows_every_example_plugin_with_kinds_and_entries() {
    let out = e2e::run(HOST, &["plugins", "list", "--plugins", "plugins"]);
    let stdout = e2e::stdout(&out);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        e2e::stderr(&out)
    );
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("KINDS") && header.contains("ENTRIES"),
        "{stdout}"
    );
    for (name, kinds, entries) in [
        ("calculator", "tool", "add,multiply,evaluate"),
        ("concat", "reducer", "concat"),
        ("js_collect", "reducer", "js_collect"),
        ("keyword_guard", "guard", "keyword_guard"),
        ("lookup_facts", "tool", "lookup_facts"),
        ("pii_guardrail", "guardrail", "pii_guardrail"),
        ("py_regex_guard", "guard", "py_regex_guard"),
        ("template_mapper", "input_mapper", "template_mapper"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{stdout}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], kinds, "{line}");
        assert_eq!(cols[2], entries, "{line}");
        assert_eq!(cols[3], "0.1.1", "{line}");
    }
}

#[test]
fn list_json_is_machine_readable() {
    let out = e2e::run(HOST, &["plugins", "list", "--plugins", "plugins", "--json"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let plugins = v["plugins"].as_array().expect("plugins array");
    assert_eq!(plugins.len(), crate::common::EXAMPLES.len(), "{v:#}");
    let calc = plugins
        .iter()
        .find(|p| p["name"] == "calculator")
        .expect("calculator");
    assert_eq!(calc["kinds"], serde_json::json!(["tool"]));
    assert_eq!(calc["tools"].as_array().map(Vec::len), Some(3));
    assert_eq!(calc["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(v["errors"], serde_json::json!([]));
}

#[test]
fn list_reports_bad_files_by_name_and_still_lists_the_rest() {
    let out = e2e::run(
        HOST,
        &[
            "plugins",
            "list",
            "--plugins",
            &e2e::guests_dir().display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stdout = e2e::stdout(&out);
    let stderr = e2e::stderr(&out);
    assert!(
        stdout.contains("counter") && stdout.contains("hostile_loop"),
        "{stdout}"
    );
    assert!(
        stderr.contains("no_exports.wasm: exports no known plugin interface"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not_wasm.wasm: not a WebAssembly file"),
        "{stderr}"
    );
}

#[test]
fn check_validates_one_file() {
    let out = e2e::run(HOST, &["plugins", "check", "plugins/calculator.wasm"]);
    let stdout = e2e::stdout(&out);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    assert!(
        stdout.starts_with("ok: plugins/calculator.wasm is plugin `calculator` (WIT 0.1.1"),
        "{stdout}"
    );
    assert!(stdout.contains("tool          evaluate"), "{stdout}");

    let bad = e2e::guest("no_exports");
    let out = e2e::run(HOST, &["plugins", "check", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = e2e::stderr(&out);
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("no_exports.wasm: exports no known plugin interface"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: export `workflow:plugin/describe@0.1.0`"),
        "{stderr}"
    );

    let out = e2e::run(HOST, &["plugins", "check", "does/not/exist.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        e2e::stderr(&out).contains("does/not/exist.wasm: cannot read file"),
        "{}",
        e2e::stderr(&out)
    );
}

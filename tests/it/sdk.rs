//! The plugin SDKs of all five languages: the keyword guard of
//! docs/PLUGINS.md, written once per language, built from source and
//! called through the host (the library's registry and the real `host
//! plugins check --call`); the C reducer; and the doc's code is the code
//! that is built.

use crate::common::{ctx, examples, result, runtime, within};
use host::plugin::{CallErrorKind, Kind};
use serde_json::{Value, json};

/// The doc guard in each language: (plugin, source file).
pub(crate) const GUARDS: [(&str, &str); 5] = [
    ("rs_keywords", "plugins/rs_keywords/src/lib.rs"),
    ("js_keywords", "plugins/js_keywords/keywords.js"),
    ("py_keywords", "plugins/py_keywords/keywords.py"),
    ("go_keywords", "plugins/go_keywords/keywords.go"),
    ("c_keywords", "plugins/c_keywords/keywords.c"),
];

/// `host plugins build` builds the Go and C plugins from source in
/// seconds (the slower languages are built by plugins/build.sh before the
/// tests, with the same rules).
#[test]
fn host_plugins_build_builds_go_and_c_from_source() {
    let out = e2e::host!()
        .in_repo_root()
        .args([
            "plugins",
            "build",
            "go_keywords",
            "c_keywords",
            "c_word_count",
        ])
        .args(["--plugins", "plugins"])
        .output_blocking();
    let stdout = e2e::stdout(&out);
    assert!(out.status.success(), "{stdout}\n{}", e2e::stderr(&out));
    for (name, lang) in [
        ("go_keywords", "go"),
        ("c_keywords", "c"),
        ("c_word_count", "c"),
    ] {
        assert!(
            stdout.contains(&format!("built plugins/{name}.wasm")) && stdout.contains(lang),
            "{stdout}"
        );
    }
}

#[tokio::test]
async fn the_keyword_guard_decides_alike_in_five_languages() {
    let reg = within(600, "load examples", examples()).await;
    let rt = runtime();
    for (name, _) in GUARDS {
        let (plugin, entry) = reg.resolve(name, Kind::Guard).unwrap();
        assert_eq!(entry, name);
        let check = |config: Value, input: Value| {
            let mut c = ctx(config);
            c.entry = entry.clone();
            let (plugin, rt) = (plugin.clone(), rt.clone());
            async move { plugin.guard(&rt, &c, &input, &[]).await }
        };
        let kw = json!({"keywords": ["lisbon", "Porto"]});
        let yes = check(kw.clone(), json!("Plan a trip to LISBON")).await;
        assert!(yes.unwrap().value, "{name}: a keyword, other case");
        let yes = check(kw.clone(), json!({"city": "porto"})).await;
        assert!(yes.unwrap().value, "{name}: a keyword inside a JSON input");
        let no = check(kw.clone(), json!("A week in Paris")).await;
        assert!(!no.unwrap().value, "{name}: no keyword");
        let none = check(json!({}), json!("Lisbon")).await;
        assert!(!none.unwrap().value, "{name}: no keywords configured");
        let describe = &plugin.entries()[0];
        assert_eq!(describe.description, "runs the step on a keyword", "{name}");
    }
    // The SDKs that check the config's type say so in the call's error.
    for name in ["rs_keywords", "go_keywords"] {
        let (plugin, entry) = reg.resolve(name, Kind::Guard).unwrap();
        let mut c = ctx(json!({"keywords": "lisbon"}));
        c.entry = entry;
        let err = plugin.guard(&rt, &c, &json!("x"), &[]).await.unwrap_err();
        assert!(
            matches!(&err.kind, CallErrorKind::Guest(m) if m.contains("config.keywords must be an array of strings")),
            "{name}: {err}"
        );
    }
}

/// The same guards through the real binary: `host plugins check --call`.
#[test]
fn the_keyword_guards_answer_host_plugins_check_calls() {
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("call.json");
    for (input, expect) in [("Lisbon in May", true), ("Paris in May", false)] {
        let body = json!({"kind": "guard", "config": {"keywords": ["lisbon"]}, "input": input, "expect": expect});
        std::fs::write(&call, body.to_string()).unwrap();
        for (name, _) in GUARDS {
            let file = e2e::plugin(name);
            let out = e2e::host!()
                .env("HOST_CACHE_DIR", e2e::test_cache_dir())
                .env("HOST_CACHE_KEY", e2e::test_cache_key())
                .args(["plugins", "check"])
                .arg(&file)
                .arg("--call")
                .arg(&call)
                .output_blocking();
            let stdout = e2e::stdout(&out);
            assert!(
                out.status.success(),
                "{name}: {stdout}\n{}",
                e2e::stderr(&out)
            );
            assert!(
                stdout.contains(&format!("ok, {expect}")),
                "{name}: {stdout}"
            );
        }
    }
    // A wrong expectation fails the check (exit 1) and says what came back.
    let body = json!({"kind": "guard", "config": {"keywords": ["lisbon"]}, "input": "Lisbon", "expect": false});
    std::fs::write(&call, body.to_string()).unwrap();
    let out = e2e::host!()
        .env("HOST_CACHE_DIR", e2e::test_cache_dir())
        .env("HOST_CACHE_KEY", e2e::test_cache_key())
        .args(["plugins", "check"])
        .arg(e2e::plugin("c_keywords"))
        .arg("--call")
        .arg(&call)
        .output_blocking();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        e2e::stderr(&out).contains("expected false, got true"),
        "{}",
        e2e::stderr(&out)
    );
}

#[tokio::test]
async fn the_c_reducer_counts_words_per_branch() {
    let reg = within(600, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg.resolve("c_word_count", Kind::Reducer).unwrap();
    let mut skipped = result("fan", "skipped", Some(2), Value::Null);
    skipped.skipped = true;
    let mut failed = result("fan", "failed", Some(3), Value::Null);
    failed.error = Some("timeout".into());
    let outputs = [
        result("fan", "writer", Some(0), json!("three short words")),
        result("fan", "critic", Some(1), json!({"note": "ok — fine"})),
        skipped,
        failed,
    ];
    let mut c = ctx(json!({}));
    c.entry = entry.clone();
    let out = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap();
    assert_eq!(
        out.value,
        json!({"total": 6, "branches": {"writer": 3, "critic": 3}, "longest": "writer"})
    );
    c.config = json!({"min_words": 7});
    let err = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap_err();
    assert!(
        matches!(&err.kind, CallErrorKind::Guest(m) if m.contains("6 words, fewer than min_words 7")),
        "{err}"
    );
    c.config = json!({"min_words": "many"});
    let err = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("min_words must be a non-negative number"),
        "{err}"
    );
}

/// docs/PLUGINS.md shows each guard right after a `<!-- file: PATH -->`
/// line; the block must be that file, byte for byte.
#[test]
fn the_docs_show_the_guards_that_are_built() {
    let root = e2e::repo_root();
    let doc = std::fs::read_to_string(root.join("docs/PLUGINS.md")).unwrap();
    for (name, path) in GUARDS {
        let marker = format!("<!-- file: {path} -->");
        let at = doc
            .find(&marker)
            .unwrap_or_else(|| panic!("docs/PLUGINS.md has no {marker} for {name}"));
        let rest = &doc[at + marker.len()..];
        let open = rest.find("```").expect("a code block after the marker");
        let body_start = open + rest[open..].find('\n').expect("fence line") + 1;
        let body_end = body_start + rest[body_start..].find("\n```").expect("closing fence") + 1;
        let shown = &rest[body_start..body_end];
        let file = std::fs::read_to_string(root.join(path)).unwrap();
        assert_eq!(shown, file, "docs/PLUGINS.md shows another {path}");
        let lines = file.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(lines <= 15, "{path}: {lines} lines");
    }
}

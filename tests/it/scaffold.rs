//! `host plugins new` → `host plugins build` → `host plugins check --call`:
//! the scaffold of each language (one kind each, five kinds in all) builds
//! from source and answers its own test input as it is.

use std::path::Path;

fn host(dir: &Path, args: &[&str]) -> std::process::Output {
    e2e::host!()
        .current_dir(dir)
        .env("HOST_SDK_DIR", e2e::repo_root())
        .env("HOST_CACHE_DIR", e2e::test_cache_dir())
        .env("HOST_CACHE_KEY", e2e::test_cache_key())
        // Rust scaffolds share the repository's build of their dependencies.
        .env("CARGO_TARGET_DIR", e2e::target_dir())
        .args(args)
        .output_blocking()
}

#[track_caller]
fn ok(out: &std::process::Output) -> String {
    let stdout = e2e::stdout(out);
    assert!(out.status.success(), "{stdout}\n{}", e2e::stderr(out));
    stdout
}

#[test]
fn each_language_scaffold_builds_and_passes_its_test_input() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("c", "guard", "p_c"),
        ("go", "input-mapper", "p_go"),
        ("js", "reducer", "p_js"),
        ("rust", "tool", "p_rust"),
        ("python", "guardrail", "p_python"),
    ];
    for (lang, kind, name) in cases {
        let created = ok(&host(
            dir.path(),
            &[
                "plugins",
                "new",
                name,
                "--lang",
                lang,
                "--kind",
                kind,
                "--plugins",
                ".",
            ],
        ));
        assert!(
            created.contains("test-input.json") && created.contains("README.md"),
            "{created}"
        );
        let readme = std::fs::read_to_string(dir.path().join(name).join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("host plugins build {name}")),
            "{readme}"
        );
    }
    // Every folder at once, as `host plugins build` without names does.
    let built = ok(&host(dir.path(), &["plugins", "build", "--plugins", "."]));
    for (lang, kind, name) in cases {
        assert!(built.contains(&format!("built ./{name}.wasm")), "{built}");
        let wasm = format!("{name}.wasm");
        let call = format!("{name}/test-input.json");
        let checked = ok(&host(
            dir.path(),
            &[
                "plugins",
                "check",
                &wasm,
                "--call",
                &call,
                "--timeout-ms",
                "10000",
            ],
        ));
        let kind_word = kind.replace('-', "_");
        assert!(
            checked.contains(&format!("{kind_word:<13} {name}")) && checked.contains(": ok, "),
            "{lang}: {checked}"
        );
    }
    // A scaffold never overwrites: the same name again is refused.
    let again = host(
        dir.path(),
        &[
            "plugins",
            "new",
            "p_c",
            "--lang",
            "c",
            "--kind",
            "guard",
            "--plugins",
            ".",
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        e2e::stderr(&again).contains("already exists"),
        "{}",
        e2e::stderr(&again)
    );
}

#[test]
fn a_build_error_is_shown_and_the_previous_component_stays() {
    let dir = tempfile::tempdir().unwrap();
    ok(&host(
        dir.path(),
        &[
            "plugins",
            "new",
            "g",
            "--lang",
            "c",
            "--kind",
            "guard",
            "--plugins",
            ".",
        ],
    ));
    ok(&host(
        dir.path(),
        &["plugins", "build", "g", "--plugins", "."],
    ));
    let before = std::fs::read(dir.path().join("g.wasm")).unwrap();
    std::fs::write(dir.path().join("g/g.c"), "this is not C\n").unwrap();
    let out = host(dir.path(), &["plugins", "build", "g", "--plugins", "."]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = e2e::stderr(&out);
    assert!(
        stderr.contains("building plugin `g` (c) failed") && stderr.contains("g.c:1"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.path().join("g.wasm")).unwrap(), before);
    assert!(!dir.path().join(".g.wasm.building").exists());
}

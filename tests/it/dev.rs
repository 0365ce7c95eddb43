//! `host dev`: a recorded run, a plugin's source edited, the plugin rebuilt
//! and the run replayed with it — the new output printed well within a
//! second of the build finishing, and not one request at the model server.
//! A build error is shown and the previous component stays.

use e2e::mock;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

/// Reads lines until one contains `needle`; every line read, and when the
/// last one came.
async fn until(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> (Vec<String>, Instant) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(180), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no `{needle}` in:\n{}",
        seen.join("\n")
    );
    (seen, Instant::now())
}

fn host_in(dir: &Path, db: &Path) -> e2e::HostCmd {
    e2e::host!()
        .current_dir(dir)
        .db(db)
        .env("HOST_SDK_DIR", e2e::repo_root())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_reducer_is_rebuilt_and_the_run_replayed_without_model_calls() {
    let server = mock(json!({})).await;
    let db = e2e::fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let new = [
        "plugins", "new", "joiner", "--lang", "c", "--kind", "reducer",
    ];
    host_in(root, &db).args(new).ran().await.ok();
    host_in(root, &db)
        .args(["plugins", "build", "joiner"])
        .ran()
        .await
        .ok();
    let spec = json!({
        "providers": {"openai": {"type": "openai", "api": "responses"}},
        "agents": {
            "a": {"instructions": "Say one thing.", "model": {"provider": "openai", "name": "gpt-4.1-mini"}},
            "b": {"instructions": "Say another.", "model": {"provider": "openai", "name": "gpt-4.1-mini"}}
        },
        "workflow": {"key": "dev_loop", "stages": [
            {"name": "fan", "mode": "parallel", "steps": [{"agent": "a"}, {"agent": "b"}],
             "reducer": {"plugin": "joiner"}}
        ]},
        "run": {"input": "a topic"}
    });
    let spec = e2e::write_spec(root, &spec);
    let spec = spec.to_str().expect("utf-8");
    let recorded = host_in(root, &db)
        .env("OPENAI_BASE_URL", server.base_url())
        .args(["run", spec, "--plugins", "plugins", "--no-progress"])
        .ran()
        .await;
    recorded.ok();
    let original = recorded.stdout.trim().to_owned();
    assert!(original.contains('\n'), "joined one a line: {original}");
    assert_eq!(server.requests().len(), 2);
    server.reset();

    let mut child = host_in(root, &db)
        .env("OPENAI_BASE_URL", server.base_url())
        .args(["dev", spec, "--plugins", "plugins"])
        .tokio()
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("host dev");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (first, _) = until(&mut lines, "watching for changes").await;
    let first = first.join("\n");
    assert!(first.contains("final output unchanged"), "{first}");

    // The edit: branches joined with `|` instead of a newline.
    let source = root.join("plugins/joiner/joiner.c");
    let code = std::fs::read_to_string(&source).unwrap();
    assert!(code.contains(r#"strcat(joined, "\n")"#), "{code}");
    std::fs::write(
        &source,
        code.replace(r#"strcat(joined, "\n")"#, r#"strcat(joined, "|")"#),
    )
    .unwrap();
    let (build, built_at) = until(&mut lines, "built ").await;
    assert!(
        build.iter().any(|l| l.contains("change in joiner")),
        "{build:?}"
    );
    let (replay, printed_at) = until(&mut lines, "replayed in").await;
    let after_build = printed_at - built_at;
    eprintln!(
        "host dev: new output printed {} ms after the build finished",
        after_build.as_millis()
    );
    assert!(after_build < Duration::from_secs(1), "{after_build:?}");
    let replay = replay.join("\n");
    let joined = original.replace('\n', "|");
    assert!(replay.contains(&format!("output: {joined}")), "{replay}");
    assert!(
        replay.contains("final output CHANGED") && replay.contains("changed reducer: fan"),
        "{replay}"
    );
    assert!(replay.contains("with zero model calls"), "{replay}");

    // A build error: shown, and the component of the last good build stays.
    let good = std::fs::read(root.join("plugins/joiner.wasm")).unwrap();
    std::fs::write(&source, "not C at all\n").unwrap();
    let (failed, _) = until(&mut lines, "the previous build stays in place").await;
    let failed = failed.join("\n");
    assert!(
        failed.contains("building plugin `joiner` (c) failed"),
        "{failed}"
    );
    assert_eq!(
        std::fs::read(root.join("plugins/joiner.wasm")).unwrap(),
        good
    );

    assert_eq!(server.requests().len(), 0, "host dev made a model request");
    child.kill().await.expect("kill host dev");
}

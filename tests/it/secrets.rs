//! Secrets and files a spec must not reach (docs/SECURITY.md, issue 15
//! items 1, 2 and 10): the operator's keys go only to base URLs the
//! operator paired them with; secret values are never stored in clear; a
//! spec's files stay in its folder; what the host creates is its owner's.
//!
//! Every test drives the real `host` binary; the "attacker" endpoint is a
//! real TCP listener on loopback that records what reaches it.

use e2e::{Ran, TestContext};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The operator's own OpenAI key in these tests: it must never leave.
const OPERATOR_KEY: &str = "sk-operator-SECRET-7f3a";

/// A loopback listener that records the head (request line and headers)
/// of every request and answers `400` with no body.
struct Listener {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    async fn start() -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1", socket.local_addr().expect("addr"));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = socket.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Listener { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asserts that no request carried `secret` (in any header).
    #[track_caller]
    fn got_no(&self, secret: &str) {
        let heads = self.heads();
        assert!(
            heads.iter().all(|h| !h.contains(secret)),
            "the listener received the secret: {heads:#?}"
        );
    }
}

/// A one-agent native spec on `provider`, with no retries.
fn native(provider: Value) -> Value {
    json!({
        "providers": {"p": provider},
        "agents": {"a": {"instructions": "hi", "model": {"provider": "p", "name": "m"}}},
        "workflow": {"steps": [{"agent": "a"}]},
        "run": {"input": "hello"}
    })
}

/// `host run` of `spec` (written in the context's folder) with `env` and
/// extra arguments, an empty plugins folder, the operator's key set.
async fn run(cx: &TestContext, spec: &Value, env: &[(&str, &str)], extra: &[&str]) -> Ran {
    let path = cx.write_spec(spec);
    let plugins = cx.dir().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    cx.host()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(&plugins)
        .args(["--quiet", "--no-progress"])
        .args(extra)
        .env("OPENAI_API_KEY", OPERATOR_KEY)
        .envs(env.iter().copied())
        .ran()
        .await
}

/// Asserts a refusal before any request: exit 2 and `path` in the error.
#[track_caller]
fn refused_at(ran: &Ran, path: &str) {
    assert_eq!(ran.code(), Some(2), "expected a refusal:\n{}", ran.stderr);
    assert!(
        ran.stderr.contains(path),
        "the error names {path}:\n{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("--credential") || ran.stderr.contains("api_key"),
        "the error says what to do:\n{}",
        ran.stderr
    );
}

// ------------------------------------------------- keys go where paired

#[tokio::test]
async fn an_openai_provider_with_a_spec_base_url_gets_no_operator_key() {
    let cx = e2e::test_context!();
    let attacker = Listener::start().await;
    let spec = native(json!({"type": "openai", "base_url": attacker.url,
        "retry": {"max_attempts": 1}}));
    let ran = run(&cx, &spec, &[], &[]).await;
    refused_at(&ran, "$.providers.p.base_url");
    attacker.got_no(OPERATOR_KEY);
}

#[tokio::test]
async fn api_key_env_may_not_name_any_variable() {
    let cx = e2e::test_context!();
    let attacker = Listener::start().await;
    let home = "/home/SECRET-home-91c2";
    let spec = native(
        json!({"type": "openai_compatible", "base_url": attacker.url,
        "api_key_env": "HOME", "retry": {"max_attempts": 1}}),
    );
    let ran = run(&cx, &spec, &[("HOME", home)], &[]).await;
    refused_at(&ran, "$.providers.p.api_key_env");
    attacker.got_no(home);
    attacker.got_no(OPERATOR_KEY);
    // Naming OPENAI_API_KEY itself is no way around it.
    let spec = native(
        json!({"type": "openai_compatible", "base_url": attacker.url,
        "api_key_env": "OPENAI_API_KEY", "retry": {"max_attempts": 1}}),
    );
    let ran = run(&cx, &spec, &[], &[]).await;
    refused_at(&ran, "$.providers.p.api_key_env");
    attacker.got_no(OPERATOR_KEY);
}

#[tokio::test]
async fn a_go_request_with_only_a_base_url_gets_no_operator_key() {
    let cx = e2e::test_context!();
    let attacker = Listener::start().await;
    let request = json!({
        "query": "hi",
        "session": {"session_id": "s", "credentials": {"user_id": "u", "account_id": "a",
            "base_url": attacker.url}},
        "callback": {"mode": "stdout"},
        "workflow": {"name": "x", "starting_agent": "a",
            "agents": [{"name": "a", "model": {"model": "gpt-4o"}}]}
    });
    let ran = run(&cx, &request, &[], &[]).await;
    refused_at(&ran, "$.session.credentials.base_url");
    attacker.got_no(OPERATOR_KEY);
    assert!(attacker.heads().is_empty(), "no request at all");
}

#[tokio::test]
async fn a_go_request_s_own_key_goes_to_its_own_base_url() {
    let cx = e2e::test_context!();
    let endpoint = Listener::start().await;
    let request = json!({
        "query": "hi",
        "session": {"session_id": "s", "credentials": {"user_id": "u", "account_id": "a",
            "base_url": endpoint.url, "api_key": "sk-request-own-key"}},
        "callback": {"mode": "stdout"},
        "workflow": {"name": "x", "starting_agent": "a",
            "agents": [{"name": "a", "model": {"model": "gpt-4o"}}]}
    });
    let ran = run(&cx, &request, &[], &[]).await;
    assert_eq!(
        ran.code(),
        Some(1),
        "the endpoint answers 400:\n{}",
        ran.stderr
    );
    let heads = endpoint.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("bearer sk-request-own-key")),
        "the request's key arrived: {heads:#?}"
    );
    endpoint.got_no(OPERATOR_KEY);
}

#[tokio::test]
async fn a_pair_the_operator_declares_sends_the_key() {
    let cx = e2e::test_context!();
    let endpoint = Listener::start().await;
    let key = "sk-paired-key-55";
    let spec = native(
        json!({"type": "openai_compatible", "base_url": endpoint.url,
        "api_key_env": "PAIRED_KEY", "retry": {"max_attempts": 1}}),
    );
    // On the command line.
    let pair = format!("PAIRED_KEY={}", endpoint.url);
    let ran = run(&cx, &spec, &[("PAIRED_KEY", key)], &["--credential", &pair]).await;
    assert_eq!(
        ran.code(),
        Some(1),
        "the endpoint answers 400:\n{}",
        ran.stderr
    );
    let bearer = format!("bearer {key}");
    let received = |l: &Listener| {
        l.heads()
            .iter()
            .filter(|h| h.to_ascii_lowercase().contains(&bearer))
            .count()
    };
    assert_eq!(received(&endpoint), 1, "{:#?}", endpoint.heads());
    // In the host config file.
    let config = cx.dir().join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[[credentials.pair]]\nbase_url = \"{}/\"\napi_key_env = \"PAIRED_KEY\"\n",
            endpoint.url
        ),
    )
    .expect("write config");
    let config = config.display().to_string();
    let ran = run(&cx, &spec, &[("PAIRED_KEY", key)], &["--config", &config]).await;
    assert_eq!(
        ran.code(),
        Some(1),
        "the endpoint answers 400:\n{}",
        ran.stderr
    );
    assert_eq!(received(&endpoint), 2, "{:#?}", endpoint.heads());
    endpoint.got_no(OPERATOR_KEY);
}

// ------------------------------------------- secret values never stored

/// Every file of the run database (`-wal` too) is free of `secrets`.
#[track_caller]
pub(crate) fn db_holds_none(db: &Path, secrets: &[&str]) {
    let name = db.file_name().and_then(|n| n.to_str()).expect("db name");
    let dir = db.parent().expect("db dir");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read db dir").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.starts_with(name) {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(entry.path()).expect("read db file");
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} is stored in {file}");
        }
    }
    assert!(files > 0, "no database file at {}", db.display());
}

/// `examples/simple_assistant` (a Go request, offline) with the calculator
/// tool in `dir`, changed by `edit`; returns the spec's path.
fn go_example(dir: &Path, edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let example = e2e::repo_root().join("examples/simple_assistant");
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(example.join("spec.json")).expect("spec"))
            .expect("spec json");
    spec["workflow"]["agents"][0]["tools"] = json!([{"type": "plugin", "name": "calculator"}]);
    edit(&mut spec);
    let script = json!({"replies": [
        {"when": {"agent": "assistant", "has_tool_result": false},
         "reply": {"tool_calls": [{"name": "evaluate", "arguments": {"expression": "12 * 7 + 5"}}]}},
        {"when": {"agent": "assistant"}, "reply": {"text": "12 × 7 + 5 = {{tool_output}}."}}
    ]});
    std::fs::write(dir.join("script.json"), script.to_string()).expect("script");
    let path = dir.join("spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    path
}

#[tokio::test]
async fn header_values_and_inline_keys_are_not_in_the_run_database() {
    let cx = e2e::test_context!();
    let hook = Listener::start().await;
    // A Go request with its own key, a signed callback with a header, and
    // a model header.
    let spec = go_example(cx.dir(), |spec| {
        spec["session"]["credentials"]["api_key"] = json!("sk-inline-SECRET-1");
        spec["callback"] = json!({"target": format!("{}/hook", hook.url),
            "secret": "hook-SECRET-2", "headers": {"Authorization": "Bearer cb-SECRET-3"}});
        spec["workflow"]["agents"][0]["model"] =
            json!({"model": "gpt-4.1-mini", "extra_headers": {"api-key": "xh-SECRET-4"}});
    });
    let ran = cx
        .host()
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(["--offline", "--quiet", "--deliver-timeout", "5"])
        .ran()
        .await;
    ran.ok();
    db_holds_none(
        cx.db(),
        &[
            "sk-inline-SECRET-1",
            "hook-SECRET-2",
            "cb-SECRET-3",
            "xh-SECRET-4",
        ],
    );
    // The header still went out, from this process's memory.
    let heads = hook.heads();
    assert!(
        heads.iter().any(|h| h.contains("Bearer cb-SECRET-3")),
        "the callback got its header: {heads:#?}"
    );

    // A native spec's callback headers and model headers too.
    let dir = cx.dir().join("native");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let example = e2e::repo_root().join("examples/analysis_parallel");
    let mut native: Value =
        serde_json::from_str(&std::fs::read_to_string(example.join("spec.json")).expect("spec"))
            .expect("json");
    native["run"]["callback"] = json!([{"type": "http", "url": format!("{}/hook", hook.url),
        "headers": {"X-Token": "native-cb-SECRET-5"}}]);
    for agent in native["agents"]
        .as_object_mut()
        .expect("agents")
        .values_mut()
    {
        let name = agent["model"].as_str().map(str::to_string);
        if let Some(name) = name {
            agent["model"] =
                json!({"name": name, "extra_headers": {"api-key": "native-xh-SECRET-6"}});
        } else {
            agent["model"]["extra_headers"] = json!({"api-key": "native-xh-SECRET-6"});
        }
    }
    std::fs::copy(example.join("script.json"), dir.join("script.json")).expect("script");
    let path = dir.join("spec.json");
    std::fs::write(&path, native.to_string()).expect("write");
    let ran = cx
        .host()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(["--offline", "--quiet", "--deliver-timeout", "5"])
        .ran()
        .await;
    ran.ok();
    db_holds_none(cx.db(), &["native-cb-SECRET-5", "native-xh-SECRET-6"]);
}

#[tokio::test]
async fn a_resume_needs_the_secrets_the_database_does_not_hold() {
    let cx = e2e::test_context!();
    let spec = go_example(cx.dir(), |spec| {
        spec["session"]["credentials"]["api_key"] = json!("sk-inline-SECRET-7");
        spec["workflow"]["agents"][0]["tools"] =
            json!([{"type": "plugin", "name": "calculator", "require_approval": "always"}]);
    });
    let original = cx.dir().join("original.json");
    std::fs::copy(&spec, &original).expect("keep the original");
    let ran = cx
        .host()
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(["--offline", "--no-progress"])
        .ran()
        .await;
    assert_eq!(
        ran.code(),
        Some(3),
        "the run waits for approval:\n{}",
        ran.stderr
    );
    let run_id = ran.run_id();
    let call = ran
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("call "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no call line:\n{}", ran.stderr))
        .to_string();
    cx.host().args(["approve", &run_id, &call]).ran().await.ok();
    db_holds_none(cx.db(), &["sk-inline-SECRET-7"]);

    // The file it ran from changed: no silent resume without the key.
    std::fs::write(&spec, "{}").expect("overwrite");
    let ran = cx.host().args(["resume", &run_id, "--quiet"]).ran().await;
    assert_eq!(ran.code(), Some(1), "refused:\n{}", ran.stderr);
    assert!(
        ran.stderr.contains("$.session.credentials.api_key") && ran.stderr.contains("--spec"),
        "says what was not stored and what to do:\n{}",
        ran.stderr
    );

    // The operator gives the original: it resumes with the request's key.
    let ran = cx
        .host()
        .args(["resume", &run_id, "--quiet", "--spec"])
        .arg(&original)
        .ran()
        .await;
    ran.ok();
    assert!(ran.stdout.contains("89"), "{}", ran.stdout);
}

// ------------------------------------------------ files a spec may name

#[tokio::test]
async fn a_spec_cannot_append_to_a_file_outside_its_folder() {
    let cx = e2e::test_context!();
    let home = cx.dir().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let bashrc = home.join(".bashrc");
    std::fs::write(&bashrc, "# mine\n").expect("bashrc");
    let folder = cx.dir().join("spec");
    std::fs::create_dir_all(&folder).expect("spec folder");
    std::os::unix::fs::symlink(&home, folder.join("link")).expect("symlink");
    for path in [
        bashrc.display().to_string(),
        "../home/.bashrc".to_string(),
        "link/.bashrc".to_string(),
    ] {
        let spec = go_example(&folder, |_| {});
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&spec).expect("read")).expect("json");
        // A native spec: the Go shape has no jsonl callbacks.
        doc = json!({
            "agents": {"assistant": {"instructions": "x", "model": "gpt-4.1-mini"}},
            "workflow": {"steps": [{"agent": "assistant"}]},
            "run": {"input": doc["query"], "callback": [{"type": "jsonl", "path": path}]}
        });
        std::fs::write(&spec, doc.to_string()).expect("write");
        let ran = cx
            .host()
            .arg("run")
            .arg(&spec)
            .arg("--plugins")
            .arg(e2e::plugins_dir())
            .args(["--offline", "--quiet"])
            .ran()
            .await;
        assert_eq!(ran.code(), Some(2), "{path} refused:\n{}", ran.stderr);
        assert!(
            ran.stderr.contains("$.run.callback[0].path"),
            "{path}: the error names the JSON path:\n{}",
            ran.stderr
        );
        let validated = cx.host().arg("validate").arg(&spec).ran().await;
        assert_eq!(validated.code(), Some(2), "{}", validated.stderr);
        assert!(validated.stderr.contains("$.run.callback[0].path"));
    }
    assert_eq!(
        std::fs::read_to_string(&bashrc).expect("bashrc"),
        "# mine\n",
        "nothing appended"
    );
}

#[tokio::test]
async fn a_spec_s_script_stays_in_its_folder() {
    let cx = e2e::test_context!();
    let outside = cx.dir().join("secret.json");
    std::fs::write(&outside, r#"{"replies": []}"#).expect("write");
    let folder = cx.dir().join("spec");
    std::fs::create_dir_all(&folder).expect("spec folder");
    for script in [outside.display().to_string(), "../secret.json".to_string()] {
        let spec = json!({
            "providers": {"p": {"type": "scripted", "script": script}},
            "agents": {"a": {"instructions": "x", "model": {"provider": "p", "name": "m"}}},
            "workflow": {"steps": [{"agent": "a"}]},
            "run": {"input": "hi"}
        });
        let path = e2e::write_spec(&folder, &spec);
        let ran = cx.host().arg("validate").arg(&path).ran().await;
        assert_eq!(ran.code(), Some(2), "{script} refused:\n{}", ran.stderr);
        assert!(
            ran.stderr.contains("$.providers.p.script"),
            "{script}: the error names the JSON path:\n{}",
            ran.stderr
        );
    }
}

#[tokio::test]
async fn what_the_host_creates_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let cx = e2e::test_context!();
    let spec = go_example(cx.dir(), |_| {});
    let db_dir = cx.dir().join("state").join("host");
    let db = db_dir.join("runs.db");
    let events = cx.dir().join("events.jsonl");
    let ran = cx
        .host()
        .db(&db)
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(["--offline", "--quiet", "--callback"])
        .arg(format!("jsonl:{}", events.display()))
        .ran()
        .await;
    ran.ok();
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&db_dir), 0o700, "the database's new folder");
    assert_eq!(mode(&cx.dir().join("state")), 0o700, "and its new parent");
    assert_eq!(mode(&db), 0o600, "the database");
    let wal = db_dir.join("runs.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "its write-ahead log");
    }
    assert_eq!(mode(&events), 0o600, "the events file");
}

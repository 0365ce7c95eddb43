//! Where the host's own HTTP requests may go, and what their errors and
//! logs may show (issue 15, items 3 and 11, and the inline-secret part of
//! item 2): real `host` runs against real loopback listeners.
//!
//! - A provider that echoes the API key in a 500 never gets it onto stderr;
//!   a base URL's `user:pass@` never appears; an error body is cut short.
//! - A callback answering `307` to a second listener: the second listener
//!   gets nothing, the event is dead, and the webhook's query never shows.
//! - Link-local and metadata destinations are refused always; loopback
//!   only with the operator's allowance (flag, variable or config file),
//!   also when a name resolves to it.
//! - Spec headers cannot set the callback's reserved headers.
//! - Two runs' inline secrets for one URL never sign each other's events.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use e2e::{ALLOW_EGRESS_ENV, HostCmd, Ran, mock};
use hmac::{Hmac, Mac};
use host::egress::Egress;
use host::outbox::{Deliverer, OutboxConfig, Until};
use host::secret::Secret;
use host::store::{NewOutboxEntry, OutboxState, OutboxStore, OutboxTarget, SqliteStore, Store};
use serde_json::{Value, json};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-egress-test-9f8e7d6c5b4a3210";

// ------------------------------------------------------------ a listener

/// One request a [`Listener`] got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// What a listener answers: status, extra headers, body.
type Answer = Arc<dyn Fn(&Got) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

#[derive(Clone)]
struct Listener {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Listener {
    async fn start(answer: Answer) -> Listener {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let app = Router::new()
            .fallback(record)
            .with_state((got.clone(), answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Listener { port, got }
    }

    /// Answers 200 `{}` to everything.
    async fn ok() -> Listener {
        Listener::start(Arc::new(|_| (200, vec![], "{}".into()))).await
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }
}

async fn record(
    State((got, answer)): State<(Arc<Mutex<Vec<Got>>>, Answer)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Got {
        path: uri.to_string(),
        headers,
        body,
    };
    let (status, extra, body) = answer(&request);
    got.lock().expect("lock").push(request);
    let mut response = (StatusCode::from_u16(status).expect("status"), body).into_response();
    for (name, value) in extra {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

// ------------------------------------------------------------- the host

/// A one-agent workflow on provider `p` (given as JSON).
fn model_spec(provider: Value) -> Value {
    json!({
        "providers": {"p": provider},
        "agents": {"a": {"instructions": "Be terse.", "model": {"provider": "p", "name": "gpt-4.1-mini"}}},
        "workflow": {"key": "g", "steps": [{"agent": "a"}]},
    })
}

fn fast_retry() -> Value {
    json!({"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 5})
}

async fn run(cx: &e2e::TestContext, spec: &Value, cmd: impl FnOnce(HostCmd) -> HostCmd) -> Ran {
    let path = cx.write_spec(spec);
    let base = cx
        .host()
        .env_remove("RUST_LOG")
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(["--input", "hello"]);
    cmd(base).ran().await
}

// ------------------------------------------------- item 3: redaction

#[tokio::test(flavor = "multi_thread")]
async fn a_key_echoed_by_a_failing_provider_never_reaches_stderr() {
    let echo = Listener::start(Arc::new(|got: &Got| {
        let auth = got
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = json!({"error": {"message": format!("bad header Authorization: {auth}"), "type": "server_error"}});
        (500, vec![], body.to_string())
    }))
    .await;
    let cx = e2e::test_context!();
    let spec = model_spec(json!({"type": "openai", "retry": fast_retry(), "timeout_ms": 5000}));
    let base = format!("http://127.0.0.1:{}/v1", echo.port);
    let ran = run(&cx, &spec, |c| {
        c.env("OPENAI_API_KEY", KEY).env("OPENAI_BASE_URL", &base)
    })
    .await;
    assert_ne!(ran.code(), Some(0), "the run cannot succeed");
    assert_eq!(echo.got().len(), 2, "two attempts");
    assert!(
        echo.got()[0]
            .headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap_or("").contains(KEY)),
        "the key was sent, so the server echoed it"
    );
    assert!(
        ran.stderr.contains("retrying"),
        "the retry warning is shown at the default level:\n{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains(KEY), "key on stderr:\n{}", ran.stderr);
    assert!(!ran.stdout.contains(KEY), "key on stdout:\n{}", ran.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_a_base_url_never_appear_and_error_bodies_are_cut_short() {
    // Nothing listens: a connection error, which names where it went.
    let cx = e2e::test_context!();
    let url = format!(
        "http://user:hunter2-url-pass@127.0.0.1:{}/v1",
        closed_port()
    );
    let spec =
        model_spec(json!({"type": "openai_compatible", "base_url": url, "retry": fast_retry()}));
    let ran = run(&cx, &spec, |c| c).await;
    assert_ne!(ran.code(), Some(0));
    assert!(ran.stderr.contains("cannot reach"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("hunter2-url-pass"),
        "password on stderr:\n{}",
        ran.stderr
    );

    // A service that is not a model API: only a short excerpt of its error
    // page comes back.
    let page = format!("{}INTERNAL-DETAIL-AFTER-250", "x".repeat(250));
    let service = Listener::start(Arc::new(move |_| (400, vec![], page.clone()))).await;
    let spec = model_spec(json!({
        "type": "openai_compatible",
        "base_url": format!("http://127.0.0.1:{}/v1", service.port),
    }));
    let ran = run(&cx, &spec, |c| c).await;
    assert_ne!(ran.code(), Some(0));
    assert!(ran.stderr.contains("HTTP 400"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("INTERNAL-DETAIL"),
        "the error page was echoed:\n{}",
        ran.stderr
    );
}

// ------------------------------------------ item 11: where requests go

/// `examples/analysis_parallel` (offline) in `dir` with an `http` callback.
fn spec_with_callback(dir: &Path, callback: Value) -> PathBuf {
    let example = e2e::repo_root().join("examples/analysis_parallel");
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(example.join("spec.json")).expect("read"))
            .expect("json");
    spec["run"]["callback"] = json!([callback]);
    std::fs::copy(example.join("script.json"), dir.join("script.json")).expect("copy script");
    let path = dir.join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("write spec");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_redirect_is_not_followed() {
    let b = Listener::ok().await;
    let target = format!("http://127.0.0.1:{}/internal", b.port);
    let a = Listener::start(Arc::new(move |_| {
        (307, vec![("location", target.clone())], String::new())
    }))
    .await;
    let cx = e2e::test_context!();
    let url = format!("http://127.0.0.1:{}/hook?token=webhook-token-77", a.port);
    let spec = spec_with_callback(
        cx.dir(),
        json!({"type": "http", "url": url, "secret_env": "EGRESS_HOOK_SECRET", "headers": {"X-Team": "qa"}}),
    );
    let ran = cx
        .host()
        .env_remove("RUST_LOG")
        .env("EGRESS_HOOK_SECRET", "hook-secret")
        .args(["run"])
        .arg(&spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(["--offline", "--deliver-timeout", "5"])
        .ran()
        .await;
    ran.ok();
    assert!(!a.got().is_empty(), "the endpoint was called");
    assert!(
        b.got().is_empty(),
        "the redirect target got {} request(s)",
        b.got().len()
    );
    let store = SqliteStore::open(cx.db()).expect("db");
    let entries = store
        .outbox_entries(&host::store::Scope::Operator, None, None, None)
        .await
        .expect("entries");
    assert!(!entries.is_empty());
    for e in &entries {
        assert_eq!(e.state, OutboxState::Dead, "{e:?}");
        assert!(
            e.last_error.as_deref().is_some_and(|m| m.contains("307")),
            "{e:?}"
        );
    }
    assert!(
        !ran.stderr.contains("webhook-token-77"),
        "the webhook URL's query was logged:\n{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_and_link_local_destinations_are_always_refused() {
    let cx = e2e::test_context!();
    let spec =
        model_spec(json!({"type": "openai_compatible", "base_url": "http://169.254.169.254/v1"}));
    // Even with every private destination allowed.
    let ran = run(&cx, &spec, |c| {
        c.arg("--allow-egress").arg("169.254.0.0/16")
    })
    .await;
    assert_ne!(ran.code(), Some(0));
    assert!(ran.stderr.contains("always refused"), "{}", ran.stderr);
    assert!(ran.stderr.contains("base_url"), "{}", ran.stderr);

    let spec = spec_with_callback(
        cx.dir(),
        json!({"type": "http", "url": "http://metadata.google.internal/computeMetadata/v1/"}),
    );
    let ran = cx
        .host()
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .arg("--offline")
        .ran()
        .await;
    assert_ne!(ran.code(), Some(0));
    assert!(
        ran.stderr.contains("$.run.callback[0].url"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("always refused"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_needs_the_operators_allowance() {
    let server = mock(json!({})).await;
    let cx = e2e::test_context!();
    let port = server
        .base_url()
        .rsplit(':')
        .next()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let by_address =
        model_spec(json!({"type": "openai_compatible", "base_url": server.base_url()}));
    // A name that resolves to loopback: refused when connecting.
    let by_name = model_spec(json!({
        "type": "openai_compatible",
        "base_url": format!("http://localhost:{port}/v1"),
        "retry": fast_retry(),
    }));
    for spec in [&by_address, &by_name] {
        let ran = run(&cx, spec, |c| c.env_remove(ALLOW_EGRESS_ENV)).await;
        assert_ne!(ran.code(), Some(0), "{}", ran.stderr);
        assert!(ran.stderr.contains("loopback address"), "{}", ran.stderr);
        assert!(ran.stderr.contains("--allow-egress"), "{}", ran.stderr);
    }
    assert_eq!(server.stats().requests, 0, "nothing reached the server");

    // Allowed by the flag (this port only), by the variable, by the file.
    let exact = format!("127.0.0.1:{port}");
    run(&cx, &by_address, |c| {
        c.env_remove(ALLOW_EGRESS_ENV)
            .arg("--allow-egress")
            .arg(&exact)
    })
    .await
    .ok();
    let config = cx.dir().join("host.toml");
    std::fs::write(&config, "[egress]\nallow_private = true\n").expect("write config");
    run(&cx, &by_name, |c| {
        c.env_remove(ALLOW_EGRESS_ENV).arg("--config").arg(&config)
    })
    .await
    .ok();
    // Another port of the same address is not allowed by `127.0.0.1:PORT`.
    let other = format!("127.0.0.1:{}", closed_port());
    let ran = run(&cx, &by_address, |c| {
        c.env_remove(ALLOW_EGRESS_ENV)
            .arg("--allow-egress")
            .arg(&other)
    })
    .await;
    assert_ne!(ran.code(), Some(0));
    assert_eq!(server.stats().requests, 2, "{:?}", server.stats());
}

#[tokio::test(flavor = "multi_thread")]
async fn spec_headers_cannot_set_reserved_callback_headers() {
    let cx = e2e::test_context!();
    for name in [
        "X-Host-Signature",
        "host",
        "Idempotency-Key",
        "Content-Length",
        "Connection",
    ] {
        let spec = spec_with_callback(
            cx.dir(),
            json!({"type": "http", "url": "https://hooks.example.com/x", "headers": {name: "forged"}}),
        );
        let ran = cx
            .host()
            .arg("run")
            .arg(&spec)
            .arg("--plugins")
            .arg(e2e::plugins_dir())
            .arg("--offline")
            .ran()
            .await;
        assert_ne!(ran.code(), Some(0), "{name}");
        assert!(
            ran.stderr.contains("$.run.callback[0].headers"),
            "{}",
            ran.stderr
        );
        assert!(ran.stderr.contains("is reserved"), "{}", ran.stderr);
    }
}

// --------------------------------- item 2 (M10): inline secrets per run

fn entry(run_id: &str, url: &str, seq: u64) -> NewOutboxEntry {
    NewOutboxEntry {
        run_id: run_id.into(),
        target: OutboxTarget {
            url: url.into(),
            secret_env: None,
            headers: Default::default(),
            inline_headers: Vec::new(),
            inline_secret: true,
        },
        seq,
        event_type: "run.started".into(),
        body: json!({"run_id": run_id, "seq": seq}).to_string(),
    }
}

fn signed_with(secret: &str, got: &Got) -> bool {
    let Some(header) = got
        .headers
        .get("x-host-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((t, v1)) = header.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&got.body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inline_secret_signs_only_its_own_runs_events() {
    let hook = Listener::ok().await;
    let url = format!("http://127.0.0.1:{}/hook", hook.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("runs.db")).expect("db"));
    // Run A's process crashed with events pending; run B, same URL, has
    // its own inline secret.
    store
        .outbox_enqueue(vec![
            entry("run-a", &url, 1),
            entry("run-a", &url, 2),
            entry("run-b", &url, 1),
        ])
        .await
        .expect("enqueue");
    let config = OutboxConfig {
        egress: Egress::allowing_private(),
        ..OutboxConfig::default()
    };
    let deliverer = Deliverer::new(store.clone(), config).expect("deliverer");
    deliverer.add_secret("run-b", &url, Secret::new("secret-of-b"));
    let deadline = Instant::now() + Duration::from_secs(20);
    deliverer.run(Until::Idle, Some(deadline)).await;
    deliverer.release().await;

    let got = hook.got();
    assert_eq!(got.len(), 1, "only run B's event goes out: {got:?}");
    assert!(got[0].path.starts_with("/hook"));
    assert!(String::from_utf8_lossy(&got[0].body).contains("run-b"));
    assert!(signed_with("secret-of-b", &got[0]), "{:?}", got[0].headers);
    let a = store
        .outbox_entries(&host::store::Scope::Operator, Some("run-a"), None, None)
        .await
        .expect("entries");
    assert_eq!(a.len(), 2);
    for e in &a {
        assert_eq!(e.state, OutboxState::Pending, "{e:?}");
        assert_eq!(e.attempts, 0, "{e:?}");
    }
}

//! Outbound HTTP for tool plugins, end to end: the real `host` binary, the
//! `http_tool` test guest (Rust, `wstd` over `wasi:http`), the mock model
//! and two real HTTP servers on loopback in this test — one granted, one on
//! a port the spec does not list.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use e2e::{mock, ok, text, write_spec};
use mock_openai::MockServer;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "weather-token-7c41e09a5b";

/// What a test server saw: every request's path and `Authorization`.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

/// A request's path and its `Authorization` header.
type Request = (String, Option<String>);

impl Seen {
    fn all(&self) -> Vec<Request> {
        self.0.lock().expect("lock").clone()
    }
}

/// An API on loopback: `/weather` answers JSON, `/redirect` sends the
/// client to `localhost` (not granted), `/big` has a 2 MiB body with its
/// length, `/stream` 256 KiB without one, `/slow` answers after 10 s.
async fn api() -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Seen::default();
    let record = |path: &'static str| {
        move |State(seen): State<Seen>, headers: HeaderMap| async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.0.lock().expect("lock").push((path.to_owned(), auth));
        }
    };
    let app = Router::new()
        .route(
            "/weather",
            get(move |s: State<Seen>, h: HeaderMap| async move {
                record("/weather")(s, h).await;
                axum::Json(json!({"city": "Paris", "temp_c": 21}))
            }),
        )
        .route(
            "/v1/weather",
            get(move |s: State<Seen>, h: HeaderMap| async move {
                record("/v1/weather")(s, h).await;
                axum::Json(json!({"city": "Oslo", "temp_c": 6, "conditions": "snow"}))
            }),
        )
        .route(
            "/redirect",
            get(move |s: State<Seen>, h: HeaderMap| async move {
                record("/redirect")(s, h).await;
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, format!("http://localhost:{port}/weather"))
                    .body(Body::empty())
                    .expect("response")
            }),
        )
        .route(
            "/big",
            get(move |s: State<Seen>, h: HeaderMap| async move {
                record("/big")(s, h).await;
                vec![b'x'; 2 << 20].into_response()
            }),
        )
        .route(
            "/stream",
            get(move |s: State<Seen>, h: HeaderMap| async move {
                record("/stream")(s, h).await;
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 4096]));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(move |s: State<Seen>, h: HeaderMap| async move {
                record("/slow")(s, h).await;
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

/// The operator's pairs: the mock model's key and `pair` (`VAR=URL`).
fn pairs(pair: &str) -> String {
    match e2e::mock_credentials() {
        Some(mock) => format!("{mock} {pair}"),
        None => pair.to_owned(),
    }
}

fn provider(server: &MockServer) -> Value {
    json!({"mock": {
        "type": "openai_compatible", "base_url": server.base_url(), "api": "chat",
        "api_key_env": "MOCK_API_KEY", "timeout_ms": 20000,
        "retry": {"max_attempts": 2, "initial_backoff_ms": 20, "max_backoff_ms": 100}
    }})
}

/// The tool outputs in a model request, by call id.
fn tools_in(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or("").to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The tool outputs the model received last (the last request holds the
/// whole conversation), by call id.
fn tool_outputs(server: &MockServer) -> Vec<(String, String)> {
    server
        .requests()
        .last()
        .and_then(|r| r.body.as_ref())
        .map(tools_in)
        .unwrap_or_default()
}

fn output<'a>(outputs: &'a [(String, String)], id: &str) -> &'a str {
    outputs
        .iter()
        .find(|(call, _)| call == id)
        .map(|(_, out)| out.as_str())
        .unwrap_or_else(|| panic!("no output for {id}: {outputs:?}"))
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn granted_hosts_work_and_every_other_door_stays_shut() {
    let (port, seen) = api().await;
    let (other_port, other_seen) = api().await;
    let base = format!("http://127.0.0.1:{port}");
    let fetch = |id: &str, url: String, follow: bool| {
        json!({"name": "fetch", "call_id": id,
               "arguments": {"url": url, "follow_redirects": follow}})
    };
    let calls = json!([
        fetch("c_ok", format!("{base}/weather"), false),
        fetch("c_host", format!("http://localhost:{port}/weather"), false),
        fetch(
            "c_port",
            format!("http://127.0.0.1:{other_port}/weather"),
            false
        ),
        fetch(
            "c_https",
            format!("https://127.0.0.1:{port}/weather"),
            false
        ),
        fetch("c_redirect", format!("{base}/redirect"), true),
        fetch("c_big", format!("{base}/big"), false),
        fetch("c_stream", format!("{base}/stream"), false),
        fetch("c_slow", format!("{base}/slow"), false),
    ]);
    let server = mock(json!({"rules": [
        {"name": "calls", "match": {"instructions_contains": "AGENT a", "has_tool_result": false},
         "reply": {"tool_calls": calls}},
        {"name": "offline", "match": {"instructions_contains": "AGENT b", "has_tool_result": false},
         "reply": {"tool_calls": [fetch("c_offline", format!("{base}/weather"), false)]}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = e2e::plugin_folder(&[("web", "http_tool"), ("offline", "http_tool")]);
    let spec = json!({
        "providers": provider(&server),
        "plugins": {
            "web": {
                "timeout_ms": 10000,
                "allowed_hosts": [base],
                "secrets": {base.clone(): {"Authorization": "Bearer ${WEATHER_TOKEN}"}},
                // Room for a loaded CI machine's loopback round trip, far
                // below /slow's 10 s.
                "http": {"timeout_ms": 2000, "max_response_kib": 64}
            }
        },
        "agents": {
            "a": {"instructions": "AGENT a: use the tools.",
                  "model": {"provider": "mock", "name": "gpt-4.1-mini"}, "tools": ["web#fetch"]},
            "b": {"instructions": "AGENT b: use the tools.",
                  "model": {"provider": "mock", "name": "gpt-4.1-mini"}, "tools": ["offline#fetch"]}
        },
        "workflow": {"key": "web", "steps": [
            // The guard passes only when its own request is denied: hooks
            // are offline even in a granted plugin.
            {"agent": "a", "max_turns": 3,
             "guard": {"plugin": "web#net_probe", "config": {"url": format!("{base}/weather")}}},
            {"agent": "b", "max_turns": 3}
        ]},
        "run": {"input": "go"}
    });
    let spec = write_spec(dir.path(), &spec);
    let db = e2e::fresh_db();
    let events = dir.path().join("events.jsonl");
    let out = e2e::host!()
        .db(&db)
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(plugins.path())
        .arg("--callback")
        .arg(format!("jsonl:{}", events.display()))
        .env("HOST_CREDENTIALS", pairs(&format!("WEATHER_TOKEN={base}")))
        .env("WEATHER_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .output()
        .await;
    let stdout = ok(&out);
    let stderr = text(&out.stderr);

    let outputs = tool_outputs(&server);
    let ok_out = output(&outputs, "c_offline");
    assert!(
        ok_out.contains("grants this plugin no network"),
        "a plugin without a grant: {ok_out}"
    );
    let requests = server.requests();
    let first_step = requests
        .iter()
        .rev()
        .filter_map(|r| r.body.as_ref())
        .find(|b| b.to_string().contains("AGENT a"))
        .map(tools_in)
        .expect("agent a's last request");
    let c_ok = output(&first_step, "c_ok");
    let weather: Value =
        serde_json::from_str(c_ok).unwrap_or_else(|e| panic!("c_ok: {e}: {c_ok}\n{stderr}"));
    assert_eq!(weather["status"], 200, "{weather}");
    assert!(
        weather["body"]
            .as_str()
            .unwrap_or("")
            .contains("\"temp_c\":21"),
        "{weather}"
    );
    let denied = |id: &str, reason: &str| {
        let out = output(&first_step, id);
        assert!(out.starts_with("error:"), "{id}: {out}");
        assert!(out.contains(reason), "{id} should say `{reason}`: {out}");
    };
    denied("c_host", "not in `plugins.web.allowed_hosts`");
    denied("c_port", "not in `plugins.web.allowed_hosts`");
    denied("c_https", "not in `plugins.web.allowed_hosts`");
    denied("c_redirect", &format!("http://localhost:{port} denied"));
    denied("c_big", "over 64 KiB");
    denied("c_big", "plugins.web.http.max_response_kib");
    denied("c_stream", "over 64 KiB");
    denied("c_slow", "within 2000 ms");

    // What reached the servers: the granted requests, each with the
    // secret the host added; nothing on the other port or from the guard.
    let mut paths: Vec<String> = seen.all().into_iter().map(|(p, _)| p).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/big", "/redirect", "/slow", "/stream", "/weather"],
        "one request per granted call (the calls of a turn run at once)"
    );
    for (path, auth) in seen.all() {
        assert_eq!(
            auth.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{path}"
        );
    }
    assert!(other_seen.all().is_empty(), "{:?}", other_seen.all());

    // The secret is nowhere else.
    let events = std::fs::read_to_string(&events).expect("events");
    assert!(events.contains("c_ok"), "{events}");
    let everything_sent = requests
        .iter()
        .filter_map(|r| r.body.as_ref())
        .map(Value::to_string)
        .collect::<String>();
    for (what, haystack) in [
        ("stdout", stdout),
        ("stderr (debug logs)", stderr),
        ("events", events),
        ("the model's requests (tool outputs)", everything_sent),
    ] {
        assert!(!haystack.contains(TOKEN), "{what} holds the secret");
    }
    for file in [db.clone(), db.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "{} holds the secret",
                file.display()
            );
        }
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_are_checked_with_their_json_paths() {
    let server = mock(json!({"rules": []})).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = e2e::plugin_folder(&[("web", "http_tool")]);
    let spec = json!({
        "providers": provider(&server),
        "plugins": {"web": {
            "allowed_hosts": ["api.example.com", "ftp://files.example.com", "*.com"],
            "secrets": {
                "api.example.com": {"Authorization": "Bearer sk-literal-value"},
                "other.example.com": {"X-Key": "${SOME_KEY}"}
            },
            "http": {"max_requests": 0}
        }},
        "agents": {"a": {"instructions": "x", "model": {"provider": "mock", "name": "m"},
                         "tools": ["web#fetch"]}},
        "workflow": {"key": "w", "steps": [{"agent": "a"}]},
        "run": {"input": "go"}
    });
    let spec_path = write_spec(dir.path(), &spec);
    let out = e2e::host!()
        .arg("validate")
        .arg(&spec_path)
        .arg("--plugins")
        .arg(plugins.path())
        .output()
        .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for expected in [
        "$.plugins.web.allowed_hosts[1]",
        "only http:// and https:// origins",
        "$.plugins.web.allowed_hosts[2]",
        "a wildcard needs a domain",
        "$.plugins.web.secrets['api.example.com'].Authorization",
        "must come from the host's environment",
        "$.plugins.web.secrets['other.example.com']",
        "not one of `allowed_hosts`",
        "$.plugins.web.http.max_requests",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(
        !err.contains("sk-literal-value"),
        "the literal is echoed:\n{err}"
    );

    // The operator's environment goes only where the operator paired it:
    // a spec naming any variable for its own host is refused...
    let mut spec = spec;
    spec["plugins"]["web"] = json!({
        "allowed_hosts": ["api.example.com"],
        "secrets": {"api.example.com": {"Authorization": "Bearer ${OPENAI_API_KEY}"}}
    });
    let spec_path = write_spec(dir.path(), &spec);
    let run = |extra: Vec<String>| {
        e2e::host!()
            .arg("run")
            .arg(&spec_path)
            .arg("--plugins")
            .arg(plugins.path())
            .args(extra)
            .env("OPENAI_API_KEY", "sk-operator-key-0123456789")
            .env_remove("UNSET_WEATHER_TOKEN")
    };
    let out = run(vec![]).output().await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("$.plugins.web.secrets['api.example.com'].Authorization")
            && err.contains("`OPENAI_API_KEY` may not be sent to https://api.example.com")
            && err.contains("--credential OPENAI_API_KEY="),
        "{err}"
    );
    assert!(!err.contains("sk-operator-key"), "{err}");
    // ...and a paired variable that is unset fails the run before it starts.
    spec["plugins"]["web"]["secrets"]["api.example.com"]["Authorization"] =
        json!("Bearer ${UNSET_WEATHER_TOKEN}");
    write_spec(dir.path(), &spec);
    let out = run(vec![])
        .env(
            "HOST_CREDENTIALS",
            pairs("UNSET_WEATHER_TOKEN=https://api.example.com"),
        )
        .output()
        .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("$.plugins.web.secrets['api.example.com'].Authorization")
            && err.contains("`UNSET_WEATHER_TOKEN` is not set"),
        "{err}"
    );
    assert!(
        server.requests().is_empty(),
        "no model call before the check"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_and_javascript_example_plugins_call_a_granted_api() {
    let (port, seen) = api().await;
    let base = format!("http://127.0.0.1:{port}");
    let server = mock(json!({"rules": [
        {"name": "calls", "match": {"has_tool_result": false},
         "reply": {"tool_calls": [
            {"name": "get_weather", "call_id": "c_rs", "arguments": {"city": "Oslo"}},
            {"name": "js_weather", "call_id": "c_js", "arguments": {"city": "Oslo"}}
         ]}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = e2e::plugin_dir(&["weather", "js_weather"]);
    let grant = json!({
        "timeout_ms": 20000,
        "allowed_hosts": [base],
        "secrets": {base.clone(): {"Authorization": "Bearer ${WEATHER_TOKEN}"}}
    });
    let spec = json!({
        "providers": provider(&server),
        "plugins": {"weather": grant, "js_weather": grant},
        "agents": {"a": {"instructions": "AGENT a", "model": {"provider": "mock", "name": "m"},
            "tools": [{"plugin": "weather#get_weather", "config": {"base_url": base}},
                      {"plugin": "js_weather", "config": {"base_url": base}}]}},
        "workflow": {"key": "w", "steps": [{"agent": "a", "max_turns": 3}]},
        "run": {"input": "go"}
    });
    let spec = write_spec(dir.path(), &spec);
    let out = e2e::host!()
        .arg("run")
        .arg(&spec)
        .arg("--plugins")
        .arg(plugins.path())
        .env("HOST_CREDENTIALS", pairs(&format!("WEATHER_TOKEN={base}")))
        .env("WEATHER_TOKEN", TOKEN)
        .output()
        .await;
    ok(&out);
    let outputs = tool_outputs(&server);
    for id in ["c_rs", "c_js"] {
        let answer: Value = serde_json::from_str(output(&outputs, id))
            .unwrap_or_else(|e| panic!("{id}: {e}: {outputs:?}"));
        assert_eq!(answer["conditions"], "snow", "{id}: {answer}");
    }
    let seen = seen.all();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (path, auth) in seen {
        assert_eq!(path, "/v1/weather");
        assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    }
    server.shutdown().await.expect("shutdown");
}

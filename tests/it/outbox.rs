//! HTTP event callbacks end to end: the real `host` binary, a real SQLite
//! file and a real local HTTP server (a raw `TcpListener`, so the test
//! decides when the port refuses connections, answers 500, or recovers).
//!
//! - A flaky endpoint (connection refused, then slow 500s, then 200) gets
//!   every event of two concurrent runs, in order per run, signed, with
//!   duplicates carrying the same idempotency key and body, while the runs
//!   themselves take no longer than without callbacks.
//! - `kill -9` while events are undelivered: they stay pending in the
//!   database, and `host outbox deliver --wait` sends them after a restart.
//! - An endpoint that always fails: events end dead after the retry cap
//!   (or at once on a 4xx), shown by `host runs show`.

use e2e::{HostCmd, ok, text, within};
use hmac::{Hmac, Mac};
use host::store::{OutboxState, OutboxStore, Scope, SqliteStore};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const SECRET_VAR: &str = "OUTBOX_TEST_SECRET";
const SECRET: &str = "s3cr3t-for-the-outbox-test";

// ------------------------------------------------------------- the server

/// One request the server read, and what it answered.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
    pub(crate) status: u16,
}

impl Received {
    pub(crate) fn key(&self) -> &str {
        self.headers
            .get("idempotency-key")
            .map(String::as_str)
            .unwrap_or("")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// What to answer the `n`th request (0-based): status and a delay.
pub(crate) type Script = Arc<dyn Fn(usize) -> (u16, Duration) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Server {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// Serves on `addr` (which must be free) until the test ends.
    pub(crate) async fn start(addr: &str, script: Script) -> Server {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the callback port");
        let server = Server {
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let state = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, script) = (state.clone(), script.clone());
                tokio::spawn(async move {
                    let _ = state.connection(stream, script).await;
                });
            }
        });
        server
    }

    /// HTTP/1.1 with keep-alive: one request after another on a connection.
    async fn connection(&self, stream: TcpStream, script: Script) -> std::io::Result<()> {
        let mut stream = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                stream.read_line(&mut h).await?;
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await?;
            let (status, delay) = {
                let mut received = self.received.lock().expect("lock");
                let (status, delay) = script(received.len());
                received.push(Received {
                    path,
                    headers,
                    body,
                    status,
                });
                (status, delay)
            };
            tokio::time::sleep(delay).await;
            let response = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            stream.get_mut().write_all(response.as_bytes()).await?;
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

/// A port nothing listens on (yet): connections to it are refused.
pub(crate) fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

// ------------------------------------------------------------- the host

/// `host ARGS` on the run database `db`, with the callback secret set.
fn host_in(db: &Path, args: &[&str], env: &[(&str, &str)]) -> HostCmd {
    e2e::host!()
        .db(db)
        .args(args)
        .env(SECRET_VAR, SECRET)
        .envs(env.iter().copied())
}

fn host_cmd(db: &Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    host_in(db, args, env).tokio()
}

async fn host(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    host_in(db, args, env).output().await
}

/// `examples/analysis_parallel` in `dir` with an `http` callback to `url`
/// signed with the secret in `OUTBOX_TEST_SECRET`.
fn spec_with_callback(dir: &Path, url: &str) -> PathBuf {
    let example = e2e::repo_root().join("examples/analysis_parallel");
    let mut spec: Value = serde_json::from_str(
        &std::fs::read_to_string(example.join("spec.json")).expect("read spec"),
    )
    .expect("spec json");
    spec["run"]["callback"] = json!([{
        "type": "http",
        "url": url,
        "secret_env": SECRET_VAR,
        "headers": {"X-Team": "qa"}
    }]);
    std::fs::copy(example.join("script.json"), dir.join("script.json")).expect("copy script");
    let path = dir.join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("write spec");
    path
}

fn run_args<'a>(spec: &'a str, plugins: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", spec, "--plugins", plugins, "--offline"];
    args.extend(extra);
    args
}

/// A `host run` followed to its end: the time until it printed the run's
/// output (after the run and every sink finished, before any delivery
/// grace period), and its output.
async fn timed_run(db: &Path, args: &[&str], env: &[(&str, &str)]) -> (Duration, Output) {
    let started = Instant::now();
    let mut child = host_cmd(db, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start host");
    let mut stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    let watch = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = None;
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            printed.get_or_insert_with(|| started.elapsed());
            all.push_str(&line);
            all.push('\n');
        }
        (printed, all)
    });
    let mut err = Vec::new();
    let read = stderr.read_to_end(&mut err);
    let (_, status) = within(120, "host run", async { tokio::join!(read, child.wait()) }).await;
    let (printed, stdout) = watch.await.expect("stdout reader");
    let output = Output {
        status: status.expect("wait"),
        stdout: stdout.into_bytes(),
        stderr: err,
    };
    let printed =
        printed.unwrap_or_else(|| panic!("the run printed no output:\n{}", text(&output.stderr)));
    (printed, output)
}

fn parse_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// `X-Host-Signature: t=…,v1=…` is the HMAC of `t.body`, with a `t` of now.
fn verify(r: &Received) {
    let header = r
        .headers
        .get("x-host-signature")
        .unwrap_or_else(|| panic!("no signature on {}", r.key()));
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature is not t=…,v1=…: {header}"));
    let t: u64 = t.parse().expect("t is a number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(now.abs_diff(t) < 300, "t={t} is not now ({now})");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&hex_decode(v1))
        .unwrap_or_else(|_| panic!("bad signature on {}", r.key()));
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every event of the run arrived, in order: every request of a run is
/// either the next undelivered event or a repeat of a delivered one, and
/// the accepted ones are `seq` 1..n, equal to `expected` (the run's events
/// from a `jsonl` sink). Returns how many requests were repeats.
fn check_run(requests: &[&Received], expected: &[Value]) -> usize {
    let run_id = expected[0]["run_id"].as_str().expect("run id");
    let mut delivered = 0u64;
    let mut accepted = Vec::new();
    let mut bodies: BTreeMap<String, &[u8]> = BTreeMap::new();
    let mut repeats = 0;
    for r in requests {
        verify(r);
        assert_eq!(r.path, "/hook");
        assert_eq!(r.headers.get("x-team").map(String::as_str), Some("qa"));
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let body = r.json();
        let seq = body["seq"].as_u64().expect("seq");
        assert_eq!(r.key(), format!("{run_id}:{seq}"), "idempotency key");
        assert!(
            seq <= delivered + 1,
            "seq {seq} sent before seq {} was delivered",
            delivered + 1
        );
        match bodies.get(r.key()) {
            Some(first) => {
                repeats += 1;
                assert_eq!(
                    *first,
                    &r.body[..],
                    "a repeat of {} changed its body",
                    r.key()
                );
            }
            None => {
                bodies.insert(r.key().to_owned(), &r.body);
            }
        }
        if (200..300).contains(&r.status) && seq == delivered + 1 {
            delivered = seq;
            accepted.push(body);
        }
    }
    assert_eq!(accepted.len(), expected.len(), "every event arrives");
    for (got, want) in accepted.iter().zip(expected) {
        assert_eq!(got, want, "the body is the event envelope");
    }
    assert_eq!(accepted[0]["type"], "run.started");
    assert_eq!(accepted[accepted.len() - 1]["type"], "run.completed");
    repeats
}

fn run_ids(received: &[Received]) -> BTreeMap<String, Vec<&Received>> {
    let mut runs: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in received {
        let run = r.key().split(':').next().unwrap_or("").to_owned();
        runs.entry(run).or_default().push(r);
    }
    runs
}

async fn show(db: &Path, run_id: &str) -> Value {
    let out = host(db, &["runs", "show", run_id, "--json"], &[]).await;
    serde_json::from_str(&ok(&out)).expect("runs show --json")
}

// ------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_endpoint_gets_every_event_in_order_without_slowing_the_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = e2e::fresh_db();
    let plugins = e2e::plugins_dir();
    let plugins = plugins.to_str().expect("utf-8");
    let addr = free_addr();
    let url = format!("http://{addr}/hook");
    let spec = spec_with_callback(tmp.path(), &url);
    let spec = spec.to_str().expect("utf-8");
    let plain = e2e::repo_root().join("examples/analysis_parallel/spec.json");
    let plain = plain.to_str().expect("utf-8");
    let env = [
        ("HOST_OUTBOX_BASE_MS", "50"),
        ("HOST_OUTBOX_CAP_MS", "400"),
        ("HOST_OUTBOX_MAX_ATTEMPTS", "1000"),
    ];

    // The same run without callbacks, for the time it takes (the slower of
    // two, so one lucky run does not make the bound tight).
    let baseline_db = e2e::fresh_db();
    let mut baseline = Duration::ZERO;
    for _ in 0..2 {
        let (took, out) = timed_run(&baseline_db, &run_args(plain, plugins, &[]), &env).await;
        ok(&out);
        baseline = baseline.max(took);
    }

    // Connections are refused for the first seconds, then the first
    // requests get slow 500s, then it recovers.
    const REFUSING: Duration = Duration::from_secs(4);
    const FAILURES: usize = 8;
    let script: Script = Arc::new(|n| {
        if n < FAILURES {
            (500, Duration::from_millis(150))
        } else {
            (200, Duration::ZERO)
        }
    });
    let server_addr = addr.clone();
    let server = tokio::spawn(async move {
        tokio::time::sleep(REFUSING).await;
        Server::start(&server_addr, script).await
    });

    // Two runs at once on one database, each process delivering until its
    // own run's events are all delivered. The database is created first:
    // two processes creating one file at once can find it locked.
    ok(&host(&db, &["runs", "list"], &[]).await);
    let jsonl: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("run{i}.jsonl")))
        .collect();
    let sinks: Vec<String> = jsonl
        .iter()
        .map(|p| format!("jsonl:{}", p.display()))
        .collect();
    let runs = futures::future::join_all(sinks.iter().map(|sink| {
        let args = run_args(
            spec,
            plugins,
            &["--callback", sink.as_str(), "--deliver-timeout", "60"],
        );
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let db = db.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            timed_run(&db, &args, &env).await
        }
    }))
    .await;
    let server = server.await.expect("server task");

    let limit = baseline * 3 + Duration::from_millis(1500);
    eprintln!(
        "baseline {baseline:?}, runs {:?}",
        runs.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (took, out) in &runs {
        ok(out);
        assert!(
            *took < limit,
            "a run with a refusing endpoint took {took:?} to print its output; without callbacks {baseline:?}"
        );
        assert!(
            *took < REFUSING,
            "the run waited for the endpoint ({took:?})"
        );
    }

    let received = server.received();
    assert!(
        received.iter().filter(|r| r.status == 500).count() == FAILURES,
        "the endpoint answered 500 {FAILURES} times"
    );
    let by_run = run_ids(&received);
    assert_eq!(by_run.len(), 2, "two runs' events: {:?}", by_run.keys());
    let mut repeats = 0;
    for path in &jsonl {
        let expected = parse_jsonl(path);
        let run_id = expected[0]["run_id"].as_str().expect("run id").to_owned();
        let requests = by_run
            .get(&run_id)
            .unwrap_or_else(|| panic!("no request for run {run_id}"));
        repeats += check_run(requests, &expected);
        let outbox = &show(&db, &run_id).await["outbox"];
        assert_eq!(
            outbox,
            &json!({"pending": 0, "delivered": expected.len(), "dead": 0, "dead_entries": []}),
            "run {run_id}"
        );
    }
    assert!(
        repeats >= FAILURES,
        "each 500 is followed by a repeat with the same key ({repeats} repeats)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_left_by_a_killed_host_are_delivered_after_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = e2e::fresh_db();
    let plugins = e2e::plugins_dir();
    let plugins = plugins.to_str().expect("utf-8");
    let addr = free_addr();
    let url = format!("http://{addr}/hook");
    let spec = spec_with_callback(tmp.path(), &url);
    let spec = spec.to_str().expect("utf-8");
    let events = tmp.path().join("events.jsonl");
    let sink = format!("jsonl:{}", events.display());
    let env = [("HOST_OUTBOX_BASE_MS", "50"), ("HOST_OUTBOX_CAP_MS", "200")];

    // Nothing listens: the host retries until it is killed.
    let mut child = host_cmd(
        &db,
        &run_args(
            spec,
            plugins,
            &["--callback", &sink, "--deliver-timeout", "600"],
        ),
        &env,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start host");
    // Wait until the run's last event is in the outbox, then kill -9.
    let run_id = within(60, "the run's events in the outbox", async {
        loop {
            if let Ok(store) = SqliteStore::open(&db)
                && let Ok(entries) = store
                    .outbox_entries(&Scope::Operator, None, Some(OutboxState::Pending), None)
                    .await
                && let Some(last) = entries.iter().find(|e| e.event_type == "run.completed")
            {
                return last.run_id.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    child.start_kill().expect("kill -9");
    let status = within(10, "the killed host", child.wait())
        .await
        .expect("wait");
    assert!(!status.success(), "the host was killed: {status:?}");

    let expected = parse_jsonl(&events);
    let outbox = &show(&db, &run_id).await["outbox"];
    assert_eq!(outbox["pending"], json!(expected.len()), "{outbox}");
    assert_eq!(outbox["delivered"], 0, "{outbox}");
    let listed = ok(&host(&db, &["outbox", "list", "--run", &run_id], &[]).await);
    assert!(
        listed.contains("run.completed") && listed.contains("pending"),
        "{listed}"
    );

    // The endpoint comes up; a new process delivers everything, in order.
    // The spec's header values were never stored: a process without them
    // leaves the entries pending (it neither sends nor kills them); one
    // given the spec file the run started from delivers them.
    let server = Server::start(&addr, Arc::new(|_| (200, Duration::ZERO))).await;
    let out = host(&db, &["outbox", "deliver", "--timeout", "5"], &env).await;
    ok(&out);
    assert!(
        server.received().is_empty(),
        "sent without its header values"
    );
    let outbox = &show(&db, &run_id).await["outbox"];
    assert_eq!(outbox["pending"], json!(expected.len()), "{outbox}");
    let out = host(
        &db,
        &[
            "outbox",
            "deliver",
            "--wait",
            "--timeout",
            "60",
            "--spec",
            spec,
        ],
        &env,
    )
    .await;
    ok(&out);
    assert!(
        text(&out.stderr).contains(&format!("delivered {} event(s)", expected.len())),
        "{}",
        text(&out.stderr)
    );
    let received = server.received();
    let requests: Vec<&Received> = received.iter().collect();
    check_run(&requests, &expected);
    let outbox = &show(&db, &run_id).await["outbox"];
    assert_eq!(outbox["pending"], 0, "{outbox}");
    assert_eq!(outbox["delivered"], json!(expected.len()), "{outbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_an_endpoint_keeps_failing_end_dead_and_runs_show_says_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = e2e::fresh_db();
    let plugins = e2e::plugins_dir();
    let plugins = plugins.to_str().expect("utf-8");
    let env = [
        ("HOST_OUTBOX_BASE_MS", "5"),
        ("HOST_OUTBOX_CAP_MS", "20"),
        ("HOST_OUTBOX_MAX_ATTEMPTS", "3"),
    ];

    // Always 500: three attempts per event, then dead; the lane moves on.
    let addr = free_addr();
    let server = Server::start(&addr, Arc::new(|_| (500, Duration::ZERO))).await;
    let spec = spec_with_callback(tmp.path(), &format!("http://{addr}/hook"));
    let out = host(
        &db,
        &run_args(
            spec.to_str().expect("utf-8"),
            plugins,
            &["--deliver-timeout", "60"],
        ),
        &env,
    )
    .await;
    ok(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("could not be delivered"), "{stderr}");
    let received = server.received();
    let runs = run_ids(&received);
    let (run_id, requests) = runs.iter().next().expect("requests");
    let events = requests
        .iter()
        .map(|r| r.key())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(requests.len(), events * 3, "three attempts per event");
    let shown = show(&db, run_id).await;
    let outbox = &shown["outbox"];
    assert_eq!(outbox["dead"], json!(events), "{outbox}");
    assert_eq!(
        (outbox["pending"].clone(), outbox["delivered"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(outbox["dead_entries"][0]["seq"], 1);
    assert_eq!(outbox["dead_entries"][0]["type"], "run.started");
    assert_eq!(outbox["dead_entries"][0]["attempts"], 3);
    assert_eq!(
        outbox["dead_entries"][0]["last_error"],
        "HTTP 500 (gave up after 3 attempts)"
    );
    let text_view = ok(&host(&db, &["runs", "show", run_id], &[]).await);
    assert!(
        text_view.contains(&format!("callbacks: 0 delivered, 0 pending, {events} dead")),
        "{text_view}"
    );
    assert!(
        text_view.contains("dead: seq 1 run.started")
            && text_view.contains("HTTP 500 (gave up after 3 attempts)"),
        "{text_view}"
    );

    // A 4xx is a refusal: dead at the first attempt.
    let addr = free_addr();
    let server = Server::start(&addr, Arc::new(|_| (410, Duration::ZERO))).await;
    let out = host(
        &db,
        &run_args(
            e2e::repo_root()
                .join("examples/analysis_parallel/spec.json")
                .to_str()
                .expect("utf-8"),
            plugins,
            &["--callback", &format!("http:http://{addr}/hook")],
        ),
        &env,
    )
    .await;
    ok(&out);
    let received = server.received();
    let keys = received
        .iter()
        .map(|r| r.key())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(received.len(), keys.len(), "one attempt per event");
    assert!(
        received
            .iter()
            .all(|r| !r.headers.contains_key("x-host-signature")),
        "no secret, no signature"
    );
    let run_id = keys
        .iter()
        .next()
        .and_then(|k| k.split(':').next())
        .expect("run id");
    let outbox = &show(&db, run_id).await["outbox"];
    assert_eq!(outbox["dead"], json!(keys.len()), "{outbox}");
    assert_eq!(outbox["dead_entries"][0]["last_error"], "HTTP 410");
}

/// The outage: the receiver refuses connections for 10 s, then
/// answers 500 for 10 s, then recovers. Retries are bounded by time, not
/// by a count of attempts, so every event arrives, in order (small backoff
/// caps keep the test short; the default cap is minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_of_twenty_seconds_loses_no_event() {
    const DOWN: Duration = Duration::from_secs(10);
    const FAILING: Duration = Duration::from_secs(10);
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = e2e::fresh_db();
    let plugins = e2e::plugins_dir();
    let plugins = plugins.to_str().expect("utf-8");
    let addr = free_addr();
    let spec = spec_with_callback(tmp.path(), &format!("http://{addr}/hook"));
    let spec = spec.to_str().expect("utf-8");
    let events = tmp.path().join("events.jsonl");
    let sink = format!("jsonl:{}", events.display());
    let env = [
        ("HOST_OUTBOX_BASE_MS", "100"),
        ("HOST_OUTBOX_CAP_MS", "1000"),
    ];

    // Both phases are timed from what the host has done, not from when the
    // test started, so a loaded machine that starts the host late still
    // sees the whole outage: the endpoint stays down for DOWN after the
    // host's first event, then answers 500 for FAILING after the first
    // request reaches it.
    let first_request: Arc<OnceLock<Instant>> = Arc::default();
    let script: Script = Arc::new(move |_| {
        let first = *first_request.get_or_init(Instant::now);
        if first.elapsed() < FAILING {
            (500, Duration::ZERO)
        } else {
            (200, Duration::ZERO)
        }
    });
    let server_addr = addr.clone();
    let first_event = events.clone();
    let server = tokio::spawn(async move {
        let waited = Instant::now();
        while !std::fs::read_to_string(&first_event).is_ok_and(|s| s.contains('\n')) {
            assert!(
                waited.elapsed() < Duration::from_secs(120),
                "the host wrote no event"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(DOWN).await;
        Server::start(&server_addr, script).await
    });
    let out = host(
        &db,
        &run_args(
            spec,
            plugins,
            &["--callback", &sink, "--deliver-timeout", "90"],
        ),
        &env,
    )
    .await;
    ok(&out);
    let server = server.await.expect("server task");

    let expected = parse_jsonl(&events);
    let received = server.received();
    let failed = received.iter().filter(|r| r.status == 500).count();
    assert!(failed > 0, "the endpoint answered 500 while failing");
    let requests: Vec<&Received> = received.iter().collect();
    check_run(&requests, &expected);
    let run_id = expected[0]["run_id"].as_str().expect("run id");
    let outbox = &show(&db, run_id).await["outbox"];
    assert_eq!(
        outbox,
        &json!({"pending": 0, "delivered": expected.len(), "dead": 0, "dead_entries": []}),
        "{}",
        text(&out.stderr)
    );
}

/// `host outbox deliver --wait` says whether everything arrived: an event
/// that ended dead makes it exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliver_wait_fails_when_an_event_ends_dead() {
    let db = e2e::fresh_db();
    let plugins = e2e::plugins_dir();
    let plugins = plugins.to_str().expect("utf-8");
    let env = [("HOST_OUTBOX_BASE_MS", "20"), ("HOST_OUTBOX_CAP_MS", "50")];
    let addr = free_addr();
    let example = e2e::repo_root().join("examples/analysis_parallel/spec.json");
    // Nothing listens while the run runs: its events stay pending.
    let out = host(
        &db,
        &run_args(
            example.to_str().expect("utf-8"),
            plugins,
            &[
                "--callback",
                &format!("http:http://{addr}/hook"),
                "--deliver-timeout",
                "0",
            ],
        ),
        &env,
    )
    .await;
    ok(&out);
    // The endpoint comes up and refuses every event (410: dead at once).
    let server = Server::start(&addr, Arc::new(|_| (410, Duration::ZERO))).await;
    let out = host(
        &db,
        &["outbox", "deliver", "--wait", "--timeout", "30"],
        &env,
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("0 still pending"), "{stderr}");
    assert!(!server.received().is_empty(), "the events were sent");
}

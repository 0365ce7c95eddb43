//! A real `host serve` process for the server tests, an HTTP client for it,
//! and a Server-Sent Events reader.

use e2e::HostCmd;
use futures::StreamExt;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// A running `host serve`, killed when dropped; its API (without a token)
/// through `Deref`.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) api: Api,
}

impl std::ops::Deref for Serve {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The server's HTTP API, as one caller (a bearer token, or none).
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    log: Arc<Mutex<String>>,
    http: reqwest::Client,
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sse {
    pub(crate) id: u64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

impl Serve {
    /// Starts `cmd` (a `host` command with its database) as
    /// `serve --listen 127.0.0.1:0 ARGS` and waits until it listens.
    pub(crate) async fn start(cmd: HostCmd, args: &[&str]) -> Serve {
        let mut command = cmd
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .tokio();
        command.stderr(std::process::Stdio::piped());
        command.stdout(std::process::Stdio::null());
        let mut child = command.spawn().expect("start host serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match tokio::time::timeout(Duration::from_secs(120), rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!("host serve did not start:\n{}", log.lock().expect("log")),
        };
        Serve {
            child,
            api: Api {
                base: format!("http://{addr}"),
                token: None,
                log,
                http: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("client"),
            },
        }
    }

    /// The API as the holder of `token`.
    pub(crate) fn as_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_owned()),
            ..self.api.clone()
        }
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub(crate) async fn kill9(&mut self) {
        self.child.kill().await.expect("kill -9");
    }

    /// Sends SIGTERM; the exit status.
    pub(crate) async fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        let pid = self.child.id().expect("pid");
        // SAFETY: kill(2) with a pid this test started and still owns.
        let _ = unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(secs), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("host serve did not stop\n{}", self.log()))
            .expect("wait")
    }
}

impl Api {
    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// GET: status and body (JSON, or a string when not JSON).
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("GET");
        answer(r).await
    }

    pub(crate) async fn get_text(&self, path: &str) -> (u16, String, String) {
        let r = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ctype, r.text().await.expect("body"))
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, &[]).await
    }

    pub(crate) async fn post_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut r = self
            .auth(self.http.post(format!("{}{path}", self.base)))
            .json(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        answer(r.send().await.expect("POST")).await
    }

    pub(crate) async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.auth(self.http.post(format!("{}{path}", self.base)))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST")
    }

    /// Starts a run of `workflow`; its id.
    pub(crate) async fn start_run(&self, workflow: &str, input: Value) -> String {
        let (status, body) = self
            .post(
                "/v1/runs",
                &serde_json::json!({"workflow": workflow, "input": input}),
            )
            .await;
        assert_eq!(status, 202, "{body}\n{}", self.log());
        body["run_id"].as_str().expect("run_id").to_owned()
    }

    /// Polls the run until its status is one of `statuses`.
    pub(crate) async fn wait_status(&self, run_id: &str, statuses: &[&str], secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (code, run) = self.get(&format!("/v1/runs/{run_id}")).await;
            assert_eq!(code, 200, "{run}");
            if statuses.contains(&run["status"].as_str().unwrap_or("")) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} still {} after {secs} s\n{}",
                run["status"],
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The run's events until the server closes the stream (after the final
    /// event), or at most `max` of them; `after` is a `Last-Event-ID`.
    pub(crate) async fn events(
        &self,
        run_id: &str,
        after: Option<u64>,
        max: usize,
    ) -> (u16, Vec<Sse>) {
        let mut r = self.auth(
            self.http
                .get(format!("{}/v1/runs/{run_id}/events", self.base)),
        );
        if let Some(after) = after {
            r = r.header("last-event-id", after.to_string());
        }
        let resp = r.send().await.expect("GET events");
        let status = resp.status().as_u16();
        if status != 200 {
            return (status, Vec::new());
        }
        let read = async {
            let mut events = Vec::new();
            let mut buf = String::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else { break };
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if let Some(e) = parse_block(&block) {
                        events.push(e);
                        if events.len() >= max {
                            return events;
                        }
                    }
                }
            }
            events
        };
        let events = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .unwrap_or_else(|_| panic!("the event stream of {run_id} did not end\n{}", self.log()));
        (status, events)
    }
}

fn parse_block(block: &str) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    Some(Sse {
        id: id?,
        event: event?,
        data: serde_json::from_str(&data).ok()?,
    })
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A provider entry for the mock server.
pub(crate) fn mock_provider(base_url: &str) -> Value {
    serde_json::json!({"mock": {
        "type": "openai_compatible", "base_url": base_url, "api": "chat",
        "api_key_env": "MOCK_API_KEY", "timeout_ms": 20000,
        "retry": {"max_attempts": 2, "initial_backoff_ms": 20, "max_backoff_ms": 100}
    }})
}

/// Writes `spec` as `<dir>/<name>.json`.
pub(crate) fn write_workflow(dir: &Path, name: &str, spec: &Value) {
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(spec).expect("json"),
    )
    .expect("write workflow");
}

//! Test guest: `fetch`, a tool that sends one HTTP request through
//! `wasi:http` with `wstd` and follows redirects itself (as most clients
//! do), and `net_probe`, a guard that tries a request and passes only when
//! the host denied it (hooks are offline).

use guest_sdk::{
    CallContext, Entry, Plugin, StepResult, ToolDefinition, Value, export_plugin, json,
};
use wstd::http::{Body, Client, Method, Request};

struct HttpTool;

/// Redirects followed at most.
const MAX_HOPS: u32 = 5;

async fn fetch(
    url: &str,
    method: &str,
    body: Option<String>,
    follow: bool,
) -> Result<Value, String> {
    let client = Client::new();
    let mut url = url.to_owned();
    for _ in 0..=MAX_HOPS {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let request = Request::builder()
            .uri(url.as_str())
            .method(method)
            .header("accept", "application/json")
            .body(match &body {
                Some(text) => Body::from(text.clone()),
                None => Body::empty(),
            })
            .map_err(|e| format!("bad request: {e}"))?;
        let mut response = client
            .send(request)
            .await
            .map_err(|e| format!("request to {url} failed: {e:#}"))?;
        let status = response.status().as_u16();
        if follow
            && (300..400).contains(&status)
            && let Some(next) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
        {
            url = next.to_owned();
            continue;
        }
        let text = response
            .body_mut()
            .str_contents()
            .await
            .map_err(|e| format!("reading the response of {url} failed: {e:#}"))?
            .to_owned();
        return Ok(json!({ "status": status, "body": text }));
    }
    Err(format!("more than {MAX_HOPS} redirects"))
}

impl Plugin for HttpTool {
    fn entries() -> Vec<Entry> {
        vec![
            Entry::tool("fetch", "sends an HTTP request"),
            Entry::guard("net_probe", "passes when a request from a hook is denied"),
        ]
    }

    fn tool_definitions() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "fetch".into(),
            description: "Send an HTTP request and return its status and body.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "method": {"type": "string"},
                    "body": {"type": "string"},
                    "follow_redirects": {"type": "boolean"}
                },
                "required": ["url"],
                "additionalProperties": false
            }),
        }]
    }

    fn invoke_tool(_ctx: &CallContext, _name: &str, arguments: &Value) -> Result<Value, String> {
        let url = arguments.get("url").and_then(Value::as_str).unwrap_or("");
        let method = arguments
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET");
        let body = arguments
            .get("body")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let follow = arguments
            .get("follow_redirects")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        wstd::runtime::block_on(fetch(url, method, body, follow))
    }

    fn guard(ctx: &CallContext, _input: &Value, _prior: &[StepResult]) -> Result<bool, String> {
        let url = ctx
            .config
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("http://127.0.0.1:9/")
            .to_owned();
        match wstd::runtime::block_on(fetch(&url, "GET", None, false)) {
            Ok(_) => Ok(false),
            Err(e) if e.contains("HttpRequestDenied") => Ok(true),
            Err(e) => Err(e),
        }
    }
}

export_plugin!(HttpTool);

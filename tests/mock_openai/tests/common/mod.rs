//! Helpers shared by the integration tests: an async-openai client for a
//! mock server, and a tiny raw HTTP/1.1 client over a tokio TcpStream (to see
//! status codes and headers that the SDK hides).

#![allow(dead_code, reason = "each test binary uses a subset")]

use std::net::SocketAddr;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use mock_openai::MockServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const API_KEY: &str = "sk-mock-secret-key-0123456789";

pub(crate) fn client(server: &MockServer) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(server.base_url())
            .with_api_key(API_KEY),
    )
}

#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("body is not JSON ({e}): {}", self.text()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunk size line not terminated")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|e| e.to_string())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|e| e.to_string())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub(crate) async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Result<RawResponse, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("read failed: {e}")),
        Err(_) => return Err("timed out".into()),
    }
    let head_end = find(&raw, b"\r\n\r\n").ok_or("no header terminator")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let payload = &raw[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        decode_chunked(payload)?
    } else {
        payload.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// POSTs a JSON body.
pub(crate) async fn post_json(
    server: &MockServer,
    path: &str,
    body: &serde_json::Value,
) -> Result<RawResponse, String> {
    let bytes = body.to_string().into_bytes();
    raw_request(server.addr(), "POST", path, Some(&bytes), &[]).await
}

/// Parses SSE text into (event name, data) pairs.
pub(crate) fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (event, data)
        })
        .collect()
}

pub(crate) async fn start(config: mock_openai::MockConfig) -> MockServer {
    match MockServer::start(config).await {
        Ok(s) => s,
        Err(e) => panic!("mock server failed to start: {e}"),
    }
}

/// `responses().create_stream` with `stream: true` set explicitly: with the
/// `byot` feature (enabled in this workspace), async-openai 0.43 does not set
/// it itself and the server would answer with plain JSON.
pub(crate) async fn responses_stream(
    client: &Client<OpenAIConfig>,
    mut request: async_openai::types::responses::CreateResponse,
) -> Result<async_openai::types::responses::ResponseStream, async_openai::error::OpenAIError> {
    request.stream = Some(true);
    client.responses().create_stream(request).await
}

/// `chat().create_stream` with `stream: true` set explicitly (see
/// [`responses_stream`]).
pub(crate) async fn chat_stream(
    client: &Client<OpenAIConfig>,
    mut request: async_openai::types::chat::CreateChatCompletionRequest,
) -> Result<async_openai::types::chat::ChatCompletionResponseStream, async_openai::error::OpenAIError>
{
    request.stream = Some(true);
    client.chat().create_stream(request).await
}

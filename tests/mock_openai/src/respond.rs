//! Building HTTP answers: API headers, error bodies, SSE bodies (spread or
//! cut), and the fault answers.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::config::Fault;
use crate::render::{self, Meta};
use crate::server::Plan;
use crate::stats::InFlight;

pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    error_type: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = render::error_body(message, error_type, param, code);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const PROCESSING_MS: HeaderName = HeaderName::from_static("openai-processing-ms");
const OPENAI_VERSION: HeaderName = HeaderName::from_static("openai-version");
const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

pub(crate) fn api_headers(n: u64, latency: Duration, content_type: &'static str) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(16);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("req_mock{n}")) {
        h.insert(X_REQUEST_ID, v);
    }
    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    h.insert(PROCESSING_MS, HeaderValue::from(ms));
    h.insert(OPENAI_VERSION, HeaderValue::from_static("2020-10-01"));
    h.insert(LIMIT_REQUESTS, HeaderValue::from_static("30000"));
    h.insert(REMAINING_REQUESTS, HeaderValue::from_static("29999"));
    h.insert(RESET_REQUESTS, HeaderValue::from_static("2ms"));
    h.insert(LIMIT_TOKENS, HeaderValue::from_static("150000000"));
    h.insert(REMAINING_TOKENS, HeaderValue::from_static("149999000"));
    h.insert(RESET_TOKENS, HeaderValue::from_static("0s"));
    h
}

pub(crate) const JSON: &str = "application/json";
pub(crate) const SSE: &str = "text/event-stream; charset=utf-8";

/// A body sending `events` (optionally `delay` apart), optionally cut with an
/// I/O error after `cut` events; holds `guard` until done.
pub(crate) fn event_body(
    events: Vec<Bytes>,
    delay: Duration,
    cut: Option<usize>,
    guard: InFlight,
) -> Body {
    let keep = cut.unwrap_or(events.len()).min(events.len());
    let truncated = cut.is_some();
    let mut events = events;
    events.truncate(keep);
    let chunks: Vec<Bytes> = if delay.is_zero() {
        let mut all = Vec::with_capacity(events.iter().map(Bytes::len).sum());
        for e in &events {
            all.extend_from_slice(e);
        }
        vec![Bytes::from(all)]
    } else {
        events
    };
    let state = (chunks.into_iter(), guard, false);
    let stream = futures::stream::unfold(state, move |(mut it, guard, done)| async move {
        if done {
            return None;
        }
        match it.next() {
            Some(chunk) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok::<Bytes, std::io::Error>(chunk), (it, guard, false)))
            }
            None if truncated => {
                // Let the kept events reach the client, then drop the connection.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((
                    Err(std::io::Error::other("mock: truncated stream")),
                    (it, guard, true),
                ))
            }
            None => None,
        }
    });
    Body::from_stream(stream)
}

#[expect(clippy::too_many_arguments, reason = "internal plumbing")]
pub(crate) fn fault_response(
    fault: &Fault,
    n: u64,
    latency: Duration,
    stream: bool,
    chat: bool,
    model: &str,
    normal: Plan,
    guard: InFlight,
) -> Response {
    let meta = Meta { n, created: 0 };
    match fault {
        Fault::RateLimit {
            retry_after_secs,
            message,
        } => {
            let default_message = format!(
                "Rate limit reached for {model} in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after_secs}s. Visit https://platform.openai.com/account/rate-limits to learn more."
            );
            let body = render::error_body(
                message.as_deref().unwrap_or(&default_message),
                "requests",
                None,
                Some("rate_limit_exceeded"),
            );
            let mut headers = api_headers(n, latency, JSON);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            headers.insert(REMAINING_REQUESTS, HeaderValue::from_static("0"));
            if let Ok(v) = HeaderValue::from_str(&format!("{retry_after_secs}s")) {
                headers.insert(RESET_REQUESTS, v);
            }
            (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response()
        }
        Fault::ServerError { message } => {
            let body = render::error_body(
                message.as_deref().unwrap_or(
                    "The server had an error while processing your request. Sorry about that!",
                ),
                "server_error",
                None,
                None,
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                api_headers(n, latency, JSON),
                body,
            )
                .into_response()
        }
        Fault::Error {
            status,
            message,
            error_type,
            code,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            let default_type = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            let body = render::error_body(
                message.as_deref().unwrap_or("Mock error."),
                error_type.as_deref().unwrap_or(default_type),
                None,
                code.as_deref(),
            );
            (status, api_headers(n, latency, JSON), body).into_response()
        }
        Fault::Malformed if stream => (
            api_headers(n, latency, SSE),
            event_body(
                render::malformed_events(chat, meta),
                Duration::ZERO,
                None,
                guard,
            ),
        )
            .into_response(),
        Fault::Malformed => {
            (api_headers(n, latency, JSON), render::malformed_json(meta)).into_response()
        }
        Fault::TruncatedStream { after_events } => match normal {
            Plan::Sse(events) => {
                // Never send the completion events (the last two).
                let limit = events.len().saturating_sub(2).max(1);
                let keep = after_events.unwrap_or(events.len() / 2).clamp(1, limit);
                (
                    api_headers(n, latency, SSE),
                    event_body(events, Duration::ZERO, Some(keep), guard),
                )
                    .into_response()
            }
            Plan::Json(bytes) => {
                let half = bytes.slice(..bytes.len() / 2);
                (
                    api_headers(n, latency, JSON),
                    event_body(vec![half], Duration::ZERO, Some(1), guard),
                )
                    .into_response()
            }
            Plan::Fault { .. } => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "mock: nested fault",
                "server_error",
                None,
                None,
            ),
        },
        Fault::Raw {
            status,
            content_type,
            body,
            repeat,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut headers = api_headers(n, latency, JSON);
            if let Ok(v) = HeaderValue::from_str(content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            let body = body.repeat((*repeat).max(1));
            (status, headers, body).into_response()
        }
        Fault::Hang => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock: hang",
            "server_error",
            None,
            None,
        ),
    }
}

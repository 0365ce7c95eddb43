//! The HTTP transport of both OpenAI APIs (OpenAI itself or a compatible
//! server): one pooled client, the retry loop, non-streamed and streamed
//! attempts, and the server's `Retry-After`. What goes over the wire is the
//! business of [`super::wire`].

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;

use super::error::Failure;
use super::limits::{self, BodyError, ReplyLimits};
use super::sse::{SseDecoder, SseEvent};
use super::wire::{Answer, DeltaTap, chat, chat_reply, responses, responses_reply};
use super::{
    Api, DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, LlmError, MAX_RETRY_AFTER, ModelRequest,
    ModelResponse, OnDelta, Provider, ProviderConfig, ProviderKind, RetryPolicy, Usage,
};
use crate::egress::{display_url, refusal};
use crate::retry::parse_retry_after;
use crate::secret::Secret;
use crate::util::{clip_chars, error_chain};

pub(crate) struct OpenAiProvider {
    name: String,
    /// `gen_ai.provider.name`: `openai`, or the config name of a compatible
    /// server.
    system: String,
    api: Api,
    url: String,
    /// `url` without credentials, for messages.
    shown_url: String,
    /// Advice for a 404: the other API, or the missing `/v1`.
    not_found_hint: String,
    auth: Option<HeaderValue>,
    key: Option<Secret>,
    timeout: Duration,
    retry: RetryPolicy,
    limits: ReplyLimits,
    http: reqwest::Client,
}

impl OpenAiProvider {
    pub(crate) fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let config_error = |message: String| LlmError::Config {
            provider: config.name.clone(),
            message,
        };
        let (base_url, key, system) = match config.kind {
            ProviderKind::OpenAi => {
                // $OPENAI_API_KEY goes to the OpenAI API only; a provider
                // with another base URL brings its own key.
                let to_openai = config
                    .base_url
                    .as_deref()
                    .is_none_or(|u| u.trim_end_matches('/') == DEFAULT_BASE_URL);
                let key = config
                    .api_key
                    .clone()
                    .or_else(|| Secret::from_env(DEFAULT_API_KEY_ENV).filter(|_| to_openai))
                    .ok_or_else(|| {
                        config_error(format!(
                            "no API key: set one in the provider config, or ${DEFAULT_API_KEY_ENV} for the OpenAI API"
                        ))
                    })?;
                (
                    config
                        .base_url
                        .clone()
                        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
                    Some(key),
                    "openai".to_string(),
                )
            }
            ProviderKind::OpenAiCompatible => (
                config.base_url.clone().ok_or_else(|| {
                    config_error("an OpenAI-compatible provider needs a base_url".into())
                })?,
                config.api_key.clone(),
                config.name.clone(),
            ),
            ProviderKind::Scripted { .. } => {
                return Err(config_error("not an HTTP provider".into()));
            }
        };
        let base_url = base_url.trim_end_matches('/').to_string();
        // Messages show the origin only: a base URL may carry `user:pass@`.
        let shown = display_url(&base_url);
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| config_error(format!("base_url is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(config_error(format!(
                "base_url `{shown}` must be http or https"
            )));
        }
        // Refused destinations fail here (an address literal, a metadata
        // name) or when the name is resolved (the client's resolver).
        let builder = config
            .egress
            .client(&parsed)
            .map_err(|e| config_error(format!("base_url: {e}")))?;
        let auth = match &key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        config_error("the API key contains characters a header cannot".into())
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = builder
            .user_agent(concat!("host/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| config_error(format!("cannot create the HTTP client: {e}")))?;
        let path = match config.api {
            Api::Responses => "/responses",
            Api::Chat => "/chat/completions",
        };
        let not_found_hint = not_found_hint(config.api, parsed.path());
        Ok(Self {
            url: format!("{base_url}{path}"),
            shown_url: shown,
            not_found_hint,
            name: config.name,
            system,
            api: config.api,
            auth,
            key,
            timeout: config.timeout,
            retry: config.retry,
            limits: config.limits,
            http,
        })
    }

    /// The endpoint with the request's `extra_query` parameters.
    fn url_for(&self, request: &ModelRequest) -> Result<std::borrow::Cow<'_, str>, LlmError> {
        let query = &request.settings.extra_query;
        if query.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(&self.url));
        }
        let mut url = reqwest::Url::parse(&self.url).map_err(|e| LlmError::InvalidRequest {
            provider: self.name.clone(),
            message: format!("the endpoint is not a URL: {e}"),
        })?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(std::borrow::Cow::Owned(url.to_string()))
    }

    fn headers(&self, request: &ModelRequest) -> Result<HeaderMap, LlmError> {
        let mut headers = HeaderMap::with_capacity(2 + request.settings.extra_headers.len());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &request.settings.extra_headers {
            let invalid = |what: &str| LlmError::InvalidRequest {
                provider: self.name.clone(),
                message: format!("extra header `{name}`: invalid {what}"),
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid("value"))?;
            // Often a credential (`api-key`): kept out of debug logs.
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        Ok(headers)
    }

    fn body(&self, request: &ModelRequest) -> Result<Bytes, LlmError> {
        let encoded = match self.api {
            Api::Responses => responses::body(request).map(|r| serde_json::to_vec(&r)),
            Api::Chat => chat::body(request).map(|r| serde_json::to_vec(&r)),
        };
        match encoded {
            Ok(Ok(body)) => Ok(Bytes::from(body)),
            Ok(Err(e)) => Err(LlmError::InvalidRequest {
                provider: self.name.clone(),
                message: format!("cannot encode the request: {e}"),
            }),
            Err(failure) => Err(failure.into_error(&self.name)),
        }
    }

    async fn call(
        &self,
        request: &ModelRequest,
        on_event: Option<OnDelta<'_>>,
        span: &tracing::Span,
    ) -> Result<ModelResponse, LlmError> {
        let headers = self.headers(request)?;
        let body = self.body(request)?;
        let url = self.url_for(request)?;
        let mut tap = DeltaTap::new(on_event);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = if request.stream {
                self.attempt_stream(&url, &headers, &body, &mut tap).await
            } else {
                self.attempt_whole(&url, &headers, &body).await
            };
            let error = match result {
                Ok(answer) => {
                    span.record("llm.attempts", i64::from(attempt));
                    return Ok(ModelResponse {
                        id: answer.id,
                        model: answer
                            .model
                            .filter(|m| !m.is_empty())
                            .unwrap_or_else(|| request.settings.model.clone()),
                        output: answer.output,
                        usage: answer.usage.unwrap_or_else(Usage::unreported),
                        attempts: attempt,
                    });
                }
                Err(error) => error,
            };
            span.record("llm.attempts", i64::from(attempt));
            if !error.is_retryable() || tap.text_emitted {
                return Err(error);
            }
            let retry_after = error.retry_after();
            if retry_after.is_some_and(|wait| wait > MAX_RETRY_AFTER) {
                return Err(error);
            }
            if attempt >= self.retry.max_attempts {
                if attempt == 1 {
                    // Retries are off: the error as it is.
                    return Err(error);
                }
                return Err(LlmError::RetryBudgetExhausted {
                    provider: self.name.clone(),
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let delay = self.retry.delay(attempt, retry_after);
            // Redacted before it is logged: a server may echo the request's
            // headers, and this line reaches stderr and OTLP.
            let shown = self.redact(error, request);
            tracing::warn!(
                attempt,
                max_attempts = self.retry.max_attempts,
                delay_ms = delay.as_millis() as u64,
                attempt_ms = started.elapsed().as_millis() as u64,
                error = %shown,
                "model call failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends the request and checks the status; an error status becomes the
    /// matching error (with the server's message and `Retry-After`).
    async fn send(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<reqwest::Response, LlmError> {
        let response = self
            .http
            .post(url)
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after_from_headers(response.headers(), SystemTime::now());
        let mut response = response;
        let sent = body.len();
        let body = limits::read_error_body(&mut response).await;
        let (mut message, kind) = error_message(&body, status);
        match status.as_u16() {
            404 => {
                message.push_str(" — ");
                message.push_str(&self.not_found_hint);
            }
            413 => message.push_str(&format!(
                " — the request ({} KiB) is over the server's body limit: \
                 shorten the input or history, or raise the limit on the server",
                sent.div_ceil(1024)
            )),
            _ => {}
        }
        let provider = self.name.clone();
        if status.as_u16() == 429 && kind.as_deref() != Some("insufficient_quota") {
            Err(LlmError::RateLimited {
                provider,
                message,
                retry_after,
            })
        } else {
            Err(LlmError::Http {
                provider,
                status: status.as_u16(),
                message,
                retry_after,
            })
        }
    }

    /// One non-streamed attempt, bounded by the timeout as a whole.
    async fn attempt_whole(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Answer, LlmError> {
        let exchange = async {
            let mut response = self.send(url, headers, body).await?;
            limits::read_body(&mut response, &self.limits)
                .await
                .map_err(|e| match e {
                    BodyError::Transport(e) => {
                        Failure::Truncated(format!("reading the body failed: {}", error_chain(&e)))
                    }
                    BodyError::TooLarge(exceeded) => Failure::Limit(exceeded),
                })
                .map_err(|f| f.into_error(&self.name))
        };
        let bytes = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.timeout_error("waiting for the response"))??;
        let parsed = match self.api {
            Api::Responses => responses_reply::parse_response(&bytes),
            Api::Chat => chat_reply::parse_response(&bytes),
        };
        parsed.map_err(|f| f.into_error(&self.name))
    }

    /// One streamed attempt: the timeout bounds the wait for the headers and
    /// then each wait for the next chunk; the reply limits bound the whole
    /// stream's bytes and duration, and its lines and events.
    async fn attempt_stream(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
        tap: &mut DeltaTap<'_>,
    ) -> Result<Answer, LlmError> {
        let deadline = tokio::time::Instant::now() + self.limits.max_stream();
        let mut response = tokio::time::timeout(self.timeout, self.send(url, headers, body))
            .await
            .map_err(|_| self.timeout_error("waiting for the response headers"))??;
        let mut decoder = SseDecoder::new(self.limits);
        let mut received: u64 = 0;
        let mut events: Vec<SseEvent> = Vec::new();
        let mut assembler = match self.api {
            Api::Responses => Assembler::Responses(responses_reply::StreamAssembler::default()),
            Api::Chat => Assembler::Chat(chat_reply::StreamAssembler::default()),
        };
        let fail = |f: Failure| f.into_error(&self.name);
        loop {
            let idle = tokio::time::Instant::now() + self.timeout;
            let chunk = match tokio::time::timeout_at(idle.min(deadline), response.chunk()).await {
                Err(_) if deadline <= idle => {
                    return Err(fail(Failure::Limit(self.limits.stream_time())));
                }
                Err(_) => return Err(self.timeout_error("waiting for the next stream event")),
                Ok(Err(e)) => {
                    return Err(fail(Failure::Truncated(format!(
                        "the connection failed mid-stream: {}",
                        error_chain(&e)
                    ))));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            received += chunk.len() as u64;
            if received > self.limits.max_body_bytes {
                return Err(fail(Failure::Limit(self.limits.body())));
            }
            decoder.feed(&chunk, &mut events).map_err(fail)?;
            for event in events.drain(..) {
                assembler.on_event(&event, tap).map_err(fail)?;
            }
        }
        decoder.finish(&mut events);
        for event in events.drain(..) {
            assembler.on_event(&event, tap).map_err(fail)?;
        }
        assembler.finish().map_err(fail)
    }

    /// `error` with the API key and the request's extra header values
    /// replaced by `***`.
    fn redact(&self, error: LlmError, request: &ModelRequest) -> LlmError {
        let extra = (request.settings.extra_headers.values())
            .chain(request.settings.extra_query.values())
            .map(String::as_str);
        self.key
            .iter()
            .map(Secret::expose)
            .chain(extra)
            .fold(error, |error, secret| error.redact(secret))
    }

    fn timeout_error(&self, phase: &'static str) -> LlmError {
        LlmError::Timeout {
            provider: self.name.clone(),
            timeout: self.timeout,
            phase,
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> LlmError {
        if error.is_timeout() {
            return self.timeout_error("sending the request");
        }
        // A destination the egress policy refuses: retrying cannot help.
        if let Some(refused) = refusal(&error) {
            return LlmError::Config {
                provider: self.name.clone(),
                message: format!("base_url: {refused}"),
            };
        }
        LlmError::Connection {
            provider: self.name.clone(),
            url: self.shown_url.clone(),
            message: error_chain(&error.without_url()),
        }
    }
}

enum Assembler {
    Responses(responses_reply::StreamAssembler),
    Chat(chat_reply::StreamAssembler),
}

impl Assembler {
    fn on_event(&mut self, event: &SseEvent, tap: &mut DeltaTap<'_>) -> Result<(), Failure> {
        match self {
            Assembler::Responses(a) => a.on_event(event, tap),
            Assembler::Chat(a) => a.on_event(event, tap),
        }
    }

    fn finish(self) -> Result<Answer, Failure> {
        match self {
            Assembler::Responses(a) => a.finish(),
            Assembler::Chat(a) => a.finish(),
        }
    }
}

/// The server's error message and `error.type`/`code` from an error body
/// (OpenAI's `{"error": {...}}`, or the start of any other body).
fn error_message(body: &[u8], status: reqwest::StatusCode) -> (String, Option<String>) {
    if let Ok(wrapped) = serde_json::from_slice::<async_openai::error::WrappedError>(body) {
        let kind = wrapped.error.r#type.clone();
        let code = wrapped.error.code.clone();
        let kind = match (kind, code) {
            (Some(t), _) if t == "insufficient_quota" => Some(t),
            (_, Some(c)) if c == "insufficient_quota" => Some(c),
            (t, _) => t,
        };
        return (excerpt(&wrapped.error.to_string()), kind);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        (
            status
                .canonical_reason()
                .unwrap_or("no error message")
                .to_string(),
            None,
        )
    } else {
        (excerpt(text), None)
    }
}

/// What a 404 from `api`'s endpoint under a base URL with `base_path`
/// most likely means.
fn not_found_hint(api: Api, base_path: &str) -> String {
    let (endpoint, other) = match api {
        Api::Responses => (
            "/responses",
            "`api: chat` if it serves only Chat Completions",
        ),
        Api::Chat => (
            "/chat/completions",
            "`api: responses` if it serves only the Responses API",
        ),
    };
    let versioned = base_path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|last| {
            last.len() > 1 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit())
        });
    if versioned {
        format!("the server has no `{endpoint}` endpoint: set {other}")
    } else {
        format!(
            "the server has no `{endpoint}` endpoint under this base_url: most servers want `/v1` \
             at the end of base_url (e.g. http://localhost:11434/v1); or set {other}"
        )
    }
}

/// Most characters of a server's error text kept in an error.
const EXCERPT_CHARS: usize = 200;

/// A short excerpt of a server's error text, control characters replaced:
/// a base URL may point at a service that is not a model API, and its
/// error pages should not reach the spec's author whole.
fn excerpt(text: &str) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip_chars(&cleaned, EXCERPT_CHARS)
}

/// The wait a response asks for: `retry-after-ms` (OpenAI's, milliseconds)
/// first, then `Retry-After`.
fn retry_after_from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let ms = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
    ms.or_else(|| {
        headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    })
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_offline(&self) -> bool {
        false
    }

    fn respond<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_event: Option<OnDelta<'a>>,
    ) -> BoxFuture<'a, Result<ModelResponse, LlmError>> {
        // The span opens when the call starts, inside whatever span awaits it.
        Box::pin(async move {
            let span = super::span::chat(&self.name, &self.system, Some(self.api), request);
            let result = self
                .call(request, on_event, &span)
                .instrument(span.clone())
                .await;
            let result = result.map_err(|error| self.redact(error, request));
            super::span::record(&span, &result);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_not_found_suggests_v1_or_the_other_api() {
        let hint = not_found_hint(Api::Responses, "/");
        assert!(
            hint.contains("`/v1`") && hint.contains("`api: chat`"),
            "{hint}"
        );
        let hint = not_found_hint(Api::Responses, "/v1/");
        assert!(
            !hint.contains("`/v1`") && hint.contains("`api: chat`"),
            "{hint}"
        );
        let hint = not_found_hint(Api::Chat, "/api/v2");
        assert!(
            !hint.contains("`/v1`") && hint.contains("`api: responses`"),
            "{hint}"
        );
        assert!(not_found_hint(Api::Chat, "/openai").contains("`/v1`"));
    }

    #[test]
    fn header_preference() {
        let now = SystemTime::now();
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            retry_after_from_headers(&headers, now),
            Some(Duration::from_secs(3))
        );
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(
            retry_after_from_headers(&headers, now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after_from_headers(&HeaderMap::new(), now), None);
    }
}

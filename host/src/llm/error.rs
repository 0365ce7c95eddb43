//! [`LlmError`]: what went wrong with a model call, naming the provider.

use std::path::PathBuf;
use std::time::Duration;

use crate::util::{clip, human_duration};

/// A failed model call. Every variant names the provider (its config name);
/// none ever contains the API key (server messages are scrubbed of it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The server answered with an error status (other than a retryable 429).
    #[error("provider `{provider}`: HTTP {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        /// The server's error message (`error.message` of OpenAI's error body,
        /// or the start of the body).
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// HTTP 429 (rate limit).
    #[error("provider `{provider}`: rate limited (HTTP 429{}): {message}", retry_after_note(.retry_after))]
    RateLimited {
        provider: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer within the configured timeout.
    #[error("provider `{provider}`: timed out after {} while {phase}", human_duration(*.timeout))]
    Timeout {
        provider: String,
        timeout: Duration,
        phase: &'static str,
    },
    /// The server could not be reached (or the request could not be sent).
    #[error("provider `{provider}`: cannot reach {url}: {message}")]
    Connection {
        provider: String,
        url: String,
        message: String,
    },
    /// The answer is not valid JSON or not shaped like the API's answer.
    #[error("provider `{provider}`: malformed response: {message}")]
    MalformedResponse { provider: String, message: String },
    /// The answer (body or SSE stream) ended before it was complete.
    #[error("provider `{provider}`: the response ended early: {message}")]
    StreamTruncated { provider: String, message: String },
    /// The server reported that generating the answer failed (a
    /// `response.failed` / `error` stream event, a `failed` response status).
    #[error("provider `{provider}`: the model failed{}: {message}", code_note(.code))]
    ModelFailed {
        provider: String,
        code: Option<String>,
        message: String,
    },
    /// Retryable failures used up every attempt; `last` is the final one.
    #[error("provider `{provider}`: gave up after {attempts} attempt(s); last error: {}", detail(.last))]
    RetryBudgetExhausted {
        provider: String,
        attempts: u32,
        last: Box<LlmError>,
    },
    /// The request cannot be expressed for this provider (e.g. an MCP
    /// approval on Chat Completions, an unknown reasoning effort, a bad
    /// header).
    #[error("provider `{provider}`: invalid request: {message}")]
    InvalidRequest { provider: String, message: String },
    /// The provider's configuration is unusable.
    #[error("provider `{provider}`: invalid configuration: {message}")]
    Config { provider: String, message: String },
    /// The answer went over one of the operator's
    /// [`ReplyLimits`](super::ReplyLimits); `message` names the cap and the
    /// host-config key that sets it. Not retried.
    #[error("provider `{provider}`: {message}")]
    ReplyLimit { provider: String, message: String },
    /// Scripted provider: a bad script file, or no reply matches a request.
    #[error("provider `{provider}`: {}{message}", script_path(.path))]
    Script {
        provider: String,
        /// The script file, when the error is about it.
        path: Option<PathBuf>,
        message: String,
    },
}

fn retry_after_note(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", Retry-After {}", human_duration(*d)),
        None => String::new(),
    }
}

fn code_note(code: &Option<String>) -> String {
    match code {
        Some(code) => format!(" ({code})"),
        None => String::new(),
    }
}

fn script_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("script {}: ", path.display()),
        None => String::new(),
    }
}

/// An error's message without the `provider `x`: ` prefix.
fn detail(error: &LlmError) -> String {
    let text = error.to_string();
    let prefix = format!("provider `{}`: ", error.provider());
    match text.strip_prefix(&prefix) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

impl LlmError {
    /// The provider the error is about.
    pub fn provider(&self) -> &str {
        match self {
            LlmError::Http { provider, .. }
            | LlmError::RateLimited { provider, .. }
            | LlmError::Timeout { provider, .. }
            | LlmError::Connection { provider, .. }
            | LlmError::MalformedResponse { provider, .. }
            | LlmError::StreamTruncated { provider, .. }
            | LlmError::ModelFailed { provider, .. }
            | LlmError::RetryBudgetExhausted { provider, .. }
            | LlmError::InvalidRequest { provider, .. }
            | LlmError::Config { provider, .. }
            | LlmError::ReplyLimit { provider, .. }
            | LlmError::Script { provider, .. } => provider,
        }
    }

    /// Whether another attempt may succeed (before considering streamed
    /// deltas already delivered).
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => matches!(status, 408 | 409 | 500..=599),
            LlmError::RateLimited { .. }
            | LlmError::Timeout { .. }
            | LlmError::Connection { .. }
            | LlmError::StreamTruncated { .. } => true,
            _ => false,
        }
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http { retry_after, .. } | LlmError::RateLimited { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The underlying error: `last` of [`LlmError::RetryBudgetExhausted`],
    /// else the error itself.
    pub fn root(&self) -> &LlmError {
        match self {
            LlmError::RetryBudgetExhausted { last, .. } => last.root(),
            other => other,
        }
    }

    /// The HTTP status, for HTTP errors.
    pub fn status(&self) -> Option<u16> {
        match self.root() {
            LlmError::Http { status, .. } => Some(*status),
            LlmError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Short machine-readable kind (`http`, `rate_limited`, `timeout`, …),
    /// for logs and the `error.type` span field.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Http { .. } => "http",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Connection { .. } => "connection",
            LlmError::MalformedResponse { .. } => "malformed_response",
            LlmError::StreamTruncated { .. } => "stream_truncated",
            LlmError::ModelFailed { .. } => "model_failed",
            LlmError::RetryBudgetExhausted { .. } => "retry_budget_exhausted",
            LlmError::InvalidRequest { .. } => "invalid_request",
            LlmError::Config { .. } => "config",
            LlmError::ReplyLimit { .. } => "reply_limit",
            LlmError::Script { .. } => "script",
        }
    }

    /// Replaces every occurrence of `secret` in the error's text with `***`
    /// (servers sometimes echo part of a key back).
    pub(crate) fn redact(self, secret: &str) -> Self {
        if secret.len() < 4 {
            return self;
        }
        let scrub = |s: String| -> String {
            if s.contains(secret) {
                s.replace(secret, "***")
            } else {
                s
            }
        };
        match self {
            LlmError::Http {
                provider,
                status,
                message,
                retry_after,
            } => LlmError::Http {
                provider,
                status,
                message: scrub(message),
                retry_after,
            },
            LlmError::RateLimited {
                provider,
                message,
                retry_after,
            } => LlmError::RateLimited {
                provider,
                message: scrub(message),
                retry_after,
            },
            LlmError::Connection {
                provider,
                url,
                message,
            } => LlmError::Connection {
                provider,
                url: scrub(url),
                message: scrub(message),
            },
            LlmError::MalformedResponse { provider, message } => LlmError::MalformedResponse {
                provider,
                message: scrub(message),
            },
            LlmError::StreamTruncated { provider, message } => LlmError::StreamTruncated {
                provider,
                message: scrub(message),
            },
            LlmError::ModelFailed {
                provider,
                code,
                message,
            } => LlmError::ModelFailed {
                provider,
                code,
                message: scrub(message),
            },
            LlmError::RetryBudgetExhausted {
                provider,
                attempts,
                last,
            } => LlmError::RetryBudgetExhausted {
                provider,
                attempts,
                last: Box::new(last.redact(secret)),
            },
            LlmError::InvalidRequest { provider, message } => LlmError::InvalidRequest {
                provider,
                message: scrub(message),
            },
            other => other,
        }
    }
}

/// A failure found while reading an answer, before the provider is known.
#[derive(Debug)]
pub(crate) enum Failure {
    Malformed(String),
    Truncated(String),
    ModelFailed {
        code: Option<String>,
        message: String,
    },
    Invalid(String),
    /// Over one of the operator's reply limits.
    Limit(super::limits::Exceeded),
}

impl Failure {
    pub(crate) fn into_error(self, provider: &str) -> LlmError {
        let provider = provider.to_string();
        match self {
            Failure::Malformed(message) => LlmError::MalformedResponse { provider, message },
            Failure::Truncated(message) => LlmError::StreamTruncated { provider, message },
            Failure::ModelFailed { code, message } => LlmError::ModelFailed {
                provider,
                code,
                message,
            },
            Failure::Invalid(message) => LlmError::InvalidRequest { provider, message },
            Failure::Limit(exceeded) => LlmError::ReplyLimit {
                provider,
                message: exceeded.to_string(),
            },
        }
    }
}

/// Maps a `serde_json` error on a (completely received) body or event to a
/// [`Failure::Malformed`]. A transport-level cut shows up as a body read
/// error instead, so JSON ending early here is a server bug, not a cut.
pub(crate) fn json_failure(error: &serde_json::Error, what: &str, body: &[u8]) -> Failure {
    let problem = if error.is_eof() {
        "is cut off mid-JSON"
    } else if error.is_data() {
        "does not have the expected shape"
    } else {
        "is not valid JSON"
    };
    Failure::Malformed(format!(
        "{what} {problem} ({error}); it starts: {}",
        clip(&String::from_utf8_lossy(body), 200)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_exhausted_shows_last_error_once() {
        let err = LlmError::RetryBudgetExhausted {
            provider: "p".into(),
            attempts: 4,
            last: Box::new(LlmError::Http {
                provider: "p".into(),
                status: 500,
                message: "boom".into(),
                retry_after: None,
            }),
        };
        assert_eq!(
            err.to_string(),
            "provider `p`: gave up after 4 attempt(s); last error: HTTP 500: boom"
        );
        assert_eq!(err.status(), Some(500));
        assert!(!err.is_retryable());
        assert_eq!(err.root().kind(), "http");
    }

    #[test]
    fn redact_scrubs_key() {
        let err = LlmError::Http {
            provider: "p".into(),
            status: 401,
            message: "Incorrect API key provided: sk-abcdef".into(),
            retry_after: None,
        }
        .redact("sk-abcdef");
        assert!(!err.to_string().contains("sk-abcdef"));
    }

    #[test]
    fn rate_limited_mentions_retry_after() {
        let err = LlmError::RateLimited {
            provider: "p".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            err.to_string(),
            "provider `p`: rate limited (HTTP 429, Retry-After 2.0 s): slow down"
        );
    }
}

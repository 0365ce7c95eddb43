//! How much of a model's reply the host accepts: the body of an answer, the
//! lines and events of a stream, how long a stream may last, and how many
//! tool calls one turn may make. A model server (or whoever controls a
//! spec's `base_url`) is not trusted, so nothing it sends may grow the
//! host's memory or hold a run without bound.
//!
//! The operator sets these in the host config file's `[models]` section;
//! the defaults never bite a normal run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The caps on one model reply. Each cap, when hit, ends the call with
/// [`LlmError::ReplyLimit`](super::LlmError::ReplyLimit) naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyLimits {
    /// Most bytes of a non-streamed answer's body, and of all the bytes of
    /// one streamed answer.
    pub max_body_bytes: u64,
    /// Longest line of a server-sent-events stream.
    pub max_line_bytes: usize,
    /// Largest event of a stream (its `data:` lines together).
    pub max_event_bytes: usize,
    /// Longest a streamed answer may take from the request to its last
    /// byte, however steadily it streams (the provider's `timeout_ms` is the
    /// idle timeout between chunks).
    pub max_stream_secs: u64,
    /// Most tool calls (and hosted-MCP approval requests) one model turn may
    /// make; a reply with more fails the step before any tool runs.
    pub max_tool_calls_per_turn: u32,
}

impl ReplyLimits {
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;
    pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 << 20;
    pub const DEFAULT_MAX_STREAM_SECS: u64 = 600;
    pub const DEFAULT_MAX_TOOL_CALLS_PER_TURN: u32 = 64;

    /// [`Self::max_stream_secs`] as a duration.
    pub fn max_stream(&self) -> Duration {
        Duration::from_secs(self.max_stream_secs)
    }
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
            max_stream_secs: Self::DEFAULT_MAX_STREAM_SECS,
            max_tool_calls_per_turn: Self::DEFAULT_MAX_TOOL_CALLS_PER_TURN,
        }
    }
}

/// Most bytes of an error answer's body that are read: only a short excerpt
/// of it is ever shown.
pub(crate) const ERROR_BODY_BYTES: usize = 64 << 10;

/// One cap that a reply went over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exceeded {
    /// What was too large, e.g. `stream line too long`.
    pub what: &'static str,
    /// The `[models]` key that sets the cap.
    pub key: &'static str,
    /// The cap, in the key's unit.
    pub limit: u64,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (over `{} = {}`, set in the host config's [models] section)",
            self.what, self.key, self.limit
        )
    }
}

impl ReplyLimits {
    pub(crate) fn body(&self) -> Exceeded {
        Exceeded {
            what: "response body too large",
            key: "max_body_bytes",
            limit: self.max_body_bytes,
        }
    }

    pub(crate) fn line(&self) -> Exceeded {
        Exceeded {
            what: "stream line too long",
            key: "max_line_bytes",
            limit: self.max_line_bytes as u64,
        }
    }

    pub(crate) fn event(&self) -> Exceeded {
        Exceeded {
            what: "stream event too large",
            key: "max_event_bytes",
            limit: self.max_event_bytes as u64,
        }
    }

    pub(crate) fn stream_time(&self) -> Exceeded {
        Exceeded {
            what: "stream took too long",
            key: "max_stream_secs",
            limit: self.max_stream_secs,
        }
    }

    pub(crate) fn tool_calls(&self) -> Exceeded {
        Exceeded {
            what: "too many tool calls in one turn",
            key: "max_tool_calls_per_turn",
            limit: u64::from(self.max_tool_calls_per_turn),
        }
    }

    /// Fails when one turn's reply makes more than
    /// [`Self::max_tool_calls_per_turn`] calls.
    pub fn check_tool_calls(&self, calls: usize) -> Result<(), String> {
        if calls as u64 > u64::from(self.max_tool_calls_per_turn) {
            return Err(format!("{calls} calls: {}", self.tool_calls()));
        }
        Ok(())
    }
}

/// Why a body could not be read whole.
pub(crate) enum BodyError {
    Transport(reqwest::Error),
    TooLarge(Exceeded),
}

/// Reads `response`'s body, failing as soon as it passes `limits`'s
/// [`ReplyLimits::max_body_bytes`] (a declared `Content-Length` over it
/// fails before any byte is read).
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    limits: &ReplyLimits,
) -> Result<Vec<u8>, BodyError> {
    let cap = limits.max_body_bytes;
    if response.content_length().is_some_and(|len| len > cap) {
        return Err(BodyError::TooLarge(limits.body()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(BodyError::TooLarge(limits.body()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first [`ERROR_BODY_BYTES`] of an error answer's body (whatever could
/// be read: an error reading it only shortens the excerpt).
pub(crate) async fn read_error_body(response: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = ERROR_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

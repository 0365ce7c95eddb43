//! The two OpenAI wire formats ([`chat`], [`responses`]) and what they
//! share: the API-neutral [`Answer`] they parse into, the [`DeltaTap`] they
//! hand stream events to, and the reasoning-effort names. Kept apart from
//! the HTTP transport (`http.rs`), which uses the formats, so that neither
//! format has to import the transport back.

pub(super) mod chat;
pub(super) mod chat_reply;
mod lenient;
pub(super) mod responses;
pub(super) mod responses_reply;

use async_openai::types::responses::ReasoningEffort;

use super::error::Failure;
use super::{Item, OnDelta, StreamEvent, Usage};

/// The API-neutral content of one answer, before attempts are counted.
#[derive(Debug)]
pub(crate) struct Answer {
    pub id: Option<String>,
    pub model: Option<String>,
    pub output: Vec<Item>,
    pub usage: Option<Usage>,
}

/// Hands stream events to the caller and remembers whether text went out
/// (after which an attempt is never retried).
pub(crate) struct DeltaTap<'a> {
    callback: Option<OnDelta<'a>>,
    pub(crate) text_emitted: bool,
}

impl<'a> DeltaTap<'a> {
    pub(crate) fn new(callback: Option<OnDelta<'a>>) -> Self {
        Self {
            callback,
            text_emitted: false,
        }
    }

    pub(crate) fn emit(&mut self, event: StreamEvent) {
        if let Some(callback) = self.callback {
            if matches!(event, StreamEvent::TextDelta(_)) {
                self.text_emitted = true;
            }
            callback(event);
        }
    }
}

/// Parses a reasoning effort name (`low`, `high`, …); both APIs take the
/// same names.
pub(crate) fn reasoning_effort(effort: &str) -> Result<ReasoningEffort, Failure> {
    serde_json::from_value(serde_json::Value::String(effort.trim().to_ascii_lowercase())).map_err(
        |_| {
            Failure::Invalid(format!(
                "unknown reasoning effort `{effort}` (expected none, minimal, low, medium, high, xhigh or max)"
            ))
        },
    )
}

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

/// Sets the field at `path` (objects created on the way) to `verbosity`:
/// `text.verbosity` on the Responses API, `verbosity` on Chat Completions,
/// as the official SDKs send it (no `text.format` when there is no schema).
pub(crate) fn set_verbosity(
    body: &mut serde_json::Value,
    path: &[&str],
    verbosity: super::Verbosity,
) {
    let mut at = body;
    for (i, field) in path.iter().enumerate() {
        let Some(object) = at.as_object_mut() else {
            return;
        };
        if i + 1 == path.len() {
            object.insert(
                (*field).to_string(),
                serde_json::Value::String(verbosity.as_str().into()),
            );
            return;
        }
        at = object
            .entry(*field)
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
}

/// Sets `tool_choice`: `auto`, `required` and `none` as strings, a named
/// tool as the object `named` makes for the API.
pub(crate) fn set_tool_choice(
    body: &mut serde_json::Value,
    choice: &super::ToolChoice,
    named: impl FnOnce(&str) -> serde_json::Value,
) {
    use super::ToolChoice;
    let value = match choice {
        ToolChoice::Auto => serde_json::Value::String("auto".into()),
        ToolChoice::Required => serde_json::Value::String("required".into()),
        ToolChoice::None => serde_json::Value::String("none".into()),
        ToolChoice::Named(name) => named(name),
    };
    if let Some(object) = body.as_object_mut() {
        object.insert("tool_choice".into(), value);
    }
}

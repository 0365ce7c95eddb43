//! What both reply parsers share to be exactly as lenient as the official
//! OpenAI SDKs, which build their reply models without validating them:
//!
//! - every field the host does not need to act is optional, and a field of
//!   the wrong type counts as absent ([`opt`]), never as a malformed reply;
//! - unknown fields are ignored; unknown item, content and event types are
//!   skipped and logged once per process at debug level ([`ignored`]);
//! - usage may come under either API's names, with or without its
//!   `*_tokens_details`, or not at all ([`WireUsage`]); counts that are
//!   missing make the call's usage unknown, never zero;
//! - a function call's `arguments` may be a JSON string (the standard) or a
//!   JSON value some servers send instead ([`arguments_text`]).
//!
//! What the host cannot do without stays required: a function call needs a
//! name, a stream must show that it finished (see each parser).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::llm::Usage;
use crate::llm::error::Failure;

/// An optional field: absent, `null` or of the wrong type → `None`.
pub(super) fn opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(from_value(value))
}

/// `value` as a `T`, or `None` (null, or another shape).
pub(super) fn from_value<T: DeserializeOwned>(value: Value) -> Option<T> {
    if value.is_null() {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Fails unless `body` is a JSON object (serde would also read a struct
/// from an array).
pub(super) fn expect_object(body: &[u8], what: &str) -> Result<(), Failure> {
    if body.trim_ascii_start().first() == Some(&b'{') {
        return Ok(());
    }
    Err(Failure::Malformed(format!(
        "{what} is not a JSON object; it starts: {}",
        crate::util::clip_chars(&String::from_utf8_lossy(body), 200)
    )))
}

/// A string field of a JSON object, if it is one.
pub(super) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A string field of a JSON object, owned; empty when absent.
pub(super) fn string_field(value: &Value, key: &str) -> String {
    str_field(value, key).unwrap_or_default().to_owned()
}

/// A non-negative integer field (a float is truncated); `None` otherwise.
pub(super) fn index_field(value: &Value, key: &str) -> Option<u32> {
    value
        .get(key)
        .and_then(count)
        .and_then(|n| u32::try_from(n).ok())
}

fn count(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// A function call's `arguments` as JSON text: a string as it is, another
/// JSON value serialized, absent or `null` as `""`.
pub(super) fn arguments_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Text of a message `content` that is a string, or a list of parts whose
/// text is under `text` (or `refusal` for refusal parts); other parts are
/// skipped.
pub(super) fn content_text(content: &Value, what: &'static str) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match str_field(part, "type").unwrap_or("text") {
                    "output_text" | "text" | "input_text" => {
                        text.push_str(str_field(part, "text").unwrap_or_default());
                    }
                    "refusal" => text.push_str(str_field(part, "refusal").unwrap_or_default()),
                    other => ignored(what, other),
                }
            }
            Some(text)
        }
        _ => None,
    }
}

/// Token usage under either API's names. Each count is optional and may
/// have the wrong type; `*_tokens_details` and anything else are ignored.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    input_tokens: Value,
    #[serde(default)]
    prompt_tokens: Value,
    #[serde(default)]
    output_tokens: Value,
    #[serde(default)]
    completion_tokens: Value,
    #[serde(default)]
    total_tokens: Value,
}

impl WireUsage {
    /// The counts, if the server reported both input and output tokens
    /// (the total defaults to their sum); `None` means unknown.
    pub(super) fn usage(&self) -> Option<Usage> {
        let input = count(&self.input_tokens).or_else(|| count(&self.prompt_tokens))?;
        let output = count(&self.output_tokens).or_else(|| count(&self.completion_tokens))?;
        let total = count(&self.total_tokens).unwrap_or(input.saturating_add(output));
        Some(Usage::reported(input, output, total))
    }
}

/// The usage of a reply's `usage` value (`None`: not reported).
pub(super) fn usage_of(value: Option<&Value>) -> Option<Usage> {
    value
        .cloned()
        .and_then(from_value::<WireUsage>)
        .and_then(|u| u.usage())
}

/// Most distinct ignored kinds remembered (and so logged once each).
const MAX_REMEMBERED: usize = 256;

static SEEN: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// Notes a reply part the host skips: logged at debug level the first time
/// this `what`/`kind` pair is seen in the process, silently after that.
pub(super) fn ignored(what: &'static str, kind: &str) {
    let key = format!("{what}\u{0}{kind}");
    let first = match SEEN.lock() {
        Ok(mut seen) => seen.len() < MAX_REMEMBERED && seen.insert(key),
        Err(_) => false,
    };
    if first {
        let kind = crate::util::clip_chars(kind, 80);
        tracing::debug!(what, kind = %kind, "ignored a reply part the host does not use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_under_either_name_with_or_without_details() {
        let u = |v: Value| usage_of(Some(&v));
        assert_eq!(
            u(json!({"input_tokens": 3, "output_tokens": 4, "total_tokens": 7})),
            Some(Usage::reported(3, 4, 7))
        );
        assert_eq!(
            u(json!({"prompt_tokens": 3, "completion_tokens": 4})),
            Some(Usage::reported(3, 4, 7))
        );
        assert_eq!(
            u(
                json!({"input_tokens": 3.0, "output_tokens": 4, "input_tokens_details": null, "x": 1})
            ),
            Some(Usage::reported(3, 4, 7))
        );
        assert_eq!(u(json!({"input_tokens": 3})), None);
        assert_eq!(u(json!({"input_tokens": -1, "output_tokens": 4})), None);
        assert_eq!(u(json!("n/a")), None);
        assert_eq!(usage_of(None), None);
    }

    #[test]
    fn arguments_and_content_shapes() {
        assert_eq!(arguments_text(Some(&json!("{\"a\":1}"))), "{\"a\":1}");
        assert_eq!(arguments_text(Some(&json!({"a": 1}))), "{\"a\":1}");
        assert_eq!(arguments_text(None), "");
        assert_eq!(
            content_text(
                &json!([{"type": "output_text", "text": "a", "annotations": []}, {"type": "x"}, {"type": "refusal", "refusal": "b"}]),
                "t"
            ),
            Some("ab".into())
        );
        assert_eq!(content_text(&json!("plain"), "t"), Some("plain".into()));
        assert_eq!(content_text(&json!(null), "t"), None);
    }

    #[test]
    fn wrong_types_are_absent() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "opt")]
            id: Option<String>,
        }
        let t: T = serde_json::from_value(json!({"id": 5})).unwrap();
        assert_eq!(t.id, None);
        let t: T = serde_json::from_value(json!({})).unwrap();
        assert_eq!(t.id, None);
        let t: T = serde_json::from_value(json!({"id": "r"})).unwrap();
        assert_eq!(t.id.as_deref(), Some("r"));
    }
}

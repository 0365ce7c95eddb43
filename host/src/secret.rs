//! [`Secret`]: the one type for values that must never be printed, an API
//! key or a callback's signing secret. The spec holds them (the Go runner's
//! request may carry both), `llm` sends the key, `sinks` and `outbox` sign
//! with the secret. A leaf: it imports nothing from the crate, so none of
//! them depends on another just to share it.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A secret value: `Debug` and `Serialize` print `***` and there is no
/// `Display`, so it cannot end up in logs, error messages or a serialized
/// spec by accident; only [`Secret::expose`] gives the value. It
/// deserializes from a plain string.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value in environment variable `var`, if set and not blank.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(Secret)
    }

    /// The value itself, for the one place that needs it (an
    /// `Authorization` header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({"type": "string"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_or_serializes_the_value() {
        let secret = Secret::new("sk-secret-123");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"***\"")
        );
        let back: Secret = serde_json::from_str("\"sk-secret-123\"").expect("deserialize");
        assert_eq!(back.expose(), "sk-secret-123");
    }
}

//! Configuration and scripting rules, usable from Rust and loadable from JSON.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::MockError;
use crate::hosted::{HostedCallSpec, HostedReply};
use crate::style::{self, Style};

/// Server configuration. The JSON form uses the same field names, except
/// that durations are given in milliseconds (`latency_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Sleep before answering every model request (overridden per rule, and
    /// per request by the `x-mock-latency-ms` header).
    #[serde(rename = "latency_ms", with = "duration_ms")]
    pub latency: Duration,
    /// For streamed replies, spread the latency across the SSE events instead
    /// of sleeping before the first byte.
    pub spread_stream_latency: bool,
    /// Number of deltas a streamed text (or tool-call argument string) is cut into.
    pub stream_chunks: usize,
    /// Scripted rules, checked in order; the first match wins.
    pub rules: Vec<Rule>,
    /// Maximum number of entries kept in the request log (oldest dropped);
    /// 0 disables the log.
    pub log_capacity: usize,
    /// Keep the parsed JSON body of each logged request.
    pub log_bodies: bool,
    /// Model ids listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// Reply styles for every answer (overridden by a rule's `styles`, and
    /// per request by the `x-mock-style` header).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub styles: Vec<Style>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            spread_stream_latency: false,
            stream_chunks: 4,
            rules: Vec::new(),
            log_capacity: 10_000,
            log_bodies: true,
            models: [
                "gpt-4.1-mini",
                "gpt-4.1",
                "gpt-4o-mini",
                "gpt-5-mini",
                "mock",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            styles: Vec::new(),
        }
    }
}

impl MockConfig {
    /// Parses a JSON configuration: either a full config object or a bare
    /// array of rules.
    pub fn from_json(text: &str) -> Result<Self, MockError> {
        let value: Value = serde_json::from_str(text)?;
        let config = if value.is_array() {
            Self {
                rules: serde_json::from_value(value)?,
                ..Self::default()
            }
        } else {
            serde_json::from_value(value)?
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a JSON configuration file (see [`MockConfig::from_json`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, MockError> {
        let text = std::fs::read_to_string(path)?;
        Self::from_json(&text)
    }

    /// Builder helper: sets the global latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Builder helper: appends a rule.
    #[must_use]
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Builder helper: sets the global reply styles.
    #[must_use]
    pub fn with_styles(mut self, styles: impl IntoIterator<Item = Style>) -> Self {
        self.styles = styles.into_iter().collect();
        self
    }

    /// Checks the configuration for mistakes that cannot be expressed in types.
    pub fn validate(&self) -> Result<(), MockError> {
        style::check(&self.styles)
            .map_err(|msg| MockError::InvalidConfig(format!("styles: {msg}")))?;
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|msg| MockError::InvalidConfig(format!("rule {index}: {msg}")))?;
        }
        Ok(())
    }
}

/// Which API a request was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Matches both APIs (rules only).
    #[default]
    Any,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/chat/completions`
    #[serde(alias = "chat_completions")]
    Chat,
}

impl Endpoint {
    /// Short name used in stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Any => "any",
            Endpoint::Responses => "responses",
            Endpoint::Chat => "chat",
        }
    }
}

/// A scripted reply for requests matching some conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name used for per-rule hit counts (default `rule<index>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions; all given conditions must hold.
    #[serde(default, rename = "match")]
    pub matcher: Match,
    /// What to answer.
    #[serde(default)]
    pub reply: Reply,
    /// Latency for this rule (overrides the global one).
    #[serde(
        default,
        rename = "latency_ms",
        with = "opt_duration_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub latency: Option<Duration>,
    /// Overrides [`MockConfig::spread_stream_latency`] for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_stream_latency: Option<bool>,
    /// Reply styles for this rule's answers, replacing the global ones
    /// (`Some(vec![])`: none); the `x-mock-style` header still wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub styles: Option<Vec<Style>>,
}

impl Rule {
    /// A rule matching every request, answering `reply`.
    pub fn new(reply: Reply) -> Self {
        Self {
            reply,
            ..Self::default()
        }
    }

    /// Sets the rule's name.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the rule's conditions.
    #[must_use]
    pub fn when(mut self, matcher: Match) -> Self {
        self.matcher = matcher;
        self
    }

    /// Sets the rule's latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Sets the rule's reply styles (replacing the global ones).
    #[must_use]
    pub fn with_styles(mut self, styles: impl IntoIterator<Item = Style>) -> Self {
        self.styles = Some(styles.into_iter().collect());
        self
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(styles) = &self.styles {
            style::check(styles)?;
        }
        match &self.reply {
            Reply::ToolCalls(calls) if calls.is_empty() => {
                Err("tool_calls needs at least one call".into())
            }
            Reply::ToolCalls(calls) if calls.iter().any(|c| c.name.is_empty()) => {
                Err("tool call without a name".into())
            }
            Reply::Fault(Fault::Error { status, .. }) if !(400..=599).contains(status) => {
                Err(format!("error status {status} is not 4xx/5xx"))
            }
            Reply::Fault(Fault::Raw { status, .. }) if !(200..=599).contains(status) => {
                Err(format!("raw status {status} is not in 200..=599"))
            }
            Reply::Fault(Fault::Raw { content_type, .. })
                if axum::http::HeaderValue::from_str(content_type).is_err() =>
            {
                Err(format!(
                    "raw content_type {content_type:?} is not a header value"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// State of MCP approval responses in a request, for [`Match::mcp_approval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMatch {
    /// The request has no `mcp_approval_response` input item.
    None,
    /// The request has at least one `mcp_approval_response` item.
    Any,
    /// The last `mcp_approval_response` item has `approve: true`.
    Approved,
    /// The last `mcp_approval_response` item has `approve: false`.
    Denied,
}

/// Conditions of a [`Rule`]. Unset conditions always hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Match {
    /// API the request was sent to.
    pub endpoint: Endpoint,
    /// Exact model name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Substring of the instructions / system and developer messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions_contains: Option<String>,
    /// Substring of the last user message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_contains: Option<String>,
    /// Whether a tool result (function_call_output / role `tool`) is present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_tool_result: Option<bool>,
    /// A tool result is present for a call of the function with this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_result_for: Option<String>,
    /// State of `mcp_approval_response` input items (Responses API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_approval: Option<ApprovalMatch>,
    /// Whether the request asks for a stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// The request offers a hosted tool of this type (`web_search` also
    /// matches `web_search_preview`; the exact type sent matches too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_hosted_tool: Option<String>,
    /// Skip the first `after` requests that satisfy the other conditions.
    #[serde(skip_serializing_if = "is_zero")]
    pub after: u64,
    /// Then match only `times` requests (unlimited when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Match {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }
    /// Restricts to one API.
    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }
    /// Restricts to one model.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
    /// Instructions / system prompt must contain `text`.
    #[must_use]
    pub fn instructions_contains(mut self, text: impl Into<String>) -> Self {
        self.instructions_contains = Some(text.into());
        self
    }
    /// Last user message must contain `text`.
    #[must_use]
    pub fn user_contains(mut self, text: impl Into<String>) -> Self {
        self.user_contains = Some(text.into());
        self
    }
    /// Presence of a tool result.
    #[must_use]
    pub fn has_tool_result(mut self, present: bool) -> Self {
        self.has_tool_result = Some(present);
        self
    }
    /// A tool result for a call of `name` must be present.
    #[must_use]
    pub fn tool_result_for(mut self, name: impl Into<String>) -> Self {
        self.tool_result_for = Some(name.into());
        self
    }
    /// State of MCP approval responses.
    #[must_use]
    pub fn mcp_approval(mut self, state: ApprovalMatch) -> Self {
        self.mcp_approval = Some(state);
        self
    }
    /// Streamed or not.
    #[must_use]
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = Some(stream);
        self
    }
    /// The request must offer a hosted tool of type `kind`.
    #[must_use]
    pub fn has_hosted_tool(mut self, kind: impl Into<String>) -> Self {
        self.has_hosted_tool = Some(kind.into());
        self
    }
    /// Skip the first `n` otherwise-matching requests.
    #[must_use]
    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }
    /// Match at most `n` requests (after the skipped ones).
    #[must_use]
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
}

/// One function call in a [`Reply::ToolCalls`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallSpec {
    /// Function name.
    pub name: String,
    /// Arguments: any JSON value is serialized; a JSON string is sent verbatim
    /// (so invalid argument JSON can be scripted too).
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// Fixed call id (default: generated `call_mock<N>_<i>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

impl ToolCallSpec {
    /// A call of `name` with `arguments`.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        Self {
            name: name.into(),
            arguments,
            call_id: None,
        }
    }
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// A hosted-MCP approval request output item (Responses API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpApprovalSpec {
    /// Label of the MCP server.
    pub server_label: String,
    /// Name of the MCP tool to approve.
    pub name: String,
    /// Arguments (serialized like [`ToolCallSpec::arguments`]).
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// Fixed id (default: generated `mcpr_mock<N>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What a rule answers.
///
/// In JSON, externally tagged (`{"text": "..."}`), except
/// [`Reply::Hosted`], which is the flat object `{"hosted": [...], "text": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The default behaviour (deterministic text / `[[use_tool]]` / schema JSON).
    #[default]
    Default,
    /// An assistant text message.
    Text(String),
    /// One or more function calls in one turn.
    ToolCalls(Vec<ToolCallSpec>),
    /// A structured reply: the value serialized as the message text.
    Json(Value),
    /// A hosted-MCP approval request (Responses API; Chat gets it as JSON text).
    McpApprovalRequest(McpApprovalSpec),
    /// A fault instead of a reply.
    Fault(Fault),
    /// Hosted tool output items (Responses API), then an assistant message.
    /// Chat Completions gets the text only.
    #[serde(skip)]
    Hosted(HostedReply),
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Hosted(hosted) => hosted.serialize(s),
            other => Reply::serialize(other, s),
        }
    }
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        if value.get("hosted").is_some() {
            return serde_json::from_value(value)
                .map(Reply::Hosted)
                .map_err(D::Error::custom);
        }
        Reply::deserialize(value).map_err(D::Error::custom)
    }
}

impl Reply {
    /// [`Reply::Text`].
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text(text.into())
    }
    /// A single function call.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Reply::ToolCalls(vec![ToolCallSpec::new(name, arguments)])
    }
    /// [`Reply::Hosted`]: hosted tool items, then `text` (if any).
    pub fn hosted(items: impl IntoIterator<Item = HostedCallSpec>, text: Option<&str>) -> Self {
        Reply::Hosted(HostedReply {
            hosted: items.into_iter().collect(),
            text: text.map(str::to_owned),
        })
    }
}

/// Failures the server can inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// `429` with a `Retry-After` header (seconds) and an OpenAI error body.
    #[serde(alias = "429")]
    RateLimit {
        /// Value of the `Retry-After` header, in seconds.
        #[serde(default)]
        retry_after_secs: u64,
        /// Error message (default: OpenAI's rate-limit wording).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// `500` with an OpenAI error body.
    #[serde(alias = "500")]
    ServerError {
        /// Error message (default: OpenAI's wording).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Any 4xx/5xx status with an OpenAI error body.
    Error {
        /// HTTP status.
        status: u16,
        /// `error.message`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// `error.type` (default `invalid_request_error` / `server_error`).
        #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
        error_type: Option<String>,
        /// `error.code`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    /// Accept the request, then never answer until the server shuts down
    /// (the connection is then dropped).
    Hang,
    /// `200` with a body that is not valid JSON (for streams: an SSE event
    /// whose data is not valid JSON).
    Malformed,
    /// Any status with a raw body and content type (for non-JSON error
    /// bodies such as an HTML 413 page or Go's `404 page not found`).
    Raw {
        /// HTTP status (200..=599).
        status: u16,
        /// `Content-Type` (default `text/plain; charset=utf-8`).
        #[serde(default = "text_plain")]
        content_type: String,
        /// The body, sent verbatim.
        #[serde(default)]
        body: String,
        /// Send the body this many times in a row (for long bodies; default 1).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        repeat: usize,
    },
    /// Start the answer, then close the connection mid-body: SSE stops before
    /// the completion events / `[DONE]`; JSON stops halfway.
    TruncatedStream {
        /// Number of SSE events sent before the cut (default: half, never the
        /// completion events).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_events: Option<usize>,
    },
}

impl Fault {
    /// Short name used in stats.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::RateLimit { .. } => "rate_limit",
            Fault::ServerError { .. } => "server_error",
            Fault::Error { .. } => "error",
            Fault::Hang => "hang",
            Fault::Malformed => "malformed",
            Fault::TruncatedStream { .. } => "truncated_stream",
            Fault::Raw { .. } => "raw",
        }
    }
}

fn text_plain() -> String {
    "text/plain; charset=utf-8".to_owned()
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

fn ms_to_duration<E: serde::de::Error>(ms: f64) -> Result<Duration, E> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(E::custom(format!("invalid duration {ms} ms")));
    }
    Duration::try_from_secs_f64(ms / 1000.0).map_err(E::custom)
}

fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        s.serialize_u64(d.as_secs() * 1000 + u64::from(d.subsec_millis()))
    } else {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_ms(d, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::ms_to_duration(f64::deserialize(d)?)
    }
}

mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize_ms(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(ms) => super::ms_to_duration(ms).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_config() {
        let config = MockConfig::from_json(
            r#"{
              "latency_ms": 50,
              "rules": [
                {"name": "limit", "match": {"endpoint": "responses", "times": 2},
                 "reply": {"fault": {"kind": "429", "retry_after_secs": 1}}},
                {"match": {"user_contains": "weather", "has_tool_result": false},
                 "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                 "latency_ms": 12.5},
                {"match": {"mcp_approval": "approved"}, "reply": {"text": "done"}},
                {"reply": "default"}
              ]
            }"#,
        );
        let config = match config {
            Ok(c) => c,
            Err(e) => panic!("parse failed: {e}"),
        };
        assert_eq!(config.latency, Duration::from_millis(50));
        assert_eq!(config.rules.len(), 4);
        assert_eq!(
            config.rules[0].reply,
            Reply::Fault(Fault::RateLimit {
                retry_after_secs: 1,
                message: None
            })
        );
        assert_eq!(config.rules[1].latency, Some(Duration::from_micros(12_500)));
        assert_eq!(config.rules[3].reply, Reply::Default);
    }

    #[test]
    fn parses_bare_rule_array_and_rejects_typos() {
        let ok = MockConfig::from_json(r#"[{"reply": {"text": "hi"}}]"#);
        assert!(matches!(ok, Ok(c) if c.rules.len() == 1));
        assert!(MockConfig::from_json(r#"[{"reply": {"txt": "hi"}}]"#).is_err());
        assert!(
            MockConfig::from_json(r#"[{"match": {"modle": "x"}, "reply": "default"}]"#).is_err()
        );
        assert!(MockConfig::from_json(r#"[{"reply": {"tool_calls": []}}]"#).is_err());
        assert!(
            MockConfig::from_json(r#"[{"reply": {"fault": {"kind": "429", "retry_after": 1}}}]"#)
                .is_err()
        );
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme.find("```json\n").map(|i| i + 8);
        let block = start.and_then(|s| readme[s..].find("```").map(|e| &readme[s..s + e]));
        let Some(block) = block else {
            panic!("no json block in README");
        };
        match MockConfig::from_json(block) {
            Ok(config) => assert_eq!(config.rules.len(), 8),
            Err(e) => panic!("README example does not parse: {e}"),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let config = MockConfig::default()
            .with_latency(Duration::from_millis(7))
            .with_rule(
                Rule::new(Reply::tool_call("f", serde_json::json!({"a": 1})))
                    .named("r")
                    .when(Match::any().endpoint(Endpoint::Chat).times(3))
                    .with_latency(Duration::from_millis(3)),
            );
        let text = match serde_json::to_string(&config) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let back = match MockConfig::from_json(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}: {text}"),
        };
        assert_eq!(back, config);
    }
}

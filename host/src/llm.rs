//! Model providers behind one trait: the OpenAI Responses API and Chat
//! Completions (OpenAI or any OpenAI-compatible base URL), and an offline
//! scripted provider for examples, demos and dry runs.
//!
//! The agent loop only sees the API-neutral types of this module
//! ([`ModelRequest`] in, [`ModelResponse`] out, [`StreamEvent`]s while a
//! streamed answer arrives) and the [`Provider`] trait; which wire format is
//! spoken is a [`ProviderConfig`] choice.
//!
//! # How the OpenAI providers talk HTTP
//!
//! Requests and responses are `async-openai`'s typed structs
//! ([`async_openai::types::responses::CreateResponse`],
//! [`async_openai::types::chat::CreateChatCompletionRequest`], the response
//! and SSE event types), built with its builders and (de)serialized with
//! serde. The HTTP exchange itself is ours (`reqwest`, one pooled client per
//! provider), because `async-openai` 0.43's `Client` always wraps its
//! transport in its own retry layer (3 retries of 429/5xx/connect errors,
//! not configurable without its `middleware` feature) and never exposes
//! response headers. Owning the exchange gives exactly one retry policy
//! ([`RetryPolicy`]), `Retry-After` / `retry-after-ms` in seconds or as an
//! HTTP date, precise timeouts and a clear difference between a malformed
//! and a truncated answer. The typed structs express everything sent
//! (reasoning effort on Chat, MCP approval items, JSON-Schema formats), so
//! the `byot` raw-JSON path is not used.
//!
//! # Retries
//!
//! Retried, with exponential backoff and full jitter ([`RetryPolicy`]), or
//! after the server's `Retry-After` when it sends one (up to
//! [`MAX_RETRY_AFTER`]; a longer wait is not retried): HTTP 408, 409, 429
//! (except `insufficient_quota`), 5xx, connection failures, timeouts, and an
//! answer that ended early (truncated body or stream) — the latter only while
//! no text delta has been handed to the caller's `on_event`, so a listener
//! never sees text twice. Never retried: other 4xx, malformed JSON, a
//! response the model itself marked as failed. When the attempts run out the
//! error is [`LlmError::RetryBudgetExhausted`] with the last error inside.
//!
//! # Timeouts
//!
//! [`ProviderConfig::timeout`] bounds a non-streamed attempt as a whole
//! (connect, headers and body). For a streamed attempt it bounds the wait
//! for the response headers and then every wait for the next chunk (an idle
//! timeout); the whole stream is bounded by the operator's
//! [`ReplyLimits::max_stream_secs`] (10 minutes by default).
//!
//! # Limits
//!
//! A model server is not trusted with the host's memory: a body, a stream
//! line or event, a stream's duration and the tool calls of one turn are
//! capped by [`ReplyLimits`] (the host config's `[models]` section), and
//! going over a cap is an [`LlmError::ReplyLimit`] naming it.

mod error;
mod hosted;
mod http;
mod limits;
mod sample;
mod scripted;
mod settings;
mod span;
mod sse;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use crate::egress::Egress;
use crate::secret::Secret;

/// The policy type of [`ProviderConfig::retry`], re-exported so that a
/// provider is configured from this module alone.
pub use crate::retry::RetryPolicy;
pub use error::LlmError;
pub use hosted::{HostedCallSummary, HostedTool, McpApproval};
pub use limits::ReplyLimits;
pub use sample::sample_value;
pub use scripted::ScriptedProvider;
pub use settings::{ModelSettings, ReasoningSummary, StoredPrompt, ToolChoice, Verbosity};

// The provider defaults. The spec re-uses them, so a spec that leaves a
// field out gets exactly what a provider built without it does.

/// Base URL of a [`ProviderKind::OpenAi`] provider configured without one:
/// the OpenAI API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Name of the environment variable read for the key of a
/// [`ProviderKind::OpenAi`] provider configured without one.
pub const DEFAULT_API_KEY_ENV: &str = "OPENAI_API_KEY";
/// Default [`ProviderConfig::timeout`] in milliseconds (the unit of the
/// spec's `timeout_ms`): 60 s, what `host run` has always used, since every
/// provider it builds gets the spec's timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Default [`ProviderConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(DEFAULT_TIMEOUT_MS);
/// The longest server-requested wait (`Retry-After`) that is honoured; a
/// longer one ends the call with the server's error instead of sleeping.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Name prefix of a handoff tool: the agent loop offers `transfer_to_<agent>`
/// for each agent it may hand off to, and a scripted `{"handoff": "<agent>"}`
/// reply calls one. Defined here, the lower layer, so both use one spelling.
pub const HANDOFF_PREFIX: &str = "transfer_to_";

/// Which OpenAI wire API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST {base}/responses`.
    #[default]
    Responses,
    /// `POST {base}/chat/completions`.
    Chat,
}

impl Api {
    /// `"responses"` or `"chat"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Responses => "responses",
            Api::Chat => "chat",
        }
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of model server a provider talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI itself: base URL defaults to [`DEFAULT_BASE_URL`]. Without
    /// [`ProviderConfig::api_key`] the key is read from the environment
    /// variable [`DEFAULT_API_KEY_ENV`], but only for that default URL: a
    /// config with another base URL must bring its key, so the environment's
    /// OpenAI key never goes to another server by default. (Which
    /// environment keys may go where is decided above this module, by the
    /// operator's pairs in `plan::credentials`.)
    OpenAi,
    /// Any OpenAI-compatible server: `base_url` is required, the key
    /// optional (no `Authorization` header without one; the environment is
    /// never read here).
    OpenAiCompatible,
    /// Offline replies from a JSON script (see [`ScriptedProvider`]).
    Scripted {
        /// The script file.
        script: PathBuf,
    },
}

/// How to build one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Name of the provider in the spec; every error names it.
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL including the version path, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: Option<String>,
    pub api: Api,
    pub api_key: Option<Secret>,
    /// Per-attempt timeout (see the module docs for streams).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// What the provider accepts of a reply (set by the operator).
    pub limits: ReplyLimits,
    /// Which addresses the base URL may reach (default: public ones only;
    /// see [`crate::egress`]).
    pub egress: Egress,
}

impl ProviderConfig {
    /// OpenAI, Responses API, default timeout and retries.
    pub fn openai(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: ProviderKind::OpenAi,
            base_url: None,
            api: Api::Responses,
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            limits: ReplyLimits::default(),
            egress: Egress::default(),
        }
    }

    /// An OpenAI-compatible server at `base_url`, Responses API.
    pub fn compatible(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            kind: ProviderKind::OpenAiCompatible,
            base_url: Some(base_url.into()),
            ..Self::openai(name)
        }
    }

    /// The offline scripted provider reading `script`.
    pub fn scripted(name: impl Into<String>, script: impl Into<PathBuf>) -> Self {
        Self {
            kind: ProviderKind::Scripted {
                script: script.into(),
            },
            ..Self::openai(name)
        }
    }

    pub fn with_api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    pub fn with_api_key(mut self, key: Secret) -> Self {
        self.api_key = Some(key);
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_limits(mut self, limits: ReplyLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_egress(mut self, egress: Egress) -> Self {
        self.egress = egress;
        self
    }
}

/// Author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
}

/// One item of a conversation, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// A text message.
    Message { role: Role, content: String },
    /// The model asks for a function (tool) call; `arguments` is JSON text.
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// The result of a function call, sent back to the model.
    FunctionCallOutput { call_id: String, output: String },
    /// A hosted MCP tool call waiting for approval (Responses API only).
    McpApprovalRequest {
        id: String,
        server_label: String,
        name: String,
        arguments: String,
    },
    /// The answer to an [`Item::McpApprovalRequest`] (Responses API only).
    McpApprovalResponse {
        approval_request_id: String,
        approve: bool,
        reason: Option<String>,
    },
    /// A tool the provider ran itself (Responses API only): a web search,
    /// file search, code interpreter or image generation call, or a hosted
    /// MCP call or tool listing. Kept whole, as the server sent it, so the
    /// next request can replay it like the official SDKs do.
    HostedToolCall {
        /// The output item's id.
        id: String,
        /// The output item's type (`web_search_call`, `mcp_call`, …).
        kind: String,
        /// The output item.
        item: serde_json::Value,
    },
}

impl Item {
    /// A message from `role`.
    pub fn message(role: Role, content: impl Into<String>) -> Self {
        Item::Message {
            role,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::message(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::message(Role::Assistant, content)
    }

    /// A function call's result.
    pub fn function_call_output(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Item::FunctionCallOutput {
            call_id: call_id.into(),
            output: output.into(),
        }
    }
}

/// A function tool name the model APIs accept: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A function tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
    /// OpenAI strict mode (the schema must then be closed).
    pub strict: bool,
}

/// Structured output: the final message must be JSON matching `schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    pub name: String,
    pub schema: serde_json::Value,
    pub strict: bool,
}

/// One model call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    pub settings: ModelSettings,
    /// System prompt: `instructions` (Responses) or a first system message
    /// (Chat).
    pub instructions: Option<String>,
    pub input: Vec<Item>,
    pub tools: Vec<ToolSpec>,
    /// Tools the provider runs itself (Responses API only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosted_tools: Vec<HostedTool>,
    pub output_schema: Option<OutputSchema>,
    /// Stream the answer (text deltas go to `on_event`).
    pub stream: bool,
    /// For logs and the scripted provider: the agent making the call …
    pub agent: String,
    /// … in this workflow step …
    pub step: String,
    /// … on this turn of its loop (from 1).
    pub turn: u32,
}

pub use crate::usage::Usage;

/// A function call in a [`ModelResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionCallRef<'a> {
    pub call_id: &'a str,
    pub name: &'a str,
    pub arguments: &'a str,
}

/// What the model answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// Response / completion id from the server.
    pub id: Option<String>,
    /// The model that answered (as the server names it).
    pub model: String,
    /// Assistant messages, function calls and MCP approval requests, in the
    /// order the model produced them.
    pub output: Vec<Item>,
    pub usage: Usage,
    /// HTTP attempts this answer took (1 without retries).
    pub attempts: u32,
}

impl ModelResponse {
    /// The assistant's text: all assistant messages joined, `None` if there
    /// is none.
    pub fn text(&self) -> Option<String> {
        let mut texts = self.output.iter().filter_map(|item| match item {
            Item::Message {
                role: Role::Assistant,
                content,
            } => Some(content.as_str()),
            _ => None,
        });
        let first = texts.next()?;
        let mut text = first.to_string();
        for more in texts {
            text.push_str(more);
        }
        Some(text)
    }

    /// The function calls, in order.
    pub fn function_calls(&self) -> Vec<FunctionCallRef<'_>> {
        self.output
            .iter()
            .filter_map(|item| match item {
                Item::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => Some(FunctionCallRef {
                    call_id,
                    name,
                    arguments,
                }),
                _ => None,
            })
            .collect()
    }
}

/// Progress of a streamed answer, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The next piece of assistant text; the pieces concatenate to the final
    /// text.
    TextDelta(String),
    /// The model started a function call (its arguments follow in the final
    /// response).
    FunctionCallStarted { call_id: String, name: String },
}

/// Callback receiving the [`StreamEvent`]s of a streamed answer (not to be
/// confused with the event sinks of [`crate::sinks`]).
pub type OnDelta<'a> = &'a (dyn Fn(StreamEvent) + Send + Sync);

/// A model provider.
pub trait Provider: Send + Sync {
    /// The provider's name from its config.
    fn name(&self) -> &str;

    /// True when no network is involved (the scripted provider).
    fn is_offline(&self) -> bool;

    /// Answers one request, retrying per the provider's policy. When
    /// `request.stream` is set, text deltas are passed to `on_event` as they
    /// arrive.
    fn respond<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_event: Option<OnDelta<'a>>,
    ) -> BoxFuture<'a, Result<ModelResponse, LlmError>>;
}

/// Builds the provider `config` describes. Fails on an unusable config (no
/// key for OpenAI, no base URL for a compatible server, a bad script file).
pub fn build_provider(config: ProviderConfig) -> Result<Arc<dyn Provider>, LlmError> {
    if config.retry.max_attempts == 0 {
        return Err(LlmError::Config {
            provider: config.name,
            message: "retry.max_attempts must be at least 1 (it counts the first attempt)".into(),
        });
    }
    if config.timeout.is_zero() {
        return Err(LlmError::Config {
            provider: config.name,
            message: "timeout must be greater than zero".into(),
        });
    }
    match &config.kind {
        ProviderKind::Scripted { script } => {
            let provider = ScriptedProvider::from_file(config.name.clone(), script)?;
            Ok(Arc::new(provider))
        }
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            Ok(Arc::new(http::OpenAiProvider::new(config)?))
        }
    }
}

/// Rough token estimate (4 characters a token), as the scripted provider
/// reports usage.
pub fn estimate_tokens(text_chars: usize) -> u64 {
    text_chars.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let config = ProviderConfig::openai("p").with_api_key(Secret::new("sk-secret-123"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn response_helpers() {
        let response = ModelResponse {
            output: vec![
                Item::assistant("Hello, "),
                Item::FunctionCall {
                    call_id: "c1".into(),
                    name: "add".into(),
                    arguments: "{}".into(),
                },
                Item::assistant("world"),
            ],
            ..ModelResponse::default()
        };
        assert_eq!(response.text().as_deref(), Some("Hello, world"));
        let calls = response.function_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "add");
        assert_eq!(ModelResponse::default().text(), None);
    }

    #[test]
    fn items_serialize_tagged() {
        let item = Item::function_call_output("c1", "3");
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "function_call_output", "call_id": "c1", "output": "3"})
        );
        let back: Item = serde_json::from_value(json).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn config_errors_name_the_provider() {
        let config = ProviderConfig {
            base_url: None,
            ..ProviderConfig::compatible("local", "x")
        };
        let err = build_provider(config).err().unwrap();
        assert!(err.to_string().contains("`local`"), "{err}");
        let mut config = ProviderConfig::compatible("local", "http://127.0.0.1:1/v1");
        config.retry.max_attempts = 0;
        assert!(build_provider(config).is_err());
    }
}

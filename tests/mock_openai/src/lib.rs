//! A deterministic, scriptable mock of the OpenAI HTTP API.
//!
//! Serves `POST /v1/responses` and `POST /v1/chat/completions` (JSON, or SSE
//! with `"stream": true`), `GET /v1/models` and `GET /stats`, on a loopback
//! port. Replies follow the wire format closely enough for `async-openai` and
//! the official SDKs; see the crate README for the default behaviour and the
//! rules format.
//!
//! ```no_run
//! # async fn demo() -> mock_openai::Result<()> {
//! use mock_openai::{Fault, Match, MockConfig, MockServer, Reply, Rule};
//!
//! let config = MockConfig::default().with_rule(
//!     Rule::new(Reply::Fault(Fault::RateLimit { retry_after_secs: 0, message: None }))
//!         .when(Match::any().times(1)),
//! );
//! let server = MockServer::start(config).await?;
//! let base = server.base_url(); // http://127.0.0.1:PORT/v1
//! # let _ = base;
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

mod config;
mod hosted;
mod mock_server;
mod render;
mod request;
mod respond;
mod restyle;
mod schema;
mod server;
mod stats;
mod style;

pub use config::{
    ApprovalMatch, Endpoint, Fault, Match, McpApprovalSpec, MockConfig, Reply, Rule, ToolCallSpec,
};
pub use hosted::{HostedCallSpec, HostedKind, HostedReply, TINY_PNG_BASE64};
pub use mock_server::MockServer;
pub use stats::{LoggedRequest, Stats};
pub use style::{STYLE_HEADER, Style, UnknownStyle};

/// The marker that makes the default behaviour answer with a tool call.
pub const USE_TOOL_MARKER: &str = request::USE_TOOL_MARKER;

/// The marker that makes the default behaviour use the offered hosted tools
/// (Responses API).
pub const USE_HOSTED_MARKER: &str = hosted::USE_HOSTED_MARKER;

/// Text of the default reply to a request whose last user message is
/// `last_user`: `reply <first 16 hex digits of sha256(last_user)>`.
pub fn default_text(last_user: &str) -> String {
    format!("reply {}", schema::short_hash(last_user))
}

/// The default structured reply for `schema` (as JSON value) to a request
/// whose last user message is `last_user`.
pub fn default_json(schema: &serde_json::Value, last_user: &str) -> serde_json::Value {
    schema::generate(schema, &schema::short_hash(last_user))
}

/// The default `[[use_tool]]` call arguments for a tool with JSON-Schema
/// `parameters`, for a request whose last user message is `last_user`.
pub fn default_tool_arguments(
    parameters: &serde_json::Value,
    last_user: &str,
) -> serde_json::Value {
    schema::generate(
        parameters,
        &format!("arg:{}", schema::short_hash(last_user)),
    )
}

/// Errors of the mock server.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// Binding or serving failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The JSON configuration does not parse.
    #[error("invalid JSON configuration: {0}")]
    Json(#[from] serde_json::Error),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Only loopback addresses are allowed.
    #[error("the mock binds to loopback addresses only, not {0}")]
    NotLoopback(SocketAddr),
    /// The server task panicked or was cancelled.
    #[error("server task failed: {0}")]
    Task(String),
    /// Graceful shutdown took too long (the server was aborted).
    #[error("server did not shut down within {0:?}")]
    ShutdownTimeout(Duration),
}

/// Result with [`MockError`].
pub type Result<T, E = MockError> = std::result::Result<T, E>;

//! What can go wrong talking to an MCP server. Every error names the
//! server; none carries a header value or an environment value.

/// Why an MCP server could not be started or a call could not be made.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("MCP server `{server}` is not declared in `mcp_servers`")]
    Unknown { server: String },
    #[error("MCP server `{server}` could not start: {message}")]
    Start { server: String, message: String },
    #[error("MCP server `{server}` is not running ({reason}); the host is restarting it")]
    Down { server: String, reason: String },
    #[error("MCP server `{server}` has no tool `{tool}`")]
    NoTool { server: String, tool: String },
    #[error("MCP server `{server}`: tool `{tool}` did not answer within {ms} ms")]
    Timeout {
        server: String,
        tool: String,
        ms: u128,
    },
    #[error("MCP server `{server}`: tool `{tool}` failed: {message}")]
    Call {
        server: String,
        tool: String,
        message: String,
    },
    #[error("MCP servers need a tokio runtime")]
    NoRuntime,
    #[error("MCP server `{server}`: environment variable `{var}` is not set")]
    MissingEnv { server: String, var: String },
}

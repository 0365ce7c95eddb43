//! Starting one connection to an MCP server: a child process in its own
//! process group (stdio) or a Streamable HTTP session, with the host's
//! client handler that hears `tools/list_changed`.

use super::McpError;
use crate::egress::Egress;
use crate::secret::Secret;
use crate::spec::McpServer;
use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

/// Longest line of a server's stderr copied into the log.
const STDERR_LINE_LIMIT: usize = 2_000;
/// Cap on one JSON response of an HTTP server.
const MAX_HTTP_RESPONSE: usize = 8 << 20;

/// The host's side of the session: who it is, and a bell rung when the
/// server says its tool list changed.
#[derive(Clone)]
pub(super) struct Handler {
    info: ClientConfig,
    pub(super) changed: Arc<Notify>,
}

impl Handler {
    pub(super) fn new(changed: Arc<Notify>) -> Self {
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("host", env!("CARGO_PKG_VERSION")),
        );
        Handler { info, changed }
    }
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    #[allow(clippy::manual_async_fn)]
    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        async move { self.changed.notify_one() }
    }
}

pub(super) type Session = RunningService<RoleClient, Handler>;

/// Opens one session with server `name`.
pub(super) async fn connect(
    name: &str,
    config: &McpServer,
    egress: &Egress,
    base_dir: &Path,
    handler: Handler,
) -> Result<Session, McpError> {
    let start = |message: String| McpError::Start {
        server: name.to_owned(),
        message,
    };
    if let Some(url) = &config.url {
        let mut headers = HashMap::new();
        for (header, value) in resolved_headers(name, config)? {
            let header = reqwest::header::HeaderName::from_bytes(header.as_bytes())
                .map_err(|e| start(format!("header `{header}`: {e}")))?;
            let mut value =
                reqwest::header::HeaderValue::from_str(value.expose()).map_err(|_| {
                    start(format!(
                        "the value of header `{header}` is not a header value"
                    ))
                })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        // Under the operator's egress policy, like providers and callbacks:
        // no redirects, no proxy, refused addresses dropped at resolution.
        let parsed = reqwest::Url::parse(url).map_err(|e| start(format!("not a URL: {e}")))?;
        let client = egress
            .client(&parsed)
            .map_err(|e| start(format!("refused by the operator's egress policy: {e}")))?
            .build()
            .map_err(|e| start(e.to_string()))?;
        let mut transport =
            StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers);
        transport.max_json_response_size = MAX_HTTP_RESPONSE;
        let transport = StreamableHttpClientTransport::with_client(client, transport);
        return handler
            .serve(transport)
            .await
            .map_err(|e| start(e.to_string()));
    }
    let Some(program) = &config.command else {
        return Err(start("neither `command` nor `url` is set".into()));
    };
    let mut env = Vec::with_capacity(config.env.len() + 1);
    for var in std::iter::once("PATH").chain(config.env.iter().map(String::as_str)) {
        match std::env::var_os(var) {
            Some(value) => env.push((var.to_owned(), value)),
            None if var == "PATH" => {}
            None => {
                return Err(McpError::MissingEnv {
                    server: name.to_owned(),
                    var: var.to_owned(),
                });
            }
        }
    }
    let cwd = config.cwd.as_ref().map(|c| base_dir.join(c));
    let mut command = CommandWrap::with_new(program, |c| {
        c.args(&config.args).env_clear().envs(env);
        if let Some(cwd) = &cwd {
            c.current_dir(cwd);
        }
    });
    // Its own process group: stopping it stops what it started (npx, uv).
    command.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| start(format!("`{program}`: {e}")))?;
    let pid = transport.id();
    tracing::info!(target: "host::mcp", server = name, pid, "MCP server started");
    if let Some(stderr) = stderr {
        let server = name.to_owned();
        // Drained, so a chatty server never blocks on a full pipe.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = crate::util::clip(&line, STDERR_LINE_LIMIT);
                tracing::info!(target: "host::mcp", server = %server, "stderr: {line}");
            }
        });
    }
    handler
        .serve(transport)
        .await
        .map_err(|e| start(e.to_string()))
}

/// The headers of an HTTP server: literal ones, then those whose values
/// come from the environment.
fn resolved_headers(name: &str, config: &McpServer) -> Result<Vec<(String, Secret)>, McpError> {
    let mut out: Vec<(String, Secret)> = config
        .headers
        .iter()
        .map(|(h, v)| (h.clone(), Secret::new(v.clone())))
        .collect();
    for (header, var) in &config.headers_env {
        let value = Secret::from_env(var).ok_or_else(|| McpError::MissingEnv {
            server: name.to_owned(),
            var: var.clone(),
        })?;
        out.push((header.clone(), value));
    }
    Ok(out)
}

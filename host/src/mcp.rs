//! MCP servers as tools: the host's client of the servers a spec declares
//! (`mcp_servers`), through the official SDK (`rmcp`).
//!
//! The host owns each server's life: [`McpHub::start`] starts every server
//! once for the process (runs share them), a supervisor per server keeps
//! its tool list current (at start and on `tools/list_changed`), drains a
//! stdio server's stderr into the log, restarts a server that died with
//! backoff, and [`McpHub::shutdown`] stops them all. A call has a deadline;
//! a server that is down or dies mid-call fails that call with an
//! [`McpError`] naming it — the caller gives it to the model — never the
//! host.
//!
//! Only this module's own types leave it: [`McpTool`], [`McpOutput`],
//! [`McpError`]; no `rmcp` type does.

mod connect;
mod error;
mod names;

pub use error::McpError;

use crate::egress::Egress;
use crate::spec::McpServer;
use connect::{Handler, Session, connect};
use rmcp::model::CallToolRequestParams;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// The first pause before restarting a server that died; it doubles up to
/// [`MAX_BACKOFF`] and starts again once a server stayed up a while.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a server must stay up for its backoff to start over.
const STABLE: Duration = Duration::from_secs(30);
/// A server's tools go to the model on every turn: at most this many of
/// them (OpenAI's cap on one request's tools), descriptions cut to what
/// model APIs accept for a function, input schemas at most this big.
const MAX_TOOLS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// How long a run waits for a server's first start (`npx` may download).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long stopping a server may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// One tool of an MCP server, as the model sees it.
#[derive(Debug, Clone)]
pub struct McpTool {
    pub server: String,
    /// The server's own name for it.
    pub name: String,
    /// The name offered to the model: `mcp__<server>__<tool>`, fitted to
    /// the model API's rules.
    pub model_name: String,
    pub description: String,
    /// Its input JSON Schema, as the server gave it.
    pub parameters: Value,
    validator: Option<Arc<jsonschema::Validator>>,
}

impl McpTool {
    /// Checks `arguments` against the tool's input schema (every violation
    /// up to 5, `path: message`). A schema that does not compile checks
    /// nothing here: the server still checks its own input.
    pub fn check(&self, arguments: &Value) -> Result<(), String> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let errors: Vec<String> = validator
            .iter_errors(arguments)
            .take(5)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// What one call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct McpOutput {
    /// The text blocks, joined by newlines; other blocks (images,
    /// resources) are named, not inlined.
    pub text: String,
    /// The tool's structured result, when it gave one.
    pub structured: Option<Value>,
    /// The tool said the call failed (`isError`): the model should see it.
    pub is_error: bool,
}

/// The live state of one server.
#[derive(Default)]
struct State {
    session: Option<rmcp::Peer<rmcp::RoleClient>>,
    /// The last tool list; kept while the server is down, so the model
    /// still sees the tools and a call fails with a clear error.
    tools: Arc<Vec<McpTool>>,
    /// Why the server is not running, when it is not.
    down: Option<String>,
}

struct Server {
    name: String,
    config: McpServer,
    /// The operator's egress policy, for a Streamable HTTP server's URL.
    egress: Egress,
    state: RwLock<State>,
    /// Rung by a call that found the connection broken: reconnect now.
    broken: Notify,
    /// Set once the first start has succeeded (tools listed) or failed.
    tried: watch::Sender<bool>,
}

/// Every MCP server of a spec, started once and shared by its runs.
pub struct McpHub {
    servers: BTreeMap<String, Arc<Server>>,
    stop: CancellationToken,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for McpHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHub")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl McpHub {
    /// Starts a supervisor for every server; `cwd`s resolve against
    /// `base_dir`. Returns at once: see [`McpHub::ready`].
    pub fn start(
        servers: &BTreeMap<String, McpServer>,
        base_dir: &Path,
        egress: &Egress,
    ) -> Result<Arc<McpHub>, McpError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| McpError::NoRuntime)?;
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut map = BTreeMap::new();
        for (name, config) in servers {
            let server = Arc::new(Server {
                name: name.clone(),
                config: config.clone(),
                egress: egress.clone(),
                state: RwLock::new(State::default()),
                broken: Notify::new(),
                tried: watch::Sender::new(false),
            });
            tasks.push(runtime.spawn(supervise(
                server.clone(),
                base_dir.to_path_buf(),
                stop.clone(),
            )));
            map.insert(name.clone(), server);
        }
        Ok(Arc::new(McpHub {
            servers: map,
            stop,
            tasks: std::sync::Mutex::new(tasks),
        }))
    }

    /// Waits up to `timeout` for every server's first start to end (its
    /// tools listed, or the start failed); at once when it has. A server
    /// not up is reported in the log and keeps being restarted; its tools
    /// appear once it is up.
    pub async fn ready(&self, timeout: Duration) {
        for server in self.servers.values() {
            let mut tried = server.tried.subscribe();
            let waited = tokio::time::timeout(timeout, tried.wait_for(|t| *t)).await;
            if waited.is_err() {
                let reason = read(&server.state).down.clone();
                tracing::warn!(
                    target: "host::mcp",
                    server = %server.name,
                    reason = reason.as_deref().unwrap_or("still starting"),
                    "MCP server not ready; its tools are offered once it is up"
                );
            }
        }
    }

    /// The server's current tools (empty while it has never listed them).
    pub fn tools(&self, server: &str) -> Result<Arc<Vec<McpTool>>, McpError> {
        let s = self.server(server)?;
        Ok(read(&s.state).tools.clone())
    }

    /// Whether `server` is declared here.
    pub fn has(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    /// Calls `tool` of `server` with `arguments` (a JSON object), within
    /// the server's deadline.
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: &Value,
    ) -> Result<McpOutput, McpError> {
        let s = self.server(server)?;
        let peer = {
            let state = read(&s.state);
            match &state.session {
                Some(peer) => peer.clone(),
                None => {
                    return Err(McpError::Down {
                        server: server.to_owned(),
                        reason: state.down.clone().unwrap_or_else(|| "starting".into()),
                    });
                }
            }
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(map) = arguments {
            params = params.with_arguments(map.clone());
        }
        let timeout = s.config.timeout();
        let failed = |message: String| McpError::Call {
            server: server.to_owned(),
            tool: tool.to_owned(),
            message,
        };
        let result = match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => {
                // An HTTP session may be stale (the server restarted and
                // forgot it): the next call gets a new one. A stdio server
                // keeps running: a slow tool is not a broken server.
                if s.config.url.is_some() {
                    s.broken.notify_one();
                }
                return Err(McpError::Timeout {
                    server: server.to_owned(),
                    tool: tool.to_owned(),
                    ms: timeout.as_millis(),
                });
            }
            Ok(Err(e)) => {
                let broken = matches!(
                    e,
                    rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)
                );
                if broken || peer.is_transport_closed() {
                    s.broken.notify_one();
                    return Err(failed(format!(
                        "the connection to the server broke ({e}); the host is restarting it"
                    )));
                }
                return Err(failed(e.to_string()));
            }
            Ok(Ok(result)) => result,
        };
        let mut parts = Vec::with_capacity(result.content.len());
        for block in &result.content {
            match block.as_text() {
                Some(t) => parts.push(t.text.clone()),
                None => parts.push("[non-text content omitted]".to_owned()),
            }
        }
        Ok(McpOutput {
            text: parts.join("\n"),
            structured: result.structured_content.clone(),
            is_error: result.is_error == Some(true),
        })
    }

    /// Stops every server (gracefully, then by killing its process group).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), task).await;
        }
    }

    fn server(&self, name: &str) -> Result<&Arc<Server>, McpError> {
        self.servers.get(name).ok_or_else(|| McpError::Unknown {
            server: name.to_owned(),
        })
    }
}

impl Drop for McpHub {
    fn drop(&mut self) {
        // Dropping the supervisors' sessions kills the process groups.
        self.stop.cancel();
    }
}

fn read(state: &RwLock<State>) -> std::sync::RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(|e| e.into_inner())
}

fn write(state: &RwLock<State>) -> std::sync::RwLockWriteGuard<'_, State> {
    state.write().unwrap_or_else(|e| e.into_inner())
}

/// Keeps one server running until `stop`: connect, list, serve, and after
/// it dies wait (with backoff) and start it again.
async fn supervise(server: Arc<Server>, base_dir: PathBuf, stop: CancellationToken) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let changed = Arc::new(Notify::new());
        let started = Instant::now();
        let connected = tokio::select! {
            c = connect(&server.name, &server.config, &server.egress, &base_dir, Handler::new(changed.clone())) => c,
            () = stop.cancelled() => return,
        };
        let reason = match connected {
            Ok(session) => serve(&server, session, &changed, &stop).await,
            Err(e) => {
                server.tried.send_replace(true);
                e.to_string()
            }
        };
        {
            let mut state = write(&server.state);
            state.session = None;
            state.down = Some(reason.clone());
        }
        if stop.is_cancelled() {
            return;
        }
        if started.elapsed() > STABLE {
            backoff = FIRST_BACKOFF;
        }
        tracing::warn!(
            target: "host::mcp",
            server = %server.name,
            reason = %reason,
            retry_in_ms = backoff.as_millis() as u64,
            "MCP server stopped; restarting"
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Serves one session until it ends; returns why it ended.
async fn serve(
    server: &Server,
    session: Session,
    changed: &Notify,
    stop: &CancellationToken,
) -> String {
    let peer = session.peer().clone();
    if let Err(reason) = relist(server, &peer).await {
        server.tried.send_replace(true);
        return reason;
    }
    {
        let mut state = write(&server.state);
        state.session = Some(peer.clone());
        state.down = None;
    }
    server.tried.send_replace(true);
    let cancel = session.cancellation_token();
    let waiting = session.waiting();
    tokio::pin!(waiting);
    let why = loop {
        tokio::select! {
            quit = &mut waiting => {
                return match quit {
                    Ok(reason) => format!("the server closed the connection ({reason:?})"),
                    Err(e) => format!("the connection task failed: {e}"),
                };
            }
            () = changed.notified() => {
                if let Err(reason) = relist(server, &peer).await {
                    tracing::warn!(target: "host::mcp", server = %server.name, %reason, "could not list tools again");
                }
            }
            () = server.broken.notified() => break "the connection broke",
            () = stop.cancelled() => break "the host is stopping",
        }
    };
    cancel.cancel();
    let _ = tokio::time::timeout(STOP_GRACE, &mut waiting).await;
    why.to_owned()
}

/// Lists the server's tools again and stores them.
async fn relist(server: &Server, peer: &rmcp::Peer<rmcp::RoleClient>) -> Result<(), String> {
    let listed = tokio::time::timeout(server.config.timeout(), peer.list_all_tools())
        .await
        .map_err(|_| "listing its tools timed out".to_owned())?
        .map_err(|e| format!("listing its tools failed: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    let mut tools = Vec::with_capacity(listed.len().min(MAX_TOOLS));
    for t in listed {
        let parameters = Value::Object((*t.input_schema).clone());
        let model_name = names::fit(&server.name, &t.name);
        let refused = if tools.len() >= MAX_TOOLS {
            Some(format!("the server lists more than {MAX_TOOLS} tools"))
        } else if !seen.insert(model_name.clone()) {
            Some("another tool has the same name".to_owned())
        } else {
            schema_problem(&parameters)
        };
        if let Some(why) = refused {
            let tool = crate::util::clip_chars(&t.name, 80);
            tracing::warn!(target: "host::mcp", server = %server.name, %tool, "tool not offered: {why}");
            continue;
        }
        let validator = jsonschema::validator_for(&parameters).ok().map(Arc::new);
        let description = t.description.as_deref().unwrap_or_default();
        tools.push(McpTool {
            server: server.name.clone(),
            name: t.name.to_string(),
            model_name,
            // The cut adds `…`: one character is kept for it.
            description: crate::util::clip_chars(description, MAX_DESCRIPTION_CHARS - 1),
            parameters,
            validator,
        });
    }
    tracing::info!(target: "host::mcp", server = %server.name, tools = tools.len(), "MCP tools listed");
    write(&server.state).tools = Arc::new(tools);
    Ok(())
}

/// Why an input schema is not offered to the model, if it is not.
fn schema_problem(schema: &Value) -> Option<String> {
    let bytes = schema.to_string().len();
    if bytes > MAX_SCHEMA_BYTES {
        return Some(format!(
            "its input schema has {bytes} bytes (at most {MAX_SCHEMA_BYTES})"
        ));
    }
    if schema.get("type").is_some_and(|t| t != "object") {
        return Some("its input schema does not describe an object".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::schema_problem;
    use serde_json::json;

    #[test]
    fn oversized_or_non_object_schemas_are_not_offered() {
        assert_eq!(schema_problem(&json!({"type": "object"})), None);
        assert!(schema_problem(&json!({"type": "string"})).is_some());
        let huge = json!({"type": "object", "description": "x".repeat(70_000)});
        assert!(
            schema_problem(&huge).is_some_and(|p| p.contains("bytes")),
            "{huge:?}"
        );
    }
}

//! `host serve`: the host as a long-running service (docs/API.md).

use super::error::CliError;
use super::{GlobalArgs, open_store, plugin_runtime};
use axum::serve::ListenerExt;
use host::outbox::{Deliverer, OutboxConfig, Until};
use host::plan::CompileOptions;
use host::plugin::Registry;
use host::server::{Server, ServerConfig, Tokens};
use host::sinks::OutboxSink;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The plugins folder (watched: changed files are swapped in live)
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    pub plugins: PathBuf,
    /// The workflows folder: every *.json in it is a registered workflow,
    /// by its key (watched too)
    #[arg(long, value_name = "DIR")]
    pub workflows: PathBuf,
    /// Where to listen
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer tokens → accounts (TOML; see docs/API.md). Without it the
    /// server is single-tenant and listens on loopback only
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Runs executing at once
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_runs: usize,
    /// Runs accepted and waiting for a slot beyond --max-runs; more get 429
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_queued: usize,
    /// On SIGTERM or Ctrl-C: seconds running runs get to finish; the rest
    /// stay resumable and continue at the next start
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub shutdown_grace: f64,
    /// Prune finished runs (with their journals and events) older than
    /// this many hours; 0 keeps them
    #[arg(long, value_name = "HOURS", default_value_t = 0.0)]
    pub retain: f64,
    /// Accept a whole workflow spec in POST /v1/runs (`spec`), not only
    /// registered workflows
    #[arg(long)]
    pub allow_inline_specs: bool,
    /// Run every agent on its spec's offline scripted provider
    #[arg(long)]
    pub offline: bool,
    /// Stream model responses
    #[arg(long)]
    pub stream: bool,
    /// Do not watch the folders
    #[arg(long)]
    pub no_watch: bool,
    /// With a PostgreSQL --db (a fleet: docs/SCALING.md): seconds a run's
    /// lease lasts unless renewed; a dead worker's runs resume elsewhere
    /// after it
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub lease: f64,
}

fn seconds(flag: &str, secs: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        CliError::bad_input(format!("{flag}: expected seconds (0 or more), got {secs}"))
    })
}

fn folder(flag: &str, path: &Path) -> Result<PathBuf, CliError> {
    std::fs::canonicalize(path)
        .map_err(|e| CliError::bad_input(format!("{flag} {}: {e}", path.display())))
}

pub(super) async fn serve(global: &GlobalArgs, args: ServeArgs) -> Result<ExitCode, CliError> {
    let tokens = match &args.tokens {
        Some(path) => Tokens::read(path).map_err(|e| CliError::bad_input(e.to_string()))?,
        None => Tokens::none(),
    };
    if !tokens.is_enabled() && !args.listen.ip().is_loopback() {
        return Err(CliError::bad_input(
            host::server::ServerError::OpenListen {
                addr: args.listen.to_string(),
            }
            .to_string(),
        ));
    }
    let grace = seconds("--shutdown-grace", args.shutdown_grace)?;
    let fleet_member = global
        .db
        .as_ref()
        .and_then(|p| p.to_str())
        .is_some_and(host::store::is_postgres_url);
    let started = start(
        global,
        Start {
            plugins: &args.plugins,
            workflows: &args.workflows,
            tokens: tokens.clone(),
            max_runs: args.max_runs,
            max_queued: args.max_queued,
            retain: args.retain,
            allow_inline_specs: args.allow_inline_specs,
            offline: args.offline,
            stream: args.stream,
            watch: !args.no_watch,
            lease: fleet_member.then_some(args.lease),
        },
    )
    .await?;
    let server = &started.server;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::bad_input(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::failed(e.to_string()))?;
    let app = server.app();
    eprintln!(
        "host serve: listening on http://{local} · {} workflow(s), {} plugin(s){}",
        app.catalog.workflows().len(),
        app.catalog.registry().plugins().len(),
        if tokens.is_enabled() {
            String::new()
        } else {
            " · single tenant, loopback only (no --tokens)".to_owned()
        }
    );
    for problem in app.catalog.problems() {
        for (path, message) in &problem.errors {
            eprintln!(
                "warning: workflow {} not served: {path}: {message}",
                problem.file.display()
            );
        }
    }
    // Small writes (an event, the end of a stream) go out at once rather
    // than waiting on the client's delayed ACK (Nagle: ~40 ms a response).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, server.router())
        .with_graceful_shutdown({
            let app = server.app().clone();
            async move {
                stop_signal().await;
                app.close();
            }
        })
        .await
        .map_err(|e| CliError::failed(format!("server: {e}")))?;
    eprintln!(
        "host serve: stopping; running runs get {:.0} s",
        grace.as_secs_f64()
    );
    stop(started, grace, "host serve").await;
    Ok(ExitCode::SUCCESS)
}

/// What [`start`] needs: the flags `host serve` and `host worker` share.
pub(super) struct Start<'a> {
    pub plugins: &'a Path,
    pub workflows: &'a Path,
    pub tokens: Tokens,
    pub max_runs: usize,
    pub max_queued: usize,
    pub retain: f64,
    pub allow_inline_specs: bool,
    pub offline: bool,
    pub stream: bool,
    pub watch: bool,
    /// A fleet member with this lease (seconds).
    pub lease: Option<f64>,
}

/// A started server (with or without HTTP) and its outbox deliverer.
pub(super) struct Started {
    pub server: Server,
    deliverer: Deliverer,
    delivering: tokio::task::JoinHandle<()>,
}

/// Opens the store, starts the outbox deliverer and the server (which
/// resumes or claims runs).
pub(super) async fn start(global: &GlobalArgs, opts: Start<'_>) -> Result<Started, CliError> {
    let retain = seconds("--retain", opts.retain * 3600.0)?;
    let fleet = opts
        .lease
        .map(|l| seconds("--lease", l).map(host::server::Fleet::new))
        .transpose()?;
    let plugins_dir = folder("--plugins", opts.plugins)?;
    let workflows_dir = folder("--workflows", opts.workflows)?;
    let store = open_store(global)?;
    let registry = Arc::new(Registry::new(plugin_runtime(global)?));
    let deliverer = OutboxConfig::from_env()
        .and_then(|config| {
            let egress = global.host_config.egress.clone();
            Deliverer::new(store.clone(), OutboxConfig { egress, ..config })
        })
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    let outbox = OutboxSink {
        store: store.clone(),
        wake: deliverer.waker(),
        runtime: tokio::runtime::Handle::current(),
    };
    let delivering = tokio::spawn({
        let deliverer = deliverer.clone();
        async move { deliverer.run(Until::Forever, None).await }
    });
    let server = Server::start(ServerConfig {
        plugins_dir,
        workflows_dir,
        store,
        registry,
        compile: CompileOptions {
            offline: opts.offline,
            stream: opts.stream,
            replies: global.host_config.models,
            credentials: super::credential_policy(global),
            egress: global.host_config.egress.clone(),
            mcp: None,
        },
        tokens: opts.tokens,
        max_runs: opts.max_runs.max(1),
        max_queued: opts.max_queued,
        allow_inline_specs: opts.allow_inline_specs,
        outbox: Some(outbox),
        retain: (!retain.is_zero()).then_some(retain),
        watch: opts.watch,
        fleet,
    })
    .await
    .map_err(|e| CliError::bad_input(e.to_string()))?;
    Ok(Started {
        server,
        deliverer,
        delivering,
    })
}

/// Gives running runs `grace` to finish, then stops the deliverer.
pub(super) async fn stop(started: Started, grace: Duration, who: &str) {
    let left = started.server.shutdown(grace).await;
    if left > 0 {
        eprintln!(
            "{who}: {left} run(s) still running stay resumable; the next start continues them"
        );
    }
    started.delivering.abort();
    let _ = started.delivering.await;
    started.deliverer.release().await;
}

/// SIGTERM or Ctrl-C.
pub(super) async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

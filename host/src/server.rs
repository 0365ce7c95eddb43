//! `host serve`: the host as a long-running service. One process runs many
//! workflows at once on one plugin registry (swapped live as files change),
//! one store and shared providers, behind a JSON API under `/v1` with
//! Server-Sent Events (docs/API.md).
//!
//! Library first: the server is a thin layer over the engine's public API
//! ([`crate::engine::Runner`]), like the CLI. [`Server::start`] loads the
//! plugins and workflows, resumes interrupted runs and starts the watcher;
//! [`Server::router`] is the axum router to serve.

mod api;
mod auth;
mod catalog;
mod console;
mod error;
mod fleet;
mod metrics;
mod remote;
mod runs;
mod stream;
mod watch;

pub use api::types;
pub use auth::Tokens;
pub use catalog::{Catalog, PluginState, Registered, WorkflowProblem};
pub use error::{ApiError, FieldError, Problem, ServerError};
pub use fleet::Fleet;
pub use metrics::Metrics;
pub use runs::{Executor, Refused, RunSinks, StreamEvent};

use crate::engine::Runner;
use crate::plan::CompileOptions;
use crate::plugin::Registry;
use crate::sinks::OutboxSink;
use crate::store::{RunRecord, Scope, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How to run the server.
pub struct ServerConfig {
    pub plugins_dir: PathBuf,
    pub workflows_dir: PathBuf,
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub compile: CompileOptions,
    pub tokens: Tokens,
    /// Runs executing at once.
    pub max_runs: usize,
    /// Runs accepted and waiting beyond `max_runs`; more get 429.
    pub max_queued: usize,
    /// Accept `spec` (a whole workflow) in `POST /v1/runs`.
    pub allow_inline_specs: bool,
    /// Where HTTP callbacks enqueue their events (the server's deliverer
    /// sends them).
    pub outbox: Option<OutboxSink>,
    /// Completed runs older than this are pruned with their journals and
    /// events; `None` keeps them.
    pub retain: Option<Duration>,
    /// Watch the folders and swap changed files in.
    pub watch: bool,
    /// A member of a fleet sharing the store: runs execute under leases,
    /// and idle slots claim runs any member accepted (docs/SCALING.md).
    pub fleet: Option<Fleet>,
}

/// The server's shared state, behind every request.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub executor: Arc<Executor>,
    pub tokens: Tokens,
    pub metrics: Arc<Metrics>,
    pub allow_inline_specs: bool,
    /// Other workers' events, for streams of runs they execute.
    remote: Arc<remote::RemoteEvents>,
    ready: AtomicBool,
    /// Set when the server stops accepting: open event streams end, so
    /// the HTTP server's graceful shutdown is not held by them.
    closing: tokio::sync::watch::Sender<bool>,
}

pub type App = Arc<AppState>;

/// A started server.
pub struct Server {
    app: App,
    /// Dropping it stops the watcher.
    _watcher: Option<watch::Watcher>,
}

impl Server {
    /// Loads plugins and workflows (a bad file is reported and left out),
    /// resumes every interrupted run in the store, and starts the watcher.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let metrics = Arc::new(Metrics::new());
        config.registry.runtime().set_observer(metrics.clone());
        let catalog = Catalog::new(
            config.registry.clone(),
            config.plugins_dir.clone(),
            config.workflows_dir.clone(),
            config.compile.clone(),
            config.store.clone(),
            metrics.clone(),
        );
        catalog.load_all().await?;
        let executor = Executor::new(
            config.store.clone(),
            metrics.clone(),
            config.outbox.clone(),
            config.max_runs,
            config.max_queued,
            config.fleet.clone().map(Arc::new),
        );
        let app = Arc::new(AppState {
            store: config.store.clone(),
            catalog: catalog.clone(),
            executor: executor.clone(),
            tokens: config.tokens,
            metrics,
            allow_inline_specs: config.allow_inline_specs,
            remote: remote::RemoteEvents::new(),
            ready: AtomicBool::new(false),
            closing: tokio::sync::watch::channel(false).0,
        });
        let watcher = if config.watch {
            Some(watch::Watcher::start(catalog.clone())?)
        } else {
            None
        };
        // In a fleet, queued and interrupted runs are claimed (theirs may
        // be another worker's, alive): only decided approvals wait for
        // someone to continue them.
        let resumed = recover(&app, config.fleet.is_none()).await?;
        if resumed > 0 {
            tracing::info!(runs = resumed, "resuming interrupted runs");
        }
        if let Some(fleet) = config.fleet.map(Arc::new) {
            tracing::info!(owner = %fleet.owner, lease = ?fleet.lease, "a fleet worker");
            tokio::spawn(fleet::renew(config.store.clone(), fleet.clone()));
            tokio::spawn(app.remote.clone().listen(config.store.clone()));
            tokio::spawn(fleet::claim(app.clone(), fleet));
        }
        if let Some(retain) = config.retain {
            tokio::spawn(prune(config.store.clone(), retain));
        }
        app.ready.store(true, Ordering::SeqCst);
        Ok(Server {
            app,
            _watcher: watcher,
        })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// The HTTP API (and `/v1/openapi.json`), and the web console at `/`.
    pub fn router(&self) -> axum::Router {
        console::router().merge(api::router(self.app.clone()))
    }

    /// The server stops serving: `/readyz` says so and open event streams
    /// end (their clients reconnect to the next process with
    /// `Last-Event-ID`). Call it when the HTTP server starts its graceful
    /// shutdown.
    pub fn close(&self) {
        self.app.close();
    }

    /// Stops starting runs and waits up to `grace` for those running;
    /// what is left stays resumable in the store. Returns how many runs
    /// were still running.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.close();
        self.app.executor.shutdown(grace).await
    }
}

impl AppState {
    /// See [`Server::close`].
    pub fn close(&self) {
        self.ready.store(false, Ordering::SeqCst);
        let _ = self.closing.send(true);
    }

    /// Resolves when the server closes.
    pub async fn closed(&self) {
        let mut closing = self.closing.subscribe();
        let _ = closing.wait_for(|c| *c).await;
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.executor.is_stopping()
    }

    /// The runner a recorded run executes with: the inline spec it was
    /// started with, else its registered workflow.
    pub async fn runner_of(&self, run: &RunRecord) -> Result<Runner, ApiError> {
        let records = self.store.journal(&Scope::Operator, &run.run_id).await?;
        let started = crate::journal::run_started(&records)
            .transpose()
            .map_err(ApiError::internal)?;
        let inline = started
            .as_ref()
            .and_then(|s| s.metadata.pointer("/server/inline_spec"))
            .filter(|v| !v.is_null());
        if let Some(doc) = inline {
            let (spec, _) = catalog::spec_of_value(doc, self.catalog.workflows_dir())
                .map_err(|e| ApiError::internal(e.to_string()))?;
            return self.catalog.runner_for(&spec).map_err(|errors| {
                ApiError::conflict(format!(
                    "the run's inline spec no longer compiles: {}",
                    errors
                        .iter()
                        .map(|(p, m)| format!("{p}: {m}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            });
        }
        self.catalog
            .workflow(&run.workflow_key)
            .map(|w| w.runner.clone())
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "workflow `{}` is not registered on this server",
                    run.workflow_key
                ))
            })
    }

    /// The callbacks a recorded run was started with.
    pub async fn sinks_of(&self, run_id: &str) -> RunSinks {
        let Ok(records) = self.store.journal(&Scope::Operator, run_id).await else {
            return RunSinks::default();
        };
        let url = crate::journal::run_started(&records)
            .and_then(Result::ok)
            .and_then(|s| {
                s.metadata
                    .pointer("/server/callback")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
        RunSinks {
            callbacks: url
                .and_then(|u| api::callback_sink(&u).ok())
                .into_iter()
                .collect(),
        }
    }
}

/// At start: executes every run left queued or running (with
/// `interrupted`), and every run whose approvals are all decided.
async fn recover(app: &App, interrupted: bool) -> Result<usize, ServerError> {
    let runs = app.executor.recoverable(interrupted).await?;
    let mut resumed = 0;
    for run in runs {
        match app.runner_of(&run).await {
            Ok(runner) => {
                let sinks = app.sinks_of(&run.run_id).await;
                app.executor.submit(&run.run_id, runner, sinks, false);
                resumed += 1;
            }
            Err(e) => tracing::warn!(
                run_id = %run.run_id,
                workflow = %run.workflow_key,
                "interrupted run left as it is: {}", e.detail
            ),
        }
    }
    Ok(resumed)
}

/// Deletes finished runs older than `retain`, now and then.
async fn prune(store: Arc<dyn Store>, retain: Duration) {
    let every = (retain / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let cutoff = crate::util::now_ms().saturating_sub(retain.as_millis() as u64);
        match store.prune_finished(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "pruned finished runs past the retention"),
            Err(e) => tracing::warn!(error = %e, "cannot prune finished runs"),
        }
        tokio::time::sleep(every).await;
    }
}

/// A mutex of the server's bookkeeping: every holder changes it in one step,
/// so a panic elsewhere cannot leave it half-updated.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

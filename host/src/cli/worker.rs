//! `host worker`: a fleet member without the HTTP API (docs/SCALING.md).
//! It executes runs that any `host serve` of the fleet accepted, claiming
//! them from the shared store, and delivers the fleet's outbox.

use super::GlobalArgs;
use super::error::CliError;
use super::serve::{Start, start, stop, stop_signal};
use host::server::Tokens;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// The plugins folder (watched: changed files are swapped in live)
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    pub plugins: PathBuf,
    /// The workflows folder: the workflows this worker can execute (runs
    /// of others are left to other workers)
    #[arg(long, value_name = "DIR")]
    pub workflows: PathBuf,
    /// Runs executing at once
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_runs: usize,
    /// On SIGTERM or Ctrl-C: seconds running runs get to finish; the rest
    /// are resumed by another worker once their leases expire
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub shutdown_grace: f64,
    /// Seconds a run's lease lasts unless renewed; a dead worker's runs
    /// resume elsewhere after it
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub lease: f64,
    /// Run every agent on its spec's offline scripted provider
    #[arg(long)]
    pub offline: bool,
    /// Stream model responses
    #[arg(long)]
    pub stream: bool,
    /// Do not watch the folders
    #[arg(long)]
    pub no_watch: bool,
}

pub(super) async fn worker(global: &GlobalArgs, args: WorkerArgs) -> Result<ExitCode, CliError> {
    let grace = Duration::try_from_secs_f64(args.shutdown_grace).map_err(|_| {
        CliError::bad_input(format!(
            "--shutdown-grace: expected seconds (0 or more), got {}",
            args.shutdown_grace
        ))
    })?;
    let started = start(
        global,
        Start {
            plugins: &args.plugins,
            workflows: &args.workflows,
            tokens: Tokens::none(),
            max_runs: args.max_runs,
            max_queued: 0,
            retain: 0.0,
            allow_inline_specs: true,
            offline: args.offline,
            stream: args.stream,
            watch: !args.no_watch,
            lease: Some(args.lease),
        },
    )
    .await?;
    let app = started.server.app();
    eprintln!(
        "host worker: executing runs from the shared store · {} workflow(s), {} plugin(s)",
        app.catalog.workflows().len(),
        app.catalog.registry().plugins().len(),
    );
    stop_signal().await;
    eprintln!(
        "host worker: stopping; running runs get {:.0} s",
        grace.as_secs_f64()
    );
    stop(started, grace, "host worker").await;
    Ok(ExitCode::SUCCESS)
}

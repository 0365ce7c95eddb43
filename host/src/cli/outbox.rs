//! `host outbox`: the events waiting for HTTP delivery in the run database
//! (docs/EVENTS.md, "http"). `deliver` sends them from this process, e.g.
//! after the `host` that ran them was killed or gave up waiting.
//!
//! The operator's view: every account's entries ([`Scope::Operator`]).

use super::error::CliError;
use super::run::read_spec;
use super::sinks::{SinkPlan, bad_sink};
use super::{EXIT_BAD_INPUT, EXIT_FAILED, GlobalArgs, open_store};
use host::outbox::{Deliverer, OutboxConfig, Until};
use host::store::{OutboxState, Scope, Store};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum OutboxCommand {
    /// Outbox entries (by default the pending and dead ones), by run and seq
    List {
        /// Only this run's
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        /// Only entries in this state: pending, delivered, dead
        #[arg(long)]
        state: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Deliver pending entries of every run: what is due now, or with
    /// --wait until every entry is delivered or dead
    Deliver {
        /// Keep going through retries until nothing is pending; exit 1 if
        /// an event ended dead or is still pending at --timeout
        #[arg(long)]
        wait: bool,
        /// Give up after this many seconds (entries left stay pending)
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// The spec file a run started from (repeatable): its callbacks'
        /// header values and inline secrets are never stored, so only a
        /// process given the same file (same SHA-256) can send them
        #[arg(long = "spec", value_name = "FILE")]
        specs: Vec<PathBuf>,
    },
}

pub(super) async fn run(global: &GlobalArgs, cmd: OutboxCommand) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    match cmd {
        OutboxCommand::List {
            run,
            state,
            limit,
            json,
        } => list(store.as_ref(), run.as_deref(), state, limit, json).await,
        OutboxCommand::Deliver {
            wait,
            timeout,
            specs,
        } => deliver(global, store, wait, timeout, &specs).await,
    }
}

async fn list(
    store: &dyn Store,
    run: Option<&str>,
    state: Option<String>,
    limit: usize,
    json: bool,
) -> Result<ExitCode, CliError> {
    let state = state
        .map(|s| s.parse::<OutboxState>())
        .transpose()
        .map_err(|e| {
            CliError::bad_input(format!(
                "--state: {e} (one of: {})",
                OutboxState::ALL.map(|s| s.as_str()).join(", ")
            ))
        })?;
    let entries = match state {
        Some(s) => {
            store
                .outbox_entries(&Scope::Operator, run, Some(s), Some(limit))
                .await?
        }
        None => {
            let mut all = store
                .outbox_entries(
                    &Scope::Operator,
                    run,
                    Some(OutboxState::Pending),
                    Some(limit),
                )
                .await?;
            all.extend(
                store
                    .outbox_entries(&Scope::Operator, run, Some(OutboxState::Dead), Some(limit))
                    .await?,
            );
            all.sort_by(|a, b| {
                (&a.run_id, &a.target.url, a.seq).cmp(&(&b.run_id, &b.target.url, b.seq))
            });
            all.truncate(limit);
            all
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "run_id": e.run_id,
                    "account_id": e.account_id,
                    "user_id": e.user_id,
                    "url": e.target.url,
                    "seq": e.seq,
                    "type": e.event_type,
                    "state": e.state,
                    "attempts": e.attempts,
                    "next_attempt_at_ms": e.next_attempt_at_ms,
                    "last_error": e.last_error,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<26}  {:>5}  {:<18}  {:<9}  {:>8}  URL / LAST ERROR",
        "RUN", "SEQ", "TYPE", "STATE", "ATTEMPTS"
    )?;
    for e in &entries {
        writeln!(
            out,
            "{:<26}  {:>5}  {:<18}  {:<9}  {:>8}  {}{}",
            e.run_id,
            e.seq,
            e.event_type,
            e.state.as_str(),
            e.attempts,
            e.target.url,
            e.last_error
                .as_deref()
                .map(|m| format!(" · {m}"))
                .unwrap_or_default()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn deliver(
    global: &GlobalArgs,
    store: std::sync::Arc<dyn Store>,
    wait: bool,
    timeout: Option<f64>,
    specs: &[PathBuf],
) -> Result<ExitCode, CliError> {
    let deadline = timeout
        .map(Duration::try_from_secs_f64)
        .transpose()
        .map_err(|_| CliError::bad_input("--timeout: expected seconds (0 or more)"))?
        .map(|d| Instant::now() + d);
    let config = OutboxConfig {
        egress: global.host_config.egress.clone(),
        ..OutboxConfig::from_env().map_err(|e| CliError::bad_input(e.to_string()))?
    };
    let deliverer = Deliverer::new(store.clone(), config)?;
    for path in specs {
        hold_values(store.as_ref(), &deliverer, path).await?;
    }
    let until = if wait { Until::Empty } else { Until::Idle };
    deliverer.run(until, deadline).await;
    deliverer.release().await;
    let tally = deliverer.tally();
    let pending = store
        .outbox_entries(&Scope::Operator, None, Some(OutboxState::Pending), None)
        .await?
        .len();
    eprintln!(
        "delivered {} event(s); {} failed attempt(s); {} dead; {pending} still pending",
        tally.delivered, tally.failed_attempts, tally.dead
    );
    if tally.dead > 0 {
        eprintln!("  hint: `host outbox list --state dead` shows why");
    }
    // With --wait the command's answer is whether everything arrived: an
    // event that ended dead (or is still pending at the timeout) did not.
    Ok(if wait && (pending > 0 || tally.dead > 0) {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Gives `deliverer` the header values and inline secrets of the callbacks
/// of `path`, for every run with pending entries that started from that
/// very file (same SHA-256); a file no pending run started from is an error.
async fn hold_values(
    store: &dyn Store,
    deliverer: &Deliverer,
    path: &Path,
) -> Result<(), CliError> {
    let (spec, _, digest) =
        read_spec(path).map_err(|report| CliError::verbatim(EXIT_BAD_INPUT, report))?;
    let plan = SinkPlan::new(&spec, &[], true, true).map_err(|e| bad_sink(&e))?;
    let runs: BTreeSet<String> = store
        .outbox_entries(&Scope::Operator, None, Some(OutboxState::Pending), None)
        .await?
        .into_iter()
        .map(|e| e.run_id)
        .collect();
    let mut matched = 0;
    for run_id in runs {
        let Some(record) = store.get_run(&Scope::Operator, &run_id).await? else {
            continue;
        };
        if record.spec_digest != digest {
            continue;
        }
        matched += 1;
        for target in plan.http_targets() {
            if let Some(secret) = &target.secret {
                deliverer.add_secret(&run_id, &target.url, secret.clone());
            }
            deliverer.add_headers(&run_id, &target.url, target.headers.clone());
        }
    }
    if matched == 0 {
        return Err(CliError::bad_input(format!(
            "--spec {}: no run with pending events started from this file (SHA-256 {digest})",
            path.display()
        )));
    }
    Ok(())
}

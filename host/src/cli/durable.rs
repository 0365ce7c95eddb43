//! Commands over the run database: `resume`, `replay`, `runs` (the
//! approval commands are in `approvals.rs`).
//!
//! The CLI is the operator's view: every query here is made in
//! [`OPERATOR`] scope (every account), and a resumed run keeps the account
//! and user it was started for.

use super::error::CliError;
use super::run::{Delivery, RunMetadata, drive, load_runner};
use super::sinks::{self, SinkPlan};
use super::{EXIT_WAITING, GlobalArgs, open_store};
use host::approvals;
use host::engine::{Caller, ResumeRequest, Runner};
use host::events::rfc3339;
use host::journal::{self, StepStatus, StepSummary};
use host::plan::CompileOptions;
use host::spec::Spec;
use host::store::{JournalRecord, RunFilter, RunRecord, RunStatus, RunUpdate, Scope, Store};
use host::util::clip_chars;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The scope of every store query the CLI makes: the operator's.
pub(super) const OPERATOR: &Scope = &Scope::Operator;

#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// The run to continue
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub run_id: Option<String>,
    /// Every interrupted run: left running by a crash, or waiting for
    /// approvals that have all been decided
    #[arg(long)]
    pub all: bool,
    /// The plugins directory [default: the one the run started with]
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Wait in this process for approvals instead of pausing again
    #[arg(long)]
    pub wait_approval: bool,
    /// The spec file the run started from [default: the path it was run
    /// from]; needed when its secret values (an inline API key or callback
    /// secret, header values) were not stored. Its SHA-256 must be the run's
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    pub spec: Option<PathBuf>,
    /// No trace on stderr, only errors
    #[arg(long, short)]
    pub quiet: bool,
    /// Send events to a sink (repeatable): stdout, stdout_verbose, jsonl:PATH, jsonl:-, http:URL
    #[arg(long = "callback", value_name = "SINK")]
    pub callbacks: Vec<String>,
    /// After the run, keep delivering its HTTP callbacks for up to this
    /// many seconds; what is left stays in the run database's outbox
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub deliver_timeout: f64,
    /// Plain trace lines on stderr, no live progress, even on a terminal
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum RunsCommand {
    /// Runs, newest first
    List {
        /// Only runs in this status (queued, running, waiting_approval,
        /// completed, failed, cancelled)
        #[arg(long)]
        status: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One run: status, steps with their plugin versions, usage, output, error
    Show {
        run_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run that has not finished
    Cancel { run_id: String },
}

/// The spec file a resume reads when the run's stored spec lacks secret
/// values: the one given (`--spec`), and the SHA-256 the run started with.
pub(super) struct Original<'a> {
    pub(super) given: Option<&'a Path>,
    pub(super) digest: &'a str,
}

/// Rebuilds the runner a recorded run started with (spec, plugins, options
/// from its `run_started` entry). Credentials are resolved again, from the
/// current environment and host config under the rules of a fresh run. A
/// resume (`original`) of a run whose stored spec had secret values
/// redacted reads them from the original spec file, or refuses: it never
/// runs without them (a Go request's own key never becomes the operator's).
pub(super) async fn rebuild(
    global: &GlobalArgs,
    run_id: &str,
    journal: &[JournalRecord],
    plugins: Option<&Path>,
    original: Option<Original<'_>>,
    offline: bool,
) -> Result<(Spec, Runner), CliError> {
    let meta = journal::run_started(journal)
        .and_then(Result::ok)
        .and_then(|started| serde_json::from_value::<RunMetadata>(started.metadata).ok());
    let Some(meta) = meta.filter(|m| m.spec.is_object()) else {
        return Err(CliError::failed(format!(
            "run {run_id} was not started by `host run` (its journal has no spec to rebuild it from)"
        )));
    };
    let base_dir = PathBuf::from(if meta.base_dir.is_empty() {
        "."
    } else {
        &meta.base_dir
    });
    let doc = match original {
        Some(original) if !meta.redacted.is_empty() => original_spec(run_id, &meta, &original)?,
        _ => meta.spec.clone(),
    };
    let spec = Spec::from_value(&doc, &base_dir).map_err(|e| {
        CliError::failed(format!(
            "run {run_id}: its recorded spec no longer parses:\n{e}"
        ))
    })?;
    let plugins = plugins.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from(if meta.plugins.is_empty() {
            "plugins"
        } else {
            &meta.plugins
        })
    });
    let options = CompileOptions {
        offline: meta.offline || offline,
        stream: meta.stream,
        replies: global.host_config.models,
        credentials: super::credential_policy(global),
        egress: global.host_config.egress.clone(),
        mcp: None,
    };
    let runner = load_runner(global, &spec, &plugins, &options).await?;
    Ok((spec, runner))
}

/// The original document of a run whose stored spec has redacted values:
/// the file given with `--spec`, else the one it was run from, if its
/// SHA-256 is the run's.
fn original_spec(
    run_id: &str,
    meta: &RunMetadata,
    original: &Original<'_>,
) -> Result<Value, CliError> {
    use sha2::Digest;
    let path = original
        .given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(&meta.spec_path));
    let why = match std::fs::read_to_string(&path) {
        Ok(text) if hex::encode(sha2::Sha256::digest(text.as_bytes())) == original.digest => {
            return serde_json::from_str(&text)
                .map_err(|e| CliError::failed(format!("run {run_id}: {}: {e}", path.display())));
        }
        Ok(_) => "is not the spec it started from (another SHA-256)".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(CliError::failed(format!(
        "run {run_id}: its spec's secret values were not stored ({}), and {} {why}",
        meta.redacted.join(", "),
        path.display()
    ))
    .with_hint(Some(format!(
        "give the spec file the run started from: `host resume {run_id} --spec FILE`"
    ))))
}

pub(super) async fn resume(global: &GlobalArgs, args: ResumeArgs) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    let ids = match (&args.run_id, args.all) {
        (Some(id), _) => vec![id.clone()],
        (None, _) => resumable(store.as_ref()).await?,
    };
    if ids.is_empty() {
        eprintln!("no interrupted runs");
        return Ok(ExitCode::SUCCESS);
    }
    // A run that cannot be resumed says why; the others are still resumed.
    // An unforeseen error (the store, the plugin runtime) stops them all.
    let mut worst = ExitCode::SUCCESS;
    for id in ids {
        let code = match resume_one(global, &store, &id, &args).await {
            Ok(code) => code,
            Err(e) if e.is_unexpected() => return Err(e),
            Err(e) => e.report(),
        };
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    Ok(worst)
}

/// Runs left running (a crash) or waiting for approvals all decided.
async fn resumable(store: &dyn Store) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = store
        .interrupted_runs(OPERATOR)
        .await?
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    let waiting = store
        .list_runs(
            OPERATOR,
            RunFilter {
                status: Some(RunStatus::WaitingApproval),
                ..RunFilter::default()
            },
        )
        .await?;
    for run in waiting.into_iter().rev() {
        if approvals::pending(store, OPERATOR, &run.run_id)
            .await?
            .is_empty()
        {
            ids.push(run.run_id);
        }
    }
    Ok(ids)
}

async fn resume_one(
    global: &GlobalArgs,
    store: &Arc<dyn Store>,
    run_id: &str,
    args: &ResumeArgs,
) -> Result<ExitCode, CliError> {
    let Some(record) = store.get_run(OPERATOR, run_id).await? else {
        return Err(no_such_run(run_id));
    };
    if record.status.is_terminal() {
        return Err(CliError::failed(format!(
            "run {run_id} is {}; only an interrupted run can be resumed",
            record.status
        )));
    }
    let pending = approvals::pending(store.as_ref(), OPERATOR, run_id).await?;
    if !pending.is_empty() && !args.wait_approval {
        eprintln!("run {run_id} is still waiting for approval:");
        for p in &pending {
            eprintln!("    call {} · tool {}", p.call_id, p.tool);
        }
        eprintln!("  decide with `host approve`/`host reject` (or resume with --wait-approval)");
        return Ok(ExitCode::from(EXIT_WAITING));
    }
    let delivery = Delivery::new(global, store.clone(), args.deliver_timeout)?;
    let journal = store.journal(OPERATOR, run_id).await?;
    let original = Original {
        given: args.spec.as_deref(),
        digest: &record.spec_digest,
    };
    let (spec, runner) = rebuild(
        global,
        run_id,
        &journal,
        args.plugins.as_deref(),
        Some(original),
        false,
    )
    .await?;
    let runner = runner.with_store(store.clone());
    let plan = SinkPlan::new(&spec, &args.callbacks, args.quiet, args.no_progress)
        .map_err(|e| sinks::bad_sink(&e))?;
    if !args.quiet {
        eprintln!("resuming run {run_id} ({} journal entries)", journal.len());
    }
    let (deltas, wait_approval) = (plan.deltas(), args.wait_approval);
    let start = |event_acks| {
        runner.resume(
            run_id,
            ResumeRequest {
                caller: Caller::Operator,
                deltas,
                events: true,
                wait_approval,
                event_acks,
            },
        )
    };
    let code = drive(run_id, start, &runner, plan, delivery).await;
    super::run::stop_mcp(&runner).await;
    Ok(code)
}

/// `no run … in the run database`: a bad run id.
pub(super) fn no_such_run(run_id: &str) -> CliError {
    CliError::bad_input(format!("no run {run_id} in the run database"))
}

/// JSON and arguments on one screen line or so.
pub(super) fn clip(s: &str) -> String {
    clip_chars(s, 200)
}

fn time(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

pub(super) async fn runs(global: &GlobalArgs, cmd: RunsCommand) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    match cmd {
        RunsCommand::List {
            status,
            limit,
            json,
        } => {
            let status = status
                .map(|s| s.parse::<RunStatus>())
                .transpose()
                .map_err(|e| {
                    CliError::bad_input(format!(
                        "--status: {e} (one of: {})",
                        RunStatus::ALL.map(|s| s.as_str()).join(", ")
                    ))
                })?;
            let runs = store
                .list_runs(
                    OPERATOR,
                    RunFilter {
                        status,
                        limit: Some(limit),
                        ..RunFilter::default()
                    },
                )
                .await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&runs)?)?;
            } else {
                writeln!(
                    out,
                    "{:<26}  {:<16}  {:<20}  {:<24}  SESSION",
                    "RUN", "STATUS", "WORKFLOW", "UPDATED"
                )?;
                for r in &runs {
                    writeln!(
                        out,
                        "{:<26}  {:<16}  {:<20}  {:<24}  {}",
                        r.run_id,
                        r.status.as_str(),
                        r.workflow_key,
                        time(r.updated_at_ms),
                        r.session_id.as_deref().unwrap_or("-")
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { run_id, json } => show(store.as_ref(), &run_id, json).await,
        RunsCommand::Cancel { run_id } => {
            match store
                .update_run(&run_id, RunUpdate::status(RunStatus::Cancelled))
                .await
            {
                Ok(_) => {
                    eprintln!("run {run_id} cancelled");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(CliError::failed(e.to_string())),
            }
        }
    }
}

/// The steps of `runs show --json`, from the journal.
fn steps_json(steps: &[StepSummary]) -> Vec<Value> {
    steps
        .iter()
        .map(|s| {
            let mut entry = json!({ "step": s.step.to_string(), "status": s.status.as_str() });
            match (&s.status, &s.done) {
                (StepStatus::Failed, _) => entry["error"] = json!(s.error),
                (StepStatus::Completed, Some(done)) => {
                    entry["agent"] = json!(done.agent);
                    entry["turns"] = json!(done.turns);
                    entry["usage"] = json!(done.usage);
                    entry["output"] = done.output.clone();
                }
                _ => {}
            }
            if !s.plugins.is_empty() {
                entry["plugins"] = json!(s.plugins);
            }
            entry
        })
        .collect()
}

async fn show(store: &dyn Store, run_id: &str, json_out: bool) -> Result<ExitCode, CliError> {
    let Some(run) = store.get_run(OPERATOR, run_id).await? else {
        return Err(no_such_run(run_id));
    };
    let journal = store.journal(OPERATOR, run_id).await?;
    let steps = journal::step_summaries(&journal)?;
    let pending = approvals::pending(store, OPERATOR, run_id).await?;
    let outbox = store.outbox_summary(OPERATOR, run_id).await?;
    let mut out = std::io::stdout().lock();
    if json_out {
        let mut v = serde_json::to_value(&run)?;
        v["steps"] = json!(steps_json(&steps));
        v["pending_approvals"] = serde_json::to_value(&pending)?;
        v["journal_entries"] = json!(journal.len());
        // The Go runner's run summary and execution state, per run.
        let (summary, state) = super::go_state::of(&run, &workflow_name(&run, &journal), &pending);
        v["summary"] = serde_json::to_value(&summary)?;
        v["execution_state"] = serde_json::to_value(&state)?;
        v["outbox"] = json!({
            "pending": outbox.pending,
            "delivered": outbox.delivered,
            "dead": outbox.dead,
            "dead_entries": outbox.dead_entries.iter().map(|e| json!({
                "url": e.target.url,
                "seq": e.seq,
                "type": e.event_type,
                "attempts": e.attempts,
                "last_error": e.last_error,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    write_run(&mut out, &run)?;
    writeln!(out, "steps:")?;
    for s in &steps {
        writeln!(
            out,
            "  {:<28} {:<10} {}",
            s.step.to_string(),
            s.status.as_str(),
            s.done
                .as_ref()
                .filter(|_| s.status == StepStatus::Completed)
                .and_then(|d| d.agent.as_deref())
                .unwrap_or("")
        )?;
        for (name, digest) in &s.plugins {
            writeln!(
                out,
                "      plugin {name} sha256:{}",
                &digest[..digest.floor_char_boundary(16)]
            )?;
        }
        for h in &s.hosted {
            writeln!(
                out,
                "      hosted {}({}) → {}{}",
                host::sinks::escape_controls(&h.tool),
                host::sinks::escape_controls(&h.input),
                host::sinks::escape_controls(&h.output),
                if h.failed { " (failed)" } else { "" }
            )?;
        }
        if let Some(e) = &s.error {
            writeln!(out, "      error: {e}")?;
        }
    }
    if !pending.is_empty() {
        writeln!(out, "waiting for approval:")?;
        for p in &pending {
            writeln!(
                out,
                "  call {} · tool {} · {}",
                p.call_id,
                p.tool,
                clip(&p.arguments)
            )?;
        }
    }
    writeln!(out, "journal: {} entries", journal.len())?;
    if outbox.pending + outbox.delivered + outbox.dead > 0 {
        writeln!(
            out,
            "callbacks: {} delivered, {} pending, {} dead",
            outbox.delivered, outbox.pending, outbox.dead
        )?;
        for e in &outbox.dead_entries {
            writeln!(
                out,
                "  dead: seq {} {} → {} after {} attempt(s): {}",
                e.seq,
                e.event_type,
                e.target.url,
                e.attempts,
                e.last_error.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The spec's `workflow.name` as the run stored it, else the workflow key.
fn workflow_name(run: &RunRecord, journal: &[JournalRecord]) -> String {
    journal::run_started(journal)
        .and_then(Result::ok)
        .and_then(|started| serde_json::from_value::<RunMetadata>(started.metadata).ok())
        .and_then(|meta| {
            meta.spec
                .pointer("/workflow/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| run.workflow_key.clone())
}

fn write_run(out: &mut impl Write, run: &RunRecord) -> std::io::Result<()> {
    writeln!(out, "run       {}", run.run_id)?;
    writeln!(out, "status    {}", run.status)?;
    writeln!(out, "workflow  {}", run.workflow_key)?;
    writeln!(out, "spec      sha256:{}", run.spec_digest)?;
    if let Some(s) = &run.session_id {
        writeln!(
            out,
            "session   {s} (account {:?}, user {:?})",
            run.account_id, run.user_id
        )?;
    }
    writeln!(out, "created   {}", time(run.created_at_ms))?;
    writeln!(out, "updated   {}", time(run.updated_at_ms))?;
    if let Some(a) = &run.last_agent {
        writeln!(out, "agent     {a}")?;
    }
    if let Some(r) = &run.last_response_id {
        writeln!(out, "response  {r}")?;
    }
    for (model, u) in &run.usage {
        writeln!(
            out,
            "usage     {model}: {} input / {} output tokens{}",
            u.input_tokens,
            u.output_tokens,
            u.unreported_note()
        )?;
    }
    if let Some(o) = &run.output {
        writeln!(out, "output    {}", clip(&o.to_string()))?;
    }
    if let Some(e) = &run.error {
        writeln!(out, "error     {e}")?;
    }
    Ok(())
}

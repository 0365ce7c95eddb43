//! `host run`: load plugins, build the workflow, run it, print the result.
//!
//! The final output goes to stdout (pretty JSON when structured, plain text
//! otherwise) unless a sink already writes it there; the run's events go to
//! the sinks and to the trace on stderr (see `sinks`, and [`Trace`]).

use super::error::CliError;
use super::sinks::{self, SinkPlan};
use super::{EXIT_BAD_INPUT, EXIT_WAITING, GlobalArgs, open_store, plugin_runtime};
use anyhow::Context;
use host::engine::{Caller, RunCanceller, RunError, RunHandle, RunRequest, Runner, SessionConfig};
use host::events::EventAck;
use host::outbox::{Deliverer, OutboxConfig, Until};
use host::plan::{self, CompileOptions};
use host::plugin::Registry;
use host::sinks::Dispatch;
use host::sinks::{Escaped, LinesSink, Live, OutboxSink, Sink, SinkOptions, escape_controls};
use host::spec::{Redacted, Spec};
use host::store::{Scope, SessionScope, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The workflow spec (JSON; the Go runner's request shape works too)
    pub spec: PathBuf,
    /// The plugins directory
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    pub plugins: PathBuf,
    /// The run's input as text
    #[arg(long, conflicts_with_all = ["input_file", "input_json"])]
    pub input: Option<String>,
    /// The run's input as JSON
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    pub input_json: Option<String>,
    /// Read the input from a file (JSON when it ends in .json, text otherwise)
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Session id (conversation history; see docs/ENGINE.md)
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Run every agent on the spec's offline scripted provider (or script.json beside the spec)
    #[arg(long)]
    pub offline: bool,
    /// Stream model responses
    #[arg(long)]
    pub stream: bool,
    /// No trace on stderr, only errors (sinks still get every event)
    #[arg(long, short)]
    pub quiet: bool,
    /// Send events to a sink, besides the spec's run.callback (repeatable):
    /// stdout, stdout_verbose, jsonl:PATH, jsonl:- (stdout), http:URL
    #[arg(long = "callback", value_name = "SINK")]
    pub callbacks: Vec<String>,
    /// After the run, keep delivering its HTTP callbacks for up to this
    /// many seconds; what is left stays in the run database's outbox
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub deliver_timeout: f64,
    /// Plain trace lines on stderr, no live progress, even on a terminal
    #[arg(long)]
    pub no_progress: bool,
    /// When a tool call needs approval, wait in this process for
    /// `host approve`/`host reject` instead of pausing the run and exiting
    #[arg(long)]
    pub wait_approval: bool,
    /// Run as this user (of --account): the run and its session are theirs,
    /// and a spec naming another user's session is refused
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Run as this account: the run and its session are the account's, and
    /// a spec naming another account's session is refused. Without
    /// --account/--user the run is the operator's and may use the session
    /// the spec names
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
}

pub(super) async fn run(global: &GlobalArgs, args: RunArgs) -> Result<ExitCode, CliError> {
    let (spec, doc, digest) =
        read_spec(&args.spec).map_err(|report| CliError::verbatim(EXIT_BAD_INPUT, report))?;
    let input = input(&args, &spec).map_err(|e| CliError::bad_input(format!("{e:#}")))?;
    let plan = SinkPlan::new(&spec, &args.callbacks, args.quiet, args.no_progress)
        .map_err(|e| sinks::bad_sink(&e))?;
    let store = open_store(global)?;
    let delivery = Delivery::new(global, store.clone(), args.deliver_timeout)?;
    let options = CompileOptions {
        offline: args.offline,
        stream: args.stream,
        replies: global.host_config.models,
        credentials: super::credential_policy(global),
        egress: global.host_config.egress.clone(),
        mcp: None,
    };
    let runner = load_runner(global, &spec, &args.plugins, &options)
        .await?
        .with_store(store.clone());
    let caller = caller(&args);
    // The account and user a spec names are kept as named, so that the
    // engine refuses them when they are not the caller's.
    let session = args
        .session
        .clone()
        .or_else(|| spec.run.session.as_ref().map(|s| s.id.clone()))
        .map(|id| {
            let from_spec = spec.run.session.as_ref();
            let own = |named: Option<&String>, given: &Option<String>| {
                named.or(given.as_ref()).cloned().unwrap_or_default()
            };
            SessionConfig {
                scope: SessionScope::new(
                    own(from_spec.and_then(|s| s.account_id.as_ref()), &args.account),
                    own(from_spec.and_then(|s| s.user_id.as_ref()), &args.user),
                    id,
                ),
                history_size: from_spec.and_then(|s| s.history_size),
            }
        });
    let metadata = serde_json::to_value(RunMetadata {
        spec: doc.doc,
        redacted: doc.paths,
        spec_path: absolute(&args.spec),
        base_dir: absolute(spec.base_dir()),
        plugins: absolute(&args.plugins),
        offline: args.offline,
        stream: args.stream,
    })?;
    let run_id = host::engine::new_run_id();
    let deltas = plan.deltas();
    let start = |event_acks| {
        runner.start(RunRequest {
            input,
            run_id: Some(run_id.clone()),
            deltas,
            events: true,
            session,
            wait_approval: args.wait_approval,
            metadata,
            spec_digest: digest,
            caller,
            event_acks,
        })
    };
    let code = drive(&run_id, start, &runner, plan, delivery).await;
    stop_mcp(&runner).await;
    Ok(code)
}

/// Stops the workflow's MCP servers (their process groups), if it has any.
pub(super) async fn stop_mcp(runner: &Runner) {
    if let Some(hub) = &runner.workflow().mcp {
        hub.shutdown().await;
    }
}

/// Who `host run` runs as: an account's user with `--account`/`--user`
/// (an absent one is empty), else the operator.
fn caller(args: &RunArgs) -> Caller {
    if args.account.is_none() && args.user.is_none() {
        return Caller::Operator;
    }
    Caller::account(
        args.account.clone().unwrap_or_default(),
        args.user.clone().unwrap_or_default(),
    )
}

/// HTTP callbacks of a `host run` or `host resume`: the outbox's deliverer
/// and how long to keep delivering after the run.
pub(super) struct Delivery {
    store: Arc<dyn Store>,
    deliverer: Deliverer,
    grace: Duration,
}

impl Delivery {
    pub(super) fn new(
        global: &GlobalArgs,
        store: Arc<dyn Store>,
        grace_secs: f64,
    ) -> Result<Delivery, CliError> {
        let grace = Duration::try_from_secs_f64(grace_secs).map_err(|_| {
            CliError::bad_input(format!(
                "--deliver-timeout: expected seconds (0 or more), got {grace_secs}"
            ))
        })?;
        let deliverer = OutboxConfig::from_env()
            .and_then(|config| {
                let egress = global.host_config.egress.clone();
                Deliverer::new(store.clone(), OutboxConfig { egress, ..config })
            })
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        Ok(Delivery {
            store,
            deliverer,
            grace,
        })
    }

    /// After the run: delivers its pending events for up to the grace
    /// period, then says what is left.
    async fn settle(&self, run_id: &str) {
        let deadline = Instant::now() + self.grace;
        loop {
            let summary = match self.store.outbox_summary(&Scope::Operator, run_id).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: cannot read the event outbox: {e}");
                    return;
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if summary.pending == 0 || left.is_zero() {
                if summary.dead > 0 {
                    eprintln!(
                        "warning: {} event(s) of run {run_id} could not be delivered; see `host runs show {run_id}`",
                        summary.dead
                    );
                }
                if summary.pending > 0 {
                    eprintln!(
                        "note: {} event(s) of run {run_id} are not delivered yet; they stay in the run database, and `host outbox deliver` (or any later `host run` on it) sends them",
                        summary.pending
                    );
                }
                return;
            }
            self.deliverer
                .progressed(left.min(Duration::from_millis(100)))
                .await;
        }
    }
}

/// Reads a spec file: the parsed spec, the document to keep with a run
/// (secret values redacted) and its SHA-256. Errors are ready to print.
pub(super) fn read_spec(path: &Path) -> Result<(Spec, Redacted, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        host::spec::SpecErrors::one("$", format!("cannot read {}: {e}", path.display())).to_string()
    })?;
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let spec = Spec::from_json_str(&text, Spec::base_dir_of(path)).map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    // A Go-shaped request may carry an API key and a callback secret, and
    // any spec header values that are secrets: never store them.
    Ok((spec, host::spec::redact(&doc), digest))
}

/// What `host run` keeps with a run (its `run_started` entry's metadata),
/// so `host resume` and `host replay` can rebuild the runner it ran with.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub(super) struct RunMetadata {
    /// The spec document as it was run, its secret values redacted.
    pub(super) spec: Value,
    /// The JSON paths of the values redacted in `spec`: a resume needs the
    /// original document (`host resume --spec`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) redacted: Vec<String>,
    pub(super) spec_path: String,
    /// Where the spec's relative paths (scripts, tool schemas) start.
    pub(super) base_dir: String,
    pub(super) plugins: String,
    pub(super) offline: bool,
    pub(super) stream: bool,
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Loads the plugins and builds the workflow.
pub(super) async fn load_runner(
    global: &GlobalArgs,
    spec: &Spec,
    plugins: &Path,
    options: &CompileOptions,
) -> Result<Runner, CliError> {
    // Limits above the operator's ceilings are refused before anything loads.
    let runtime = plugin_runtime(global)?;
    runtime
        .policy()
        .check_spec(spec)
        .map_err(|e| CliError::verbatim(EXIT_BAD_INPUT, e.to_string().trim_end()))?;
    let registry = Arc::new(Registry::new(runtime));
    // Only the plugins the spec names: an unrelated file costs nothing.
    let report = registry
        .load_for(plugins, spec, &plan::load_options(spec))
        .await
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    for e in &report.failed {
        eprintln!("warning: {e}");
    }
    // The spec's MCP servers start now, once for this process; their
    // first tool lists let compile check `mcp:NAME#tool` references.
    let mut options = options.clone();
    if !spec.mcp_servers.is_empty() && options.mcp.is_none() {
        let hub = plan::start_hub(spec, &options)
            .map_err(|e| CliError::verbatim(EXIT_BAD_INPUT, e.to_string().trim_end()))?;
        hub.ready(host::mcp::START_TIMEOUT).await;
        options.mcp = Some(hub);
    }
    // A spec error reads `error: $.path: …` already; the others print as
    // they always have, bare.
    let workflow = plan::compile(spec, &registry, &options)
        .map_err(|e| CliError::verbatim(EXIT_BAD_INPUT, e.to_string().trim_end()))?;
    Ok(Runner::new(Arc::new(workflow), registry))
}

/// Follows a started (or resumed) run: its events to the sinks and the
/// trace, its output on stdout, its outcome as the exit code. Meanwhile
/// the outbox is delivered in the background (any run's pending events);
/// after the run, its own HTTP callbacks get the grace period.
///
/// The run's outcome is reported before the callbacks settle, so what
/// delivery says comes after it.
///
/// The sinks open before `start` starts the run (a sink that cannot open
/// fails the command before anything is recorded), and the outbox's sinks
/// are the run's durable event consumers: its end is committed only once
/// they have its last events.
pub(super) async fn drive(
    run_id: &str,
    start: impl FnOnce(Vec<EventAck>) -> RunHandle,
    runner: &Runner,
    plan: SinkPlan,
    delivery: Delivery,
) -> ExitCode {
    let offline = runner
        .workflow()
        .agents
        .values()
        .any(|a| a.provider.is_offline());
    let prints_output = plan.prints_output();
    let has_http = plan.http_targets().next().is_some();
    for target in plan.http_targets() {
        if let Some(secret) = &target.secret {
            delivery
                .deliverer
                .add_secret(run_id, &target.url, secret.clone());
        }
        // Header values are never stored: this process holds them.
        delivery
            .deliverer
            .add_headers(run_id, &target.url, target.headers.clone());
    }
    let outbox = OutboxSink {
        store: delivery.store.clone(),
        wake: delivery.deliverer.waker(),
        runtime: tokio::runtime::Handle::current(),
    };
    let opened = match plan.open(offline, Some(outbox)) {
        Ok(opened) => opened,
        Err(e) => return sinks::bad_sink(&e).report(),
    };
    let background = tokio::spawn({
        let deliverer = delivery.deliverer.clone();
        async move { deliverer.run(Until::Forever, None).await }
    });
    // The sinks listen before the run starts, so the run knows whom to
    // wait for; its events reach them through this channel.
    let (events, listened) = tokio::sync::mpsc::unbounded_channel();
    let dispatch = opened.spawn(Some(listened));
    let acks = dispatch.as_ref().map(Dispatch::acks).unwrap_or_default();
    let mut handle = start(acks);
    match handle.take_events() {
        Some(mut from_run) => {
            tokio::spawn(async move {
                while let Some(event) = from_run.recv().await {
                    if events.send(event).is_err() {
                        break;
                    }
                }
            });
        }
        None => drop(events),
    }
    let run_id = handle.run_id().to_owned();
    let interrupted = Arc::new(AtomicBool::new(false));
    let interrupt = on_ctrl_c(handle.canceller(), &run_id, interrupted.clone());
    let result = handle.wait().await;
    interrupt.abort();
    let interrupted = interrupted.load(Ordering::SeqCst);
    sinks::finish(dispatch).await;
    let code = match result {
        Err(RunError::Cancelled) if interrupted => {
            eprintln!("run {run_id} cancelled: interrupted");
            ExitCode::from(super::EXIT_INTERRUPTED)
        }
        result => outcome(result, prints_output, &run_id).unwrap_or_else(|e| e.report()),
    };
    if has_http {
        delivery.settle(&run_id).await;
    }
    background.abort();
    // Wait for the task to be gone before releasing its leases.
    let _ = background.await;
    delivery.deliverer.release().await;
    code
}

/// On the first Ctrl-C, cancels the run (it is recorded `cancelled`, the
/// sinks get `run.cancelled`, pending journal writes are committed) and
/// sets `interrupted`; on a second, exits at once.
fn on_ctrl_c(
    canceller: RunCanceller,
    run_id: &str,
    interrupted: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let run_id = run_id.to_owned();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        interrupted.store(true, Ordering::SeqCst);
        eprintln!("interrupted: cancelling run {run_id} (Ctrl-C again to quit at once)");
        canceller.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(super::EXIT_INTERRUPTED));
        }
    })
}

/// Prints the run's output, or that it waits for approval; the exit code.
/// `Err` is the run's failure.
fn outcome(
    result: Result<host::engine::RunOutput, RunError>,
    prints_output: bool,
    run_id: &str,
) -> Result<ExitCode, CliError> {
    match result {
        Ok(_) if prints_output => Ok(ExitCode::SUCCESS),
        Ok(out) => {
            // The output is the model's or a plugin's text: escaped, as
            // the sinks escape it.
            let mut stdout = Escaped::new(std::io::stdout().lock());
            match &out.output {
                Value::String(s) => writeln!(stdout, "{s}")?,
                other => writeln!(
                    stdout,
                    "{}",
                    serde_json::to_string_pretty(other).context("failed to encode output")?
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Paused { pending }) => {
            eprintln!("⏸ run {run_id} is waiting for approval:");
            for p in &pending {
                // Both come from the model.
                eprintln!(
                    "    call {} · tool {}",
                    escape_controls(&p.call_id),
                    escape_controls(&p.tool)
                );
            }
            eprintln!(
                "  decide with `host approve {run_id} CALL_ID` or `host reject {run_id} CALL_ID --reason TEXT`, then `host resume {run_id}`"
            );
            Ok(ExitCode::from(EXIT_WAITING))
        }
        // The spec asked for a session the caller may not use: refused
        // before the run was created.
        Err(e @ RunError::ForeignSession { .. }) => Err(CliError::bad_input(e.to_string())),
        Err(e) => Err(CliError::failed(format!("run {run_id} failed: {e}"))),
    }
}

fn input(args: &RunArgs, spec: &Spec) -> anyhow::Result<Value> {
    if let Some(text) = &args.input {
        return Ok(Value::String(text.clone()));
    }
    if let Some(json) = &args.input_json {
        return serde_json::from_str(json).context("--input-json is not valid JSON");
    }
    if let Some(path) = &args.input_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "json") {
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()));
        }
        return Ok(Value::String(text));
    }
    if !spec.run.input.is_null() {
        return Ok(spec.run.input.clone());
    }
    anyhow::bail!(
        "no input: give --input, --input-json or --input-file, or set run.input in the spec"
    )
}

/// How `host run` shows the run on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trace {
    /// `--quiet`: errors only.
    Quiet,
    /// One line per interesting event (not a terminal, or `--no-progress`).
    Plain,
    /// Live progress redrawn in place.
    Live { color: bool },
}

/// What the run's sinks write to stdout, which may share the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnStdout {
    Nothing,
    /// `stdout`, `stdout_verbose`: a readable account of the run.
    Lines,
    /// `jsonl:-`.
    Data,
}

impl Trace {
    /// Live on a terminal (not `TERM=dumb`) unless `--no-progress`. When stdout is the same
    /// screen and a sink writes there: nothing if it shows the run already
    /// (the same lines twice), plain lines otherwise (redraws would run
    /// over its lines).
    pub(super) fn choose(quiet: bool, no_progress: bool, on_stdout: OnStdout) -> Trace {
        let stdout_shared = on_stdout != OnStdout::Nothing && io::stdout().is_terminal();
        if quiet || (stdout_shared && on_stdout == OnStdout::Lines) {
            Trace::Quiet
        } else if no_progress
            || stdout_shared
            || !io::stderr().is_terminal()
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb")
        {
            Trace::Plain
        } else {
            Trace::Live {
                color: super::use_color(),
            }
        }
    }

    /// The sink that draws it, if any.
    pub(super) fn sink(self, options: SinkOptions) -> Option<Box<dyn Sink>> {
        match self {
            Trace::Quiet => None,
            Trace::Plain => Some(Box::new(LinesSink::new(io::stderr(), "trace", options))),
            Trace::Live { color } => Some(Box::new(Live::stderr(options, color))),
        }
    }
}

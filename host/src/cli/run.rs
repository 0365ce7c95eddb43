//! `host run`: load plugins, build the workflow, run it, print the result.
//!
//! The final output goes to stdout (pretty JSON when structured, plain text
//! otherwise) unless a sink already writes it there; the run's events go to
//! the sinks and to the trace on stderr (see `observe`).

use super::{EXIT_BAD_INPUT, EXIT_FAILED, GlobalArgs, observe, plugin_runtime};
use anyhow::Context;
use host::engine::build::{self, BuildOptions};
use host::engine::{RunRequest, Runner};
use host::plugin::Registry;
use host::spec::Spec;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
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
    /// stdout, stdout_verbose, jsonl:PATH, jsonl:- (stdout)
    #[arg(long = "callback", value_name = "SINK")]
    pub callbacks: Vec<String>,
    /// Plain trace lines on stderr, no live progress, even on a terminal
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let spec = match Spec::from_path(&args.spec) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let input = match input(&args, &spec) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let plan = match observe::Plan::new(&spec, &args.callbacks, args.quiet, args.no_progress) {
        Ok(plan) => plan,
        Err(e) => {
            observe::report(&e);
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let registry = Arc::new(Registry::new(plugin_runtime(global)?));
    let report = match registry
        .load_dir(&args.plugins, &build::load_options(&spec))
        .await
    {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    for e in &report.failed {
        eprintln!("warning: {e}");
    }
    let options = BuildOptions {
        offline: args.offline,
        stream: args.stream,
    };
    let workflow = match build::build(&spec, &registry, &options) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("{}", e.to_string().trim_end());
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let offline = workflow.agents.values().any(|a| a.provider.is_offline());
    let prints_output = plan.prints_output();
    let deltas = plan.deltas();
    let sinks = match plan.open(offline) {
        Ok(sinks) => sinks,
        Err(e) => {
            observe::report(&e);
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let runner = Runner::new(workflow, registry);
    let mut handle = runner.start(RunRequest {
        input,
        run_id: None,
        deltas,
        events: true,
        session: args
            .session
            .clone()
            .or_else(|| spec.run.session.as_ref().map(|s| s.id.clone())),
    });
    let dispatch = sinks.spawn(handle.take_events());
    let result = handle.wait().await;
    observe::finish(dispatch).await;
    match result {
        Ok(_) if prints_output => Ok(ExitCode::SUCCESS),
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
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
        Err(e) => {
            eprintln!("error: run failed: {e}");
            Ok(ExitCode::from(EXIT_FAILED))
        }
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

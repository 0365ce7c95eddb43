//! `host run`: load plugins, build the workflow, run it, print the result.
//!
//! The final output goes to stdout (pretty JSON when structured, plain text
//! otherwise); a readable trace of the run goes to stderr.

use super::{EXIT_BAD_INPUT, EXIT_FAILED, GlobalArgs, plugin_runtime};
use anyhow::Context;
use host::engine::build::{self, BuildOptions};
use host::engine::{RunRequest, Runner};
use host::events::{Event, EventType};
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
    /// No trace on stderr, only errors
    #[arg(long, short)]
    pub quiet: bool,
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
    let runner = Runner::new(workflow, registry);
    let mut handle = runner.start(RunRequest {
        input,
        run_id: None,
        deltas: false,
        events: true,
        session: args
            .session
            .clone()
            .or_else(|| spec.run.session.as_ref().map(|s| s.id.clone())),
    });
    let mut events = handle.take_events();
    let quiet = args.quiet;
    let printer = tokio::spawn(async move {
        if let Some(rx) = events.as_mut() {
            while let Some(event) = rx.recv().await {
                if !quiet {
                    let _ = print_event(&mut std::io::stderr().lock(), &event, offline);
                }
                if event.kind.is_terminal() {
                    break;
                }
            }
        }
    });
    let result = handle.wait().await;
    let _ = printer.await;
    match result {
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

/// One readable line per interesting event.
fn print_event(out: &mut impl Write, e: &Event, offline: bool) -> std::io::Result<()> {
    let step = e.step.as_deref().unwrap_or("");
    let branch = e
        .branch_index
        .map(|b| format!(" [{b}]"))
        .unwrap_or_default();
    match e.kind {
        EventType::RunStarted => writeln!(
            out,
            "run {} · workflow {}{}",
            e.run_id,
            e.workflow,
            if offline {
                " · offline (scripted model)"
            } else {
                ""
            }
        ),
        EventType::StageStarted => {
            let n = e.data["steps"].as_u64().unwrap_or(0);
            writeln!(
                out,
                "▸ stage {} ({}, {n} step{})",
                e.stage.as_deref().unwrap_or(""),
                e.data["mode"].as_str().unwrap_or(""),
                if n == 1 { "" } else { "s" }
            )
        }
        EventType::StepStarted => writeln!(out, "  · {step}{branch} started"),
        EventType::StepSkipped => writeln!(out, "  - {step}{branch} skipped (guard)"),
        EventType::ToolCalled => writeln!(
            out,
            "    tool {}({})",
            e.data["tool"].as_str().unwrap_or(""),
            e.data["arguments"].as_str().unwrap_or("")
        ),
        EventType::ToolResult => writeln!(
            out,
            "    tool {} → {}",
            e.data["tool"].as_str().unwrap_or(""),
            truncate(e.data["output"].as_str().unwrap_or(""), 120)
        ),
        EventType::Handoff => writeln!(
            out,
            "    handoff {} → {}",
            e.data["from"].as_str().unwrap_or(""),
            e.data["to"].as_str().unwrap_or("")
        ),
        EventType::GuardrailTripped => writeln!(
            out,
            "    guardrail {} tripped ({}): {}",
            e.data["guardrail"].as_str().unwrap_or(""),
            e.data["phase"].as_str().unwrap_or(""),
            e.data["message"].as_str().unwrap_or("")
        ),
        EventType::StepCompleted => writeln!(
            out,
            "  ✓ {step}{branch} ({} turn{}, {} ms)",
            e.data["turns"],
            if e.data["turns"].as_u64() == Some(1) {
                ""
            } else {
                "s"
            },
            e.data["elapsed_ms"]
        ),
        EventType::StepFailed => writeln!(
            out,
            "  ✗ {step}{branch}: {}",
            e.data["error"].as_str().unwrap_or("")
        ),
        EventType::RunCompleted => {
            let (i, o) = tokens(&e.data["usage"]);
            writeln!(
                out,
                "✓ completed in {} ms · {i} input / {o} output tokens",
                e.data["elapsed_ms"]
            )
        }
        EventType::RunFailed => {
            writeln!(out, "✗ failed: {}", e.data["error"].as_str().unwrap_or(""))
        }
        EventType::RunCancelled => writeln!(out, "✗ cancelled"),
        _ => Ok(()),
    }
}

fn tokens(usage: &Value) -> (u64, u64) {
    usage.as_object().map_or((0, 0), |m| {
        m.values().fold((0, 0), |(i, o), u| {
            (
                i + u["input_tokens"].as_u64().unwrap_or(0),
                o + u["output_tokens"].as_u64().unwrap_or(0),
            )
        })
    })
}

fn truncate(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

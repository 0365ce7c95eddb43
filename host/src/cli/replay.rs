//! `host replay`: a recorded run executed again with the current plugins,
//! its model answers served from the journal until the replay diverges;
//! the report of what changed, readable or as JSON.

use super::durable::{OPERATOR, Original, clip, no_such_run, rebuild};
use super::error::CliError;
use super::{GlobalArgs, open_store};
use host::engine::{ReplayAfter, ReplayReport};
use host::journal::AfterDivergence;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The recorded run
    pub run_id: String,
    /// The plugins directory [default: the one the run started with]
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// From the first divergence on, call the run's models (paid) instead
    /// of stopping there
    #[arg(long, conflicts_with = "offline")]
    pub live: bool,
    /// From the first divergence on, let the spec's scripted provider
    /// answer instead of stopping there
    #[arg(long)]
    pub offline: bool,
    /// With --live or --offline: the spec file the run started from, when
    /// its stored spec lacks secret values (an inline API key, header
    /// values) [default: the path it was run from]. Its SHA-256 must be the
    /// run's
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn replay(global: &GlobalArgs, args: ReplayArgs) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    let Some(record) = store.get_run(OPERATOR, &args.run_id).await? else {
        return Err(no_such_run(&args.run_id));
    };
    let journal = store.journal(OPERATOR, &args.run_id).await?;
    let calls = args.live || args.offline;
    // A replay that may call a model needs the secret values a stored spec
    // lacks (read from the original file, or refused); one that stops at its
    // divergence calls nothing and does not.
    let original = calls.then_some(Original {
        given: args.spec.as_deref(),
        digest: &record.spec_digest,
    });
    let (_, runner) = rebuild(
        global,
        &args.run_id,
        &journal,
        args.plugins.as_deref(),
        original,
        args.offline,
    )
    .await?;
    let after = if calls {
        AfterDivergence::CallModel
    } else {
        AfterDivergence::Stop
    };
    let report = runner
        .replay_report(&record, journal, after)
        .await
        .map_err(|e| CliError::failed(format!("replay of run {} failed: {e}", args.run_id)))?;
    if args.json {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        if let Some(output) = &report.output {
            writeln!(std::io::stdout().lock(), "{}", display(output))?;
        }
        eprint!("{}", readable(&report, args.offline));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report for people (stderr), one finding a line.
pub(super) fn readable(report: &ReplayReport, offline: bool) -> String {
    let mut out = String::new();
    let calls = &report.model_calls;
    let paid = match (report.after_divergence, calls.calls) {
        (_, 0) => "with zero model calls".to_owned(),
        (ReplayAfter::CallModel, n) => format!(
            "with {n} {}model call(s) after the divergence ({} input, {} output tokens)",
            if offline { "scripted " } else { "" },
            calls.input_tokens,
            calls.output_tokens
        ),
        (ReplayAfter::Stop, n) => format!("with {n} model call(s)"),
    };
    let output = match report.output_changed {
        Some(true) => "CHANGED",
        Some(false) => "unchanged",
        None => "UNKNOWN",
    };
    out.push_str(&format!(
        "replayed run {} {paid}: final output {output}\n",
        report.run_id
    ));
    if let Some(d) = &report.divergence {
        out.push_str(&format!("{}\n", d.message));
        let steps: Vec<String> = report
            .diverged_steps
            .iter()
            .map(|s| format!("{}/{} ({})", s.stage, s.step_index, s.step))
            .collect();
        out.push_str(&format!("  diverged steps: {}\n", steps.join(", ")));
    }
    if report.changed_steps.is_empty() {
        out.push_str("no step output changed\n");
    }
    for c in &report.changed_steps {
        out.push_str(&format!(
            "  changed step: {}/{} ({})\n    before: {}\n    after:  {}\n",
            c.stage,
            c.step_index,
            c.agent,
            clip(&c.before.to_string()),
            clip(&c.after.to_string()),
        ));
    }
    if report.changed_hooks.is_empty() {
        out.push_str("no hook output changed\n");
    }
    for h in &report.changed_hooks {
        let at = match h.step_index {
            Some(i) => format!("{}/{i}", h.stage),
            None => h.stage.clone(),
        };
        out.push_str(&format!(
            "  changed {}: {at} ({})\n    before: {}\n    after:  {}\n",
            serde_json::to_value(h.kind)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default(),
            h.plugin,
            clip(&h.before.to_string()),
            clip(&h.after.to_string()),
        ));
    }
    out
}

pub(super) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

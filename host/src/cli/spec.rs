//! `host validate` and `host schema`.

use super::error::CliError;
use super::{EXIT_BAD_INPUT, GlobalArgs, plugin_runtime};
use anyhow::Context;
use host::plugin::{LoadOptions, Registry};
use host::spec::{PluginCatalog, Spec, SpecErrors};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// The spec file (JSON; the native spec or the Go runner's request shape)
    pub spec: PathBuf,
    /// The plugins directory (every top-level *.wasm is a plugin)
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    pub plugins: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// Print the schema of the Go runner's request shape instead
    #[arg(long)]
    pub go: bool,
}

/// Parses the spec, loads the plugins it may reference and reports every
/// problem; exit 2 when there is any.
pub(super) async fn validate(
    global: &GlobalArgs,
    args: ValidateArgs,
) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(&args.spec)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", args.spec.display())))?;
    let base_dir = Spec::base_dir_of(&args.spec);
    let spec = Spec::from_json_str(&text, base_dir)
        .map_err(|errors| CliError::verbatim(EXIT_BAD_INPUT, errors.to_string()))?;
    // Plugins are loaded (compiled, or taken from the cache) only when the
    // spec refers to some.
    let uses_plugins = !spec.plugin_uses().is_empty() || !spec.plugins.is_empty();
    let registry;
    let mut errors = Vec::new();
    let catalog = if uses_plugins {
        let runtime = plugin_runtime(global)?;
        if let Err(over) = runtime.policy().check_spec(&spec) {
            errors.extend(over);
        }
        registry = Registry::new(runtime);
        // Only the plugins the spec names, as `host run` loads them.
        let report = registry
            .load_for(&args.plugins, &spec, &LoadOptions::default())
            .await
            .map_err(|e| {
                CliError::bad_input(e.to_string())
                    .with_hint(Some("pass the plugins directory with --plugins DIR"))
            })?;
        for e in &report.failed {
            eprintln!("warning: {e}");
        }
        Some(&registry)
    } else {
        None
    };
    if let Err(more) = spec.validate(catalog.map(|r| r as &dyn PluginCatalog)) {
        errors.extend(more);
    }
    if !errors.is_empty() {
        return Err(CliError::verbatim(
            EXIT_BAD_INPUT,
            SpecErrors::new(errors).to_string(),
        ));
    }
    let stages = spec.workflow.stages.len();
    let steps = spec.step_count();
    let agents = spec.agents.len();
    println!(
        "ok: {} (workflow {}: {stages} {}, {steps} {}, {agents} {})",
        args.spec.display(),
        spec.workflow.key,
        plural(stages, "stage"),
        plural(steps, "step"),
        plural(agents, "agent"),
    );
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// Prints the spec's JSON Schema.
pub(super) fn schema(args: SchemaArgs) -> Result<ExitCode, CliError> {
    let schema = if args.go {
        Spec::go_request_schema()
    } else {
        Spec::json_schema()
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).context("failed to encode JSON")?
    );
    Ok(ExitCode::SUCCESS)
}

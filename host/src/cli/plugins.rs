//! `host plugins list` and `host plugins check`.

use super::error::CliError;
use super::{GlobalArgs, plugin_runtime};
use anyhow::Context;
use host::plugin::{Limits, LoadOptions, Plugin, Preset, Registry};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PluginsCommand {
    /// List the plugins of a directory: name, kinds, entries, WIT version, size, digest;
    /// then the host's built-in guardrails that no plugin of the folder replaces
    List {
        /// The plugins directory (every top-level *.wasm is a plugin)
        #[arg(long, value_name = "DIR", default_value = "plugins")]
        plugins: PathBuf,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Validate one plugin component and show what it offers
    Check {
        /// The component file
        file: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Deadline of each call the check makes into the plugin (its
        /// `describe`), in milliseconds; default the host's 1000
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
        timeout_ms: Option<u64>,
    },
}

pub(super) async fn run(global: &GlobalArgs, cmd: PluginsCommand) -> Result<ExitCode, CliError> {
    let runtime = plugin_runtime(global)?;
    let registry = Registry::new(runtime);
    match cmd {
        PluginsCommand::List { plugins, json } => {
            let report = registry
                .load_dir(&plugins, &LoadOptions::default())
                .await
                .map_err(|e| CliError::bad_input(e.to_string()))?;
            let loaded = registry.plugins();
            if json {
                let out = json!({
                    "plugins": loaded.iter().map(|p| plugin_json(p)).collect::<Vec<_>>(),
                    "builtin": builtins(&registry).map(builtin_json).collect::<Vec<_>>(),
                    "errors": report.failed.iter().map(|e| json!({
                        "file": e.path().map(|p| p.display().to_string()),
                        "error": e.to_string(),
                    })).collect::<Vec<_>>(),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out).context("failed to encode JSON")?
                );
            } else {
                print!(
                    "{}",
                    table(&loaded, &builtins(&registry).collect::<Vec<_>>())
                );
            }
            // Every plugin that failed, after the table of those that loaded.
            let mut code = ExitCode::SUCCESS;
            for e in &report.failed {
                code = CliError::bad_input(e.to_string()).report();
            }
            Ok(code)
        }
        PluginsCommand::Check {
            file,
            json,
            timeout_ms,
        } => {
            let limits = Limits {
                timeout: timeout_ms.map_or(Limits::DEFAULT_TIMEOUT, Duration::from_millis),
                ..Limits::default()
            };
            match registry.load_file(&file, limits).await {
                Ok(plugin) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&plugin_json(&plugin))
                                .context("failed to encode JSON")?
                        );
                    } else {
                        println!(
                            "ok: {} is plugin `{}` (WIT {}, {}, sha256 {})",
                            file.display(),
                            plugin.name(),
                            plugin.wit_version(),
                            human_size(plugin.size()),
                            &plugin.digest()[..12]
                        );
                        for e in plugin.entries() {
                            println!("  {:<13} {:<20} {}", e.kind.as_str(), e.name, e.description);
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(CliError::bad_input(e.to_string())),
            }
        }
    }
}

fn plugin_json(p: &Plugin) -> Value {
    json!({
        "name": p.name(),
        "path": p.path().display().to_string(),
        "kinds": p.kinds(),
        "entries": p.entries(),
        "tools": p.tools(),
        "wit_version": p.wit_version(),
        "size": p.size(),
        "sha256": p.digest(),
        "cache": format!("{:?}", p.cache_outcome()).to_lowercase(),
        "load_ms": p.load_time().as_secs_f64() * 1e3,
    })
}

/// The built-in guardrails no loaded plugin replaces.
fn builtins(registry: &Registry) -> impl Iterator<Item = Preset> + '_ {
    Preset::all().filter(|p| registry.get(p.name()).is_none())
}

fn builtin_json(p: Preset) -> Value {
    json!({
        "name": p.name(),
        "builtin": true,
        "kinds": ["guardrail"],
        "entries": [{"name": p.name(), "kind": "guardrail", "description": p.description()}],
        "sha256": p.digest(),
    })
}

fn table(plugins: &[std::sync::Arc<Plugin>], builtins: &[Preset]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "KINDS".into(),
        "ENTRIES".into(),
        "WIT".into(),
        "SIZE".into(),
        "SHA256".into(),
    ]];
    for p in plugins {
        let kinds: Vec<&str> = p.kinds().iter().map(|k| k.as_str()).collect();
        let entries: Vec<&str> = p.entries().iter().map(|e| e.name.as_str()).collect();
        rows.push([
            p.name().to_string(),
            kinds.join(","),
            entries.join(","),
            p.wit_version().to_string(),
            human_size(p.size()),
            p.digest()[..12].to_string(),
        ]);
    }
    for p in builtins {
        rows.push([
            p.name().to_string(),
            "guardrail".into(),
            p.name().to_string(),
            "built-in".into(),
            "-".into(),
            p.digest()[..12].to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KiB", b.div_ceil(1 << 10)),
        b => format!("{b} B"),
    }
}

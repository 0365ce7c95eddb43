//! `host plugins list`, `check`, `new` and `build`.

mod build;
mod call;
mod new;

pub(crate) use build::{Lang, build as build_plugin, folders as plugin_folders, sdk_root};

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
        /// Also make the call this file describes (a scaffold's
        /// test-input.json) and compare the answer with its `expect`; exit
        /// 1 when it differs
        #[arg(long, value_name = "CALL.json")]
        call: Option<PathBuf>,
    },
    /// Scaffold a plugin folder that builds and passes `check` as it is
    New {
        /// The plugin's name (its folder and file stem)
        name: String,
        /// Its language
        #[arg(long, value_enum)]
        lang: Lang,
        /// What it is
        #[arg(long, value_enum)]
        kind: new::ScaffoldKind,
        /// The plugins directory to create it in
        #[arg(long, value_name = "DIR", default_value = "plugins")]
        plugins: PathBuf,
        /// The folder holding guest-sdk/ and wit/ [default: found above
        /// the plugins directory or the working directory]
        #[arg(long, value_name = "DIR", env = "HOST_SDK_DIR")]
        sdk: Option<PathBuf>,
    },
    /// Build plugin folders from source into DIR/NAME.wasm (Rust, JavaScript,
    /// Python, Go, C, or the folder's own build.sh)
    Build {
        /// The plugins to build [default: every plugin folder]
        names: Vec<String>,
        /// The plugins directory
        #[arg(long, value_name = "DIR", default_value = "plugins")]
        plugins: PathBuf,
        /// The folder holding guest-sdk/ and wit/ [default: found above
        /// the plugins directory or the working directory]
        #[arg(long, value_name = "DIR", env = "HOST_SDK_DIR")]
        sdk: Option<PathBuf>,
    },
}

pub(super) async fn run(global: &GlobalArgs, cmd: PluginsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        PluginsCommand::New {
            name,
            lang,
            kind,
            plugins,
            sdk,
        } => new_command(&name, lang, kind, &plugins, sdk.as_deref()),
        PluginsCommand::Build {
            names,
            plugins,
            sdk,
        } => build_command(names, &plugins, sdk.as_deref()),
        cmd => inspect(global, cmd).await,
    }
}

fn new_command(
    name: &str,
    lang: Lang,
    kind: new::ScaffoldKind,
    plugins: &std::path::Path,
    sdk: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let sdk = sdk_root(sdk, plugins).map_err(CliError::bad_input)?;
    let files = new::scaffold(&sdk, plugins, name, lang, kind).map_err(CliError::bad_input)?;
    println!("created {} ({lang} {kind}):", plugins.join(name).display());
    for f in files {
        println!("  {}", f.display());
    }
    let p = plugins.display();
    println!(
        "next: host plugins build {name} --plugins {p} && \
         host plugins check {p}/{name}.wasm --call {p}/{name}/test-input.json"
    );
    Ok(ExitCode::SUCCESS)
}

/// `list` and `check`: components loaded by the host.
async fn inspect(global: &GlobalArgs, cmd: PluginsCommand) -> Result<ExitCode, CliError> {
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
        PluginsCommand::New { .. } | PluginsCommand::Build { .. } => {
            unreachable!("handled by `run`")
        }
        PluginsCommand::Check {
            file,
            json,
            timeout_ms,
            call,
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
                    match call {
                        Some(path) => check_call(&registry, &plugin, &path).await,
                        None => Ok(ExitCode::SUCCESS),
                    }
                }
                Err(e) => Err(CliError::bad_input(e.to_string())),
            }
        }
    }
}

/// `check --call FILE`: the call made, its answer compared.
async fn check_call(
    registry: &Registry,
    plugin: &Plugin,
    path: &std::path::Path,
) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let request: call::Call = serde_json::from_str(&text)
        .map_err(|e| CliError::bad_input(format!("{}: {e}", path.display())))?;
    let expect = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("expect").cloned())
        .unwrap_or(Value::Null);
    let answer = call::call(registry.runtime(), plugin, request)
        .await
        .map_err(|e| CliError::failed(format!("call from {} failed: {e}", path.display())))?;
    if answer.matches {
        println!("call {}: ok, {}", path.display(), answer.got);
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::failed(format!(
            "call {}: expected {expect}, got {}",
            path.display(),
            answer.got
        )))
    }
}

/// `host plugins build`: each folder in turn; every failure is reported,
/// and the exit code is 1 when one failed.
fn build_command(
    names: Vec<String>,
    plugins: &std::path::Path,
    sdk: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let sdk = sdk_root(sdk, plugins).map_err(CliError::bad_input)?;
    let names = if names.is_empty() {
        plugin_folders(plugins)
            .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", plugins.display())))?
    } else {
        names
    };
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match build_plugin(&sdk, plugins, &name) {
            Ok(built) => println!(
                "built {} ({}, {}, {:.1} s)",
                built.output.display(),
                human_size(built.bytes),
                built.recipe,
                built.took.as_secs_f64()
            ),
            Err(e) => code = CliError::failed(e.to_string()).report(),
        }
    }
    Ok(code)
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

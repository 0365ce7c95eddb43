//! `host dev`: the edit → replay loop of a plugin author. Watches the
//! plugin folders, rebuilds the plugin whose sources changed, and replays a
//! recorded run with the new build — model and tool answers served from the
//! run's journal, so no model is ever called — printing the new output and
//! which steps and hooks changed. A failed build is shown and the previous
//! `.wasm` stays in place.

use super::durable::{OPERATOR, no_such_run, rebuild};
use super::error::CliError;
use super::plugins::{build_plugin, plugin_folders, sdk_root};
use super::replay::{display, readable};
use super::run::read_spec;
use super::{GlobalArgs, open_store};
use host::journal::AfterDivergence;
use host::store::{RunFilter, RunRecord, Store};
use notify::RecursiveMode;
use notify::event::{EventKind, ModifyKind};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// The workflow spec whose recorded run is replayed
    pub spec: PathBuf,
    /// The plugins directory: its plugin folders are watched and built,
    /// and the replay loads its components
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    pub plugins: PathBuf,
    /// The recorded run to replay [default: the last run of this spec]
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// The folder holding guest-sdk/ and wit/ [default: found above the
    /// plugins directory or the working directory]
    #[arg(long, value_name = "DIR", env = "HOST_SDK_DIR")]
    pub sdk: Option<PathBuf>,
}

/// How long the watcher waits for a burst of file events (an editor's
/// save, a `git checkout`) to settle.
const DEBOUNCE: Duration = Duration::from_millis(150);

pub(super) async fn dev(global: &GlobalArgs, args: DevArgs) -> Result<ExitCode, CliError> {
    let sdk = sdk_root(args.sdk.as_deref(), &args.plugins).map_err(CliError::bad_input)?;
    let store = open_store(global)?;
    let record = recorded_run(&*store, &args).await?;
    let folders = plugin_folders(&args.plugins)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", args.plugins.display())))?;
    println!(
        "host dev: replaying run {} ({}) with the plugins of {}; watching {} plugin folder(s): {}",
        record.run_id,
        record.workflow_key,
        args.plugins.display(),
        folders.len(),
        folders.join(", ")
    );
    replay(global, &*store, &record, &args.plugins, Instant::now()).await?;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BTreeSet<String>>();
    let plugins_dir = std::path::absolute(&args.plugins).unwrap_or_else(|_| args.plugins.clone());
    let root = plugins_dir.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        // Only what changes a source: reading one (the build does) raises
        // access events, which would rebuild forever.
        let changed: BTreeSet<String> = events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(
                            ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any
                        )
                )
            })
            .flat_map(|e| e.paths.iter())
            .filter_map(|p| plugin_of(&root, p))
            .collect();
        if !changed.is_empty() {
            let _ = tx.send(changed);
        }
    })
    .map_err(|e| CliError::failed(format!("cannot start the file watcher: {e}")))?;
    // The folder, not its files: editors replace files on save.
    debouncer
        .watch(&plugins_dir, RecursiveMode::Recursive)
        .map_err(|e| CliError::failed(format!("cannot watch {}: {e}", plugins_dir.display())))?;
    println!("watching for changes (Ctrl-C stops)");

    loop {
        let changed = tokio::select! {
            changed = rx.recv() => match changed {
                Some(changed) => changed,
                None => return Ok(ExitCode::SUCCESS),
            },
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        // Events that came in while the last build ran belong to this round.
        let mut changed = changed;
        while let Ok(more) = rx.try_recv() {
            changed.extend(more);
        }
        let mut built_any = false;
        for name in changed {
            if !args.plugins.join(&name).is_dir() {
                continue;
            }
            println!("change in {name}: building");
            let (sdk, plugins) = (sdk.clone(), args.plugins.clone());
            let outcome = tokio::task::spawn_blocking(move || build_plugin(&sdk, &plugins, &name))
                .await
                .map_err(|e| CliError::failed(format!("the build task failed: {e}")))?;
            match outcome {
                Ok(built) => {
                    println!(
                        "built {} ({} bytes, {}, {:.1} s)",
                        built.output.display(),
                        built.bytes,
                        built.recipe,
                        built.took.as_secs_f64()
                    );
                    built_any = true;
                }
                Err(e) => println!("{e}\nthe previous build stays in place"),
            }
        }
        if built_any {
            replay(global, &*store, &record, &args.plugins, Instant::now()).await?;
        }
        std::io::stdout().flush()?;
    }
}

/// `--run`, or the newest run started from this spec (same SHA-256).
async fn recorded_run(store: &dyn Store, args: &DevArgs) -> Result<RunRecord, CliError> {
    if let Some(id) = &args.run {
        return store
            .get_run(OPERATOR, id)
            .await?
            .ok_or_else(|| no_such_run(id));
    }
    let (_, _, digest) = read_spec(&args.spec).map_err(CliError::bad_input)?;
    let runs = store.list_runs(OPERATOR, RunFilter::default()).await?;
    runs.into_iter()
        .find(|r| r.spec_digest == digest)
        .ok_or_else(|| {
            CliError::bad_input(format!(
                "no recorded run of {} (with its current contents) in the run database",
                args.spec.display()
            ))
            .with_hint(Some(
                "record one with `host run SPEC`, or name one with --run RUN_ID",
            ))
        })
}

/// The plugin folder a changed path belongs to: the first component under
/// the plugins directory, when the path is inside that folder and not in
/// its build output (`target/`, `node_modules/`) or a hidden file.
fn plugin_of(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (name, inside) = parts.split_first()?;
    if inside.is_empty() || name.starts_with('.') || *name == "node_modules" {
        return None;
    }
    if inside
        .iter()
        .any(|p| p.starts_with('.') || *p == "target" || *p == "node_modules")
    {
        return None;
    }
    Some((*name).to_owned())
}

/// One replay of the recorded run with the plugins as they are now: its
/// output and what changed, and how long it took since `since`.
async fn replay(
    global: &GlobalArgs,
    store: &dyn Store,
    record: &RunRecord,
    plugins: &Path,
    since: Instant,
) -> Result<(), CliError> {
    let journal = store.journal(OPERATOR, &record.run_id).await?;
    let report = match rebuild(global, &record.run_id, &journal, Some(plugins), None, false).await {
        Ok((_, runner)) => runner
            .replay_report(record, journal, AfterDivergence::Stop)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    match report {
        Ok(report) => {
            writeln!(out, "--- replay of run {} ---", record.run_id)?;
            match &report.output {
                Some(output) => writeln!(out, "output: {}", display(output))?,
                None => writeln!(out, "output: (none)")?,
            }
            write!(out, "{}", readable(&report, false))?;
            writeln!(out, "replayed in {} ms", since.elapsed().as_millis())?;
        }
        Err(e) => writeln!(out, "replay of run {} failed: {e}", record.run_id)?,
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::plugin_of;
    use std::path::Path;

    #[test]
    fn changes_map_to_their_plugin_folder() {
        let root = Path::new("/p");
        let of = |p: &str| plugin_of(root, Path::new(p));
        assert_eq!(of("/p/reducer/src/lib.rs").as_deref(), Some("reducer"));
        assert_eq!(of("/p/guard/guard.c").as_deref(), Some("guard"));
        assert_eq!(of("/p/guard.wasm"), None);
        assert_eq!(of("/p/.guard.wasm.building"), None);
        assert_eq!(of("/p/reducer/target/debug/x"), None);
        assert_eq!(of("/p/node_modules/x/y.js"), None);
        assert_eq!(of("/p/js/.swp"), None);
        assert_eq!(of("/elsewhere/x/y"), None);
    }
}

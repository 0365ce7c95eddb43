//! The file watcher: changed plugins and workflows are swapped in while the
//! server runs. It watches the folders, not the files (editors and `cp` +
//! `mv` replace a file's inode, and a watch on the old one goes quiet), and
//! debounces events, so a file being written is loaded once it has been
//! still for a moment. A file that still fails to load (half-written,
//! corrupt) leaves the build that served before serving.

use super::catalog::{Catalog, is_workflow_file, plugin_name};
use super::error::ServerError;
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a file must be still before it is loaded.
pub(super) const DEBOUNCE: Duration = Duration::from_millis(100);

/// Watches while alive.
pub(super) struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl Watcher {
    pub(super) fn start(catalog: Arc<Catalog>) -> Result<Watcher, ServerError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<DebounceEventResult>();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result| {
            let _ = tx.send(result);
        })
        .map_err(|e| ServerError::Watch {
            path: String::new(),
            reason: e.to_string(),
        })?;
        for dir in [catalog.plugins_dir(), catalog.workflows_dir()] {
            if dir.exists() {
                debouncer
                    .watch(dir, RecursiveMode::NonRecursive)
                    .map_err(|e| ServerError::Watch {
                        path: dir.display().to_string(),
                        reason: e.to_string(),
                    })?;
            }
        }
        tokio::spawn(async move {
            while let Some(result) = rx.recv().await {
                let events = match result {
                    Ok(events) => events,
                    Err(errors) => {
                        for e in errors {
                            tracing::warn!(error = %e, "file watcher");
                        }
                        continue;
                    }
                };
                // Each changed file once, plugins before workflows (a new
                // workflow may need a new plugin).
                let paths: BTreeSet<PathBuf> = events
                    .iter()
                    .flat_map(|e| e.paths.iter().cloned())
                    .collect();
                let mut plugins_changed = false;
                for path in paths.iter().filter(|p| plugin_name(p).is_some()) {
                    if path.parent() == Some(catalog.plugins_dir()) {
                        catalog.reload_plugin(path).await;
                        plugins_changed = true;
                    }
                }
                // A workflow that did not load may need the plugin that
                // just arrived.
                if plugins_changed {
                    for problem in catalog.problems() {
                        if !paths.contains(&problem.file) {
                            catalog.reload_workflow(&problem.file).await;
                        }
                    }
                }
                for path in paths.iter().filter(|p| is_workflow_file(p)) {
                    if path.parent() == Some(catalog.workflows_dir()) {
                        catalog.reload_workflow(path).await;
                    }
                }
            }
        });
        Ok(Watcher {
            _debouncer: debouncer,
        })
    }
}

//! What the server serves: its plugins (one shared [`Registry`]) and its
//! registered workflows (every `*.json` of the workflows folder, by key),
//! each swapped in atomically when its file changes and kept as it was when
//! the new file does not load.

use super::lock;
use super::metrics::Metrics;
use crate::engine::Runner;
use crate::events::data::{PluginReloadFailed, PluginReloaded};
use crate::events::{Emitter, Event, Scope as EventScope};
use crate::plan::{self, CompileOptions};
use crate::plugin::{Kind, LoadOptions, Plugin, Registry};
use crate::spec::{Spec, SpecErrors};
use crate::store::Store;
use crate::util::now_ms;
use arc_swap::ArcSwap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

/// A registered workflow.
pub struct Registered {
    pub key: String,
    pub name: String,
    pub file: PathBuf,
    pub runner: Runner,
    /// `sha256:` of the file's bytes, recorded with each run.
    pub spec_digest: String,
    pub loaded_at_ms: u64,
}

/// A workflow file that does not load: why, at which JSON paths.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowProblem {
    pub file: PathBuf,
    pub errors: Vec<(String, String)>,
    pub at_ms: u64,
}

/// A plugin's state as the server saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginState {
    pub loaded_at_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<u64>,
}

/// Plugins and workflows, swappable while runs use them.
pub struct Catalog {
    registry: Arc<Registry>,
    plugins_dir: PathBuf,
    workflows_dir: PathBuf,
    compile: CompileOptions,
    load: LoadOptions,
    workflows: ArcSwap<BTreeMap<String, Arc<Registered>>>,
    /// Workflow files that failed to load, by file.
    problems: Mutex<BTreeMap<PathBuf, WorkflowProblem>>,
    plugin_states: Mutex<BTreeMap<String, PluginState>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    notices: Emitter,
    notice_bus: broadcast::Sender<Arc<Event>>,
}

impl Catalog {
    pub fn new(
        registry: Arc<Registry>,
        plugins_dir: PathBuf,
        workflows_dir: PathBuf,
        compile: CompileOptions,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Arc<Catalog> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let (bus, _) = broadcast::channel(256);
        let catalog = Arc::new(Catalog {
            registry,
            plugins_dir,
            workflows_dir,
            compile,
            load: LoadOptions::default(),
            workflows: ArcSwap::from_pointee(BTreeMap::new()),
            problems: Mutex::new(BTreeMap::new()),
            plugin_states: Mutex::new(BTreeMap::new()),
            store,
            metrics,
            notices: Emitter::new("", "", Some(tx), false),
            notice_bus: bus.clone(),
        });
        // Numbered by the emitter, fanned out to whoever listens.
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let _ = bus.send(Arc::new(event));
            }
        });
        catalog
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn plugins_dir(&self) -> &Path {
        &self.plugins_dir
    }

    pub fn workflows_dir(&self) -> &Path {
        &self.workflows_dir
    }

    /// `plugin.reloaded` and `plugin.reload_failed`, live.
    pub fn notices(&self) -> broadcast::Receiver<Arc<Event>> {
        self.notice_bus.subscribe()
    }

    pub fn workflow(&self, key: &str) -> Option<Arc<Registered>> {
        self.workflows.load().get(key).cloned()
    }

    pub fn workflows(&self) -> Vec<Arc<Registered>> {
        self.workflows.load().values().cloned().collect()
    }

    pub fn problems(&self) -> Vec<WorkflowProblem> {
        lock(&self.problems).values().cloned().collect()
    }

    pub fn plugin_state(&self, name: &str) -> PluginState {
        lock(&self.plugin_states)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Plugins whose last reload failed and that have no build serving.
    pub fn failed_plugins(&self) -> Vec<(String, PluginState)> {
        let states = lock(&self.plugin_states);
        states
            .iter()
            .filter(|(name, s)| s.last_error.is_some() && self.registry.get(name).is_none())
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }

    /// Loads every plugin, then every workflow. A bad file is reported and
    /// left out; the rest serve.
    pub async fn load_all(&self) -> Result<(), super::ServerError> {
        if self.plugins_dir.exists() {
            let report = self
                .registry
                .load_dir(&self.plugins_dir, &self.load)
                .await?;
            let now = now_ms();
            let mut states = lock(&self.plugin_states);
            for p in &report.loaded {
                states.insert(
                    p.name().to_owned(),
                    PluginState {
                        loaded_at_ms: Some(now),
                        ..PluginState::default()
                    },
                );
            }
            for e in &report.failed {
                tracing::warn!(error = %e, "plugin not loaded");
                if let Some(name) = e.path().and_then(plugin_name) {
                    states.insert(
                        name,
                        PluginState {
                            last_error: Some(e.to_string()),
                            last_error_at_ms: Some(now),
                            ..PluginState::default()
                        },
                    );
                }
            }
        }
        let read = std::fs::read_dir(&self.workflows_dir).map_err(|source| {
            super::ServerError::Workflows {
                path: self.workflows_dir.display().to_string(),
                source,
            }
        })?;
        let mut files: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_workflow_file(p))
            .collect();
        files.sort();
        for file in files {
            self.reload_workflow(&file).await;
        }
        Ok(())
    }

    /// A plugin file changed (or went away): load the new build off the
    /// request path and swap it in, or keep the old one and say why.
    pub async fn reload_plugin(&self, path: &Path) {
        let Some(name) = plugin_name(path) else {
            return;
        };
        let current = self.registry.get(&name);
        if !path.exists() {
            if let Some(old) = self.registry.remove(&name) {
                tracing::info!(plugin = %name, "plugin removed: no longer offered");
                self.metrics.reload("plugin", "removed");
                lock(&self.plugin_states).remove(&name);
                self.notices.emit(
                    &EventScope::default(),
                    PluginReloaded {
                        new_digest: None,
                        old_digest: old.digest().to_owned(),
                        plugin: name,
                        reason: "its file was removed".into(),
                    },
                );
            }
            return;
        }
        let limits = current
            .as_ref()
            .map(|p| p.limits())
            .unwrap_or_else(|| self.load.limits_for(&name));
        match Plugin::load(self.registry.runtime(), path, limits).await {
            Ok(plugin) => {
                if current
                    .as_ref()
                    .is_some_and(|c| c.digest() == plugin.digest())
                {
                    return;
                }
                let plugin = Arc::new(plugin);
                let digest = plugin.digest().to_owned();
                self.registry.insert(plugin);
                tracing::info!(plugin = %name, digest = %digest, "plugin reloaded");
                self.metrics.reload("plugin", "ok");
                lock(&self.plugin_states).insert(
                    name.clone(),
                    PluginState {
                        loaded_at_ms: Some(now_ms()),
                        ..PluginState::default()
                    },
                );
                self.notices.emit(
                    &EventScope::default(),
                    PluginReloaded {
                        new_digest: Some(digest),
                        old_digest: current.map(|c| c.digest().to_owned()).unwrap_or_default(),
                        plugin: name,
                        reason: "its file changed".into(),
                    },
                );
            }
            Err(e) => {
                tracing::warn!(plugin = %name, error = %e, "plugin did not reload; the previous build keeps serving");
                self.metrics.reload("plugin", "failed");
                {
                    let mut states = lock(&self.plugin_states);
                    let state = states.entry(name.clone()).or_default();
                    state.last_error = Some(e.to_string());
                    state.last_error_at_ms = Some(now_ms());
                }
                self.notices.emit(
                    &EventScope::default(),
                    PluginReloadFailed {
                        digest: current.map(|c| c.digest().to_owned()),
                        error: e.to_string(),
                        plugin: name,
                    },
                );
            }
        }
    }

    /// A workflow file changed (or went away): validate it against the
    /// plugins and swap it in, or keep what served and record the problem.
    pub async fn reload_workflow(&self, file: &Path) {
        let previous_key = self
            .workflows
            .load()
            .values()
            .find(|w| w.file == file)
            .map(|w| w.key.clone());
        if !file.exists() {
            if let Some(key) = previous_key {
                self.workflows.rcu(|map| {
                    let mut map = BTreeMap::clone(map);
                    map.remove(&key);
                    map
                });
                tracing::info!(workflow = %key, "workflow removed");
                self.metrics.reload("workflow", "removed");
            }
            lock(&self.problems).remove(file);
            return;
        }
        match self.compile(file) {
            Ok(registered) => {
                let registered = Arc::new(registered);
                let key = registered.key.clone();
                let clash = self
                    .workflows
                    .load()
                    .get(&key)
                    .is_some_and(|w| w.file != file);
                if clash {
                    self.workflow_failed(
                        file,
                        vec![(
                            "$".into(),
                            format!("another file already registers the workflow key `{key}`"),
                        )],
                    );
                    return;
                }
                self.workflows.rcu(|map| {
                    let mut map = BTreeMap::clone(map);
                    if let Some(old) = &previous_key {
                        map.remove(old);
                    }
                    map.insert(key.clone(), registered.clone());
                    map
                });
                lock(&self.problems).remove(file);
                tracing::info!(workflow = %key, file = %file.display(), "workflow registered");
                self.metrics.reload("workflow", "ok");
            }
            Err(errors) => self.workflow_failed(file, errors),
        }
    }

    fn workflow_failed(&self, file: &Path, errors: Vec<(String, String)>) {
        for (path, message) in &errors {
            tracing::warn!(file = %file.display(), path = %path, "workflow not served: {message}");
        }
        self.metrics.reload("workflow", "failed");
        lock(&self.problems).insert(
            file.to_owned(),
            WorkflowProblem {
                file: file.to_owned(),
                errors,
                at_ms: now_ms(),
            },
        );
    }

    /// Reads, validates and compiles one workflow file.
    fn compile(&self, file: &Path) -> Result<Registered, Vec<(String, String)>> {
        let one = |message: String| vec![("$".to_owned(), message)];
        let text = std::fs::read_to_string(file).map_err(|e| one(format!("cannot read: {e}")))?;
        let (spec, digest) = parse_spec(&text, Spec::base_dir_of(file)).map_err(spec_errors)?;
        let runner = self.runner_for(&spec)?;
        let key = runner.workflow().key.clone();
        Ok(Registered {
            name: runner.workflow().name.clone(),
            key,
            file: file.to_owned(),
            runner,
            spec_digest: digest,
            loaded_at_ms: now_ms(),
        })
    }

    /// A runner for `spec` on the shared plugins and store (also for an
    /// inline spec of a request).
    pub fn runner_for(&self, spec: &Spec) -> Result<Runner, Vec<(String, String)>> {
        if let Err(e) = self.registry.runtime().policy().check_spec(spec) {
            return Err(vec![("$.plugins".into(), e.to_string())]);
        }
        let workflow = plan::compile(spec, &self.registry, &self.compile).map_err(|e| match e {
            plan::CompileError::Spec(errors) => spec_errors(errors),
            other => vec![("$".into(), other.to_string())],
        })?;
        Ok(Runner::new(Arc::new(workflow), self.registry.clone()).with_store(self.store.clone()))
    }

    /// Plugins by name, with the kinds they serve.
    pub fn plugins(&self) -> Vec<(Arc<Plugin>, Vec<Kind>, PluginState)> {
        self.registry
            .plugins()
            .into_iter()
            .map(|p| {
                let kinds = p.kinds();
                let state = self.plugin_state(p.name());
                (p, kinds, state)
            })
            .collect()
    }
}

/// A spec document and the `sha256:` of its text.
pub(super) fn parse_spec(text: &str, base_dir: &Path) -> Result<(Spec, String), SpecErrors> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())));
    Ok((Spec::from_json_str(text, base_dir)?, digest))
}

/// A spec value (an inline spec of a request).
/// An API client may not declare MCP servers: a `command` would run on
/// this machine, a `url` would carry the host's environment in headers.
pub(super) fn spec_of_value(doc: &Value, base_dir: &Path) -> Result<(Spec, String), SpecErrors> {
    let text = doc.to_string();
    let (spec, digest) = parse_spec(&text, base_dir)?;
    if !spec.mcp_servers.is_empty() {
        SpecErrors::into_result(vec![
            crate::spec::SpecError::new(
                "$.mcp_servers",
                "an inline spec may not declare MCP servers",
            )
            .with_hint(Some(
                "register the workflow in the workflows folder instead".into(),
            )),
        ])?;
    }
    Ok((spec, digest))
}

pub(super) fn spec_errors(errors: SpecErrors) -> Vec<(String, String)> {
    errors
        .into_errors()
        .into_iter()
        .map(|e| {
            let message = match e.hint {
                Some(hint) => format!("{} ({hint})", e.message),
                None => e.message,
            };
            (e.path, message)
        })
        .collect()
}

pub(super) fn is_workflow_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json") && !is_hidden(path)
}

pub(super) fn plugin_name(path: &Path) -> Option<String> {
    if path.extension().is_some_and(|e| e == "wasm") && !is_hidden(path) {
        path.file_stem().map(|s| s.to_string_lossy().into_owned())
    } else {
        None
    }
}

/// Editors' and `cp`'s temporary files (`.x.wasm.swp`, `.tmp…`).
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod mcp_tests {
    use super::spec_of_value;
    use serde_json::json;

    #[test]
    fn an_inline_spec_may_not_declare_mcp_servers() {
        let doc = json!({
            "mcp_servers": {"x": {"command": "sh", "args": ["-c", "id"]}},
            "agents": {"a": {"model": "m", "tools": ["mcp:x"]}},
            "workflow": {"key": "w", "steps": [{"agent": "a"}]}
        });
        let errors = spec_of_value(&doc, std::path::Path::new("."))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            errors.contains("$.mcp_servers: an inline spec may not declare MCP servers"),
            "{errors}"
        );
        let mut allowed = doc.clone();
        allowed["mcp_servers"] = json!({});
        allowed["agents"]["a"]["tools"] = json!([]);
        assert!(spec_of_value(&allowed, std::path::Path::new(".")).is_ok());
    }
}

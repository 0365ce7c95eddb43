//! The set of loaded plugins, by name, swappable one plugin at a time while
//! calls are in flight.

use super::builtin::Preset;
use super::error::{LoadError, ResolveError};
use super::guardrail::Guardrail;
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::types::Limits;
use crate::spec::{Kind, PluginCatalog, Spec};
use arc_swap::ArcSwap;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Limits for the plugins of a directory: a default and per-plugin values.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub default_limits: Limits,
    pub limits: HashMap<String, Limits>,
}

impl LoadOptions {
    pub fn limits_for(&self, name: &str) -> Limits {
        self.limits
            .get(name)
            .copied()
            .unwrap_or(self.default_limits)
    }
}

/// What loading a directory did. Bad files do not stop the others.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: Vec<Arc<Plugin>>,
    pub failed: Vec<LoadError>,
}

/// Loaded plugins by name. Readers take a snapshot (`Arc<Plugin>`) per call,
/// so replacing a plugin never disturbs a call already running: it finishes
/// on the build it started with, and its `Served::digest` says which.
pub struct Registry {
    runtime: Arc<Runtime>,
    plugins: ArcSwap<BTreeMap<String, Arc<Plugin>>>,
    /// Plugins the directory offers (its `*.wasm` file names), loaded or
    /// not: what "did you mean" hints are chosen from.
    offered: ArcSwap<BTreeSet<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("plugins", &self.plugins.load().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Registry {
            runtime,
            plugins: ArcSwap::from_pointee(BTreeMap::new()),
            offered: ArcSwap::from_pointee(BTreeSet::new()),
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Loads every `*.wasm` at the top level of `dir` (name = file stem).
    /// Each bad file is reported with its name and reason; the rest load.
    /// For listing a folder; a run loads only what it uses
    /// ([`Self::load_for`]).
    pub async fn load_dir(
        &self,
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<LoadReport, LoadError> {
        let files = self.scan(dir)?;
        self.load_files(files.into_iter().map(|(_, path)| path), options)
            .await
    }

    /// Loads, from `dir`, only the plugins `spec` references or sets limits
    /// for: a file it does not name is never read, so an unrelated (broken,
    /// huge or hostile) file in the folder costs a run nothing. Unknown
    /// names are left to validation, whose hints list every file of `dir`.
    /// A missing `dir` is no error when the spec names only built-in
    /// guardrails (or nothing).
    pub async fn load_for(
        &self,
        dir: &Path,
        spec: &Spec,
        options: &LoadOptions,
    ) -> Result<LoadReport, LoadError> {
        let wanted = plugins_named(spec);
        // Built-in guardrails need no folder.
        if !dir.exists() && wanted.iter().all(|n| Preset::named(n).is_some()) {
            return Ok(LoadReport::default());
        }
        let files = self.scan(dir)?;
        self.load_files(
            files
                .into_iter()
                .filter(|(name, _)| wanted.contains(name))
                .map(|(_, path)| path),
            options,
        )
        .await
    }

    /// The `*.wasm` files at the top level of `dir`, by plugin name, sorted;
    /// remembered as what the directory offers. Nothing is read.
    fn scan(&self, dir: &Path) -> Result<Vec<(String, PathBuf)>, LoadError> {
        let mut files = Vec::new();
        let read = std::fs::read_dir(dir).map_err(|source| LoadError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        for entry in read {
            let entry = entry.map_err(|source| LoadError::Dir {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name, path));
            }
        }
        files.sort();
        let names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
        self.offered.rcu(|offered| {
            let mut offered = BTreeSet::clone(offered);
            offered.extend(names.iter().cloned());
            offered
        });
        Ok(files)
    }

    async fn load_files(
        &self,
        paths: impl Iterator<Item = PathBuf>,
        options: &LoadOptions,
    ) -> Result<LoadReport, LoadError> {
        let mut report = LoadReport::default();
        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let limits = options.limits_for(&name);
            let loaded = match self.runtime.policy().check_limits(&limits) {
                Ok(()) => Plugin::load(&self.runtime, &path, limits).await,
                Err(reason) => Err(LoadError::Limits {
                    plugin: name,
                    reason,
                }),
            };
            match loaded {
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    self.insert(plugin.clone());
                    report.loaded.push(plugin);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "plugin not loaded");
                    report.failed.push(e);
                }
            }
        }
        Ok(report)
    }

    /// Loads one file and installs it, replacing a plugin of the same name.
    pub async fn load_file(&self, path: &Path, limits: Limits) -> Result<Arc<Plugin>, LoadError> {
        let plugin = Arc::new(Plugin::load(&self.runtime, path, limits).await?);
        self.insert(plugin.clone());
        Ok(plugin)
    }

    /// Installs `plugin` atomically; returns the build it replaced, if any.
    pub fn insert(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        let name = plugin.name().to_string();
        let mut previous = None;
        self.plugins.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            previous = map.insert(name.clone(), plugin.clone());
            map
        });
        previous
    }

    pub fn remove(&self, name: &str) -> Option<Arc<Plugin>> {
        let mut previous = None;
        self.plugins.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            previous = map.remove(name);
            map
        });
        previous
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.load().get(name).cloned()
    }

    /// The guardrail called `name`: the loaded plugin, else the built-in
    /// preset of that name.
    pub fn guardrail(&self, name: &str) -> Option<Guardrail> {
        match self.get(name) {
            Some(plugin) => Some(Guardrail::Plugin(plugin)),
            None => Preset::named(name).map(Guardrail::Builtin),
        }
    }

    /// The SHA-256 of the build that would serve `name` now: the loaded
    /// plugin's, else a built-in preset's stand-in digest.
    pub fn current_digest(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(plugin) => Some(plugin.digest().to_owned()),
            None => Preset::named(name).map(Preset::digest),
        }
    }

    /// Resolves a guardrail reference to (plugin or preset name, entry): as
    /// [`Self::resolve`], falling back to the built-in presets when no
    /// plugin has the name.
    pub fn resolve_guardrail(&self, reference: &str) -> Result<(String, String), ResolveError> {
        let (name, entry) = split_reference(reference)?;
        if self.get(name).is_none()
            && let Some(preset) = Preset::named(name)
        {
            return match entry {
                None => Ok((name.to_string(), preset.name().to_string())),
                Some(e) if e == preset.name() => Ok((name.to_string(), e.to_string())),
                Some(e) => Err(ResolveError::UnknownEntry {
                    plugin: name.to_string(),
                    entry: e.to_string(),
                    kind: Kind::Guardrail,
                    offers: format!("guardrail {}", preset.name()),
                }),
            };
        }
        let (plugin, entry) = self.resolve(reference, Kind::Guardrail)?;
        Ok((plugin.name().to_string(), entry))
    }

    /// Every loaded plugin, sorted by name.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.plugins.load().values().cloned().collect()
    }

    /// Resolves `plugin` or `plugin#entry` to a plugin and entry of `kind`.
    /// A bare `plugin` works when it offers exactly one entry of `kind`;
    /// for tools it names every tool of the plugin (see [`Self::resolve_tools`]).
    pub fn resolve(
        &self,
        reference: &str,
        kind: Kind,
    ) -> Result<(Arc<Plugin>, String), ResolveError> {
        let (name, entry) = split_reference(reference)?;
        let plugin = self.get(name).ok_or_else(|| ResolveError::UnknownPlugin {
            plugin: name.to_string(),
        })?;
        let offers = || describe_offers(&plugin);
        let of_kind: Vec<&str> = plugin
            .entries()
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.name.as_str())
            .collect();
        let entry = match entry {
            Some(entry) => {
                if !of_kind.contains(&entry) {
                    return Err(ResolveError::UnknownEntry {
                        plugin: name.to_string(),
                        entry: entry.to_string(),
                        kind,
                        offers: offers(),
                    });
                }
                entry.to_string()
            }
            None => match of_kind.as_slice() {
                [] => {
                    return Err(ResolveError::NoEntryOfKind {
                        plugin: name.to_string(),
                        kind,
                        offers: offers(),
                    });
                }
                [one] => one.to_string(),
                many => {
                    return Err(ResolveError::Ambiguous {
                        plugin: name.to_string(),
                        kind,
                        entries: many.join(", "),
                    });
                }
            },
        };
        Ok((plugin, entry))
    }

    /// Resolves a tool reference: `plugin#tool` is one tool, a bare `plugin`
    /// every tool it offers.
    pub fn resolve_tools(
        &self,
        reference: &str,
    ) -> Result<(Arc<Plugin>, Vec<String>), ResolveError> {
        let (name, entry) = split_reference(reference)?;
        if entry.is_some() {
            let (plugin, entry) = self.resolve(reference, Kind::Tool)?;
            return Ok((plugin, vec![entry]));
        }
        let plugin = self.get(name).ok_or_else(|| ResolveError::UnknownPlugin {
            plugin: name.to_string(),
        })?;
        let tools: Vec<String> = plugin
            .entries()
            .iter()
            .filter(|e| e.kind == Kind::Tool)
            .map(|e| e.name.clone())
            .collect();
        if tools.is_empty() {
            return Err(ResolveError::NoEntryOfKind {
                plugin: name.to_string(),
                kind: Kind::Tool,
                offers: describe_offers(&plugin),
            });
        }
        Ok((plugin, tools))
    }
}

/// The one catalog `host run` and `host validate` check specs against, so
/// both give the same "did you mean" hints for plugin names.
/// A built-in guardrail counts as a plugin with one guardrail entry, until
/// a plugin of its name is loaded.
impl PluginCatalog for Registry {
    fn entries(&self, plugin: &str) -> Option<Vec<(String, Kind)>> {
        match self.get(plugin) {
            Some(p) => Some(
                p.entries()
                    .iter()
                    .map(|e| (e.name.clone(), e.kind))
                    .collect(),
            ),
            None => Preset::named(plugin).map(|p| vec![(p.name().to_string(), Kind::Guardrail)]),
        }
    }

    /// The loaded plugins, every file the directory offers, and the
    /// built-in guardrails.
    fn names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.plugins.load().keys().cloned().collect();
        names.extend(self.offered.load().iter().cloned());
        names.extend(Preset::all().map(|p| p.name().to_string()));
        names.into_iter().collect()
    }

    fn config_problems(&self, plugin: &str, _entry: &str, config: &Value) -> Vec<(String, String)> {
        match (self.get(plugin), Preset::named(plugin)) {
            (None, Some(preset)) => preset.config_problems(config),
            _ => Vec::new(),
        }
    }
}

/// Every plugin `spec` names: in a reference (`plugin` or `plugin#entry`)
/// or in its `plugins` limits.
pub fn plugins_named(spec: &Spec) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = spec
        .plugin_uses()
        .iter()
        .map(|u| u.reference.plugin.clone())
        .collect();
    names.extend(spec.plugins.keys().cloned());
    names
}

/// Splits `plugin#entry` into its parts.
pub fn split_reference(reference: &str) -> Result<(&str, Option<&str>), ResolveError> {
    let reference = reference.trim();
    let (name, entry) = match reference.split_once('#') {
        Some((n, e)) => (n, Some(e)),
        None => (reference, None),
    };
    if name.is_empty() || entry.is_some_and(str::is_empty) {
        return Err(ResolveError::Empty);
    }
    Ok((name, entry))
}

fn describe_offers(plugin: &Plugin) -> String {
    let list: Vec<String> = plugin
        .entries()
        .iter()
        .map(|e| format!("{} {}", e.kind, e.name))
        .collect();
    if list.is_empty() {
        "nothing".into()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split() {
        assert_eq!(split_reference("a"), Ok(("a", None)));
        assert_eq!(split_reference("a#b"), Ok(("a", Some("b"))));
        assert_eq!(split_reference("#b"), Err(ResolveError::Empty));
        assert_eq!(split_reference("a#"), Err(ResolveError::Empty));
        assert_eq!(split_reference(""), Err(ResolveError::Empty));
    }
}

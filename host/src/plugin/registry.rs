//! The set of loaded plugins, by name, swappable one plugin at a time while
//! calls are in flight.

use super::error::{LoadError, ResolveError};
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::types::Limits;
use crate::spec::{Kind, PluginCatalog};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
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
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Loads every `*.wasm` at the top level of `dir` (name = file stem).
    /// Each bad file is reported with its name and reason; the rest load.
    pub async fn load_dir(
        &self,
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<LoadReport, LoadError> {
        let mut paths = Vec::new();
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
                paths.push(path);
            }
        }
        paths.sort();
        let mut report = LoadReport::default();
        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match Plugin::load(&self.runtime, &path, options.limits_for(&name)).await {
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
impl PluginCatalog for Registry {
    fn entries(&self, plugin: &str) -> Option<Vec<(String, Kind)>> {
        self.get(plugin).map(|p| {
            p.entries()
                .iter()
                .map(|e| (e.name.clone(), e.kind))
                .collect()
        })
    }

    fn names(&self) -> Vec<String> {
        self.plugins.load().keys().cloned().collect()
    }
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

//! One loaded plugin: a compiled component, pre-instantiated, with the
//! entries it described. Loading lives in `load`, the call harness in `call`
//! and the typed exports in `exports`; this file holds the type itself.

use super::cache::CacheOutcome;
use super::error::LoadError;
use super::exports::Exports;
use super::load::check_limits;
use super::sandbox::CallState;
use super::types::{EntryInfo, Limits, ToolDefinition};
use crate::spec::Kind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::InstancePre;

/// A loaded, validated plugin. Cheap to clone behind an `Arc`; the registry
/// swaps whole `Arc<Plugin>`s, so a call always runs against one build.
pub struct Plugin {
    pub(super) name: Arc<str>,
    pub(super) path: PathBuf,
    pub(super) digest: Arc<str>,
    pub(super) size: u64,
    pub(super) wit_version: String,
    pub(super) entries: Vec<EntryInfo>,
    pub(super) tools: Vec<ToolDefinition>,
    pub(super) exports: Exports,
    pub(super) pre: InstancePre<CallState>,
    pub(super) limits: Limits,
    pub(super) cache: CacheOutcome,
    pub(super) load_time: Duration,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("digest", &self.digest)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// SHA-256 of the `.wasm` file, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn wit_version(&self) -> &str {
        &self.wit_version
    }
    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }
    /// Tool definitions, read once at load time.
    pub fn tools(&self) -> &[ToolDefinition] {
        &self.tools
    }
    pub fn limits(&self) -> Limits {
        self.limits
    }
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }
    /// Time to read, compile (or load from cache), link and describe.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
    /// Distinct kinds this plugin offers, in a stable order.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds: Vec<Kind> = self.entries.iter().map(|e| e.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// A copy of this plugin (same compiled code) with other limits.
    pub fn with_limits(&self, limits: Limits) -> Result<Plugin, LoadError> {
        check_limits(&self.name, &limits)?;
        Ok(Plugin {
            name: self.name.clone(),
            path: self.path.clone(),
            digest: self.digest.clone(),
            size: self.size,
            wit_version: self.wit_version.clone(),
            entries: self.entries.clone(),
            tools: self.tools.clone(),
            exports: self.exports.clone(),
            pre: self.pre.clone(),
            limits,
            cache: self.cache,
            load_time: self.load_time,
        })
    }
}

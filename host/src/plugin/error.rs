//! Errors of the plugin layer. Every message names the plugin (its file when
//! loading) and, for calls, the export and entry that failed.

use crate::spec::Kind;
use std::path::PathBuf;
use std::time::Duration;

/// Loading a plugin failed. The other plugins of the directory still load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot read file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: file of {size} bytes exceeds the host's limit of {limit} bytes (host config `[plugins] max_wasm_bytes`); not read",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{}: not a WebAssembly file ({reason})", path.display())]
    NotWasm { path: PathBuf, reason: String },
    #[error(
        "{}: is a core WebAssembly module, not a component\n  hint: build Rust plugins for the wasm32-wasip2 target, or wrap the module with `wasm-tools component new`",
        path.display()
    )]
    CoreModule { path: PathBuf },
    #[error("{}: failed to compile: {reason}", path.display())]
    Compile { path: PathBuf, reason: String },
    #[error(
        "{}: exports no known plugin interface (found: {found})\n  hint: export `workflow:plugin/describe@0.1.0` and at least one of guard, input-mapper, reducer, tool, guardrail",
        path.display()
    )]
    NoKnownExport { path: PathBuf, found: String },
    #[error(
        "{}: exports `{export}`, a WIT version this host does not support (supported: {supported})",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        export: String,
        supported: String,
    },
    #[error("{}: cannot be linked: {reason}", path.display())]
    Link { path: PathBuf, reason: String },
    #[error("{}: describe failed: {source}", path.display())]
    Describe {
        path: PathBuf,
        #[source]
        source: Box<CallError>,
    },
    #[error("{}: {reason}", path.display())]
    BadDescription { path: PathBuf, reason: String },
    #[error("invalid plugin limits for `{plugin}`: {reason}")]
    Limits { plugin: String, reason: String },
}

impl LoadError {
    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            LoadError::Dir { path, .. }
            | LoadError::Read { path, .. }
            | LoadError::TooLarge { path, .. }
            | LoadError::NotWasm { path, .. }
            | LoadError::CoreModule { path }
            | LoadError::Compile { path, .. }
            | LoadError::NoKnownExport { path, .. }
            | LoadError::UnsupportedVersion { path, .. }
            | LoadError::Link { path, .. }
            | LoadError::Describe { path, .. }
            | LoadError::BadDescription { path, .. } => Some(path),
            LoadError::Limits { .. } => None,
        }
    }
}

/// A reference like `plugin#entry` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown plugin `{plugin}`")]
    UnknownPlugin { plugin: String },
    #[error("plugin `{plugin}` has no {kind} entry `{entry}` (it offers: {offers})")]
    UnknownEntry {
        plugin: String,
        entry: String,
        kind: Kind,
        offers: String,
    },
    #[error("plugin `{plugin}` offers no {kind} entry (it offers: {offers})")]
    NoEntryOfKind {
        plugin: String,
        kind: Kind,
        offers: String,
    },
    #[error(
        "plugin `{plugin}` offers several {kind} entries ({entries}); name one as `{plugin}#<entry>`"
    )]
    Ambiguous {
        plugin: String,
        kind: Kind,
        entries: String,
    },
    #[error("empty plugin reference")]
    Empty,
}

/// A plugin call failed. Only the calling step fails; the host goes on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}` ({file}), {export}: {kind}")]
pub struct CallError {
    pub plugin: String,
    pub file: String,
    /// `interface.function` and entry, e.g. `guard.check[keyword_guard]`.
    pub export: String,
    pub kind: CallErrorKind,
}

/// Why a plugin call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallErrorKind {
    #[error("the plugin returned an error: {0}")]
    Guest(String),
    #[error("deadline of {} ms exceeded", .0.as_millis())]
    Timeout(Duration),
    #[error(
        "memory limit of {} MiB exceeded (the call's memories and tables would take {} MiB)",
        .limit >> 20,
        .requested >> 20
    )]
    Memory {
        limit: u64,
        /// Bytes all memories and tables of the call would have taken.
        requested: u64,
    },
    #[error("trapped: {trap}{}", stderr_suffix(.stderr))]
    Trap {
        trap: String,
        /// The tail of what the guest wrote to stderr (a panic message).
        stderr: Option<String>,
    },
    #[error("output of {size} bytes exceeds the {limit}-byte limit")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("returned invalid JSON: {0}")]
    BadOutput(String),
    #[error("the component does not export the `{0}` interface")]
    NotExported(&'static str),
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    #[error("no free call slot within {} ms: {busy}", .waited.as_millis())]
    NoSlot {
        waited: Duration,
        busy: SlotShortage,
    },
}

/// Whose slots were all taken when a call gave up waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotShortage {
    /// The plugin already ran as many calls as its share allows.
    Plugin { cap: u32 },
    /// Every slot of the host was taken.
    Host { slots: u32 },
}

impl std::fmt::Display for SlotShortage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlotShortage::Plugin { cap } => write!(
                f,
                "this plugin already runs {cap} calls, its share of the host's slots (host config plugins.max_concurrent_calls_per_plugin)"
            ),
            SlotShortage::Host { slots } => {
                write!(f, "all {slots} plugin call slots of the host are busy")
            }
        }
    }
}

impl CallErrorKind {
    /// A short, stable name of the failure (`error.type` on trace spans).
    pub fn as_str(&self) -> &'static str {
        match self {
            CallErrorKind::Guest(_) => "guest_error",
            CallErrorKind::Timeout(_) => "timeout",
            CallErrorKind::Memory { .. } => "memory_limit",
            CallErrorKind::Trap { .. } => "trap",
            CallErrorKind::OutputTooLarge { .. } => "output_too_large",
            CallErrorKind::BadOutput(_) => "bad_output",
            CallErrorKind::NotExported(_) => "not_exported",
            CallErrorKind::Instantiate(_) => "instantiate",
            CallErrorKind::NoSlot { .. } => "no_slot",
        }
    }
}

fn stderr_suffix(stderr: &Option<String>) -> String {
    match stderr {
        Some(s) if !s.is_empty() => format!(" (stderr: {s})"),
        _ => String::new(),
    }
}

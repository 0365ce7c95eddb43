//! Sandboxed WebAssembly plugins: loading, compiling and caching components,
//! the registry with hot swap, resource limits, and the host imports.
//!
//! Every call runs in a fresh instance created from a pre-linked
//! [`wasmtime::component::InstancePre`] in the pooling allocator: no state
//! survives between calls, a call has a wall-clock deadline and a memory cap,
//! and a trap, timeout or bad output fails that call with a [`CallError`]
//! naming the plugin, never the host.

mod bindings;
mod builtin;
mod cache;
mod call;
mod error;
mod exports;
mod guardrail;
mod http;
mod lift;
mod load;
mod loaded;
mod policy;
mod registry;
mod runtime;
mod sandbox;
mod trust;
mod types;

/// The kinds of entry a plugin offers: one enum, owned by `spec` (which
/// checks references against them) and re-exported for plugin callers.
pub use crate::spec::Kind;
pub use builtin::{DEFAULT_PHONE_PATTERN, MAX_PATTERN_BYTES, Preset};
pub use cache::{CacheOutcome, default_cache_dir, wasmtime_version};
pub use error::{CallError, CallErrorKind, LoadError, ResolveError, SlotShortage};
pub use guardrail::Guardrail;
pub use http::HttpGrant;
pub use lift::{MAX_ENTRIES, MAX_LIFT_BYTES};
pub use load::{MAX_DESCRIPTION_CHARS, MAX_TOOL_DESCRIPTION_CHARS};
pub use loaded::Plugin;
pub use policy::{PluginPolicy, PolicyError};
pub use registry::{LoadOptions, LoadReport, Registry, plugins_named, split_reference};
pub use runtime::{CallObserver, EPOCH_TICK, Runtime, RuntimeError, RuntimeOptions};
pub use runtime::{
    MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
};
pub use sandbox::{MAX_CAPTURED_OUTPUT, MAX_LOG_BYTES, MAX_LOG_RECORDS, MAX_OUTPUT_LINES};
pub use trust::{CacheError, default_cache_key_file};
pub use types::{
    CallContext, EntryInfo, Limits, LimitsOverride, Phase, Served, StepResult, ToolDefinition,
    Verdict,
};

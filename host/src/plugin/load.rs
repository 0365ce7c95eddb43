//! Loading a plugin: read, compile (or take from the cache), link, describe,
//! and reject anything the host could not call safely.

use super::bindings::{self, describe};
use super::error::LoadError;
use super::exports::Exports;
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::types::{EntryInfo, Limits, ToolDefinition};
use crate::spec::Kind;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strum::IntoEnumIterator;

impl Plugin {
    /// Reads, compiles (or loads from the cache), links and describes the
    /// component at `path`. The plugin's name is the file stem.
    pub async fn load(
        runtime: &Arc<Runtime>,
        path: &Path,
        limits: Limits,
    ) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        let name: Arc<str> = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into();
        check_limits(&name, &limits)?;
        let bytes = read_bounded(path, runtime.policy().max_wasm_bytes).await?;
        check_header(path, &bytes)?;
        let size = bytes.len() as u64;

        let read_done = started.elapsed();
        let rt = runtime.clone();
        let compiling = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let digest = hex::encode(Sha256::digest(&bytes));
            let digest_time = t.elapsed();
            let compiled = rt.compile(&digest, &bytes);
            (digest, compiled, digest_time)
        });
        // Cranelift cannot be interrupted: past the budget the load fails and
        // the compile finishes (and is dropped) on its own thread.
        let (digest, compiled, digest_time) =
            tokio::time::timeout(runtime.policy().compile_timeout(), compiling)
                .await
                .map_err(|_| LoadError::Compile {
                    path: path.to_owned(),
                    reason: format!(
                        "took longer than the host's compile budget of {} s (host config `[plugins] compile_timeout_ms`)",
                        runtime.policy().compile_timeout().as_secs_f64()
                    ),
                })?
                .map_err(|e| LoadError::Compile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
        let (component, cache) = compiled.map_err(|e| LoadError::Compile {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        })?;

        let compile_done = started.elapsed();
        let wit_version = check_exports(path, runtime, &component)?;
        let pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                path: path.to_owned(),
                reason: format!(
                    "{e:#}\n  hint: plugins may import only wasi:cli, wasi:io, wasi:clocks, wasi:random, wasi:filesystem, wasi:sockets (all denied) and workflow:plugin/host"
                ),
            })?;
        describe::GuestIndices::new(&pre).map_err(|e| LoadError::NoKnownExport {
            path: path.to_owned(),
            found: format!("no usable describe export: {e}"),
        })?;
        let exports = Exports::new(&pre, &wit_version);
        if !Kind::iter().any(|k| exports.has(k)) {
            return Err(LoadError::NoKnownExport {
                path: path.to_owned(),
                found: "describe only".into(),
            });
        }

        let mut plugin = Plugin {
            name,
            path: path.to_owned(),
            digest: digest.into(),
            size,
            wit_version,
            entries: Vec::new(),
            tools: Vec::new(),
            exports,
            pre,
            limits,
            cache,
            load_time: Duration::ZERO,
        };
        let linked = started.elapsed();
        let entries = plugin
            .describe(runtime)
            .await
            .map_err(|e| LoadError::Describe {
                path: path.to_owned(),
                source: Box::new(e),
            })?;
        plugin.entries = validate_entries(path, &plugin.exports, entries)?;
        if plugin.entries.iter().any(|e| e.kind == Kind::Tool) {
            let tools =
                plugin
                    .tool_definitions(runtime)
                    .await
                    .map_err(|e| LoadError::Describe {
                        path: path.to_owned(),
                        source: Box::new(e),
                    })?;
            plugin.tools = validate_tools(path, &plugin.entries, tools)?;
        }
        plugin.load_time = started.elapsed();
        tracing::debug!(
            plugin = %plugin.name,
            digest = %&plugin.digest[..12],
            cache = ?plugin.cache,
            read = ?read_done,
            sha256 = ?digest_time,
            compile_or_cache = ?(compile_done.saturating_sub(read_done + digest_time)),
            link = ?(linked - compile_done),
            describe = ?(plugin.load_time - linked),
            total = ?plugin.load_time,
            "plugin loaded"
        );
        Ok(plugin)
    }
}

/// Rejects limits the host cannot honour: above the pooling allocator's
/// slot size, below one page, or no time at all.
pub(super) fn check_limits(name: &str, limits: &Limits) -> Result<(), LoadError> {
    let bad = |reason: String| LoadError::Limits {
        plugin: name.to_string(),
        reason,
    };
    if limits.memory_bytes > Limits::MAX_MEMORY_BYTES {
        return Err(bad(format!(
            "memory_bytes {} exceeds the host's ceiling of {} MiB",
            limits.memory_bytes,
            Limits::MAX_MEMORY_BYTES >> 20
        )));
    }
    if limits.memory_bytes < (1 << 16) {
        return Err(bad("memory_bytes must be at least one 64 KiB page".into()));
    }
    if limits.timeout.is_zero() {
        return Err(bad("timeout_ms must be positive".into()));
    }
    Ok(())
}

/// Reads the file at `path` if it is at most `max` bytes: the size is
/// checked before reading (a sparse 100 GB file is refused at once), and the
/// read itself stops past `max` (a file that grows meanwhile).
async fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    use tokio::io::AsyncReadExt;
    let read_err = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let too_large = |size| LoadError::TooLarge {
        path: path.to_owned(),
        size,
        limit: max,
    };
    let file = tokio::fs::File::open(path).await.map_err(read_err)?;
    let size = file.metadata().await.map_err(read_err)?.len();
    if size > max {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(read_err)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Tells a non-Wasm file and a core module from a component before
/// compiling, so the error can say which and how to fix it.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm {
            path: path.to_owned(),
            reason: "missing the `\\0asm` magic number".into(),
        });
    }
    // Bytes 4..8: version and layer. Core modules are version 1, layer 0.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Finds the `workflow:plugin/*` exports and their WIT version.
fn check_exports(
    path: &Path,
    rt: &Runtime,
    component: &wasmtime::component::Component,
) -> Result<String, LoadError> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .exports(rt.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    let prefix = format!("{}/", bindings::PACKAGE);
    let mut version = None;
    for name in &names {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let (iface, ver) = rest.split_once('@').unwrap_or((rest, ""));
        if iface != "describe" && bindings::kind_of_interface(iface).is_none() {
            continue;
        }
        if !bindings::SUPPORTED_VERSIONS.contains(&ver) {
            return Err(LoadError::UnsupportedVersion {
                path: path.to_owned(),
                export: name.clone(),
                supported: bindings::SUPPORTED_VERSIONS.join(", "),
            });
        }
        version = Some(ver.to_string());
    }
    version.ok_or_else(|| LoadError::NoKnownExport {
        path: path.to_owned(),
        found: if names.is_empty() {
            "no exports".into()
        } else {
            names.join(", ")
        },
    })
}

/// Longest description of a `describe` entry, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Longest tool description (`tool.definitions`), in characters: what the
/// OpenAI API accepts for a function's description.
pub const MAX_TOOL_DESCRIPTION_CHARS: usize = 1024;

/// A name as quoted in an error: a rejected one may be megabytes long.
fn clip(name: &str) -> String {
    crate::util::clip(name, 80).escape_debug().to_string()
}

/// Checks what `describe` returned: valid, unique names, each of a kind
/// the component actually exports.
fn validate_entries(
    path: &Path,
    exports: &Exports,
    entries: Vec<EntryInfo>,
) -> Result<Vec<EntryInfo>, LoadError> {
    let bad = |reason: String| LoadError::BadDescription {
        path: path.to_owned(),
        reason,
    };
    if entries.is_empty() {
        return Err(bad("describe returned no entries".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for e in &entries {
        if e.kind == Kind::Tool && !crate::llm::is_tool_name(&e.name) {
            return Err(bad(format!(
                "describe.describe: tool entry `{}` has a name model APIs refuse (1-64 characters of a-z, A-Z, 0-9, `_` and `-`)",
                clip(&e.name)
            )));
        }
        if e.name.is_empty() || e.name.contains(['#', ' ', '/']) || e.name.len() > 128 {
            return Err(bad(format!(
                "describe.describe: entry name `{}` is invalid (1-128 characters, no spaces, `#` or `/`)",
                clip(&e.name)
            )));
        }
        let chars = e.description.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(bad(format!(
                "describe.describe: {} entry `{}` has a description of {chars} characters (at most {MAX_DESCRIPTION_CHARS})",
                e.kind, e.name
            )));
        }
        if !seen.insert((e.kind, e.name.as_str())) {
            return Err(bad(format!(
                "{} entry `{}` is listed twice",
                e.kind, e.name
            )));
        }
        if !exports.has(e.kind) {
            return Err(bad(format!(
                "describe lists {} entry `{}` but the component does not export `{}/{}`",
                e.kind,
                e.name,
                bindings::PACKAGE,
                bindings::interface(e.kind)
            )));
        }
    }
    Ok(entries)
}

/// Checks that every tool entry has a definition with an object schema, and
/// keeps only the definitions of listed entries.
fn validate_tools(
    path: &Path,
    entries: &[EntryInfo],
    tools: Vec<ToolDefinition>,
) -> Result<Vec<ToolDefinition>, LoadError> {
    let bad = |reason: String| LoadError::BadDescription {
        path: path.to_owned(),
        reason,
    };
    for e in entries.iter().filter(|e| e.kind == Kind::Tool) {
        let Some(def) = tools.iter().find(|t| t.name == e.name) else {
            return Err(bad(format!(
                "tool entry `{}` has no definition in tool.definitions",
                e.name
            )));
        };
        if !def.parameters.is_object() {
            return Err(bad(format!(
                "tool.definitions: tool `{}`: parameters must be a JSON Schema object",
                e.name
            )));
        }
        let chars = def.description.chars().count();
        if chars > MAX_TOOL_DESCRIPTION_CHARS {
            return Err(bad(format!(
                "tool.definitions: tool `{}` has a description of {chars} characters; model APIs accept at most {MAX_TOOL_DESCRIPTION_CHARS}",
                e.name
            )));
        }
    }
    Ok(tools
        .into_iter()
        .filter(|t| {
            entries
                .iter()
                .any(|e| e.kind == Kind::Tool && e.name == t.name)
        })
        .collect())
}

//! One loaded plugin: a compiled component, pre-instantiated, with the
//! entries it described. Every call runs in a fresh instance.

use super::bindings::{self, describe, guard, guardrail, input_mapper, reducer, tool};
use super::cache::CacheOutcome;
use super::error::{CallError, CallErrorKind, LoadError};
use super::runtime::Runtime;
use super::sandbox::{CallSetup, CallState, Determinism};
use super::types::{
    CallContext, EntryInfo, Kind, Limits, Phase, Served, StepResult, ToolDefinition, Verdict,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use tracing::field::Empty;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Extra time granted past the deadline before the call future itself is
/// dropped. The epoch callback normally stops the guest first; this only
/// catches a guest stuck where no epoch check runs.
const TIMEOUT_GRACE: Duration = Duration::from_millis(250);
/// How much of a guest's stderr goes into an error message.
const STDERR_IN_ERROR: usize = 600;

/// The plugin exports this host found, with their pre-resolved indices.
#[derive(Clone)]
struct Exports {
    describe: describe::GuestIndices,
    guard: Option<guard::GuestIndices>,
    input_mapper: Option<input_mapper::GuestIndices>,
    reducer: Option<reducer::GuestIndices>,
    tool: Option<tool::GuestIndices>,
    guardrail: Option<guardrail::GuestIndices>,
}

impl Exports {
    fn has(&self, kind: Kind) -> bool {
        match kind {
            Kind::Guard => self.guard.is_some(),
            Kind::InputMapper => self.input_mapper.is_some(),
            Kind::Reducer => self.reducer.is_some(),
            Kind::Tool => self.tool.is_some(),
            Kind::Guardrail => self.guardrail.is_some(),
        }
    }
}

/// A loaded, validated plugin. Cheap to clone behind an `Arc`; the registry
/// swaps whole `Arc<Plugin>`s, so a call always runs against one build.
pub struct Plugin {
    name: Arc<str>,
    path: PathBuf,
    digest: Arc<str>,
    size: u64,
    wit_version: String,
    entries: Vec<EntryInfo>,
    tools: Vec<ToolDefinition>,
    exports: Exports,
    pre: InstancePre<CallState>,
    limits: Limits,
    cache: CacheOutcome,
    load_time: Duration,
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
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Read {
                path: path.to_owned(),
                source,
            })?;
        check_header(path, &bytes)?;
        let size = bytes.len() as u64;

        let read_done = started.elapsed();
        let rt = runtime.clone();
        let (digest, compiled, digest_time) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let digest = hex::encode(Sha256::digest(&bytes));
            let digest_time = t.elapsed();
            let compiled = rt.compile(&digest, &bytes);
            (digest, compiled, digest_time)
        })
        .await
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
                    "{e:#}\nhint: plugins may import only wasi:cli, wasi:io, wasi:clocks, wasi:random, wasi:filesystem, wasi:sockets (all denied) and workflow:plugin/host"
                ),
            })?;
        let describe = describe::GuestIndices::new(&pre).map_err(|e| LoadError::NoKnownExport {
            path: path.to_owned(),
            found: format!("no usable describe export: {e}"),
        })?;
        let exports = Exports {
            describe,
            guard: guard::GuestIndices::new(&pre).ok(),
            input_mapper: input_mapper::GuestIndices::new(&pre).ok(),
            reducer: reducer::GuestIndices::new(&pre).ok(),
            tool: tool::GuestIndices::new(&pre).ok(),
            guardrail: guardrail::GuestIndices::new(&pre).ok(),
        };
        if !Kind::ALL.iter().any(|k| exports.has(*k)) {
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

    /// Calls `describe` in a fresh instance.
    pub async fn describe(&self, rt: &Runtime) -> Result<Vec<EntryInfo>, CallError> {
        let idx = self.exports.describe.clone();
        let ctx = CallContext::default();
        let served = self
            .call(
                rt,
                Kind::Guard,
                "describe.describe",
                &ctx,
                false,
                move |mut store, inst| async move {
                    let r = match idx.load(&mut store, &inst) {
                        Ok(g) => g.call_describe(&mut store).await,
                        Err(e) => Err(e),
                    };
                    (store, r.map(Ok))
                },
            )
            .await?;
        let size = served
            .value
            .iter()
            .map(|e| e.name.len() + e.description.len())
            .sum();
        self.check_size("describe.describe", size)?;
        Ok(served.value.into_iter().map(Into::into).collect())
    }

    /// Calls `tool.definitions` in a fresh instance.
    pub async fn tool_definitions(&self, rt: &Runtime) -> Result<Vec<ToolDefinition>, CallError> {
        let Some(idx) = self.exports.tool.clone() else {
            return Err(self.error("tool.definitions", CallErrorKind::NotExported("tool")));
        };
        let ctx = CallContext::default();
        let served = self
            .call(
                rt,
                Kind::Tool,
                "tool.definitions",
                &ctx,
                false,
                move |mut store, inst| async move {
                    let r = match idx.load(&mut store, &inst) {
                        Ok(g) => g.call_definitions(&mut store).await,
                        Err(e) => Err(e),
                    };
                    (store, r.map(Ok))
                },
            )
            .await?;
        let size = served
            .value
            .iter()
            .map(|d| d.name.len() + d.description.len() + d.parameters.len())
            .sum();
        self.check_size("tool.definitions", size)?;
        let mut defs = Vec::with_capacity(served.value.len());
        for d in served.value {
            let parameters = self.parse_json("tool.definitions", &d.parameters)?;
            defs.push(ToolDefinition {
                name: d.name,
                description: d.description,
                parameters,
            });
        }
        Ok(defs)
    }

    /// `guard.check`: whether the step runs.
    pub async fn guard(
        &self,
        rt: &Runtime,
        ctx: &CallContext,
        input: &Value,
        prior: &[StepResult],
    ) -> Result<Served<bool>, CallError> {
        let export = self.export_name("guard.check", &ctx.entry);
        let Some(idx) = self.exports.guard.clone() else {
            return Err(self.error(&export, CallErrorKind::NotExported("guard")));
        };
        let wctx = bindings::call_context(ctx);
        let input = input.to_string();
        let prior: Vec<_> = prior.iter().map(bindings::step_result).collect();
        let call = self.call(
            rt,
            Kind::Guard,
            &export,
            ctx,
            true,
            move |mut store, inst| async move {
                let r = match idx.load(&mut store, &inst) {
                    Ok(g) => g.call_check(&mut store, &wctx, &input, &prior).await,
                    Err(e) => Err(e),
                };
                (store, r)
            },
        );
        self.traced(Kind::Guard, &export, ctx, call).await
    }

    /// `input-mapper.map`: the step's input as the agent will receive it.
    pub async fn map_input(
        &self,
        rt: &Runtime,
        ctx: &CallContext,
        input: &Value,
        prior: &[StepResult],
    ) -> Result<Served<Value>, CallError> {
        let export = self.export_name("input-mapper.map-input", &ctx.entry);
        let Some(idx) = self.exports.input_mapper.clone() else {
            return Err(self.error(&export, CallErrorKind::NotExported("input-mapper")));
        };
        let wctx = bindings::call_context(ctx);
        let input = input.to_string();
        let prior: Vec<_> = prior.iter().map(bindings::step_result).collect();
        let call = self.call(
            rt,
            Kind::InputMapper,
            &export,
            ctx,
            true,
            move |mut store, inst| async move {
                let r = match idx.load(&mut store, &inst) {
                    Ok(g) => g.call_map_input(&mut store, &wctx, &input, &prior).await,
                    Err(e) => Err(e),
                };
                (store, r)
            },
        );
        self.traced(Kind::InputMapper, &export, ctx, async {
            self.json_output(&export, call.await?)
        })
        .await
    }

    /// `reducer.reduce`: merges a parallel stage's branch results.
    pub async fn reduce(
        &self,
        rt: &Runtime,
        ctx: &CallContext,
        outputs: &[StepResult],
        prior: &[StepResult],
    ) -> Result<Served<Value>, CallError> {
        let export = self.export_name("reducer.reduce", &ctx.entry);
        let Some(idx) = self.exports.reducer.clone() else {
            return Err(self.error(&export, CallErrorKind::NotExported("reducer")));
        };
        let wctx = bindings::call_context(ctx);
        let outputs: Vec<_> = outputs.iter().map(bindings::step_result).collect();
        let prior: Vec<_> = prior.iter().map(bindings::step_result).collect();
        let call = self.call(
            rt,
            Kind::Reducer,
            &export,
            ctx,
            true,
            move |mut store, inst| async move {
                let r = match idx.load(&mut store, &inst) {
                    Ok(g) => g.call_reduce(&mut store, &wctx, &outputs, &prior).await,
                    Err(e) => Err(e),
                };
                (store, r)
            },
        );
        self.traced(Kind::Reducer, &export, ctx, async {
            self.json_output(&export, call.await?)
        })
        .await
    }

    /// `tool.invoke`: runs tool `ctx.entry` with the model's arguments.
    /// Validating the arguments against the tool's schema is the caller's
    /// job (the agent loop), so that the error can go back to the model.
    pub async fn invoke_tool(
        &self,
        rt: &Runtime,
        ctx: &CallContext,
        arguments: &Value,
    ) -> Result<Served<Value>, CallError> {
        let export = self.export_name("tool.invoke", &ctx.entry);
        let Some(idx) = self.exports.tool.clone() else {
            return Err(self.error(&export, CallErrorKind::NotExported("tool")));
        };
        let wctx = bindings::call_context(ctx);
        let name = ctx.entry.clone();
        let arguments = arguments.to_string();
        let call = self.call(
            rt,
            Kind::Tool,
            &export,
            ctx,
            true,
            move |mut store, inst| async move {
                let r = match idx.load(&mut store, &inst) {
                    Ok(g) => g.call_invoke(&mut store, &wctx, &name, &arguments).await,
                    Err(e) => Err(e),
                };
                (store, r)
            },
        );
        self.traced(Kind::Tool, &export, ctx, async {
            self.json_output(&export, call.await?)
        })
        .await
    }

    /// `guardrail.check` for one phase.
    pub async fn check_guardrail(
        &self,
        rt: &Runtime,
        ctx: &CallContext,
        phase: Phase,
        payload: &Value,
    ) -> Result<Served<Verdict>, CallError> {
        let export = self.export_name("guardrail.check", &ctx.entry);
        let Some(idx) = self.exports.guardrail.clone() else {
            return Err(self.error(&export, CallErrorKind::NotExported("guardrail")));
        };
        let wctx = bindings::call_context(ctx);
        let payload = payload.to_string();
        let wphase: guardrail::Phase = phase.into();
        let call = self.call(
            rt,
            Kind::Guardrail,
            &export,
            ctx,
            true,
            move |mut store, inst| async move {
                let r = match idx.load(&mut store, &inst) {
                    Ok(g) => g.call_check(&mut store, &wctx, wphase, &payload).await,
                    Err(e) => Err(e),
                };
                (store, r)
            },
        );
        self.traced(Kind::Guardrail, &export, ctx, async {
            let served = call.await?;
            let v = served.value;
            self.check_size(&export, v.message.len() + v.info.len())?;
            let info = if v.info.trim().is_empty() {
                Value::Null
            } else {
                self.parse_json(&export, &v.info)?
            };
            Ok(Served {
                value: Verdict {
                    tripwire: v.tripwire,
                    message: v.message,
                    info,
                },
                plugin: served.plugin,
                digest: served.digest,
                elapsed: served.elapsed,
            })
        })
        .await
    }

    /// Runs a call made for a run under its `plugin_call` span. Load-time
    /// calls (`describe`, `tool.definitions`) stay untraced: they belong to
    /// no run and would each start a trace of their own.
    async fn traced<R>(
        &self,
        kind: Kind,
        export: &str,
        ctx: &CallContext,
        call: impl Future<Output = Result<Served<R>, CallError>>,
    ) -> Result<Served<R>, CallError> {
        let span = tracing::info_span!(
            "plugin_call",
            otel.name = %format_args!("{} {}", kind.as_str(), self.name),
            otel.status_code = Empty,
            otel.status_description = Empty,
            plugin.name = %self.name,
            plugin.kind = kind.as_str(),
            plugin.entry = %ctx.entry,
            plugin.export = export,
            plugin.digest = %self.digest,
            error.type = Empty,
        );
        let result = call.instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("error.type", e.kind.as_str());
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_description", tracing::field::display(e));
        }
        result
    }

    fn export_name(&self, func: &str, entry: &str) -> String {
        if entry.is_empty() {
            func.to_string()
        } else {
            format!("{func}[{entry}]")
        }
    }

    fn error(&self, export: &str, kind: CallErrorKind) -> CallError {
        CallError {
            plugin: self.name.to_string(),
            file: self.path.display().to_string(),
            export: export.to_string(),
            kind,
        }
    }

    /// The output cap: lifting already bounded what a plugin returns by its
    /// memory cap; this bounds what flows on into the run.
    fn check_size(&self, export: &str, size: usize) -> Result<(), CallError> {
        if size > self.limits.output_bytes {
            return Err(self.error(
                export,
                CallErrorKind::OutputTooLarge {
                    size,
                    limit: self.limits.output_bytes,
                },
            ));
        }
        Ok(())
    }

    fn parse_json(&self, export: &str, text: &str) -> Result<Value, CallError> {
        self.check_size(export, text.len())?;
        serde_json::from_str(text)
            .map_err(|e| self.error(export, CallErrorKind::BadOutput(e.to_string())))
    }

    fn json_output(
        &self,
        export: &str,
        served: Served<String>,
    ) -> Result<Served<Value>, CallError> {
        let value = self.parse_json(export, &served.value)?;
        Ok(Served {
            value,
            plugin: served.plugin,
            digest: served.digest,
            elapsed: served.elapsed,
        })
    }

    /// Runs `f` against a fresh instance in a fresh store, under the
    /// plugin's deadline and memory cap, and classifies any failure.
    async fn call<R, F, Fut>(
        &self,
        rt: &Runtime,
        kind: Kind,
        export: &str,
        ctx: &CallContext,
        deterministic: bool,
        f: F,
    ) -> Result<Served<R>, CallError>
    where
        F: FnOnce(Store<CallState>, Instance) -> Fut,
        Fut: Future<Output = (Store<CallState>, wasmtime::Result<Result<R, String>>)>,
    {
        // Waits for a pooling-allocator slot rather than failing the call.
        let _permit = rt
            .permits
            .acquire()
            .await
            .map_err(|e| self.error(export, CallErrorKind::Instantiate(e.to_string())))?;
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let determinism = (deterministic && kind.is_hook()).then(|| Determinism {
            seed: seed(&self.name, kind, ctx),
            wall_start: Duration::from_millis(ctx.logical_time_ms),
        });
        let setup = CallSetup {
            plugin: self.name.clone(),
            deadline,
            memory_limit: self.limits.memory_bytes,
            determinism,
        };
        let mut store = Store::new(rt.engine(), CallState::new(setup));
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            if Instant::now() >= cx.data().setup.deadline {
                cx.data_mut().timed_out = true;
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let pre = self.pre.clone();
        let run = async move {
            match pre.instantiate_async(&mut store).await {
                Ok(instance) => {
                    let (store, r) = f(store, instance).await;
                    (store, r, false)
                }
                Err(e) => (store, Err(e), true),
            }
        };
        let outcome = tokio::time::timeout(self.limits.timeout + TIMEOUT_GRACE, run).await;
        let elapsed = started.elapsed();
        let (store, result, instantiating) = match outcome {
            Ok(v) => v,
            Err(_) => {
                return Err(self.error(export, CallErrorKind::Timeout(self.limits.timeout)));
            }
        };
        // Classify before flushing: the error quotes the guest's stderr.
        let result = result.map_err(|e| classify(&e, store.data(), self.limits, instantiating));
        store.data().flush_output();
        match result {
            Ok(Ok(value)) => Ok(Served {
                value,
                plugin: self.name.clone(),
                digest: self.digest.clone(),
                elapsed,
            }),
            Ok(Err(message)) => Err(self.error(
                export,
                CallErrorKind::Guest(truncate_owned(message, STDERR_IN_ERROR * 4)),
            )),
            Err(kind) => Err(self.error(export, kind)),
        }
    }
}

fn classify(
    e: &wasmtime::Error,
    state: &CallState,
    limits: Limits,
    instantiating: bool,
) -> CallErrorKind {
    if state.timed_out {
        return CallErrorKind::Timeout(limits.timeout);
    }
    if let Some((limit, requested)) = state.memory_refused {
        return CallErrorKind::Memory { limit, requested };
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        let what = match trap {
            Trap::UnreachableCodeReached => {
                "the plugin panicked or aborted (wasm `unreachable`)".to_string()
            }
            Trap::StackOverflow => "stack overflow (unbounded recursion?)".to_string(),
            Trap::MemoryOutOfBounds => {
                "out-of-bounds memory access (a Rust guest overflowing its stack ends here too)"
                    .to_string()
            }
            Trap::Interrupt => return CallErrorKind::Timeout(limits.timeout),
            other => other.to_string(),
        };
        return CallErrorKind::Trap {
            trap: what,
            stderr: state.stderr.tail(STDERR_IN_ERROR),
        };
    }
    if instantiating {
        return CallErrorKind::Instantiate(format!("{e:#}"));
    }
    CallErrorKind::Trap {
        trap: first_line(&format!("{e:#}")),
        stderr: state.stderr.tail(STDERR_IN_ERROR),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn truncate_owned(mut s: String, max: usize) -> String {
    if s.len() > max {
        s.truncate(s.floor_char_boundary(max));
        s.push('…');
    }
    s
}

/// Seed of a hook's deterministic random source and clock: a hash of
/// everything that identifies the call, so the same call sees the same values.
fn seed(plugin: &str, kind: Kind, ctx: &CallContext) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [
        plugin,
        kind.as_str(),
        &ctx.run_id,
        &ctx.workflow_key,
        &ctx.stage,
        &ctx.entry,
    ] {
        h.update(part.as_bytes());
        h.update(&[0xff]);
    }
    h.update(&ctx.step.to_le_bytes());
    h.update(ctx.config.to_string().as_bytes());
    h.digest128()
}

fn check_limits(name: &str, limits: &Limits) -> Result<(), LoadError> {
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
        if iface != "describe" && Kind::from_interface(iface).is_none() {
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
        if e.name.is_empty() || e.name.contains(['#', ' ', '/']) || e.name.len() > 128 {
            return Err(bad(format!(
                "entry name `{}` is invalid (1-128 characters, no spaces, `#` or `/`)",
                e.name
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
                e.kind.interface()
            )));
        }
    }
    Ok(entries)
}

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
                "tool `{}`: parameters must be a JSON Schema object",
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

//! The sandboxed call harness: every call gets a fresh store and instance
//! under the plugin's deadline and memory cap, hooks get a seeded clock and
//! random source, and every failure becomes a [`CallError`] naming the plugin.

use super::error::{CallError, CallErrorKind, SlotShortage};
use super::http::NetHooks;
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::sandbox::{CallSetup, CallState, Determinism};
use super::types::{CallContext, Limits, Served};
use crate::spec::Kind;
use crate::util::clip_owned;
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, SemaphorePermit};
use tracing::Instrument;
use tracing::field::Empty;
use wasmtime::component::Instance;
use wasmtime::{Store, Trap, UpdateDeadline};

/// Extra time granted past the deadline before the call future itself is
/// dropped. The epoch callback normally stops the guest first; this only
/// catches a guest stuck where no epoch check runs.
const TIMEOUT_GRACE: Duration = Duration::from_millis(250);
/// How much of a guest's stderr goes into an error message.
const STDERR_IN_ERROR: usize = 600;

impl Plugin {
    /// Calls an export for a run, under its `plugin_call` span: `f` runs in a
    /// fresh instance as an entry of `kind`, and `finish` checks and converts
    /// what it returned. Load-time calls (`describe`, `tool.definitions`) use
    /// [`Self::call`] directly and stay untraced: they belong to no run and
    /// would each start a trace of their own.
    pub(super) async fn run<R, T, F, Fut>(
        &self,
        rt: &Runtime,
        kind: Kind,
        export: &str,
        ctx: &CallContext,
        f: F,
        finish: impl FnOnce(Served<R>) -> Result<Served<T>, CallError>,
    ) -> Result<Served<T>, CallError>
    where
        F: FnOnce(Store<CallState>, Instance) -> Fut,
        Fut: Future<Output = (Store<CallState>, wasmtime::Result<Result<R, String>>)>,
    {
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
        let started = Instant::now();
        let call = async { finish(self.call(rt, export, ctx, Some(kind), f).await?) };
        let result = call.instrument(span.clone()).await;
        if let Some(observer) = rt.observer() {
            observer.plugin_call(&self.name, kind, started.elapsed(), result.is_ok());
        }
        if let Err(e) = &result {
            span.record("error.type", e.kind.as_str());
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_description", tracing::field::display(e));
        }
        result
    }

    /// `func` (`guard.check`) with the entry it serves, as errors name it.
    pub(super) fn export_name(&self, func: &str, entry: &str) -> String {
        if entry.is_empty() {
            func.to_string()
        } else {
            format!("{func}[{entry}]")
        }
    }

    pub(super) fn error(&self, export: &str, kind: CallErrorKind) -> CallError {
        CallError {
            plugin: self.name.to_string(),
            file: self.path.display().to_string(),
            export: export.to_string(),
            kind,
        }
    }

    /// The limits a call runs under: the spec's for this plugin where it
    /// sets them (see [`CallContext::limits`]), else those it was loaded
    /// with.
    pub(super) fn limits_for(&self, ctx: &CallContext) -> Limits {
        ctx.limits.map_or(self.limits, |o| o.apply(self.limits))
    }

    /// The output cap `limit`: lifting already bounded what a plugin
    /// returns by its memory cap; this bounds what flows on into the run.
    pub(super) fn check_size(
        &self,
        export: &str,
        size: usize,
        limit: usize,
    ) -> Result<(), CallError> {
        if size > limit {
            return Err(self.error(export, CallErrorKind::OutputTooLarge { size, limit }));
        }
        Ok(())
    }

    pub(super) fn parse_json(
        &self,
        export: &str,
        text: &str,
        limit: usize,
    ) -> Result<Value, CallError> {
        self.check_size(export, text.len(), limit)?;
        serde_json::from_str(text)
            .map_err(|e| self.error(export, CallErrorKind::BadOutput(e.to_string())))
    }

    pub(super) fn json_output(
        &self,
        export: &str,
        served: Served<String>,
        limit: usize,
    ) -> Result<Served<Value>, CallError> {
        let value = self.parse_json(export, &served.value, limit)?;
        Ok(served.map(|_| value))
    }

    /// Runs `f` against a fresh instance in a fresh store, under the
    /// plugin's deadline and memory cap, and classifies any failure. A call
    /// for a run names the `kind` it serves: hooks among them get a clock
    /// and random source seeded from the call, so a replay sees the same
    /// values. Load-time calls pass `None` and see the real ones.
    pub(super) async fn call<R, F, Fut>(
        &self,
        rt: &Runtime,
        export: &str,
        ctx: &CallContext,
        run_kind: Option<Kind>,
        f: F,
    ) -> Result<Served<R>, CallError>
    where
        F: FnOnce(Store<CallState>, Instance) -> Fut,
        Fut: Future<Output = (Store<CallState>, wasmtime::Result<Result<R, String>>)>,
    {
        let limits = self.limits_for(ctx);
        let (_plugin_permit, _permit) = self.slot(rt, export, limits.timeout).await?;
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let determinism = run_kind
            .filter(|kind| kind.is_hook())
            .map(|kind| Determinism {
                seed: seed(&self.name, kind, ctx),
                wall_start: Duration::from_millis(ctx.logical_time_ms),
            });
        let setup = CallSetup {
            plugin: self.name.clone(),
            deadline,
            memory_limit: limits.memory_bytes,
            determinism,
            idempotency_key: ctx.idempotency_key.clone(),
            net: NetHooks::new(
                run_kind == Some(Kind::Tool),
                ctx.http.as_ref().map(|h| h.0.clone()),
            ),
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
        let outcome = tokio::time::timeout(limits.timeout + TIMEOUT_GRACE, run).await;
        let elapsed = started.elapsed();
        let (store, result, instantiating) = match outcome {
            Ok(v) => v,
            Err(_) => {
                return Err(self.error(export, CallErrorKind::Timeout(limits.timeout)));
            }
        };
        // Classify before flushing: the error quotes the guest's stderr.
        let result = result.map_err(|e| classify(&e, store.data(), limits, instantiating));
        store.data().flush_output();
        let net = &store.data().setup.net;
        match result {
            Ok(Ok(value)) => Ok(Served {
                value,
                plugin: self.name.clone(),
                digest: self.digest.clone(),
                elapsed,
            }),
            Ok(Err(message)) => Err(net.explain(self.error(
                export,
                CallErrorKind::Guest(clip_owned(net.mask(message), STDERR_IN_ERROR * 4)),
            ))),
            Err(kind) => Err(net.explain(self.error(export, kind))),
        }
    }
}

impl Plugin {
    /// Waits for a slot of this plugin's share and a pooling-allocator slot,
    /// for at most the call's own timeout: a plugin that holds its whole
    /// share (or plugins that hold every slot) make other calls fail with a
    /// clear error, never wait forever. The wait does not eat into the
    /// call's deadline, which starts once it has a slot.
    async fn slot<'r>(
        &self,
        rt: &'r Runtime,
        export: &str,
        bound: Duration,
    ) -> Result<(OwnedSemaphorePermit, SemaphorePermit<'r>), CallError> {
        let share = rt.plugin_permits(&self.digest);
        let started = Instant::now();
        let closed = |e: tokio::sync::AcquireError| {
            self.error(export, CallErrorKind::Instantiate(e.to_string()))
        };
        let no_slot = |busy| {
            self.error(
                export,
                CallErrorKind::NoSlot {
                    waited: started.elapsed(),
                    busy,
                },
            )
        };
        let own = tokio::time::timeout(bound, share.acquire_owned())
            .await
            .map_err(|_| no_slot(SlotShortage::Plugin { cap: rt.per_plugin }))?
            .map_err(closed)?;
        let left = bound.saturating_sub(started.elapsed());
        let host = tokio::time::timeout(left, rt.permits.acquire())
            .await
            .map_err(|_| no_slot(SlotShortage::Host { slots: rt.slots }))?
            .map_err(closed)?;
        let waited = started.elapsed();
        if waited >= Duration::from_millis(100) {
            tracing::debug!(plugin = %self.name, waited_ms = waited.as_millis() as u64, "waited for a plugin call slot");
        }
        Ok((own, host))
    }
}

/// Names why a call failed: the sandbox's own records (deadline, memory
/// refused) win over the trap they caused, which says less.
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
        trap: format!("{e:#}")
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        stderr: state.stderr.tail(STDERR_IN_ERROR),
    }
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

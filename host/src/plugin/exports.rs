//! The typed exports of a plugin: one method per WIT function, converting
//! host types to bindgen types on the way in and back on the way out.

use super::bindings::{self, guard, guardrail, input_mapper, reducer, tool, wit};
use super::error::{CallError, CallErrorKind};
use super::lift::{self, Budget, Lifted, RawEntry, RawExports, RawToolDefinition, RawVerdict};
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::sandbox::CallState;
use super::types::{CallContext, EntryInfo, Phase, Served, StepResult, ToolDefinition, Verdict};
use crate::spec::Kind;
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre};

/// The plugin exports this host found, with their pre-resolved indices.
#[derive(Clone)]
pub(super) struct Exports {
    guard: Option<guard::GuestIndices>,
    input_mapper: Option<input_mapper::GuestIndices>,
    reducer: Option<reducer::GuestIndices>,
    tool: Option<tool::GuestIndices>,
    guardrail: Option<guardrail::GuestIndices>,
    /// The functions the host calls, for lazily lifted calls (`lift`).
    pub(super) raw: RawExports,
}

impl Exports {
    /// Resolves the optional interfaces against `pre`; an interface the
    /// component lacks is `None` and its calls fail as not exported.
    /// `describe` was checked by the caller (it is not optional).
    pub(super) fn new(pre: &InstancePre<CallState>, wit_version: &str) -> Self {
        Exports {
            raw: RawExports::new(pre.component(), wit_version),
            guard: guard::GuestIndices::new(pre).ok(),
            input_mapper: input_mapper::GuestIndices::new(pre).ok(),
            reducer: reducer::GuestIndices::new(pre).ok(),
            tool: tool::GuestIndices::new(pre).ok(),
            guardrail: guardrail::GuestIndices::new(pre).ok(),
        }
    }

    pub(super) fn has(&self, kind: Kind) -> bool {
        match kind {
            Kind::Guard => self.guard.is_some(),
            Kind::InputMapper => self.input_mapper.is_some(),
            Kind::Reducer => self.reducer.is_some(),
            Kind::Tool => self.tool.is_some(),
            Kind::Guardrail => self.guardrail.is_some(),
        }
    }
}

/// The closure [`Plugin::call`] runs in a fresh instance: call export
/// `$index` with `$params` (typed `$P`), its results (typed `$R`) lifted
/// lazily, and convert them with `$convert` while the store is still at hand
/// (see `lift`). Written as a macro: the parameters borrow values the
/// closure owns.
macro_rules! raw_call {
    ($index:expr, $P:ty, $R:ty, $params:expr, |$store:ident, $out:pat_param| $convert:expr) => {{
        let index = $index;
        move |mut $store: Store<CallState>, instance: Instance| async move {
            let r = match lift::call::<$P, $R>(&mut $store, &instance, &index, $params).await {
                Ok($out) => Ok($convert),
                Err(e) => match e.downcast::<lift::Refused>() {
                    Ok(refused) => Ok(Ok(Err(refused.0))),
                    Err(e) => Err(e),
                },
            };
            ($store, r)
        }
    }};
}

impl Plugin {
    /// Calls `describe` in a fresh instance.
    pub async fn describe(&self, rt: &Runtime) -> Result<Vec<EntryInfo>, CallError> {
        const EXPORT: &str = "describe.describe";
        let index = self.raw(EXPORT, "describe", &self.exports.raw.describe)?;
        let limit = self.limits.output_bytes;
        let f = raw_call!(
            index,
            (),
            (lift::CappedList<RawEntry>,),
            (),
            |store, (list,)| Ok(lift::entries(&mut store, &list, limit))
        );
        let served = self
            .call(rt, EXPORT, &CallContext::default(), None, f)
            .await?;
        let entries = self.lifted(EXPORT, served)?.value;
        Ok(entries
            .into_iter()
            .map(|e| EntryInfo {
                name: e.name,
                kind: e.kind,
                description: e.description,
            })
            .collect())
    }

    /// Calls `tool.definitions` in a fresh instance.
    pub async fn tool_definitions(&self, rt: &Runtime) -> Result<Vec<ToolDefinition>, CallError> {
        const EXPORT: &str = "tool.definitions";
        self.indices(EXPORT, Kind::Tool, &self.exports.tool)?;
        let index = self.raw(EXPORT, "tool", &self.exports.raw.definitions)?;
        let limit = self.limits.output_bytes;
        let f = raw_call!(
            index,
            (),
            (lift::CappedList<RawToolDefinition>,),
            (),
            |store, (list,)| Ok(lift::tool_definitions(&mut store, &list, limit))
        );
        let served = self
            .call(rt, EXPORT, &CallContext::default(), None, f)
            .await?;
        let raw = self.lifted(EXPORT, served)?.value;
        let mut defs = Vec::with_capacity(raw.len());
        for d in raw {
            let parameters = self.parse_json(EXPORT, &d.parameters, limit)?;
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
        self.indices(&export, Kind::Guard, &self.exports.guard)?;
        let index = self.raw(&export, "guard", &self.exports.raw.guard)?;
        let wctx = bindings::call_context(ctx);
        let input = input.to_string();
        let prior = bindings::step_results(prior);
        let f = raw_call!(
            index,
            (&wit::CallContext, &str, &[wit::StepResult]),
            (Result<bool, lift::GuestStr>,),
            (&wctx, input.as_str(), prior.as_slice()),
            |store, (r,)| lift::result(&mut store, r, |_, b| Ok(b))
        );
        self.run(rt, Kind::Guard, &export, ctx, f, |s| {
            self.lifted(&export, s)
        })
        .await
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
        self.indices(&export, Kind::InputMapper, &self.exports.input_mapper)?;
        let index = self.raw(&export, "input-mapper", &self.exports.raw.map_input)?;
        let limit = self.limits_for(ctx).output_bytes;
        let wctx = bindings::call_context(ctx);
        let input = input.to_string();
        let prior = bindings::step_results(prior);
        let f = raw_call!(
            index,
            (&wit::CallContext, &str, &[wit::StepResult]),
            (Result<lift::GuestStr, lift::GuestStr>,),
            (&wctx, input.as_str(), prior.as_slice()),
            |store, (r,)| lift::result(&mut store, r, |st, s| Budget::new(limit).take(st, &s))
        );
        self.run(rt, Kind::InputMapper, &export, ctx, f, |s| {
            self.json_output(&export, self.lifted(&export, s)?, limit)
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
        self.indices(&export, Kind::Reducer, &self.exports.reducer)?;
        let index = self.raw(&export, "reducer", &self.exports.raw.reduce)?;
        let limit = self.limits_for(ctx).output_bytes;
        let wctx = bindings::call_context(ctx);
        let outputs = bindings::step_results(outputs);
        let prior = bindings::step_results(prior);
        let f = raw_call!(
            index,
            (&wit::CallContext, &[wit::StepResult], &[wit::StepResult]),
            (Result<lift::GuestStr, lift::GuestStr>,),
            (&wctx, outputs.as_slice(), prior.as_slice()),
            |store, (r,)| lift::result(&mut store, r, |st, s| Budget::new(limit).take(st, &s))
        );
        self.run(rt, Kind::Reducer, &export, ctx, f, |s| {
            self.json_output(&export, self.lifted(&export, s)?, limit)
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
        self.indices(&export, Kind::Tool, &self.exports.tool)?;
        let index = self.raw(&export, "tool", &self.exports.raw.invoke)?;
        let limit = self.limits_for(ctx).output_bytes;
        let wctx = bindings::call_context(ctx);
        let name = ctx.entry.clone();
        let arguments = arguments.to_string();
        let f = raw_call!(
            index,
            (&wit::CallContext, &str, &str),
            (Result<lift::GuestStr, lift::GuestStr>,),
            (&wctx, name.as_str(), arguments.as_str()),
            |store, (r,)| lift::result(&mut store, r, |st, s| Budget::new(limit).take(st, &s))
        );
        self.run(rt, Kind::Tool, &export, ctx, f, |s| {
            let mut served = self.lifted(&export, s)?;
            // A server that echoes a secret header does not hand it to
            // the journal and the model.
            if let Some(http) = &ctx.http {
                served.value = http.0.mask(served.value);
            }
            self.json_output(&export, served, limit)
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
        self.indices(&export, Kind::Guardrail, &self.exports.guardrail)?;
        let index = self.raw(&export, "guardrail", &self.exports.raw.guardrail)?;
        let limit = self.limits_for(ctx).output_bytes;
        let wctx = bindings::call_context(ctx);
        let payload = payload.to_string();
        let wphase: guardrail::Phase = phase.into();
        let f = raw_call!(
            index,
            (&wit::CallContext, guardrail::Phase, &str),
            (Result<RawVerdict, lift::GuestStr>,),
            (&wctx, wphase, payload.as_str()),
            |store, (r,)| lift::result(&mut store, r, |st, v| lift::verdict(st, v, limit))
        );
        self.run(rt, Kind::Guardrail, &export, ctx, f, |served| {
            let served = self.lifted(&export, served)?;
            let v = &served.value;
            let info = if v.info.trim().is_empty() {
                Value::Null
            } else {
                self.parse_json(&export, &v.info, limit)?
            };
            Ok(served.map(|v| Verdict {
                tripwire: v.tripwire,
                message: v.message,
                info,
            }))
        })
        .await
    }

    /// A lazily lifted value, or the error naming why the host refused it.
    fn lifted<T>(&self, export: &str, served: Served<Lifted<T>>) -> Result<Served<T>, CallError> {
        match served.value {
            Ok(value) => Ok(Served {
                value,
                plugin: served.plugin,
                digest: served.digest,
                elapsed: served.elapsed,
            }),
            Err(kind) => Err(self.error(export, kind)),
        }
    }

    /// The export index of one function, or the error a call to a component
    /// without it gets.
    fn raw(
        &self,
        export: &str,
        interface: &'static str,
        index: &Option<ComponentExportIndex>,
    ) -> Result<ComponentExportIndex, CallError> {
        (*index).ok_or_else(|| self.error(export, CallErrorKind::NotExported(interface)))
    }

    /// The indices of the interface serving `kind`, or the error a call to
    /// a component without it gets.
    fn indices<I: Clone>(
        &self,
        export: &str,
        kind: Kind,
        indices: &Option<I>,
    ) -> Result<I, CallError> {
        indices.clone().ok_or_else(|| {
            self.error(
                export,
                CallErrorKind::NotExported(bindings::interface(kind)),
            )
        })
    }
}

//! The typed exports of a plugin: one method per WIT function, converting
//! host types to bindgen types on the way in and back on the way out.

use super::bindings::{self, describe, guard, guardrail, input_mapper, reducer, tool};
use super::error::{CallError, CallErrorKind};
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::sandbox::CallState;
use super::types::{CallContext, EntryInfo, Phase, Served, StepResult, ToolDefinition, Verdict};
use crate::spec::Kind;
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

/// The plugin exports this host found, with their pre-resolved indices.
#[derive(Clone)]
pub(super) struct Exports {
    describe: describe::GuestIndices,
    guard: Option<guard::GuestIndices>,
    input_mapper: Option<input_mapper::GuestIndices>,
    reducer: Option<reducer::GuestIndices>,
    tool: Option<tool::GuestIndices>,
    guardrail: Option<guardrail::GuestIndices>,
}

impl Exports {
    /// Resolves the optional interfaces against `pre`; an interface the
    /// component lacks is `None` and its calls fail as not exported.
    pub(super) fn new(describe: describe::GuestIndices, pre: &InstancePre<CallState>) -> Self {
        Exports {
            describe,
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

/// The closure [`Plugin::call`] runs in a fresh instance: load the
/// interface's functions from `indices`, then make one call, written as
/// `guest_call!(indices, |guest, store| guest.call_x(&mut store, ..))`.
/// Bindgen gives every interface its own `GuestIndices` and `Guest` types,
/// so a macro rather than a generic function.
macro_rules! guest_call {
    ($indices:ident, |$guest:ident, $store:ident| $call:expr) => {
        move |mut $store: Store<CallState>, instance: Instance| async move {
            let result = match $indices.load(&mut $store, &instance) {
                Ok($guest) => $call.await,
                Err(e) => Err(e),
            };
            ($store, result)
        }
    };
}

impl Plugin {
    /// Calls `describe` in a fresh instance.
    pub async fn describe(&self, rt: &Runtime) -> Result<Vec<EntryInfo>, CallError> {
        const EXPORT: &str = "describe.describe";
        let idx = self.exports.describe.clone();
        let f = guest_call!(idx, |g, store| async {
            g.call_describe(&mut store).await.map(Ok)
        });
        let served = self
            .call(rt, EXPORT, &CallContext::default(), None, f)
            .await?;
        let size = served
            .value
            .iter()
            .map(|e| e.name.len() + e.description.len())
            .sum();
        self.check_size(EXPORT, size)?;
        Ok(served.value.into_iter().map(Into::into).collect())
    }

    /// Calls `tool.definitions` in a fresh instance.
    pub async fn tool_definitions(&self, rt: &Runtime) -> Result<Vec<ToolDefinition>, CallError> {
        const EXPORT: &str = "tool.definitions";
        let idx = self.indices(EXPORT, Kind::Tool, &self.exports.tool)?;
        let f = guest_call!(idx, |g, store| async {
            g.call_definitions(&mut store).await.map(Ok)
        });
        let served = self
            .call(rt, EXPORT, &CallContext::default(), None, f)
            .await?;
        let size = served
            .value
            .iter()
            .map(|d| d.name.len() + d.description.len() + d.parameters.len())
            .sum();
        self.check_size(EXPORT, size)?;
        let mut defs = Vec::with_capacity(served.value.len());
        for d in served.value {
            let parameters = self.parse_json(EXPORT, &d.parameters)?;
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
        let idx = self.indices(&export, Kind::Guard, &self.exports.guard)?;
        let wctx = bindings::call_context(ctx);
        let input = input.to_string();
        let prior = bindings::step_results(prior);
        let f = guest_call!(idx, |g, store| g
            .call_check(&mut store, &wctx, &input, &prior));
        self.run(rt, Kind::Guard, &export, ctx, f, Ok).await
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
        let idx = self.indices(&export, Kind::InputMapper, &self.exports.input_mapper)?;
        let wctx = bindings::call_context(ctx);
        let input = input.to_string();
        let prior = bindings::step_results(prior);
        let f = guest_call!(idx, |g, store| g
            .call_map_input(&mut store, &wctx, &input, &prior));
        self.run(rt, Kind::InputMapper, &export, ctx, f, |s| {
            self.json_output(&export, s)
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
        let idx = self.indices(&export, Kind::Reducer, &self.exports.reducer)?;
        let wctx = bindings::call_context(ctx);
        let outputs = bindings::step_results(outputs);
        let prior = bindings::step_results(prior);
        let f = guest_call!(idx, |g, store| g
            .call_reduce(&mut store, &wctx, &outputs, &prior));
        self.run(rt, Kind::Reducer, &export, ctx, f, |s| {
            self.json_output(&export, s)
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
        let idx = self.indices(&export, Kind::Tool, &self.exports.tool)?;
        let wctx = bindings::call_context(ctx);
        let name = ctx.entry.clone();
        let arguments = arguments.to_string();
        let f = guest_call!(idx, |g, store| g
            .call_invoke(&mut store, &wctx, &name, &arguments));
        self.run(rt, Kind::Tool, &export, ctx, f, |s| {
            self.json_output(&export, s)
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
        let idx = self.indices(&export, Kind::Guardrail, &self.exports.guardrail)?;
        let wctx = bindings::call_context(ctx);
        let payload = payload.to_string();
        let wphase: guardrail::Phase = phase.into();
        let f = guest_call!(idx, |g, store| g
            .call_check(&mut store, &wctx, wphase, &payload));
        self.run(rt, Kind::Guardrail, &export, ctx, f, |served| {
            let v = &served.value;
            self.check_size(&export, v.message.len() + v.info.len())?;
            let info = if v.info.trim().is_empty() {
                Value::Null
            } else {
                self.parse_json(&export, &v.info)?
            };
            Ok(served.map(|v| Verdict {
                tripwire: v.tripwire,
                message: v.message,
                info,
            }))
        })
        .await
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

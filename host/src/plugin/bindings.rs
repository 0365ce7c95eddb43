//! Bindings for `workflow:plugin@0.1.1`, the only place that sees
//! bindgen-generated types. Conversions to the host's own types live here.
//!
//! 0.1.1 only added `host.idempotency-key`; components built against 0.1.0
//! load and run unchanged, because wasmtime matches names semver-compatibly
//! (its linker serves their `host@0.1.0` import with our `host@0.1.1`, and
//! our `tool@0.1.1` export lookups find their `tool@0.1.0`).

use super::types;
use crate::spec::Kind;
use strum::IntoEnumIterator;

wasmtime::component::bindgen!({
    path: "../wit/plugin@0.1.0",
    world: "plugin",
    exports: { default: async },
});

pub(super) use exports::workflow::plugin::{
    describe, guard, guardrail, input_mapper, reducer, tool,
};
pub(super) use workflow::plugin::types as wit;

/// The WIT versions this host loads, newest first.
pub(super) const SUPPORTED_VERSIONS: &[&str] = &["0.1.1", "0.1.0"];
/// The package every plugin interface belongs to.
pub(super) const PACKAGE: &str = "workflow:plugin";

/// The WIT interface that serves entries of `kind` (`input-mapper`).
pub(super) fn interface(kind: Kind) -> &'static str {
    match kind {
        Kind::Guard => "guard",
        Kind::InputMapper => "input-mapper",
        Kind::Reducer => "reducer",
        Kind::Tool => "tool",
        Kind::Guardrail => "guardrail",
    }
}

/// The kind whose entries WIT interface `name` serves, if any.
pub(super) fn kind_of_interface(name: &str) -> Option<Kind> {
    Kind::iter().find(|k| interface(*k) == name)
}

impl From<wit::Kind> for Kind {
    fn from(k: wit::Kind) -> Self {
        match k {
            wit::Kind::Guard => Kind::Guard,
            wit::Kind::InputMapper => Kind::InputMapper,
            wit::Kind::Reducer => Kind::Reducer,
            wit::Kind::Tool => Kind::Tool,
            wit::Kind::Guardrail => Kind::Guardrail,
        }
    }
}

impl From<wit::Entry> for types::EntryInfo {
    fn from(e: wit::Entry) -> Self {
        types::EntryInfo {
            name: e.name,
            kind: e.kind.into(),
            description: e.description,
        }
    }
}

impl From<types::Phase> for guardrail::Phase {
    fn from(p: types::Phase) -> Self {
        match p {
            types::Phase::Input => guardrail::Phase::Input,
            types::Phase::Output => guardrail::Phase::Output,
            types::Phase::ToolInput => guardrail::Phase::ToolInput,
            types::Phase::ToolOutput => guardrail::Phase::ToolOutput,
        }
    }
}

pub(crate) fn call_context(ctx: &types::CallContext) -> wit::CallContext {
    wit::CallContext {
        run_id: ctx.run_id.clone(),
        workflow_key: ctx.workflow_key.clone(),
        stage: ctx.stage.clone(),
        step: ctx.step,
        entry: ctx.entry.clone(),
        config: ctx.config.to_string(),
    }
}

pub(crate) fn step_results(results: &[types::StepResult]) -> Vec<wit::StepResult> {
    results
        .iter()
        .map(|r| wit::StepResult {
            stage_name: r.stage_name.clone(),
            step_index: r.step_index,
            agent_key: r.agent_key.clone(),
            parallel_group: r.parallel_group.clone(),
            branch_index: r.branch_index,
            skipped: r.skipped,
            output: r.output.to_string(),
            error: r.error.clone(),
        })
        .collect()
}

//! [`Guardrail`]: what a guardrail reference resolves to — a loaded plugin,
//! or, when no plugin has the name, one of the host's built-in presets
//! ([`super::builtin`]). Both are checked through [`Guardrail::check`] and
//! answer with a [`Served`] verdict, so their callers do not know which
//! they got.

use super::builtin::Preset;
use super::error::{CallError, CallErrorKind};
use super::loaded::Plugin;
use super::runtime::Runtime;
use super::types::{CallContext, Phase, Served, Verdict};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// A resolved guardrail.
#[derive(Clone)]
pub enum Guardrail {
    Plugin(Arc<Plugin>),
    Builtin(Preset),
}

impl Guardrail {
    /// Checks `payload` with the entry and config of `ctx`.
    pub async fn check(
        &self,
        rt: &Runtime,
        ctx: &CallContext,
        phase: Phase,
        payload: &Value,
    ) -> Result<Served<Verdict>, CallError> {
        match self {
            Guardrail::Plugin(plugin) => plugin.check_guardrail(rt, ctx, phase, payload).await,
            Guardrail::Builtin(preset) => {
                let started = Instant::now();
                let verdict = preset
                    .check(&ctx.config, phase, payload)
                    .map_err(|e| CallError {
                        plugin: preset.name().to_string(),
                        file: "(built in)".into(),
                        export: format!("guardrail.check[{}]", preset.name()),
                        kind: CallErrorKind::Guest(e),
                    })?;
                Ok(Served {
                    value: verdict,
                    plugin: Arc::from(preset.name()),
                    digest: Arc::from(preset.digest()),
                    elapsed: started.elapsed(),
                })
            }
        }
    }
}

//! The operator's plugin settings: the `[plugins]` section of the host
//! config file. Trusted (the operator's), unlike a spec's per-plugin limits.

use super::runtime::RuntimeOptions;
use serde::Deserialize;
use std::time::Duration;

/// `[plugins]` in the host config file. Every key is optional; the
/// defaults are [`RuntimeOptions`]'.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPolicy {
    /// Largest `.wasm` file loaded, in bytes (checked before reading).
    pub max_wasm_bytes: u64,
    /// How long compiling a new (uncached) component may take, in ms.
    pub compile_timeout_ms: u64,
}

impl Default for PluginPolicy {
    fn default() -> Self {
        PluginPolicy {
            max_wasm_bytes: RuntimeOptions::DEFAULT_MAX_WASM_BYTES,
            compile_timeout_ms: RuntimeOptions::DEFAULT_COMPILE_TIMEOUT.as_millis() as u64,
        }
    }
}

impl PluginPolicy {
    /// Sets these limits on `options`.
    pub fn apply(&self, options: &mut RuntimeOptions) {
        options.max_wasm_bytes = self.max_wasm_bytes;
        options.compile_timeout = Duration::from_millis(self.compile_timeout_ms);
    }
}

//! The operator's limits on plugins: the `[plugins]` section of the host
//! configuration. A spec may give a plugin more time, memory or output per
//! call than the defaults, up to these ceilings; and no plugin may hold
//! more than its share of the host's call slots. It also bounds what the
//! host spends loading one: the `.wasm` file's size and its compile time.

use super::types::Limits;
use crate::spec::{MAX_PLUGIN_MEMORY_MIB, Spec, SpecError, SpecErrors, json_key};
use serde::{Deserialize, Serialize};

/// Limits the operator sets for every plugin (host config `[plugins]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPolicy {
    /// Calls of one plugin (one build, by its SHA-256) that may run at
    /// once. Default: half the host's call slots, so a plugin that hangs
    /// until its deadline leaves the other half to everyone else.
    pub max_concurrent_calls_per_plugin: Option<u32>,
    /// Ceiling of a spec's `plugins.<name>.timeout_ms`.
    pub max_timeout_ms: u64,
    /// Ceiling of a spec's `plugins.<name>.memory_mib`.
    pub max_memory_mib: u64,
    /// Ceiling of a spec's `plugins.<name>.output_kib`.
    pub max_output_kib: u64,
    /// Largest `.wasm` file loaded, in bytes (checked before reading).
    pub max_wasm_bytes: u64,
    /// How long compiling a new (uncached) component may take, in ms.
    /// Cranelift cannot be interrupted: the compile thread runs on in the
    /// background, but the load (and whoever waits for it) fails.
    pub compile_timeout_ms: u64,
}

impl PluginPolicy {
    pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 60_000;
    pub const DEFAULT_MAX_OUTPUT_KIB: u64 = 16 << 10;
    pub const DEFAULT_MAX_WASM_BYTES: u64 = 64 << 20;
    pub const DEFAULT_COMPILE_TIMEOUT_MS: u64 = 120_000;

    /// [`Self::compile_timeout_ms`] as a duration.
    pub fn compile_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.compile_timeout_ms)
    }
}

impl Default for PluginPolicy {
    fn default() -> Self {
        PluginPolicy {
            max_concurrent_calls_per_plugin: None,
            max_timeout_ms: Self::DEFAULT_MAX_TIMEOUT_MS,
            max_memory_mib: MAX_PLUGIN_MEMORY_MIB,
            max_output_kib: Self::DEFAULT_MAX_OUTPUT_KIB,
            max_wasm_bytes: Self::DEFAULT_MAX_WASM_BYTES,
            compile_timeout_ms: Self::DEFAULT_COMPILE_TIMEOUT_MS,
        }
    }
}

/// A setting of the `[plugins]` section that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugins.{key}: {reason}")]
pub struct PolicyError {
    pub key: &'static str,
    pub reason: String,
}

impl PluginPolicy {
    /// The settings themselves: ceilings at least the defaults (a plugin
    /// the spec says nothing about must still load), memory within what
    /// the pooling allocator reserves.
    pub fn check(&self) -> Result<(), PolicyError> {
        let d = Limits::default();
        let at_least = |key, value: u64, min: u64, unit: &str| {
            if value < min {
                Err(PolicyError {
                    key,
                    reason: format!("{value} is below the default of {min} {unit}"),
                })
            } else {
                Ok(())
            }
        };
        at_least(
            "max_timeout_ms",
            self.max_timeout_ms,
            d.timeout.as_millis().try_into().unwrap_or(u64::MAX),
            "ms",
        )?;
        at_least(
            "max_memory_mib",
            self.max_memory_mib,
            d.memory_bytes >> 20,
            "MiB",
        )?;
        at_least(
            "max_output_kib",
            self.max_output_kib,
            (d.output_bytes >> 10) as u64,
            "KiB",
        )?;
        if self.max_memory_mib > MAX_PLUGIN_MEMORY_MIB {
            return Err(PolicyError {
                key: "max_memory_mib",
                reason: format!(
                    "{} is above the host's hard ceiling of {MAX_PLUGIN_MEMORY_MIB} MiB",
                    self.max_memory_mib
                ),
            });
        }
        if self.max_wasm_bytes == 0 {
            return Err(PolicyError {
                key: "max_wasm_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if self.compile_timeout_ms == 0 {
            return Err(PolicyError {
                key: "compile_timeout_ms",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_concurrent_calls_per_plugin == Some(0) {
            return Err(PolicyError {
                key: "max_concurrent_calls_per_plugin",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// Calls one plugin may run at once out of `slots`.
    pub fn per_plugin_cap(&self, slots: u32) -> u32 {
        self.max_concurrent_calls_per_plugin
            .unwrap_or(slots / 2)
            .clamp(1, slots.max(1))
    }

    /// Limits of plugin `name` against the ceilings, for whoever loads it;
    /// the message names the spec field.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), String> {
        self.over(limits)
            .into_iter()
            .next()
            .map_or(Ok(()), |(_, message)| Err(message))
    }

    /// Every `plugins.<name>` limit of `spec` above a ceiling, with its
    /// JSON path: refused, not clamped, so a spec never runs with less than
    /// it says.
    pub fn check_spec(&self, spec: &Spec) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        for (name, l) in &spec.plugins {
            let d = Limits::default();
            let limits = Limits {
                timeout: l.timeout().unwrap_or(d.timeout),
                memory_bytes: l.memory_bytes().unwrap_or(d.memory_bytes),
                output_bytes: l.output_bytes().unwrap_or(d.output_bytes),
            };
            let path = json_key("$.plugins", name);
            for (field, message) in self.over(&limits) {
                errors.push(SpecError::new(json_key(&path, field), message));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors::new(errors))
        }
    }

    fn over(&self, limits: &Limits) -> Vec<(&'static str, String)> {
        let mut over = Vec::new();
        let ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
        if ms > self.max_timeout_ms {
            over.push((
                "timeout_ms",
                format!(
                    "`timeout_ms` is {ms}; this host allows at most {} (its operator's plugins.max_timeout_ms)",
                    self.max_timeout_ms
                ),
            ));
        }
        let mib = limits.memory_bytes.div_ceil(1 << 20);
        if mib > self.max_memory_mib {
            over.push((
                "memory_mib",
                format!(
                    "`memory_mib` is {mib}; this host allows at most {} (its operator's plugins.max_memory_mib)",
                    self.max_memory_mib
                ),
            ));
        }
        let kib = (limits.output_bytes as u64).div_ceil(1 << 10);
        if kib > self.max_output_kib {
            over.push((
                "output_kib",
                format!(
                    "`output_kib` is {kib}; this host allows at most {} (its operator's plugins.max_output_kib)",
                    self.max_output_kib
                ),
            ));
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_default_share_is_half_the_slots() {
        let p = PluginPolicy::default();
        assert_eq!(p.per_plugin_cap(64), 32);
        assert_eq!(p.per_plugin_cap(1), 1);
        let p = PluginPolicy {
            max_concurrent_calls_per_plugin: Some(100),
            ..PluginPolicy::default()
        };
        assert_eq!(p.per_plugin_cap(64), 64);
    }

    #[test]
    fn ceilings_below_the_defaults_are_refused() {
        let p = PluginPolicy {
            max_timeout_ms: 10,
            ..PluginPolicy::default()
        };
        assert_eq!(p.check().unwrap_err().key, "max_timeout_ms");
        assert!(PluginPolicy::default().check().is_ok());
    }

    #[test]
    fn limits_over_a_ceiling_name_the_field() {
        let p = PluginPolicy::default();
        let limits = Limits {
            timeout: Duration::from_secs(600),
            ..Limits::default()
        };
        let e = p.check_limits(&limits).unwrap_err();
        assert!(
            e.contains("`timeout_ms` is 600000; this host allows at most 60000"),
            "{e}"
        );
        assert!(p.check_limits(&Limits::default()).is_ok());
    }
}

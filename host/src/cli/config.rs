//! The operator's host configuration: a TOML file named by `--config FILE`
//! or `HOST_CONFIG`. Everything in it is trusted (it comes from whoever
//! starts `host`), unlike a spec, which may come from someone else. Each
//! section is a type owned by the library module it configures; this file
//! only reads the file and reports where it is wrong.
//!
//! The settings and their defaults are documented in docs/SECURITY.md.

use super::GlobalArgs;
use super::error::CliError;
use serde::Deserialize;
use std::path::Path;

/// The whole file. Unknown keys are an error, so a misspelt limit is never
/// silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HostConfig {
    /// `[plugins]`: file size and compile budget of plugins.
    pub(crate) plugins: host::plugin::PluginPolicy,
}

impl HostConfig {
    /// The file from `--config` / `HOST_CONFIG`, or the defaults when none
    /// is given.
    pub(crate) fn load(global: &GlobalArgs) -> Result<HostConfig, CliError> {
        match &global.config {
            Some(path) => HostConfig::read(path),
            None => Ok(HostConfig::default()),
        }
    }

    fn read(path: &Path) -> Result<HostConfig, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::bad_input(format!("host config {}: {e}", path.display())))?;
        HostConfig::parse(&text)
            .map_err(|e| CliError::bad_input(format!("host config {}: {e}", path.display())))
    }

    /// Parses the file's text; the error names the key that is wrong.
    pub(crate) fn parse(text: &str) -> Result<HostConfig, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert!(HostConfig::parse("").is_ok());
    }

    #[test]
    fn plugin_limits_are_read_and_misspelt_ones_refused() {
        let c = HostConfig::parse("[plugins]\nmax_wasm_bytes = 1000\n").unwrap();
        assert_eq!(c.plugins.max_wasm_bytes, 1000);
        assert_eq!(
            c.plugins.compile_timeout_ms,
            host::plugin::PluginPolicy::default().compile_timeout_ms
        );
        let e = HostConfig::parse("[plugins]\nmax_wasm_mib = 1\n").unwrap_err();
        assert!(e.to_string().contains("max_wasm_mib"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = HostConfig::parse("nonsense = 1\n").unwrap_err();
        assert!(e.to_string().contains("nonsense"), "{e}");
    }
}

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
    /// `[models]`: caps on model replies (body, stream lines and events,
    /// stream duration, tool calls per turn).
    pub models: host::llm::ReplyLimits,
    /// `[[credentials.pair]]`: which API key variables may go to which
    /// base URLs.
    pub(crate) credentials: host::plan::CredentialPolicy,
    /// `[egress]`: private and loopback destinations the operator allows
    /// for provider base URLs and event callbacks.
    pub egress: host::egress::Egress,
    /// `[plugins]`: ceilings of a spec's plugin limits, each plugin's share
    /// of the call slots, `.wasm` size and compile time.
    pub(crate) plugins: host::plugin::PluginPolicy,
}

impl HostConfig {
    /// The file from `--config` / `HOST_CONFIG`, or the defaults when none
    /// is given.
    pub(super) fn load(global: &GlobalArgs) -> Result<HostConfig, CliError> {
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
    fn models_section_sets_reply_limits() {
        let config =
            HostConfig::parse("[models]\nmax_line_bytes = 1024\nmax_tool_calls_per_turn = 2\n")
                .unwrap();
        assert_eq!(config.models.max_line_bytes, 1024);
        assert_eq!(config.models.max_tool_calls_per_turn, 2);
        assert_eq!(
            config.models.max_body_bytes,
            host::llm::ReplyLimits::DEFAULT_MAX_BODY_BYTES
        );
        let e = HostConfig::parse("[models]\nmax_lines = 1\n").unwrap_err();
        assert!(e.to_string().contains("max_lines"), "{e}");
    }

    #[test]
    fn credential_pairs_are_read() {
        let config = HostConfig::parse(
            "[[credentials.pair]]\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key_env = \"K\"\n",
        )
        .expect("config");
        assert!(config.credentials.allows("K", "http://127.0.0.1:1/v1"));
        let e =
            HostConfig::parse("[[credentials.pair]]\nbase_url = \"x\"\nkey = \"K\"\n").unwrap_err();
        assert!(e.to_string().contains("key"), "{e}");
    }

    #[test]
    fn egress_allowances_are_read_and_checked() {
        let config = HostConfig::parse(
            "[egress]\nallow_private = true\nallow = [\"127.0.0.1:8080\", \"10.0.0.0/8\"]\n",
        )
        .expect("config");
        assert!(config.egress.allow_private);
        assert_eq!(config.egress.allow.len(), 2);
        let e = HostConfig::parse("[egress]\nallow = [\"localhost\"]\n").unwrap_err();
        assert!(e.to_string().contains("localhost"), "{e}");
        let e = HostConfig::parse("[egress]\nallow_everything = true\n").unwrap_err();
        assert!(e.to_string().contains("allow_everything"), "{e}");
    }

    #[test]
    fn the_plugins_section_sets_the_policy() {
        let c = HostConfig::parse(
            "[plugins]\nmax_timeout_ms = 5000\nmax_concurrent_calls_per_plugin = 4\n",
        )
        .unwrap();
        assert_eq!(c.plugins.max_timeout_ms, 5000);
        assert_eq!(c.plugins.max_concurrent_calls_per_plugin, Some(4));
        let e = HostConfig::parse("[plugins]\nmax_timeout = 1\n").unwrap_err();
        assert!(e.to_string().contains("max_timeout"), "{e}");
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

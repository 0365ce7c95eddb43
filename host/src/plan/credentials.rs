//! Which API keys from the host's environment may go to which base URLs.
//!
//! A key read from the environment is the operator's, and a spec may come
//! from someone else. So a key from the environment goes only to a base URL
//! the operator paired it with:
//!
//! - `$OPENAI_API_KEY` with the OpenAI API (`https://api.openai.com/v1`) and
//!   with the operator's `$OPENAI_BASE_URL`, when set;
//! - any other (base URL, variable) pair the operator declares: in the host
//!   config file (`[[credentials.pair]]`, [`CredentialPolicy`]) or on the
//!   command line (`--credential VAR=URL`, [`CredentialPair`]'s `FromStr`).
//!
//! A spec's `api_key_env` may therefore only name a variable paired with the
//! provider's base URL; anything else is refused before a request is made,
//! with the JSON path of the spec value and what the operator can do. A key
//! the spec carries itself (the Go request's `session.credentials.api_key`)
//! is the spec author's own, and goes where the spec says.

use crate::llm::{DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// Environment variable that overrides the base URL of `openai` providers,
/// as the official OpenAI SDKs do. It is the operator's, so
/// `$OPENAI_API_KEY` may go there.
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";

/// The operator's pairs of (base URL, key variable): the `credentials`
/// section of the host config file.
///
/// ```toml
/// [[credentials.pair]]
/// base_url = "http://localhost:11434/v1"
/// api_key_env = "OLLAMA_KEY"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialPolicy {
    /// Besides the built-in pairs of `OPENAI_API_KEY`.
    pub pair: Vec<CredentialPair>,
}

/// One key variable and the base URL its value may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialPair {
    pub base_url: String,
    pub api_key_env: String,
}

/// `--credential VAR=URL` that is not of that form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected VAR=URL (an environment variable, `=`, the base URL its key may go to), got `{0}`"
)]
pub struct BadCredentialPair(String);

/// `VAR=URL`, the command line's form.
impl FromStr for CredentialPair {
    type Err = BadCredentialPair;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((var, url))
                if !var.trim().is_empty()
                    && (url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Ok(CredentialPair {
                    base_url: url.to_string(),
                    api_key_env: var.trim().to_string(),
                })
            }
            _ => Err(BadCredentialPair(s.to_string())),
        }
    }
}

impl fmt::Display for CredentialPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.api_key_env, self.base_url)
    }
}

impl CredentialPolicy {
    /// This policy with more pairs (the command line's, after the file's).
    pub fn with_pairs(mut self, pairs: impl IntoIterator<Item = CredentialPair>) -> Self {
        self.pair.extend(pairs);
        self
    }

    /// Whether the key in `var` may be sent to `base_url`: a built-in pair
    /// (`OPENAI_API_KEY` with the OpenAI API or `$OPENAI_BASE_URL`) or one
    /// the operator declared.
    pub fn allows(&self, var: &str, base_url: &str) -> bool {
        let operator_url = std::env::var(BASE_URL_ENV).ok().filter(|u| !u.is_empty());
        let builtin = var == DEFAULT_API_KEY_ENV
            && (same_base_url(base_url, DEFAULT_BASE_URL)
                || operator_url.is_some_and(|u| same_base_url(base_url, &u)));
        builtin
            || self
                .pair
                .iter()
                .any(|p| p.api_key_env == var && same_base_url(base_url, &p.base_url))
    }
}

/// Whether two base URLs name the same endpoint: equal after URL
/// normalization (scheme and host case, default port) and without a
/// trailing `/`. Not a prefix match: `https://a.example` does not cover
/// `https://a.example.evil.test`, nor `https://a.example/v1/../x`.
pub fn same_base_url(a: &str, b: &str) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(url: &str) -> String {
    let url = match reqwest::Url::parse(url.trim()) {
        Ok(parsed) => parsed.to_string(),
        Err(_) => url.trim().to_string(),
    };
    url.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_match_the_whole_base_url_not_a_prefix() {
        let policy = CredentialPolicy::default().with_pairs(["K=https://llm.example/v1"
            .parse::<CredentialPair>()
            .expect("a pair")]);
        assert!(policy.allows("K", "https://LLM.example:443/v1/"));
        assert!(!policy.allows("K", "https://llm.example/v1/../evil"));
        assert!(!policy.allows("K", "https://llm.example.evil.test/v1"));
        assert!(!policy.allows("HOME", "https://llm.example/v1"));
        assert!(!policy.allows("K", "https://api.openai.com/v1"));
        assert!(policy.allows(DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL));
        assert!(!policy.allows(DEFAULT_API_KEY_ENV, "https://llm.example/v1"));
    }

    #[test]
    fn the_command_line_form_needs_a_variable_and_a_url() {
        assert!("K=http://127.0.0.1:1/v1".parse::<CredentialPair>().is_ok());
        for bad in ["K", "=http://x", "K=ftp://x", "http://x"] {
            assert!(bad.parse::<CredentialPair>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_form_is_a_list_of_pairs() {
        let policy: CredentialPolicy = serde_json::from_value(serde_json::json!({
            "pair": [{"base_url": "http://127.0.0.1:1/v1", "api_key_env": "K"}]
        }))
        .expect("policy");
        assert!(policy.allows("K", "http://127.0.0.1:1/v1"));
    }
}

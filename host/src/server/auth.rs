//! Who is asking: bearer tokens mapped to accounts (`--tokens FILE`), or,
//! without a tokens file, the operator (single tenant, loopback only).
//!
//! The tokens file is TOML:
//!
//! ```toml
//! [[token]]
//! token_env = "ACME_TOKEN"   # or: token = "…" (keep the file 0600)
//! account = "acme"
//! user = "ops"                # optional; "" by default
//! ```
//!
//! Only SHA-256 digests of the tokens are kept in memory, and a presented
//! token is compared by digest, so the comparison time says nothing about
//! a token's prefix.

use super::error::{ApiError, ServerError};
use crate::engine::Caller;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: Option<String>,
    token_env: Option<String>,
    account: String,
    #[serde(default)]
    user: String,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// SHA-256 of a token → its caller. Empty: no authentication (the
    /// operator, on loopback).
    by_digest: HashMap<[u8; 32], Caller>,
}

impl Tokens {
    /// No tokens: every request is the operator's.
    pub fn none() -> Self {
        Tokens::default()
    }

    pub fn is_enabled(&self) -> bool {
        !self.by_digest.is_empty()
    }

    /// Reads a tokens file.
    pub fn read(path: &Path) -> Result<Tokens, ServerError> {
        let fail = |reason: String| ServerError::Tokens {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_digest = HashMap::new();
        for (i, entry) in file.token.into_iter().enumerate() {
            let at = format!("token[{i}]");
            let token = match (entry.token, entry.token_env) {
                (Some(t), None) => t,
                (None, Some(var)) => std::env::var(&var)
                    .map_err(|_| format!("{at}: environment variable {var} is not set"))?,
                _ => return Err(format!("{at}: give exactly one of `token` and `token_env`")),
            };
            if token.len() < 16 {
                return Err(format!("{at}: a token must be at least 16 characters"));
            }
            if entry.account.is_empty() {
                return Err(format!("{at}: `account` must not be empty"));
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if by_digest
                .insert(digest, Caller::account(entry.account, entry.user))
                .is_some()
            {
                return Err(format!("{at}: the same token is listed twice"));
            }
        }
        if by_digest.is_empty() {
            return Err("no [[token]] entries".into());
        }
        Ok(Tokens { by_digest })
    }

    /// The caller a request's `Authorization` header names (or the
    /// operator when there are no tokens).
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if !self.is_enabled() {
            return Ok(Caller::Operator);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        self.by_digest
            .get(&digest)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_maps_to_its_account_and_a_wrong_one_is_refused() {
        let tokens = Tokens::parse(
            "[[token]]\ntoken = \"aaaaaaaaaaaaaaaaaaaa\"\naccount = \"acme\"\nuser = \"ops\"\n",
        )
        .expect("parse");
        let mut headers = HeaderMap::new();
        assert!(tokens.caller(&headers).is_err());
        headers.insert(
            header::AUTHORIZATION,
            "Bearer aaaaaaaaaaaaaaaaaaaa".parse().expect("h"),
        );
        assert_eq!(
            tokens.caller(&headers).expect("ok"),
            Caller::account("acme", "ops")
        );
        headers.insert(
            header::AUTHORIZATION,
            "Bearer aaaaaaaaaaaaaaaaaaab".parse().expect("h"),
        );
        assert!(tokens.caller(&headers).is_err());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, says) in [
            ("", "no [[token]]"),
            (
                "[[token]]\ntoken = \"short\"\naccount = \"a\"\n",
                "at least 16",
            ),
            ("[[token]]\naccount = \"a\"\n", "exactly one"),
            (
                "[[token]]\ntoken = \"aaaaaaaaaaaaaaaaaaaa\"\naccount = \"\"\n",
                "empty",
            ),
        ] {
            let e = Tokens::parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}

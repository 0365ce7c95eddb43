//! Conversions the SQL stores (SQLite, PostgreSQL) share between their
//! columns and the store's types. A stored value a store cannot read
//! becomes that store's own error, built by `bad` from a detail.

use super::StoreError;

/// Ids, sequence numbers and times as SQL integers (saturating: never a
/// wrapped negative).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(
    what: &str,
    v: i64,
    bad: impl FnOnce(String) -> StoreError,
) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| bad(format!("negative {what} {v}")))
}

pub(crate) fn to_json(what: &'static str, v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Serialization { what, source })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    s: &str,
    bad: impl FnOnce(String) -> StoreError,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| bad(format!("stored {what} is not valid: {e}")))
}

//! `tokio-postgres` errors as [`StoreError`]s, and the conversions between
//! stored values (`BIGINT`s, JSON text) and the store's types.

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// A driver error: unreadable values → Invalid, everything else → Backend.
pub(super) fn db_error(db: &str, e: tokio_postgres::Error) -> StoreError {
    if e.code().is_none() && e.to_string().starts_with("error deserializing") {
        return invalid(db, e.to_string());
    }
    StoreError::Backend {
        db: db.to_owned(),
        source: Box::new(e),
    }
}

/// A failure to connect (or to log in) is an `Open` error.
pub(super) fn open_error(db: &str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Open {
        db: db.to_owned(),
        source: Box::new(e),
    }
}

/// Whether `e` is this SQL state (e.g. a unique violation).
pub(super) fn is(e: &tokio_postgres::Error, state: &SqlState) -> bool {
    e.code() == Some(state)
}

pub(super) fn invalid(db: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        db: db.to_owned(),
        detail: detail.into(),
    }
}

pub(super) use crate::store::columns::{to_i64, to_json};

pub(super) fn to_u64(db: &str, what: &str, v: i64) -> Result<u64, StoreError> {
    crate::store::columns::to_u64(what, v, |detail| invalid(db, detail))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    db: &str,
    what: &str,
    s: &str,
) -> Result<T, StoreError> {
    crate::store::columns::from_json(what, s, |detail| invalid(db, detail))
}

/// Column `idx` of `row`, or an error naming the database (never a panic
/// on a value of an unexpected type).
pub(super) fn col<'r, T: tokio_postgres::types::FromSql<'r>>(
    db: &str,
    row: &'r tokio_postgres::Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(|e| invalid(db, format!("column {idx}: {e}")))
}

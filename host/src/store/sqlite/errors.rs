//! rusqlite errors as [`StoreError`]s, and the conversions between stored
//! values (SQLite integers, JSON text) and the store's types.

use rusqlite::ErrorCode;

use crate::store::StoreError;

/// Maps a rusqlite error: busy/locked → Locked, corrupt/not a database →
/// Corrupt, unreadable values → Corrupt, everything else → Backend.
pub(super) fn db_error(db: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Locked { db: db.to_owned() }
            }
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => StoreError::Corrupt {
                db: db.to_owned(),
                detail: e.to_string(),
            },
            _ => StoreError::Backend {
                db: db.to_owned(),
                source: Box::new(e),
            },
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => StoreError::Corrupt {
            db: db.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Backend {
            db: db.to_owned(),
            source: Box::new(e),
        },
    }
}

/// Like [`db_error`], but a generic failure while opening is an `Open` error.
pub(super) fn open_error(db: &str, e: rusqlite::Error) -> StoreError {
    match db_error(db, e) {
        StoreError::Backend { db, source } => StoreError::Open { db, source },
        other => other,
    }
}

pub(super) fn corrupt(db: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        db: db.to_owned(),
        detail: detail.into(),
    }
}

pub(super) use crate::store::columns::{to_i64, to_json};

pub(super) fn to_u64(db: &str, what: &str, v: i64) -> Result<u64, StoreError> {
    crate::store::columns::to_u64(what, v, |detail| corrupt(db, detail))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    db: &str,
    what: &str,
    s: &str,
) -> Result<T, StoreError> {
    crate::store::columns::from_json(what, s, |detail| corrupt(db, detail))
}

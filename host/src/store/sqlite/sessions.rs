//! The `sessions` and `session_items` tables: [`SessionStore`] for
//! [`SqliteStore`].

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension};

use super::SqliteStore;
use super::errors::{db_error, from_json, to_i64, to_json, to_u64};
use super::group_commit::Seqs;
use super::runs::{Prepared, insert_journal};
use crate::store::{
    JournalEntry, SessionItem, SessionScope, SessionStore, SessionSummary, StoreError,
};
use crate::util::now_ms;

impl SessionStore for SqliteStore {
    fn session_history<'a>(
        &'a self,
        scope: &'a SessionScope,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<SessionItem>, StoreError>> {
        let scope = scope.clone();
        self.read(move |conn, db| session_history(conn, db, &scope, limit))
    }

    fn append_session<'a>(
        &'a self,
        scope: &'a SessionScope,
        run_id: &'a str,
        items: Vec<serde_json::Value>,
        record: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let scope = scope.clone();
        let run_id = run_id.to_owned();
        let prepared = items
            .iter()
            .map(|i| to_json("session item", i))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|items| Ok((items, record.map(Prepared::of).transpose()?)));
        let (items, record) = match prepared {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let seqs = self.inner.seqs.clone();
        self.write(move |tx, db| {
            append_session(tx, db, &scope, &run_id, &items, record.as_ref(), &seqs)
        })
    }

    fn set_session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
        summary: String,
        covers_up_to: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let scope = scope.clone();
        self.write(move |tx, db| set_session_summary(tx, db, &scope, &summary, covers_up_to))
    }

    fn session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
    ) -> BoxFuture<'a, Result<Option<SessionSummary>, StoreError>> {
        let scope = scope.clone();
        self.read(move |conn, db| session_summary(conn, db, &scope))
    }
}

/// The session's items after its summary, oldest first; with `limit`, only
/// the newest `limit`.
fn session_history(
    conn: &Connection,
    db: &str,
    scope: &SessionScope,
    limit: Option<usize>,
) -> Result<Vec<SessionItem>, StoreError> {
    type Raw = (i64, String, i64, String);
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, run_id, at, item FROM ( \
                       SELECT seq, run_id, at, item FROM session_items \
                       WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3 \
                       ORDER BY seq DESC LIMIT ?4 \
                     ) ORDER BY seq",
        )
        .map_err(|e| db_error(db, e))?;
    let raws = stmt
        .query_map(
            (&scope.account_id, &scope.user_id, &scope.session_id, limit),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(|e| db_error(db, e))?
        .collect::<rusqlite::Result<Vec<Raw>>>()
        .map_err(|e| db_error(db, e))?;
    raws.into_iter()
        .map(|(seq, run_id, at, item)| {
            Ok(SessionItem {
                seq: to_u64(db, "session seq", seq)?,
                run_id,
                at_ms: to_u64(db, "timestamp", at)?,
                item: from_json(db, "session item", &item)?,
            })
        })
        .collect()
}

/// Appends the (serialized) items to the session, creating it, and
/// `record` to the run's journal.
fn append_session(
    tx: &Connection,
    db: &str,
    scope: &SessionScope,
    run_id: &str,
    items: &[String],
    record: Option<&Prepared>,
    seqs: &Seqs,
) -> Result<(), StoreError> {
    let now = now_ms();
    let mut seq = ensure_session(tx, db, scope, now)?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO session_items \
                         (account_id, user_id, session_id, seq, run_id, at, item) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(|e| db_error(db, e))?;
        for item in items {
            seq += 1;
            insert
                .execute((
                    &scope.account_id,
                    &scope.user_id,
                    &scope.session_id,
                    to_i64(seq),
                    run_id,
                    to_i64(now),
                    item,
                ))
                .map_err(|e| db_error(db, e))?;
        }
    }
    tx.execute(
        "UPDATE sessions SET last_seq = ?1, updated_at = ?2 \
                 WHERE account_id = ?3 AND user_id = ?4 AND session_id = ?5",
        (
            to_i64(seq),
            to_i64(now),
            &scope.account_id,
            &scope.user_id,
            &scope.session_id,
        ),
    )
    .map_err(|e| db_error(db, e))?;
    if let Some(entry) = record {
        insert_journal(tx, db, run_id, entry, now, seqs)?;
    }
    Ok(())
}

fn set_session_summary(
    tx: &Connection,
    db: &str,
    scope: &SessionScope,
    summary: &str,
    covers_up_to: u64,
) -> Result<(), StoreError> {
    let now = now_ms();
    let last = ensure_session(tx, db, scope, now)?;
    if covers_up_to > last {
        return Err(StoreError::Conflict(format!(
            "a summary cannot cover item {covers_up_to}: the session's last item is {last}"
        )));
    }
    let key = (&scope.account_id, &scope.user_id, &scope.session_id);
    tx.execute(
        "UPDATE sessions SET summary = ?4, summary_covers_up_to = ?5, summary_at = ?6, \
                 updated_at = ?6 WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3",
        (
            key.0,
            key.1,
            key.2,
            summary,
            to_i64(covers_up_to),
            to_i64(now),
        ),
    )
    .map_err(|e| db_error(db, e))?;
    tx.execute(
        "DELETE FROM session_items \
                 WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3 AND seq <= ?4",
        (key.0, key.1, key.2, to_i64(covers_up_to)),
    )
    .map_err(|e| db_error(db, e))?;
    Ok(())
}

fn session_summary(
    conn: &Connection,
    db: &str,
    scope: &SessionScope,
) -> Result<Option<SessionSummary>, StoreError> {
    let raw: Option<(String, i64, i64)> = conn
        .prepare_cached(
            "SELECT summary, summary_covers_up_to, summary_at FROM sessions \
                     WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3 \
                     AND summary IS NOT NULL AND summary_at IS NOT NULL",
        )
        .and_then(|mut s| {
            s.query_row(
                (&scope.account_id, &scope.user_id, &scope.session_id),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .map_err(|e| db_error(db, e))?;
    raw.map(|(summary, covers, at)| {
        Ok(SessionSummary {
            summary,
            covers_up_to: to_u64(db, "session seq", covers)?,
            updated_at_ms: to_u64(db, "timestamp", at)?,
        })
    })
    .transpose()
}

/// Ensures the session row exists; returns its last assigned item seq.
fn ensure_session(
    tx: &Connection,
    db: &str,
    scope: &SessionScope,
    now: u64,
) -> Result<u64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions (account_id, user_id, session_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute((
            &scope.account_id,
            &scope.user_id,
            &scope.session_id,
            to_i64(now),
        ))
    })
    .map_err(|e| db_error(db, e))?;
    let last: i64 = tx
        .prepare_cached(
            "SELECT last_seq FROM sessions \
             WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3",
        )
        .and_then(|mut s| {
            s.query_row(
                (&scope.account_id, &scope.user_id, &scope.session_id),
                |r| r.get(0),
            )
        })
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "session seq", last)
}

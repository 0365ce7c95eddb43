//! The `events` table: [`EventStore`] for [`SqliteStore`].

use futures::future::BoxFuture;
use rusqlite::Connection;

use super::SqliteStore;
use super::errors::{db_error, to_i64, to_u64};
use crate::store::{EventRecord, EventStore, NewEvent, Scope, StoreError};

impl EventStore for SqliteStore {
    fn events_append<'a>(
        &'a self,
        run_id: &'a str,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let run_id = run_id.to_owned();
        self.write(move |tx, db| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (run_id, id, event_type, body) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| db_error(db, e))?;
            for e in &events {
                insert
                    .execute((&run_id, to_i64(e.id), &e.event_type, &e.body))
                    .map_err(|err| db_error(db, err))?;
            }
            Ok(())
        })
    }

    fn events_after<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<EventRecord>, StoreError>> {
        let (run_id, account) = (run_id.to_owned(), scope.account_filter().map(str::to_owned));
        self.read(move |conn, db| events_after(conn, db, &run_id, account, after, limit))
    }

    fn events_last_id<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let run_id = run_id.to_owned();
        self.read(move |conn, db| {
            let last: i64 = conn
                .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events WHERE run_id = ?1")
                .and_then(|mut s| s.query_row([&run_id], |r| r.get(0)))
                .map_err(|e| db_error(db, e))?;
            to_u64(db, "event id", last)
        })
    }
}

fn events_after(
    conn: &Connection,
    db: &str,
    run_id: &str,
    account: Option<String>,
    after: u64,
    limit: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    // The run's account decides who may read; no run, no events.
    let admitted: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE run_id = ?1 \
             AND (?2 IS NULL OR account_id = ?2))",
        )
        .and_then(|mut s| s.query_row((run_id, &account), |r| r.get(0)))
        .map_err(|e| db_error(db, e))?;
    if !admitted {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, event_type, body FROM events WHERE run_id = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3",
        )
        .map_err(|e| db_error(db, e))?;
    let rows = stmt
        .query_map((run_id, to_i64(after), limit), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(|e| db_error(db, e))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, event_type, body) = row.map_err(|e| db_error(db, e))?;
        out.push(EventRecord {
            run_id: run_id.to_owned(),
            id: to_u64(db, "event id", id)?,
            event_type,
            body,
        });
    }
    Ok(out)
}

//! The `events` table: [`EventStore`] for [`PostgresStore`].

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::PostgresStore;
use super::errors::{col, db_error, to_i64, to_u64};
use crate::store::{EventRecord, EventStore, NewEvent, Scope, StoreError};

/// The channel streams of other processes `LISTEN` on; the payload is the
/// run id whose events were appended.
const EVENTS_CHANNEL: &str = "host_run_events";

impl EventStore for PostgresStore {
    fn events_append<'a>(
        &'a self,
        run_id: &'a str,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            let db = self.db();
            let client = self.client().await?;
            // One statement for the batch: the arrays are unnested row by row.
            let ids: Vec<i64> = events.iter().map(|e| to_i64(e.id)).collect();
            let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
            let bodies: Vec<&str> = events.iter().map(|e| e.body.as_str()).collect();
            // One statement for the rows and the notification (sent when
            // it commits), and only when a row was new.
            client
                .execute(
                    "WITH added AS ( \
                       INSERT INTO events (run_id, id, event_type, body) \
                       SELECT $1, * FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[]) \
                       ON CONFLICT DO NOTHING RETURNING 1) \
                     SELECT pg_notify($5, $1) WHERE EXISTS (SELECT 1 FROM added)",
                    &[&run_id, &ids, &types, &bodies, &EVENTS_CHANNEL],
                )
                .await
                .map_err(|e| db_error(db, e))?;
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
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT e.id, e.event_type, e.body FROM events e \
                     JOIN runs r ON r.run_id = e.run_id \
                     WHERE e.run_id = $1 AND e.id > $2 \
                     AND ($3::TEXT IS NULL OR r.account_id = $3) \
                     ORDER BY e.id LIMIT $4",
                    &[
                        &run_id,
                        &to_i64(after),
                        &scope.account_filter(),
                        &to_i64(limit as u64),
                    ],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            rows.iter()
                .map(|r| {
                    Ok(EventRecord {
                        run_id: run_id.to_owned(),
                        id: to_u64(db, "event id", col(db, r, 0)?)?,
                        event_type: col(db, r, 1)?,
                        body: col(db, r, 2)?,
                    })
                })
                .collect()
        })
    }

    fn events_last_id<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT COALESCE(MAX(id), 0) FROM events WHERE run_id = $1",
                    &[&run_id],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            to_u64(db, "event id", col(db, &row, 0)?)
        })
    }

    fn listen_events<'a>(
        &'a self,
    ) -> BoxFuture<'a, Result<Option<mpsc::UnboundedReceiver<String>>, StoreError>> {
        Box::pin(async move { self.listen(EVENTS_CHANNEL).await.map(Some) })
    }
}

//! The `sessions` and `session_items` tables: [`SessionStore`] for
//! [`PostgresStore`].
//!
//! Two processes appending to one session at once: each append locks the
//! session's row (`SELECT … FOR UPDATE` after creating it if needed) for
//! its transaction, so the appends take turns, every item gets the next
//! `seq` (1, 2, 3… with no gap or repeat), and a summary that deletes a
//! prefix cannot interleave with an append.

use futures::future::BoxFuture;
use tokio_postgres::GenericClient;

use super::PostgresStore;
use super::errors::{col, db_error, from_json, to_i64, to_json, to_u64};
use super::runs::insert_journal;
use crate::store::{
    JournalEntry, SessionItem, SessionScope, SessionStore, SessionSummary, StoreError,
};
use crate::util::now_ms;

impl SessionStore for PostgresStore {
    fn session_history<'a>(
        &'a self,
        scope: &'a SessionScope,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<SessionItem>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let db = self.db();
            let limit = limit.map_or(i64::MAX, |l| to_i64(l as u64));
            let rows = client
                .query(
                    "SELECT seq, run_id, at, item FROM ( \
                       SELECT seq, run_id, at, item FROM session_items \
                       WHERE account_id = $1 AND user_id = $2 AND session_id = $3 \
                       ORDER BY seq DESC LIMIT $4 \
                     ) newest ORDER BY seq",
                    &[&scope.account_id, &scope.user_id, &scope.session_id, &limit],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            rows.iter()
                .map(|r| {
                    Ok(SessionItem {
                        seq: to_u64(db, "session seq", col(db, r, 0)?)?,
                        run_id: col(db, r, 1)?,
                        at_ms: to_u64(db, "timestamp", col(db, r, 2)?)?,
                        item: from_json(db, "session item", col(db, r, 3)?)?,
                    })
                })
                .collect()
        })
    }

    fn append_session<'a>(
        &'a self,
        scope: &'a SessionScope,
        run_id: &'a str,
        items: Vec<serde_json::Value>,
        record: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let items = items
                .iter()
                .map(|i| to_json("session item", i))
                .collect::<Result<Vec<_>, _>>()?;
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let now = now_ms();
            let mut seq = lock_session(&*tx, db, scope, now).await?;
            for item in &items {
                seq += 1;
                tx.execute(
                    "INSERT INTO session_items \
                     (account_id, user_id, session_id, seq, run_id, at, item) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &scope.account_id,
                        &scope.user_id,
                        &scope.session_id,
                        &to_i64(seq),
                        &run_id,
                        &to_i64(now),
                        item,
                    ],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            }
            tx.execute(
                "UPDATE sessions SET last_seq = $1, updated_at = $2 \
                 WHERE account_id = $3 AND user_id = $4 AND session_id = $5",
                &[
                    &to_i64(seq),
                    &to_i64(now),
                    &scope.account_id,
                    &scope.user_id,
                    &scope.session_id,
                ],
            )
            .await
            .map_err(|e| db_error(db, e))?;
            if let Some(entry) = &record {
                insert_journal(&*tx, db, run_id, entry, now).await?;
            }
            tx.commit().await.map_err(|e| db_error(db, e))
        })
    }

    fn set_session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
        summary: String,
        covers_up_to: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let now = now_ms();
            let last = lock_session(&*tx, db, scope, now).await?;
            if covers_up_to > last {
                return Err(StoreError::Conflict(format!(
                    "a summary cannot cover item {covers_up_to}: the session's last item is {last}"
                )));
            }
            let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&scope.account_id, &scope.user_id, &scope.session_id];
            tx.execute(
                "UPDATE sessions SET summary = $4, summary_covers_up_to = $5, summary_at = $6, \
                 updated_at = $6 WHERE account_id = $1 AND user_id = $2 AND session_id = $3",
                &[
                    key[0],
                    key[1],
                    key[2],
                    &summary,
                    &to_i64(covers_up_to),
                    &to_i64(now),
                ],
            )
            .await
            .map_err(|e| db_error(db, e))?;
            tx.execute(
                "DELETE FROM session_items \
                 WHERE account_id = $1 AND user_id = $2 AND session_id = $3 AND seq <= $4",
                &[key[0], key[1], key[2], &to_i64(covers_up_to)],
            )
            .await
            .map_err(|e| db_error(db, e))?;
            tx.commit().await.map_err(|e| db_error(db, e))
        })
    }

    fn session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
    ) -> BoxFuture<'a, Result<Option<SessionSummary>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let db = self.db();
            let row = client
                .query_opt(
                    "SELECT summary, summary_covers_up_to, summary_at FROM sessions \
                     WHERE account_id = $1 AND user_id = $2 AND session_id = $3 \
                     AND summary IS NOT NULL",
                    &[&scope.account_id, &scope.user_id, &scope.session_id],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            row.map(|r| {
                let at: Option<i64> = col(db, &r, 2)?;
                Ok(SessionSummary {
                    summary: col(db, &r, 0)?,
                    covers_up_to: to_u64(db, "session seq", col(db, &r, 1)?)?,
                    updated_at_ms: to_u64(db, "timestamp", at.unwrap_or(0))?,
                })
            })
            .transpose()
        })
    }
}

/// Creates the session if needed and locks its row for the rest of the
/// transaction; returns its last item's seq.
async fn lock_session(
    tx: &impl GenericClient,
    db: &str,
    scope: &SessionScope,
    now: u64,
) -> Result<u64, StoreError> {
    tx.execute(
        "INSERT INTO sessions (account_id, user_id, session_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING",
        &[
            &scope.account_id,
            &scope.user_id,
            &scope.session_id,
            &to_i64(now),
        ],
    )
    .await
    .map_err(|e| db_error(db, e))?;
    let row = tx
        .query_one(
            "SELECT last_seq FROM sessions \
             WHERE account_id = $1 AND user_id = $2 AND session_id = $3 FOR UPDATE",
            &[&scope.account_id, &scope.user_id, &scope.session_id],
        )
        .await
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "session seq", col(db, &row, 0)?)
}

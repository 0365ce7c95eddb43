//! The `outbox` table: [`OutboxStore`] for [`PostgresStore`].
//!
//! A claim locks the lane's head row (`FOR UPDATE`) for its transaction:
//! two deliverers (in two processes) claiming one lane at once take turns,
//! and the second sees the first's lease, so each entry is sent by one
//! deliverer at a time and a lane's entries go out in `seq` order.

use futures::future::BoxFuture;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::PostgresStore;
use super::errors::{col, db_error, from_json, invalid, to_i64, to_json, to_u64};
use crate::store::{
    NewOutboxEntry, OutboxClaim, OutboxRecord, OutboxState, OutboxStore, OutboxSummary,
    OutboxTarget, Scope, StoreError,
};
use crate::util::now_ms;

const OUTBOX_COLUMNS: &str = "run_id, seq, target, event_type, body, state, attempts, \
     next_attempt_at, last_error, created_at, updated_at, lease_owner, lease_until, \
     account_id, user_id";

impl OutboxStore for PostgresStore {
    fn outbox_enqueue<'a>(
        &'a self,
        entries: Vec<NewOutboxEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let now = to_i64(now_ms());
            for e in &entries {
                let target = to_json("outbox target", &e.target)?;
                tx.execute(
                    "INSERT INTO outbox (run_id, url, seq, target, event_type, body, state, \
                     attempts, next_attempt_at, created_at, updated_at, account_id, user_id) \
                     SELECT $1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7, \
                     COALESCE(r.account_id, ''), COALESCE(r.user_id, '') \
                     FROM (SELECT 1) one LEFT JOIN runs r ON r.run_id = $1 \
                     ON CONFLICT DO NOTHING",
                    &[
                        &e.run_id,
                        &e.target.url,
                        &to_i64(e.seq),
                        &target,
                        &e.event_type,
                        &e.body,
                        &now,
                    ],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            }
            tx.commit().await.map_err(|e| db_error(db, e))
        })
    }

    fn outbox_last_seq<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE run_id = $1 AND url = $2",
                    &[&run_id, &url],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            to_u64(db, "outbox seq", col(db, &row, 0)?)
        })
    }

    fn outbox_heads<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM ( \
                   SELECT DISTINCT ON (run_id, url) * FROM outbox \
                   WHERE state = 'pending' AND ($1::TEXT IS NULL OR account_id = $1) \
                   ORDER BY run_id, url, seq \
                 ) heads ORDER BY created_at, run_id, url"
            );
            let rows = query(&**client, db, &sql, &[&scope.account_filter()]).await?;
            Ok(rows.into_iter().map(|(r, _)| r).collect())
        })
    }

    fn outbox_claim<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        url: &'a str,
        owner: &'a str,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> BoxFuture<'a, Result<OutboxClaim, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox \
                 WHERE run_id = $1 AND url = $2 AND state = 'pending' \
                 ORDER BY seq LIMIT 1 FOR UPDATE"
            );
            let head = query(&*tx, db, &sql, &[&run_id, &url])
                .await?
                .into_iter()
                .next();
            let Some((record, lease)) = head.filter(|(r, _)| scope.admits(&r.account_id)) else {
                return Ok(OutboxClaim::Empty);
            };
            let lease = lease.as_ref().map(|(o, until)| (o.as_str(), *until));
            if let Some(refused) =
                OutboxClaim::refusal(lease, record.next_attempt_at_ms, owner, now_ms)
            {
                return Ok(refused);
            }
            tx.execute(
                "UPDATE outbox SET lease_owner = $4, lease_until = $5 \
                 WHERE run_id = $1 AND url = $2 AND seq = $3",
                &[
                    &run_id,
                    &url,
                    &to_i64(record.seq),
                    &owner,
                    &to_i64(lease_until_ms),
                ],
            )
            .await
            .map_err(|e| db_error(db, e))?;
            tx.commit().await.map_err(|e| db_error(db, e))?;
            Ok(OutboxClaim::Claimed(Box::new(record)))
        })
    }

    fn outbox_release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
                     WHERE lease_owner = $1",
                    &[&owner],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            Ok(())
        })
    }

    fn outbox_delivered<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.finish_attempt((run_id, url, seq), OutboxState::Delivered, None, None))
    }

    fn outbox_failed<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
        error: String,
        retry_at_ms: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let state = match retry_at_ms {
                Some(_) => OutboxState::Pending,
                None => OutboxState::Dead,
            };
            self.finish_attempt((run_id, url, seq), state, Some(&error), retry_at_ms)
                .await
        })
    }

    fn outbox_entries<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let limit = limit.map_or(i64::MAX, |l| to_i64(l as u64));
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox \
                 WHERE ($1::TEXT IS NULL OR account_id = $1) \
                 AND ($2::TEXT IS NULL OR run_id = $2) \
                 AND ($3::TEXT IS NULL OR state = $3) \
                 ORDER BY run_id, url, seq LIMIT $4"
            );
            let rows = query(
                &**client,
                db,
                &sql,
                &[
                    &scope.account_filter(),
                    &run_id,
                    &state.map(OutboxState::as_str),
                    &limit,
                ],
            )
            .await?;
            Ok(rows.into_iter().map(|(r, _)| r).collect())
        })
    }

    fn outbox_summary<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let account = scope.account_filter();
            let counts = client
                .query(
                    "SELECT state, COUNT(*) FROM outbox WHERE run_id = $1 \
                     AND ($2::TEXT IS NULL OR account_id = $2) GROUP BY state",
                    &[&run_id, &account],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            let mut summary = OutboxSummary::default();
            for row in counts {
                let state: &str = col(db, &row, 0)?;
                let n = to_u64(db, "outbox count", col(db, &row, 1)?)?;
                match state
                    .parse::<OutboxState>()
                    .map_err(|e| invalid(db, e.to_string()))?
                {
                    OutboxState::Pending => summary.pending = n,
                    OutboxState::Delivered => summary.delivered = n,
                    OutboxState::Dead => summary.dead = n,
                }
            }
            if summary.dead > 0 {
                let sql = format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE run_id = $1 AND state = 'dead' \
                     AND ($2::TEXT IS NULL OR account_id = $2) ORDER BY url, seq"
                );
                summary.dead_entries = query(&**client, db, &sql, &[&run_id, &account])
                    .await?
                    .into_iter()
                    .map(|(r, _)| r)
                    .collect();
            }
            Ok(summary)
        })
    }
}

impl PostgresStore {
    /// Ends an attempt on one entry: `state`, the attempt counted, the
    /// lease dropped. `NotFound` when the entry does not exist.
    async fn finish_attempt(
        &self,
        (run_id, url, seq): (&str, &str, u64),
        state: OutboxState,
        error: Option<&str>,
        next_attempt_at: Option<u64>,
    ) -> Result<(), StoreError> {
        let db = self.db();
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE outbox SET state = $4, attempts = attempts + 1, \
                 last_error = COALESCE($5, last_error), \
                 next_attempt_at = COALESCE($6, next_attempt_at), \
                 lease_owner = NULL, lease_until = NULL, updated_at = $7 \
                 WHERE run_id = $1 AND url = $2 AND seq = $3",
                &[
                    &run_id,
                    &url,
                    &to_i64(seq),
                    &state.as_str(),
                    &error,
                    &next_attempt_at.map(to_i64),
                    &to_i64(now_ms()),
                ],
            )
            .await
            .map_err(|e| db_error(db, e))?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                run_id: run_id.to_owned(),
            });
        }
        Ok(())
    }
}

/// An outbox entry and its lease (owner, until).
type LeasedRecord = (OutboxRecord, Option<(String, u64)>);

async fn query(
    client: &impl GenericClient,
    db: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<LeasedRecord>, StoreError> {
    let rows = client
        .query(sql, params)
        .await
        .map_err(|e| db_error(db, e))?;
    rows.iter().map(|r| outbox_record(db, r)).collect()
}

/// A row of [`OUTBOX_COLUMNS`].
fn outbox_record(db: &str, r: &Row) -> Result<LeasedRecord, StoreError> {
    let target: OutboxTarget = from_json(db, "outbox target", col(db, r, 2)?)?;
    let state: &str = col(db, r, 5)?;
    let attempts: i64 = col(db, r, 6)?;
    let owner: Option<String> = col(db, r, 11)?;
    let until: Option<i64> = col(db, r, 12)?;
    let lease = match (owner, until) {
        (Some(owner), Some(until)) => Some((owner, to_u64(db, "timestamp", until)?)),
        _ => None,
    };
    Ok((
        OutboxRecord {
            run_id: col(db, r, 0)?,
            account_id: col(db, r, 13)?,
            user_id: col(db, r, 14)?,
            target,
            seq: to_u64(db, "outbox seq", col(db, r, 1)?)?,
            event_type: col(db, r, 3)?,
            body: col(db, r, 4)?,
            state: state
                .parse::<OutboxState>()
                .map_err(|e| invalid(db, e.to_string()))?,
            attempts: u32::try_from(attempts)
                .map_err(|_| invalid(db, format!("outbox attempts {attempts}")))?,
            next_attempt_at_ms: to_u64(db, "timestamp", col(db, r, 7)?)?,
            last_error: col(db, r, 8)?,
            created_at_ms: to_u64(db, "timestamp", col(db, r, 9)?)?,
            updated_at_ms: to_u64(db, "timestamp", col(db, r, 10)?)?,
        },
        lease,
    ))
}

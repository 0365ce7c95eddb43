//! Run leases: [`ClaimStore`] for [`PostgresStore`], and the `NOTIFY` /
//! `LISTEN` that wakes idle workers.
//!
//! Claims are single `UPDATE`s: on one run its row lock makes them atomic
//! (a second claimer re-checks the lease after the first commits); the
//! next claimable run is picked `FOR UPDATE SKIP LOCKED`, so workers
//! asking at once each get a different run and none waits for another.

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, GenericClient};

use super::PostgresStore;
use super::errors::{col, db_error, open_error, to_i64};
use super::runs::{RUN_COLUMNS, run_record};
use crate::store::{ClaimStore, Lease, RunRecord, StoreError};

/// The channel idle workers `LISTEN` on; the payload is the run id.
pub(super) const READY_CHANNEL: &str = "host_runs_ready";

/// Tells the listening workers, when the transaction commits, that the run
/// is ready to be claimed.
pub(super) async fn notify_ready(
    tx: &impl GenericClient,
    db: &str,
    run_id: &str,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&READY_CHANNEL, &run_id])
        .await
        .map_err(|e| db_error(db, e))?;
    Ok(())
}

impl ClaimStore for PostgresStore {
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        lease: Lease<'a>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let changed = client
                .execute(
                    "UPDATE runs SET lease_owner = $2, lease_until = $3 WHERE run_id = $1 \
                     AND status NOT IN ('completed', 'failed', 'cancelled') \
                     AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4)",
                    &[
                        &run_id,
                        &lease.owner,
                        &to_i64(lease.until_ms),
                        &to_i64(lease.now_ms),
                    ],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            Ok(changed == 1)
        })
    }

    fn claim_next<'a>(
        &'a self,
        lease: Lease<'a>,
        exclude: &'a [String],
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE runs SET lease_owner = $1, lease_until = $2 WHERE run_id = ( \
                           SELECT run_id FROM runs WHERE status IN ('queued', 'running') \
                           AND (lease_owner IS NULL OR lease_until < $3) \
                           AND NOT (run_id = ANY($4)) \
                           ORDER BY created_at, ord LIMIT 1 FOR UPDATE SKIP LOCKED \
                         ) RETURNING {RUN_COLUMNS}"
                    ),
                    &[
                        &lease.owner,
                        &to_i64(lease.until_ms),
                        &to_i64(lease.now_ms),
                        &exclude,
                    ],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            row.map(|r| run_record(db, &r)).transpose()
        })
    }

    fn renew_runs<'a>(&'a self, lease: Lease<'a>) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE runs SET lease_until = $2 WHERE lease_owner = $1 AND lease_until >= $3",
                    &[&lease.owner, &to_i64(lease.until_ms), &to_i64(lease.now_ms)],
                )
                .await
                .map_err(|e| db_error(db, e))
        })
    }

    fn release_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let row = tx
                .query_opt(
                    "UPDATE runs SET lease_owner = NULL, lease_until = NULL \
                     WHERE run_id = $1 AND lease_owner = $2 RETURNING status",
                    &[&run_id, &owner],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            if let Some(row) = row {
                let status: &str = col(db, &row, 0)?;
                if matches!(status, "queued" | "running") {
                    notify_ready(&*tx, db, run_id).await?;
                }
            }
            tx.commit().await.map_err(|e| db_error(db, e))
        })
    }

    fn listen_ready<'a>(
        &'a self,
    ) -> BoxFuture<'a, Result<Option<mpsc::UnboundedReceiver<String>>, StoreError>> {
        Box::pin(async move { self.listen(READY_CHANNEL).await.map(Some) })
    }
}

impl PostgresStore {
    /// `LISTEN`s on `channel` over a connection of its own (the pool's are
    /// shared): each notification's payload, as it commits. The receiver
    /// ends when the connection fails or the caller drops it.
    pub(super) async fn listen(
        &self,
        channel: &'static str,
    ) -> Result<mpsc::UnboundedReceiver<String>, StoreError> {
        let db = self.db().to_owned();
        let (client, mut conn) = self
            .inner
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| open_error(&db, e))?;
        let client = std::sync::Arc::new(client);
        let (tx, rx) = mpsc::unbounded_channel();
        // Polling the connection drives it and yields the notifications;
        // the task keeps the client (and with it the connection) until the
        // receiver goes or the connection fails. Then the receiver ends,
        // and the caller listens again.
        let keep = client.clone();
        let task_db = db.clone();
        tokio::spawn(async move {
            let _client = keep;
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    m = messages.next() => match m {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            if tx.send(n.payload().to_owned()).is_err() {
                                break;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(db = %task_db, channel, error = %e, "the listening connection failed");
                            break;
                        }
                        None => break,
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .map_err(|e| db_error(&db, e))?;
        Ok(rx)
    }
}

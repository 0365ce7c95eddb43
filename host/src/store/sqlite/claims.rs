//! Run leases: [`ClaimStore`] for [`SqliteStore`]. Every write call is one
//! `BEGIN IMMEDIATE` transaction (see the module docs), so a claim's read
//! and its update are atomic against other processes on the same file.

use futures::future::BoxFuture;
use rusqlite::types::Value as SqlValue;

use super::SqliteStore;
use super::errors::{db_error, to_i64};
use super::runs::{RUN_COLUMNS, query_runs};
use crate::store::{ClaimStore, Lease, RunRecord, StoreError};

impl ClaimStore for SqliteStore {
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        lease: Lease<'a>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (run_id, owner) = (run_id.to_owned(), lease.owner.to_owned());
        let (now, until) = (to_i64(lease.now_ms), to_i64(lease.until_ms));
        self.write(move |tx, db| {
            let changed = tx
                .prepare_cached(
                    "UPDATE runs SET lease_owner = ?2, lease_until = ?3 WHERE run_id = ?1 \
                     AND status NOT IN ('completed', 'failed', 'cancelled') \
                     AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until < ?4)",
                )
                .and_then(|mut s| s.execute((&run_id, &owner, until, now)))
                .map_err(|e| db_error(db, e))?;
            Ok(changed == 1)
        })
    }

    fn claim_next<'a>(
        &'a self,
        lease: Lease<'a>,
        exclude: &'a [String],
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let owner = lease.owner.to_owned();
        let (now, until) = (to_i64(lease.now_ms), to_i64(lease.until_ms));
        let exclude = exclude.to_vec();
        self.write(move |tx, db| {
            let mut params = vec![SqlValue::Integer(now)];
            let mut skip = String::new();
            for id in exclude {
                params.push(SqlValue::Text(id));
                skip.push_str(&format!(" AND run_id <> ?{}", params.len()));
            }
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') \
                 AND (lease_owner IS NULL OR lease_until < ?1){skip} \
                 ORDER BY created_at, rowid LIMIT 1"
            );
            let Some(run) = query_runs(tx, db, &sql, params)?.into_iter().next() else {
                return Ok(None);
            };
            tx.prepare_cached(
                "UPDATE runs SET lease_owner = ?2, lease_until = ?3 WHERE run_id = ?1",
            )
            .and_then(|mut s| s.execute((&run.run_id, &owner, until)))
            .map_err(|e| db_error(db, e))?;
            Ok(Some(run))
        })
    }

    fn renew_runs<'a>(&'a self, lease: Lease<'a>) -> BoxFuture<'a, Result<u64, StoreError>> {
        let owner = lease.owner.to_owned();
        let (now, until) = (to_i64(lease.now_ms), to_i64(lease.until_ms));
        self.write(move |tx, db| {
            let n = tx
                .prepare_cached(
                    "UPDATE runs SET lease_until = ?2 WHERE lease_owner = ?1 AND lease_until >= ?3",
                )
                .and_then(|mut s| s.execute((&owner, until, now)))
                .map_err(|e| db_error(db, e))?;
            Ok(n as u64)
        })
    }

    fn release_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (run_id, owner) = (run_id.to_owned(), owner.to_owned());
        self.write(move |tx, db| {
            tx.prepare_cached(
                "UPDATE runs SET lease_owner = NULL, lease_until = NULL \
                 WHERE run_id = ?1 AND lease_owner = ?2",
            )
            .and_then(|mut s| s.execute((&run_id, &owner)))
            .map_err(|e| db_error(db, e))?;
            Ok(())
        })
    }
}

//! The `runs` and `journal` tables: [`RunStore`] for [`PostgresStore`], and
//! the journal insert the session calls share.

use futures::future::BoxFuture;
use tokio_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::errors::{col, db_error, from_json, invalid, is, to_i64, to_json, to_u64};
use crate::store::{
    JournalEntry, JournalKind, JournalRecord, NewRun, RunFilter, RunRecord, RunStatus, RunStore,
    RunUpdate, Scope, StoreError,
};
use crate::util::now_ms;

pub(super) const RUN_COLUMNS: &str = "run_id, status, workflow_key, spec_digest, account_id, \
     user_id, session_id, input, last_agent, last_response_id, output, error, usage, created_at, \
     updated_at";

const JOURNAL_COLUMNS: &str = "seq, at, kind, key, plugin_digest, data";

impl RunStore for PostgresStore {
    fn create_run_with<'a>(
        &'a self,
        run: NewRun,
        first: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        Box::pin(self.create_run_impl(run, first))
    }

    fn get_run<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let run = load_run(&**client, self.db(), run_id, false).await?;
            Ok(run.filter(|r| scope.admits(&r.account_id)))
        })
    }

    fn run_status<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunStatus>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let db = self.db();
            let row = client
                .query_opt("SELECT status FROM runs WHERE run_id = $1", &[&run_id])
                .await
                .map_err(|e| db_error(db, e))?;
            row.map(|r| parse_status(db, col(db, &r, 0)?)).transpose()
        })
    }

    fn list_runs<'a>(
        &'a self,
        scope: &'a Scope,
        filter: RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            list_runs(&**client, self.db(), scope.account_filter(), filter).await
        })
    }

    fn update_run<'a>(
        &'a self,
        run_id: &'a str,
        update: RunUpdate,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let run = update_in(&*tx, db, run_id, &update, now_ms()).await?;
            tx.commit().await.map_err(|e| db_error(db, e))?;
            Ok(run)
        })
    }

    fn append_with_update<'a>(
        &'a self,
        run_id: &'a str,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.append_now(run_id, entry, update, true))
    }

    fn append_queued(
        self: std::sync::Arc<Self>,
        run_id: String,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.enqueue_append(run_id, entry, update)
    }

    fn journal<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let db = self.db();
            let rows = match scope.account_filter() {
                None => client
                    .query(
                        &format!(
                            "SELECT {JOURNAL_COLUMNS} FROM journal WHERE run_id = $1 ORDER BY seq"
                        ),
                        &[&run_id],
                    )
                    .await,
                Some(account) => client
                    .query(
                        &format!(
                            "SELECT {JOURNAL_COLUMNS} FROM journal WHERE run_id = $1 AND EXISTS \
                             (SELECT 1 FROM runs WHERE runs.run_id = $1 AND runs.account_id = $2) \
                             ORDER BY seq"
                        ),
                        &[&run_id, &account],
                    )
                    .await,
            }
            .map_err(|e| db_error(db, e))?;
            rows.iter().map(|r| journal_record(db, r)).collect()
        })
    }

    fn journal_by_key<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let db = self.db();
            let rows = client
                .query(
                    &format!(
                        "SELECT {JOURNAL_COLUMNS} FROM journal WHERE run_id = $1 AND key = $2 \
                         ORDER BY seq"
                    ),
                    &[&run_id, &key],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            rows.iter().map(|r| journal_record(db, r)).collect()
        })
    }

    fn interrupted_runs<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let db = self.db();
            let account = scope.account_filter();
            let rows = client
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') \
                         AND ($1::TEXT IS NULL OR account_id = $1) ORDER BY created_at, ord"
                    ),
                    &[&account],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            rows.iter().map(|r| run_record(db, r)).collect()
        })
    }

    fn prune_finished<'a>(&'a self, before_ms: u64) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let db = self.db();
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
            let before = to_i64(before_ms);
            let finished = "SELECT run_id FROM runs WHERE status IN \
                 ('completed', 'failed', 'cancelled') AND updated_at < $1";
            // The outbox has no foreign key to runs; the journal and the
            // events go with their run (ON DELETE CASCADE).
            tx.execute(
                &format!("DELETE FROM outbox WHERE run_id IN ({finished})"),
                &[&before],
            )
            .await
            .map_err(|e| db_error(db, e))?;
            let gone = tx
                .execute(
                    &format!("DELETE FROM runs WHERE run_id IN ({finished})"),
                    &[&before],
                )
                .await
                .map_err(|e| db_error(db, e))?;
            tx.commit().await.map_err(|e| db_error(db, e))?;
            Ok(gone)
        })
    }
}

impl PostgresStore {
    /// The append; `ordered`: after the queued appends (all callers but
    /// the queue's task).
    pub(super) async fn append_now(
        &self,
        run_id: &str,
        entry: JournalEntry,
        update: Option<RunUpdate>,
        ordered: bool,
    ) -> Result<u64, StoreError> {
        let db = self.db();
        let mut client = if ordered {
            self.client().await?
        } else {
            self.pooled().await?
        };
        let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
        let now = now_ms();
        let seq = insert_journal(&*tx, db, run_id, &entry, now).await?;
        if let Some(update) = &update {
            update_in(&*tx, db, run_id, update, now).await?;
        }
        tx.commit().await.map_err(|e| db_error(db, e))?;
        Ok(seq)
    }

    async fn create_run_impl(
        &self,
        run: NewRun,
        first: Option<JournalEntry>,
    ) -> Result<RunRecord, StoreError> {
        let db = self.db();
        let input = to_json("run input", &run.input)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO runs (run_id, status, workflow_key, spec_digest, account_id, user_id, \
             session_id, input, usage, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '{}', $9, $9)",
            &[
                &run.run_id,
                &run.status.as_str(),
                &run.workflow_key,
                &run.spec_digest,
                &run.account_id,
                &run.user_id,
                &run.session_id,
                &input,
                &to_i64(now),
            ],
        )
        .await
        .map_err(|e| {
            if is(&e, &SqlState::UNIQUE_VIOLATION) {
                StoreError::Conflict(format!("a run with id {:?} already exists", run.run_id))
            } else {
                db_error(db, e)
            }
        })?;
        if let Some(entry) = &first {
            insert_journal(&*tx, db, &run.run_id, entry, now).await?;
        }
        if run.status == RunStatus::Queued {
            super::claims::notify_ready(&*tx, db, &run.run_id).await?;
        }
        tx.commit().await.map_err(|e| db_error(db, e))?;
        Ok(run.into_record(now))
    }
}

/// Appends `entry` to the run's journal inside a transaction; returns its
/// seq. Bumping `journal_seq` locks the run's row until the transaction
/// ends, so two processes appending to one run take turns.
pub(super) async fn insert_journal(
    tx: &impl GenericClient,
    db: &str,
    run_id: &str,
    entry: &JournalEntry,
    now: u64,
) -> Result<u64, StoreError> {
    let data = to_json("journal data", &entry.data)?;
    let row = tx
        .query_opt(
            "UPDATE runs SET journal_seq = journal_seq + 1 WHERE run_id = $1 \
             RETURNING journal_seq",
            &[&run_id],
        )
        .await
        .map_err(|e| db_error(db, e))?
        .ok_or_else(|| StoreError::NotFound {
            run_id: run_id.to_owned(),
        })?;
    let seq: i64 = col(db, &row, 0)?;
    tx.execute(
        "INSERT INTO journal (run_id, seq, at, kind, key, plugin_digest, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &run_id,
            &seq,
            &to_i64(now),
            &entry.kind.as_str(),
            &entry.key,
            &entry.plugin_digest,
            &data,
        ],
    )
    .await
    .map_err(|e| db_error(db, e))?;
    to_u64(db, "journal seq", seq)
}

/// Applies `update` to the run (locked for the rest of the transaction).
pub(super) async fn update_in(
    tx: &impl GenericClient,
    db: &str,
    run_id: &str,
    update: &RunUpdate,
    now: u64,
) -> Result<RunRecord, StoreError> {
    let mut run = load_run(tx, db, run_id, true)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            run_id: run_id.to_owned(),
        })?;
    update.apply_to(&mut run, now)?;
    let output = run
        .output
        .as_ref()
        .map(|o| to_json("run output", o))
        .transpose()?;
    let usage = crate::usage::stored::to_string(&run.usage).map_err(|source| {
        StoreError::Serialization {
            what: "run usage",
            source,
        }
    })?;
    tx.execute(
        "UPDATE runs SET status = $1, last_agent = $2, last_response_id = $3, output = $4, \
         error = $5, usage = $6, updated_at = $7 WHERE run_id = $8",
        &[
            &run.status.as_str(),
            &run.last_agent,
            &run.last_response_id,
            &output,
            &run.error,
            &usage,
            &to_i64(run.updated_at_ms),
            &run_id,
        ],
    )
    .await
    .map_err(|e| db_error(db, e))?;
    Ok(run)
}

pub(super) async fn load_run(
    client: &impl GenericClient,
    db: &str,
    run_id: &str,
    for_update: bool,
) -> Result<Option<RunRecord>, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row = client
        .query_opt(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1{lock}"),
            &[&run_id],
        )
        .await
        .map_err(|e| db_error(db, e))?;
    row.map(|r| run_record(db, &r)).transpose()
}

/// Runs of `account` (all: `None`) matching `filter`, newest first.
async fn list_runs(
    client: &impl GenericClient,
    db: &str,
    account: Option<&str>,
    filter: RunFilter,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut texts: Vec<String> = Vec::new();
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE true");
    let mut push = |column: &str, value: String, sql: &mut String| {
        texts.push(value);
        sql.push_str(&format!(" AND {column} ${}", texts.len()));
    };
    if let Some(account) = account {
        push("account_id =", account.to_owned(), &mut sql);
    }
    if let Some(status) = filter.status {
        push("status =", status.as_str().to_owned(), &mut sql);
    }
    if let Some(workflow) = filter.workflow {
        push("workflow_key =", workflow, &mut sql);
    }
    if let Some(after) = filter.after {
        // Older than the cursor in this listing's order; an unknown cursor
        // matches no row, so the page is empty.
        push(
            "(created_at, ord) < (SELECT created_at, ord FROM runs WHERE run_id =",
            after,
            &mut sql,
        );
        sql.push(')');
    }
    if let Some(scope) = filter.session {
        push("account_id =", scope.account_id, &mut sql);
        push("user_id =", scope.user_id, &mut sql);
        push("session_id =", scope.session_id, &mut sql);
    }
    sql.push_str(" ORDER BY created_at DESC, ord DESC");
    if let Some(limit) = filter.limit {
        sql.push_str(&format!(" LIMIT {}", to_i64(limit as u64)));
    }
    let params: Vec<&(dyn ToSql + Sync)> = texts.iter().map(|t| t as _).collect();
    let rows = client
        .query(&sql, &params)
        .await
        .map_err(|e| db_error(db, e))?;
    rows.iter().map(|r| run_record(db, r)).collect()
}

fn parse_status(db: &str, s: &str) -> Result<RunStatus, StoreError> {
    s.parse::<RunStatus>()
        .map_err(|e| invalid(db, e.to_string()))
}

/// A row of [`RUN_COLUMNS`].
pub(super) fn run_record(db: &str, r: &Row) -> Result<RunRecord, StoreError> {
    let output: Option<String> = col(db, r, 10)?;
    let usage: String = col(db, r, 12)?;
    let run_id: String = col(db, r, 0)?;
    Ok(RunRecord {
        status: parse_status(db, col(db, r, 1)?)
            .map_err(|e| invalid(db, format!("run {run_id}: {e}")))?,
        workflow_key: col(db, r, 2)?,
        spec_digest: col(db, r, 3)?,
        account_id: col(db, r, 4)?,
        user_id: col(db, r, 5)?,
        session_id: col(db, r, 6)?,
        input: from_json(db, "run input", col(db, r, 7)?)?,
        last_agent: col(db, r, 8)?,
        last_response_id: col(db, r, 9)?,
        output: output
            .as_deref()
            .map(|s| from_json(db, "run output", s))
            .transpose()?,
        error: col(db, r, 11)?,
        usage: crate::usage::stored::from_str(&usage)
            .map_err(|e| invalid(db, format!("stored run usage is not valid: {e}")))?,
        created_at_ms: to_u64(db, "timestamp", col(db, r, 13)?)?,
        updated_at_ms: to_u64(db, "timestamp", col(db, r, 14)?)?,
        run_id,
    })
}

fn journal_record(db: &str, r: &Row) -> Result<JournalRecord, StoreError> {
    let kind: &str = col(db, r, 2)?;
    Ok(JournalRecord {
        seq: to_u64(db, "journal seq", col(db, r, 0)?)?,
        at_ms: to_u64(db, "timestamp", col(db, r, 1)?)?,
        entry: JournalEntry {
            kind: kind
                .parse::<JournalKind>()
                .map_err(|e| invalid(db, e.to_string()))?,
            key: col(db, r, 3)?,
            plugin_digest: col(db, r, 4)?,
            data: from_json(db, "journal data", col(db, r, 5)?)?,
        },
    })
}

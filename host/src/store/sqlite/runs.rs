//! The `runs` and `journal` tables: [`RunStore`] for [`SqliteStore`], and
//! the helpers the session calls share (a journal entry written with them).

use std::sync::Arc;

use futures::future::BoxFuture;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row};

use super::SqliteStore;
use super::errors::{corrupt, db_error, from_json, to_i64, to_json, to_u64};
use super::group_commit::{Seqs, When, owner_of};
use crate::store::{
    JournalEntry, JournalKind, JournalRecord, NewRun, RunFilter, RunRecord, RunStatus, RunStore,
    RunUpdate, Scope, StoreError,
};
use crate::util::now_ms;

impl RunStore for SqliteStore {
    fn create_run_with<'a>(
        &'a self,
        run: NewRun,
        first: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        let first = match first.map(Prepared::of).transpose() {
            Ok(f) => f,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        // Committed like a barrier's writes: a new run under load joins
        // the commit of the runs already going (see `GROUP_PASSES`).
        let when = When::Deferred(owner_of(&run.run_id));
        let seqs = self.inner.seqs.clone();
        self.call_with(true, false, when, move |tx, db| {
            create_run(tx, db, run, first.as_ref(), &seqs)
        })
    }

    fn get_run<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let run_id = run_id.to_owned();
        let scope = scope.clone();
        self.read(move |conn, db| {
            Ok(load_run(conn, db, &run_id)?.filter(|r| scope.admits(&r.account_id)))
        })
    }

    fn run_status<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunStatus>, StoreError>> {
        let run_id = run_id.to_owned();
        self.read(move |conn, db| run_status(conn, db, &run_id))
    }

    fn list_runs<'a>(
        &'a self,
        scope: &'a Scope,
        filter: RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let account = scope.account_filter().map(str::to_owned);
        self.read(move |conn, db| list_runs(conn, db, account, filter))
    }

    fn update_run<'a>(
        &'a self,
        run_id: &'a str,
        update: RunUpdate,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        let run_id = run_id.to_owned();
        self.write(move |tx, db| update_in(tx, db, &run_id, &update, now_ms()))
    }

    fn append_with_update<'a>(
        &'a self,
        run_id: &'a str,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.append_op(run_id.to_owned(), entry, update, When::Now)
    }

    fn append_queued(
        self: Arc<Self>,
        run_id: String,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        let owner = owner_of(&run_id);
        self.append_op(run_id, entry, update, When::Deferred(owner))
    }

    fn journal<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        let run_id = run_id.to_owned();
        let account = scope.account_filter().map(str::to_owned);
        self.read(move |conn, db| match account {
            None => query_journal(
                conn,
                db,
                "SELECT seq, at, kind, key, plugin_digest, data FROM journal \
                 WHERE run_id = ?1 ORDER BY seq",
                &[&run_id],
            ),
            Some(account) => query_journal(
                conn,
                db,
                "SELECT seq, at, kind, key, plugin_digest, data FROM journal \
                 WHERE run_id = ?1 AND EXISTS \
                 (SELECT 1 FROM runs WHERE runs.run_id = ?1 AND runs.account_id = ?2) \
                 ORDER BY seq",
                &[&run_id, &account],
            ),
        })
    }

    fn journal_by_key<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        let run_id = run_id.to_owned();
        let key = key.to_owned();
        self.read(move |conn, db| {
            query_journal(
                conn,
                db,
                "SELECT seq, at, kind, key, plugin_digest, data FROM journal \
                 WHERE run_id = ?1 AND key = ?2 ORDER BY seq",
                &[&run_id, &key],
            )
        })
    }

    fn interrupted_runs<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let account = scope.account_filter().map(str::to_owned);
        self.read(move |conn, db| {
            let (filter, params) = match account {
                Some(a) => (" AND account_id = ?1", vec![SqlValue::Text(a)]),
                None => ("", Vec::new()),
            };
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running'){filter} \
                 ORDER BY created_at, rowid"
            );
            query_runs(conn, db, &sql, params)
        })
    }

    fn prune_finished<'a>(&'a self, before_ms: u64) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.write(move |tx, db| {
            let before = to_i64(before_ms);
            let finished = "SELECT run_id FROM runs WHERE status IN                  ('completed', 'failed', 'cancelled') AND updated_at < ?1";
            // The outbox has no foreign key to runs; the journal and the
            // events go with their run (ON DELETE CASCADE).
            tx.execute(
                &format!("DELETE FROM outbox WHERE run_id IN ({finished})"),
                [before],
            )
            .map_err(|e| db_error(db, e))?;
            let gone = tx
                .execute(&format!("DELETE FROM runs WHERE run_id IN ({finished})"), [before])
                .map_err(|e| db_error(db, e))?;
            Ok(gone as u64)
        })
    }
}

impl SqliteStore {
    /// Queues an append (and its update); the future reports it. Deferred,
    /// it waits in the queue until the future is first polled or another
    /// call runs the queue, so that a run's write-behind entries, and other
    /// runs' meanwhile, share the commit its next barrier makes.
    fn append_op(
        &self,
        run_id: String,
        entry: JournalEntry,
        update: Option<RunUpdate>,
        when: When,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        let entry = match Prepared::of(entry) {
            Ok(e) => e,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        // Without an update the append writes with one statement.
        let single = update.is_none();
        let seqs = self.inner.seqs.clone();
        self.call_with(true, single, when, move |tx: &Connection, db: &str| {
            let now = now_ms();
            let seq = insert_journal(tx, db, &run_id, &entry, now, &seqs)?;
            // After the insert on purpose: if the update fails, the
            // savepoint rolls the entry back too.
            if let Some(update) = &update {
                update_in(tx, db, &run_id, update, now)?;
                if update.status.is_some_and(RunStatus::is_terminal) {
                    seqs.forget(&run_id);
                }
            }
            Ok(seq)
        })
    }
}

/// Inserts the run and, if given, its first journal entry.
fn create_run(
    tx: &Connection,
    db: &str,
    run: NewRun,
    first: Option<&Prepared>,
    seqs: &Seqs,
) -> Result<RunRecord, StoreError> {
    let input = to_json("run input", &run.input)?;
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO runs (run_id, status, workflow_key, spec_digest, account_id, user_id, \
                 session_id, input, usage, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '{}', ?9, ?9)",
    )
    .and_then(|mut s| {
        s.execute((
            &run.run_id,
            run.status.as_str(),
            &run.workflow_key,
            &run.spec_digest,
            &run.account_id,
            &run.user_id,
            &run.session_id,
            &input,
            to_i64(now),
        ))
    })
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict(format!("a run with id {:?} already exists", run.run_id))
        }
        e => db_error(db, e),
    })?;
    if let Some(entry) = first {
        insert_journal(tx, db, &run.run_id, entry, now, seqs)?;
    }
    Ok(run.into_record(now))
}

fn run_status(conn: &Connection, db: &str, run_id: &str) -> Result<Option<RunStatus>, StoreError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM runs WHERE run_id = ?1")
        .and_then(|mut s| s.query_row([run_id], |r| r.get(0)).optional())
        .map_err(|e| db_error(db, e))?;
    status
        .map(|s| {
            s.parse::<RunStatus>().map_err(|e| StoreError::Corrupt {
                db: db.to_owned(),
                detail: e.to_string(),
            })
        })
        .transpose()
}

/// Runs of `account` (all: `None`) matching `filter`, newest first.
fn list_runs(
    conn: &Connection,
    db: &str,
    account: Option<String>,
    filter: RunFilter,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(account) = account {
        params.push(SqlValue::Text(account));
        sql.push_str(&format!(" AND account_id = ?{}", params.len()));
    }
    if let Some(status) = filter.status {
        params.push(SqlValue::Text(status.as_str().to_owned()));
        sql.push_str(&format!(" AND status = ?{}", params.len()));
    }
    if let Some(workflow) = filter.workflow {
        params.push(SqlValue::Text(workflow));
        sql.push_str(&format!(" AND workflow_key = ?{}", params.len()));
    }
    if let Some(after) = filter.after {
        // Older than the cursor in this listing's order; an unknown cursor
        // matches no row, so the page is empty.
        params.push(SqlValue::Text(after));
        let n = params.len();
        sql.push_str(&format!(
            " AND (created_at, rowid) < (SELECT created_at, rowid FROM runs WHERE run_id = ?{n})"
        ));
    }
    if let Some(scope) = filter.session {
        for (column, value) in [
            ("account_id", scope.account_id),
            ("user_id", scope.user_id),
            ("session_id", scope.session_id),
        ] {
            params.push(SqlValue::Text(value));
            sql.push_str(&format!(" AND {column} = ?{}", params.len()));
        }
    }
    // LIMIT -1: no limit.
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    params.push(SqlValue::Integer(limit));
    sql.push_str(&format!(
        " ORDER BY created_at DESC, rowid DESC LIMIT ?{}",
        params.len()
    ));
    query_runs(conn, db, &sql, params)
}

pub(super) const RUN_COLUMNS: &str = "run_id, status, workflow_key, spec_digest, account_id, user_id, \
     session_id, input, last_agent, last_response_id, output, error, usage, created_at, updated_at";

/// A `runs` row as stored, converted with [`RawRun::into_record`].
struct RawRun {
    run_id: String,
    status: String,
    workflow_key: String,
    spec_digest: String,
    account_id: String,
    user_id: String,
    session_id: Option<String>,
    input: String,
    last_agent: Option<String>,
    last_response_id: Option<String>,
    output: Option<String>,
    error: Option<String>,
    usage: String,
    created_at: i64,
    updated_at: i64,
}

impl RawRun {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            run_id: r.get(0)?,
            status: r.get(1)?,
            workflow_key: r.get(2)?,
            spec_digest: r.get(3)?,
            account_id: r.get(4)?,
            user_id: r.get(5)?,
            session_id: r.get(6)?,
            input: r.get(7)?,
            last_agent: r.get(8)?,
            last_response_id: r.get(9)?,
            output: r.get(10)?,
            error: r.get(11)?,
            usage: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
        })
    }

    fn into_record(self, db: &str) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            status: self
                .status
                .parse::<RunStatus>()
                .map_err(|e| corrupt(db, format!("run {}: {e}", self.run_id)))?,
            input: from_json(db, "run input", &self.input)?,
            output: self
                .output
                .as_deref()
                .map(|s| from_json(db, "run output", s))
                .transpose()?,
            usage: crate::usage::stored::from_str(&self.usage)
                .map_err(|e| corrupt(db, format!("stored run usage is not valid: {e}")))?,
            created_at_ms: to_u64(db, "timestamp", self.created_at)?,
            updated_at_ms: to_u64(db, "timestamp", self.updated_at)?,
            run_id: self.run_id,
            workflow_key: self.workflow_key,
            spec_digest: self.spec_digest,
            account_id: self.account_id,
            user_id: self.user_id,
            session_id: self.session_id,
            last_agent: self.last_agent,
            last_response_id: self.last_response_id,
            error: self.error,
        })
    }
}

pub(super) fn query_runs(
    conn: &Connection,
    db: &str,
    sql: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| db_error(db, e))?;
    let raws = stmt
        .query_map(rusqlite::params_from_iter(params), RawRun::from_row)
        .map_err(|e| db_error(db, e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db_error(db, e))?;
    raws.into_iter().map(|r| r.into_record(db)).collect()
}

fn load_run(conn: &Connection, db: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([run_id], RawRun::from_row).optional())
        .map_err(|e| db_error(db, e))?;
    raw.map(|r| r.into_record(db)).transpose()
}

fn load_run_required(conn: &Connection, db: &str, run_id: &str) -> Result<RunRecord, StoreError> {
    load_run(conn, db, run_id)?.ok_or_else(|| StoreError::NotFound {
        run_id: run_id.to_owned(),
    })
}

/// Applies `update` to the stored run inside `tx`.
fn update_in(
    tx: &Connection,
    db: &str,
    run_id: &str,
    update: &RunUpdate,
    now: u64,
) -> Result<RunRecord, StoreError> {
    let mut run = load_run_required(tx, db, run_id)?;
    update.apply_to(&mut run, now)?;
    let usage = crate::usage::stored::to_string(&run.usage).map_err(|source| {
        StoreError::Serialization {
            what: "run usage",
            source,
        }
    })?;
    let output = run
        .output
        .as_ref()
        .map(|o| to_json("run output", o))
        .transpose()?;
    tx.prepare_cached(
        "UPDATE runs SET status = ?1, last_agent = ?2, last_response_id = ?3, output = ?4, \
         error = ?5, usage = ?6, updated_at = ?7 WHERE run_id = ?8",
    )
    .and_then(|mut s| {
        s.execute((
            run.status.as_str(),
            &run.last_agent,
            &run.last_response_id,
            &output,
            &run.error,
            &usage,
            to_i64(run.updated_at_ms),
            run_id,
        ))
    })
    .map_err(|e| db_error(db, e))?;
    Ok(run)
}

/// A journal entry with its data already serialized (done by the caller,
/// so the database thread only runs SQL).
pub(super) struct Prepared {
    kind: JournalKind,
    key: String,
    plugin_digest: Option<String>,
    data: String,
}

impl Prepared {
    pub(super) fn of(entry: JournalEntry) -> Result<Self, StoreError> {
        Ok(Prepared {
            data: to_json("journal data", &entry.data)?,
            kind: entry.kind,
            key: entry.key,
            plugin_digest: entry.plugin_digest,
        })
    }
}

/// Appends `entry` to the run's journal inside `tx`; returns its seq.
/// The seq comes from the hint in `seqs` when there is one (and the next
/// seq goes back into it).
pub(super) fn insert_journal(
    tx: &Connection,
    db: &str,
    run_id: &str,
    entry: &Prepared,
    now: u64,
    seqs: &Seqs,
) -> Result<u64, StoreError> {
    // The next seq of the run, then the insert: the read writes nothing, so
    // the call stays one write statement. (`INSERT … RETURNING` would do it
    // in one, but builds an ephemeral table per execution: slower.) An
    // unknown run fails the foreign key (reported as NotFound).
    let read_next = || -> Result<i64, StoreError> {
        tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE run_id = ?1")
            .and_then(|mut s| s.query_row([run_id], |r| r.get(0)))
            .map_err(|e| db_error(db, e))
    };
    let insert = |seq: i64| -> rusqlite::Result<usize> {
        tx.prepare_cached(
            "INSERT INTO journal (run_id, seq, at, kind, key, plugin_digest, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute((
                run_id,
                seq,
                to_i64(now),
                entry.kind.as_str(),
                &entry.key,
                &entry.plugin_digest,
                &entry.data,
            ))
        })
    };
    let hinted = seqs.next(run_id);
    let mut next = match hinted {
        Some(next) => next,
        None => read_next()?,
    };
    let mut inserted = insert(next);
    if hinted.is_some()
        && matches!(&inserted, Err(rusqlite::Error::SqliteFailure(f, _))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
    {
        // Another process appended to the run since.
        next = read_next()?;
        inserted = insert(next);
    }
    inserted.map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            StoreError::NotFound {
                run_id: run_id.to_owned(),
            }
        }
        e => db_error(db, e),
    })?;
    seqs.set(run_id, next + 1);
    to_u64(db, "journal seq", next)
}

fn query_journal(
    conn: &Connection,
    db: &str,
    sql: &str,
    params: &[&str],
) -> Result<Vec<JournalRecord>, StoreError> {
    type Raw = (i64, i64, String, String, Option<String>, String);
    let mut stmt = conn.prepare_cached(sql).map_err(|e| db_error(db, e))?;
    let raws = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .map_err(|e| db_error(db, e))?
        .collect::<rusqlite::Result<Vec<Raw>>>()
        .map_err(|e| db_error(db, e))?;
    raws.into_iter()
        .map(|(seq, at, kind, key, plugin_digest, data)| {
            Ok(JournalRecord {
                seq: to_u64(db, "journal seq", seq)?,
                at_ms: to_u64(db, "timestamp", at)?,
                entry: JournalEntry {
                    kind: kind
                        .parse::<JournalKind>()
                        .map_err(|e| corrupt(db, e.to_string()))?,
                    key,
                    plugin_digest,
                    data: from_json(db, "journal data", &data)?,
                },
            })
        })
        .collect()
}

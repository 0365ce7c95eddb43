//! The `outbox` table: [`OutboxStore`] for [`SqliteStore`].

use futures::future::BoxFuture;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row};

use super::SqliteStore;
use super::errors::{corrupt, db_error, from_json, to_i64, to_json, to_u64};
use crate::store::{
    NewOutboxEntry, OutboxClaim, OutboxRecord, OutboxState, OutboxStore, OutboxSummary,
    OutboxTarget, Scope, StoreError,
};
use crate::util::now_ms;

impl OutboxStore for SqliteStore {
    fn outbox_enqueue<'a>(
        &'a self,
        entries: Vec<NewOutboxEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.write(move |tx, db| enqueue(tx, db, &entries))
    }

    fn outbox_last_seq<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let (run_id, url) = (run_id.to_owned(), url.to_owned());
        self.read(move |conn, db| last_seq(conn, db, &run_id, &url))
    }

    fn outbox_heads<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let account = scope.account_filter().map(str::to_owned);
        self.read(move |conn, db| heads(conn, db, account))
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
        let (run_id, url, owner) = (run_id.to_owned(), url.to_owned(), owner.to_owned());
        let scope = scope.clone();
        self.write(move |tx, db| {
            claim(
                tx,
                db,
                (&scope, &run_id, &url),
                &owner,
                now_ms,
                lease_until_ms,
            )
        })
    }

    fn outbox_release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let owner = owner.to_owned();
        self.write(move |tx, db| {
            tx.prepare_cached(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
            )
            .and_then(|mut s| s.execute([&owner]))
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
        let (run_id, url) = (run_id.to_owned(), url.to_owned());
        self.write(move |tx, db| {
            finish_attempt(
                tx,
                db,
                (&run_id, &url, seq),
                OutboxState::Delivered,
                None,
                None,
            )
        })
    }

    fn outbox_failed<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
        error: String,
        retry_at_ms: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (run_id, url) = (run_id.to_owned(), url.to_owned());
        self.write(move |tx, db| {
            let state = match retry_at_ms {
                Some(_) => OutboxState::Pending,
                None => OutboxState::Dead,
            };
            finish_attempt(
                tx,
                db,
                (&run_id, &url, seq),
                state,
                Some(&error),
                retry_at_ms,
            )
        })
    }
    fn outbox_entries<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let run_id = run_id.map(str::to_owned);
        let account = scope.account_filter().map(str::to_owned);
        self.read(move |conn, db| entries(conn, db, account, run_id, state, limit))
    }

    fn outbox_summary<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>> {
        let run_id = run_id.to_owned();
        let account = scope.account_filter().map(str::to_owned);
        self.read(move |conn, db| summary(conn, db, account, run_id))
    }
}

/// Inserts the entries as pending, due now; existing ones stay as they are.
fn enqueue(tx: &Connection, db: &str, entries: &[NewOutboxEntry]) -> Result<(), StoreError> {
    let now = to_i64(now_ms());
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO outbox (run_id, url, seq, target, event_type, body, state, \
                     attempts, next_attempt_at, created_at, updated_at, account_id, user_id) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7, ?7, \
                     COALESCE(r.account_id, ''), COALESCE(r.user_id, '') \
                     FROM (SELECT 1) LEFT JOIN runs r ON r.run_id = ?1 \
                     WHERE true ON CONFLICT DO NOTHING",
        )
        .map_err(|e| db_error(db, e))?;
    for e in entries {
        let target = to_json("outbox target", &e.target)?;
        insert
            .execute((
                &e.run_id,
                &e.target.url,
                to_i64(e.seq),
                &target,
                &e.event_type,
                &e.body,
                now,
            ))
            .map_err(|e| db_error(db, e))?;
    }
    Ok(())
}

fn last_seq(conn: &Connection, db: &str, run_id: &str, url: &str) -> Result<u64, StoreError> {
    let last: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE run_id = ?1 AND url = ?2")
        .and_then(|mut s| s.query_row((run_id, url), |r| r.get(0)))
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "outbox seq", last)
}

/// The head of every lane (of `account`, or all) with pending entries,
/// oldest lane first.
fn heads(
    conn: &Connection,
    db: &str,
    account: Option<String>,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let (filter, params) = match account {
        Some(a) => (" AND account_id = ?1", vec![SqlValue::Text(a)]),
        None => ("", Vec::new()),
    };
    // SQLite takes the bare columns from the row holding MIN(seq).
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS}, MIN(seq) FROM outbox WHERE state = 'pending'{filter} \
                 GROUP BY run_id, url ORDER BY created_at, run_id, url"
    );
    Ok(query_outbox(conn, db, &sql, params)?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

/// Leases the head of the lane `(run_id, url)` to `owner` if it is due, not
/// leased to another owner and in `scope`.
fn claim(
    tx: &Connection,
    db: &str,
    (scope, run_id, url): (&Scope, &str, &str),
    owner: &str,
    now_ms: u64,
    lease_until_ms: u64,
) -> Result<OutboxClaim, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox \
                 WHERE run_id = ?1 AND url = ?2 AND state = 'pending' ORDER BY seq LIMIT 1"
    );
    let head = query_outbox(
        tx,
        db,
        &sql,
        vec![
            SqlValue::Text(run_id.to_owned()),
            SqlValue::Text(url.to_owned()),
        ],
    )?
    .into_iter()
    .next();
    let Some((record, lease)) = head.filter(|(r, _)| scope.admits(&r.account_id)) else {
        return Ok(OutboxClaim::Empty);
    };
    let lease = lease.as_ref().map(|(o, until)| (o.as_str(), *until));
    if let Some(refused) = OutboxClaim::refusal(lease, record.next_attempt_at_ms, owner, now_ms) {
        return Ok(refused);
    }
    tx.prepare_cached(
        "UPDATE outbox SET lease_owner = ?4, lease_until = ?5 \
                 WHERE run_id = ?1 AND url = ?2 AND seq = ?3",
    )
    .and_then(|mut s| {
        s.execute((
            run_id,
            url,
            to_i64(record.seq),
            owner,
            to_i64(lease_until_ms),
        ))
    })
    .map_err(|e| db_error(db, e))?;
    Ok(OutboxClaim::Claimed(Box::new(record)))
}

fn entries(
    conn: &Connection,
    db: &str,
    account: Option<String>,
    run_id: Option<String>,
    state: Option<OutboxState>,
    limit: Option<usize>,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let mut sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(account) = account {
        params.push(SqlValue::Text(account));
        sql.push_str(&format!(" AND account_id = ?{}", params.len()));
    }
    if let Some(run_id) = run_id {
        params.push(SqlValue::Text(run_id));
        sql.push_str(&format!(" AND run_id = ?{}", params.len()));
    }
    if let Some(state) = state {
        params.push(SqlValue::Text(state.as_str().to_owned()));
        sql.push_str(&format!(" AND state = ?{}", params.len()));
    }
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    params.push(SqlValue::Integer(limit));
    sql.push_str(&format!(
        " ORDER BY run_id, url, seq LIMIT ?{}",
        params.len()
    ));
    Ok(query_outbox(conn, db, &sql, params)?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

/// The run's entries (of `account`, or all) counted by state, and its dead
/// entries.
fn summary(
    conn: &Connection,
    db: &str,
    account: Option<String>,
    run_id: String,
) -> Result<OutboxSummary, StoreError> {
    // `?2` NULL: every account.
    let counts = conn
        .prepare_cached(
            "SELECT state, COUNT(*) FROM outbox WHERE run_id = ?1 \
             AND (?2 IS NULL OR account_id = ?2) GROUP BY state",
        )
        .and_then(|mut s| {
            s.query_map((&run_id, &account), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| db_error(db, e))?;
    let mut summary = OutboxSummary::default();
    for (state, n) in counts {
        let n = to_u64(db, "outbox count", n)?;
        match state
            .parse::<OutboxState>()
            .map_err(|e| corrupt(db, e.to_string()))?
        {
            OutboxState::Pending => summary.pending = n,
            OutboxState::Delivered => summary.delivered = n,
            OutboxState::Dead => summary.dead = n,
        }
    }
    if summary.dead > 0 {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE run_id = ?1 AND state = 'dead' \
                     AND (?2 IS NULL OR account_id = ?2) ORDER BY url, seq"
        );
        let account = account.map_or(SqlValue::Null, SqlValue::Text);
        summary.dead_entries = query_outbox(conn, db, &sql, vec![SqlValue::Text(run_id), account])?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
    }
    Ok(summary)
}

const OUTBOX_COLUMNS: &str = "run_id, seq, target, event_type, body, state, attempts, \
     next_attempt_at, last_error, created_at, updated_at, lease_owner, lease_until, \
     account_id, user_id";

type RawOutbox = (
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    String,
    String,
);

fn raw_outbox(r: &Row<'_>) -> rusqlite::Result<RawOutbox> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

/// An outbox entry and its lease (owner, until).
type LeasedRecord = (OutboxRecord, Option<(String, u64)>);

fn outbox_record(db: &str, raw: RawOutbox) -> Result<LeasedRecord, StoreError> {
    let (
        run_id,
        seq,
        target,
        event_type,
        body,
        state,
        attempts,
        next,
        last_error,
        created,
        updated,
        owner,
        until,
        account_id,
        user_id,
    ) = raw;
    let target: OutboxTarget = from_json(db, "outbox target", &target)?;
    let lease = match (owner, until) {
        (Some(owner), Some(until)) => Some((owner, to_u64(db, "timestamp", until)?)),
        _ => None,
    };
    Ok((
        OutboxRecord {
            run_id,
            account_id,
            user_id,
            target,
            seq: to_u64(db, "outbox seq", seq)?,
            event_type,
            body,
            state: state
                .parse::<OutboxState>()
                .map_err(|e| corrupt(db, e.to_string()))?,
            attempts: u32::try_from(attempts)
                .map_err(|_| corrupt(db, format!("outbox attempts {attempts}")))?,
            next_attempt_at_ms: to_u64(db, "timestamp", next)?,
            last_error,
            created_at_ms: to_u64(db, "timestamp", created)?,
            updated_at_ms: to_u64(db, "timestamp", updated)?,
        },
        lease,
    ))
}

fn query_outbox(
    conn: &Connection,
    db: &str,
    sql: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<LeasedRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| db_error(db, e))?;
    let raws = stmt
        .query_map(rusqlite::params_from_iter(params), raw_outbox)
        .map_err(|e| db_error(db, e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db_error(db, e))?;
    raws.into_iter().map(|r| outbox_record(db, r)).collect()
}

/// Ends an attempt on one entry: `state`, the attempt counted, the lease
/// dropped. `NotFound` when the entry does not exist.
fn finish_attempt(
    tx: &Connection,
    db: &str,
    key: (&str, &str, u64),
    state: OutboxState,
    error: Option<&str>,
    next_attempt_at: Option<u64>,
) -> Result<(), StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE outbox SET state = ?4, attempts = attempts + 1, \
             last_error = COALESCE(?5, last_error), \
             next_attempt_at = COALESCE(?6, next_attempt_at), \
             lease_owner = NULL, lease_until = NULL, updated_at = ?7 \
             WHERE run_id = ?1 AND url = ?2 AND seq = ?3",
        )
        .and_then(|mut s| {
            s.execute((
                key.0,
                key.1,
                to_i64(key.2),
                state.as_str(),
                error,
                next_attempt_at.map(to_i64),
                to_i64(now_ms()),
            ))
        })
        .map_err(|e| db_error(db, e))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            run_id: key.0.to_owned(),
        });
    }
    Ok(())
}

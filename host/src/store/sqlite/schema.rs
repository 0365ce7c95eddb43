//! The schema: numbered migrations, applied in one transaction on open.

use rusqlite::Connection;

use super::errors::{db_error, to_i64, to_u64};
use crate::store::StoreError;
use crate::util::now_ms;

/// Schema migrations; migration `n` (1-based) is `MIGRATIONS[n - 1]`. Append
/// only: never edit a released migration.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: runs, journal, sessions.
    r#"
    CREATE TABLE runs (
        run_id           TEXT PRIMARY KEY NOT NULL,
        status           TEXT NOT NULL,
        workflow_key     TEXT NOT NULL,
        spec_digest      TEXT NOT NULL,
        account_id       TEXT NOT NULL,
        user_id          TEXT NOT NULL,
        session_id       TEXT,
        input            TEXT NOT NULL,
        last_agent       TEXT,
        last_response_id TEXT,
        output           TEXT,
        error            TEXT,
        usage            TEXT NOT NULL DEFAULT '{}',
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status, created_at);
    CREATE INDEX runs_by_session ON runs (account_id, user_id, session_id, created_at);
    CREATE INDEX runs_by_created ON runs (created_at);

    CREATE TABLE journal (
        run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,
        at            INTEGER NOT NULL,
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        plugin_digest TEXT,
        data          TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX journal_by_key ON journal (run_id, key);

    CREATE TABLE sessions (
        account_id           TEXT NOT NULL,
        user_id              TEXT NOT NULL,
        session_id           TEXT NOT NULL,
        last_seq             INTEGER NOT NULL DEFAULT 0,
        summary              TEXT,
        summary_covers_up_to INTEGER NOT NULL DEFAULT 0,
        summary_at           INTEGER,
        created_at           INTEGER NOT NULL,
        updated_at           INTEGER NOT NULL,
        PRIMARY KEY (account_id, user_id, session_id)
    ) WITHOUT ROWID;

    CREATE TABLE session_items (
        account_id TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        run_id     TEXT NOT NULL,
        at         INTEGER NOT NULL,
        item       TEXT NOT NULL,
        PRIMARY KEY (account_id, user_id, session_id, seq),
        FOREIGN KEY (account_id, user_id, session_id)
            REFERENCES sessions (account_id, user_id, session_id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    "#,
    // 2: the outbox of events waiting for HTTP delivery. No foreign key to
    // `runs`: an outbox entry outlives nothing it needs from its run, and
    // `url` is the lane (one run's events to one endpoint, in `seq` order).
    r#"
    CREATE TABLE outbox (
        run_id          TEXT NOT NULL,
        url             TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        target          TEXT NOT NULL,
        event_type      TEXT NOT NULL,
        body            TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        lease_owner     TEXT,
        lease_until     INTEGER,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        PRIMARY KEY (run_id, url, seq)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_by_state ON outbox (state, run_id, url, seq);
    "#,
    // 3: the journal in append order. Keyed by (run_id, seq), concurrent
    // runs' entries landed on as many B-tree pages as there were runs in a
    // commit, and each dirty page is a 4 KiB WAL frame; appended in one
    // global order they share the last page, and only the small
    // (run_id, seq) index is spread out. The second index, on (run_id,
    // key), is gone: the one lookup by key scans the run's entries.
    r#"
    CREATE TABLE journal_v3 (
        id            INTEGER PRIMARY KEY,
        run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,
        at            INTEGER NOT NULL,
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        plugin_digest TEXT,
        data          TEXT NOT NULL
    );
    INSERT INTO journal_v3 (run_id, seq, at, kind, key, plugin_digest, data)
        SELECT run_id, seq, at, kind, key, plugin_digest, data FROM journal
        ORDER BY at, run_id, seq;
    DROP TABLE journal;
    ALTER TABLE journal_v3 RENAME TO journal;
    CREATE UNIQUE INDEX journal_by_run ON journal (run_id, seq);
    "#,
    // 4: tenancy. Outbox entries carry their run's account and user, so a
    // query scoped to one account filters the outbox on its own column
    // (entries outlive nothing of their run, and have no foreign key to
    // it). Existing entries take their run's; those of a run no longer
    // known stay in the empty account. Runs are listed by account with
    // `runs_by_session`, whose first column is the account.
    r#"
    ALTER TABLE outbox ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
    UPDATE outbox SET
        account_id = (SELECT account_id FROM runs WHERE runs.run_id = outbox.run_id),
        user_id = (SELECT user_id FROM runs WHERE runs.run_id = outbox.run_id)
        WHERE EXISTS (SELECT 1 FROM runs WHERE runs.run_id = outbox.run_id);
    CREATE INDEX outbox_by_account ON outbox (account_id, state, run_id, url, seq);
    "#,
    // 5: stored run events, for live streams that start late or reconnect
    // (`host serve`'s Server-Sent Events). Deleted with their run.
    r#"
    CREATE TABLE events (
        run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        id         INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        body       TEXT NOT NULL,
        PRIMARY KEY (run_id, id)
    ) WITHOUT ROWID;
    "#,
    // 6: run leases (`ClaimStore`): which worker executes a run, until when.
    r#"
    ALTER TABLE runs ADD COLUMN lease_owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until INTEGER;
    "#,
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

pub(super) fn read_schema_version(conn: &Connection, db: &str) -> Result<u64, StoreError> {
    let v: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "schema version", v)
}

pub(super) fn migrate(conn: &mut Connection, db: &str) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| db_error(db, e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(|e| db_error(db, e))?;
    let found = read_schema_version(&tx, db)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Schema {
            db: db.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as u64 + 1;
        if version <= found {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| db_error(db, e))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (to_i64(version), to_i64(now_ms())),
        )
        .map_err(|e| db_error(db, e))?;
        tracing::debug!(db = %db, version, "applied run database migration");
    }
    tx.commit().map_err(|e| db_error(db, e))
}

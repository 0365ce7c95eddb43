//! The PostgreSQL schema: numbered migrations, applied in one transaction
//! under an advisory lock on first use (several workers starting at once
//! migrate once; the others wait, then find the work done).

use super::errors::{col, db_error, to_i64, to_u64};
use crate::store::StoreError;
use crate::util::now_ms;

/// Schema migrations; migration `n` (1-based) is `MIGRATIONS[n - 1]`.
/// Append only: never edit a released migration. The tables are SQLite's
/// (`sqlite/schema.rs`), as of its version 5, plus what several processes
/// need: `runs.ord` (creation order, the tie-break SQLite's rowid gives)
/// and `runs.journal_seq` (the last journal seq; bumping it locks the run's
/// row, so concurrent appends get 1, 2, 3… with no gaps).
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: runs, journal, sessions, outbox, events.
    r#"
    CREATE TABLE runs (
        run_id           TEXT PRIMARY KEY,
        ord              BIGSERIAL NOT NULL,
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
        journal_seq      BIGINT NOT NULL DEFAULT 0,
        created_at       BIGINT NOT NULL,
        updated_at       BIGINT NOT NULL
    );
    CREATE INDEX runs_by_status ON runs (status, created_at, ord);
    CREATE INDEX runs_by_session ON runs (account_id, user_id, session_id, created_at, ord);
    CREATE INDEX runs_by_created ON runs (created_at, ord);

    CREATE TABLE journal (
        run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq           BIGINT NOT NULL,
        at            BIGINT NOT NULL,
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        plugin_digest TEXT,
        data          TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );

    CREATE TABLE sessions (
        account_id           TEXT NOT NULL,
        user_id              TEXT NOT NULL,
        session_id           TEXT NOT NULL,
        last_seq             BIGINT NOT NULL DEFAULT 0,
        summary              TEXT,
        summary_covers_up_to BIGINT NOT NULL DEFAULT 0,
        summary_at           BIGINT,
        created_at           BIGINT NOT NULL,
        updated_at           BIGINT NOT NULL,
        PRIMARY KEY (account_id, user_id, session_id)
    );

    CREATE TABLE session_items (
        account_id TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq        BIGINT NOT NULL,
        run_id     TEXT NOT NULL,
        at         BIGINT NOT NULL,
        item       TEXT NOT NULL,
        PRIMARY KEY (account_id, user_id, session_id, seq),
        FOREIGN KEY (account_id, user_id, session_id)
            REFERENCES sessions (account_id, user_id, session_id) ON DELETE CASCADE
    );

    CREATE TABLE outbox (
        run_id          TEXT NOT NULL,
        url             TEXT NOT NULL,
        seq             BIGINT NOT NULL,
        account_id      TEXT NOT NULL DEFAULT '',
        user_id         TEXT NOT NULL DEFAULT '',
        target          TEXT NOT NULL,
        event_type      TEXT NOT NULL,
        body            TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        last_error      TEXT,
        lease_owner     TEXT,
        lease_until     BIGINT,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL,
        PRIMARY KEY (run_id, url, seq)
    );
    CREATE INDEX outbox_by_state ON outbox (state, run_id, url, seq);
    CREATE INDEX outbox_by_account ON outbox (account_id, state, run_id, url, seq);

    CREATE TABLE events (
        run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        id         BIGINT NOT NULL,
        event_type TEXT NOT NULL,
        body       TEXT NOT NULL,
        PRIMARY KEY (run_id, id)
    );
    "#,
    // 2: run leases (`ClaimStore`): which worker executes a run, until
    // when; the runs a worker may claim, oldest first.
    r#"
    ALTER TABLE runs ADD COLUMN lease_owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until BIGINT;
    CREATE INDEX runs_claimable ON runs (created_at, ord)
        WHERE status IN ('queued', 'running');
    "#,
];

/// The schema version this binary writes and understands.
pub const PG_SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// The advisory lock migrations hold (an arbitrary constant: "host").
const MIGRATION_LOCK: i64 = 0x686f_7374;

pub(super) async fn read_version(
    client: &impl tokio_postgres::GenericClient,
    db: &str,
) -> Result<u64, StoreError> {
    let row = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "schema version", col(db, &row, 0)?)
}

pub(super) async fn migrate(
    client: &mut deadpool_postgres::Object,
    db: &str,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(|e| db_error(db, e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| db_error(db, e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .map_err(|e| db_error(db, e))?;
    let found = read_version(&*tx, db).await?;
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::Schema {
            db: db.to_owned(),
            found,
            supported: PG_SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as u64 + 1;
        if version <= found {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|e| db_error(db, e))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
            &[&to_i64(version), &to_i64(now_ms())],
        )
        .await
        .map_err(|e| db_error(db, e))?;
        tracing::debug!(db = %db, version, "applied run database migration");
    }
    tx.commit().await.map_err(|e| db_error(db, e))
}

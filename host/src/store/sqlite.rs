//! [`SqliteStore`]: the embedded default, one SQLite file through `rusqlite`.
//!
//! - WAL mode, `synchronous=NORMAL` (a power cut may lose the last commits but
//!   never corrupts the file or leaves half a transaction), `foreign_keys=ON`,
//!   and a busy timeout after which a write gives [`StoreError::Locked`].
//! - Every write call is atomic: it runs in its own savepoint inside a
//!   `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so the
//!   busy timeout applies and no deferred transaction fails half-way on lock
//!   upgrade), and its future resolves only after that transaction commits.
//! - Schema: a `schema_version` table and numbered migrations, applied in
//!   one transaction on open; a file whose version is newer than this binary
//!   knows is refused with [`StoreError::Schema`].
//! - Concurrency: one connection, and group commit: calls queued meanwhile
//!   share one transaction, a failing call rolling back only its own
//!   savepoint (`group_commit`; measured in docs/BENCHMARKS.md).
//! - WAL checkpoints run on a thread of their own, off the commit path
//!   (`checkpoint`).
//!
//! Files: `group_commit` is the executor and knows no tables; `schema` the
//! migrations; `errors` maps rusqlite errors and stored values; `runs`,
//! `sessions`, `outbox`, `events` and `claims` implement one store trait each.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::config::DbConfig;

mod checkpoint;
mod claims;
mod errors;
mod events;
mod group_commit;
mod outbox;
mod private;
mod runs;
mod schema;
mod sessions;

pub(super) use checkpoint::{CHECKPOINT_AT, RESTART_AT};
#[cfg(test)]
pub(super) use schema::MIGRATIONS;
pub use schema::SCHEMA_VERSION;

use super::StoreError;
use errors::open_error;
use group_commit::{Inner, When, gone};
use schema::{migrate, read_schema_version};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a write waits for another process's lock before
    /// [`StoreError::Locked`]. Default 5 s.
    pub busy_timeout: Duration,
    /// WAL frames (pages written) after which a thread of the store copies
    /// them into the database file. Default [`CHECKPOINT_AT`].
    pub checkpoint_frames: u32,
    /// WAL frames past which that thread briefly holds the store's writes
    /// so that the WAL starts over (see `checkpoint`). Default
    /// [`RESTART_AT`].
    pub restart_frames: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            checkpoint_frames: CHECKPOINT_AT,
            restart_frames: RESTART_AT,
        }
    }
}

/// A [`Store`](super::Store) in one SQLite file (or in memory). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database
    /// at `path` with default options, and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private::create_dir_all(parent).map_err(|source| StoreError::Io {
                action: "cannot create the directory of the run database",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        private::create_file(path).map_err(|source| StoreError::Io {
            action: "cannot create the run database",
            path: path.to_path_buf(),
            source,
        })?;
        // Two processes creating the same new file race to make it a WAL
        // database; the loser can get "busy" at once, without SQLite's busy
        // handler ever waiting. Such an open is tried again, within the
        // same busy timeout.
        let deadline = std::time::Instant::now() + options.busy_timeout;
        loop {
            let conn = Connection::open(path).map_err(|e| open_error(&db, e))?;
            match Self::init(conn, db.clone(), Some(path), &options) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    /// A private in-memory SQLite database (for tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let db = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|e| open_error(&db, e))?;
        Self::init(conn, db, None, &SqliteOptions::default())
    }

    /// Sets up and migrates `conn`; `path` is the file (none in memory).
    fn init(
        mut conn: Connection,
        db: String,
        path: Option<&Path>,
        options: &SqliteOptions,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(options.busy_timeout)
            .map_err(|e| open_error(&db, e))?;
        // The first statement that reads the file: a garbage file fails here.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_error(&db, e))?;
        if !mode.eq_ignore_ascii_case("wal") && db != ":memory:" {
            tracing::warn!(db = %db, mode = %mode, "the run database is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| open_error(&db, e))?;
        // The bundled SQLite is built with STAT4, under which a cached
        // statement whose `WHERE` binds a parameter is recompiled on every
        // bind (costly: docs/BENCHMARKS.md). With the query planner
        // stability guarantee the plan made at prepare time stands; the
        // store never runs ANALYZE, so there is no better plan to find.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| open_error(&db, e))?;
        migrate(&mut conn, &db)?;
        // Every statement the store uses stays prepared (the default of 16
        // is fewer than it has, and re-parsing showed in profiles).
        conn.set_prepared_statement_cache_capacity(64);
        // Checkpoints run on a thread of their own (see `checkpoint`); the
        // commits only count frames.
        let checkpoints = match path {
            Some(path) => {
                let shared = Arc::new(checkpoint::Shared::new(options.checkpoint_frames));
                let hook = shared.clone();
                conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
                    hook.committed(u32::try_from(frames).unwrap_or(0));
                    Ok(())
                }))
                .map_err(|e| open_error(&db, e))?;
                Some((path.to_path_buf(), shared))
            }
            None => None,
        };
        let mut spawn_error = None;
        let inner = Arc::new_cyclic(|weak| {
            let checkpointer = checkpoints.and_then(|(path, shared)| {
                checkpoint::Checkpointer::start(
                    path.clone(),
                    shared,
                    weak.clone(),
                    options.restart_frames,
                )
                .map_err(|source| {
                    spawn_error = Some(StoreError::Io {
                        action: "cannot start the checkpoint thread of the run database",
                        path,
                        source,
                    })
                })
                .ok()
            });
            Inner::new(conn, db.clone(), checkpointer)
        });
        match spawn_error {
            Some(e) => Err(e),
            None => Ok(Self { inner }),
        }
    }

    /// Write transactions this store has committed since it was opened
    /// (each may carry many calls: see the module docs). For metrics and
    /// tests.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Wall time this store has spent running calls on its connection
    /// since it was opened: every batch from `BEGIN` to `COMMIT`, replies
    /// included. In `host` that time is spent on a runtime worker, and a
    /// barrier waits for it. For metrics and benchmarks.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.inner.busy_ns.load(Ordering::Relaxed))
    }

    /// The schema version recorded in the database. Blocks briefly.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(false, true, When::Now, read_schema_version, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| Err(gone(&self.inner.db)))
    }
}

//! [`SqliteStore`]: the embedded default, one SQLite file through `rusqlite`.
//!
//! - WAL mode, `synchronous=NORMAL` (a power cut may lose the last commits but
//!   never corrupts the file or leaves half a transaction), `foreign_keys=ON`,
//!   and a busy timeout after which a write gives [`StoreError::Locked`].
//! - Every write call is atomic: it runs in its own savepoint inside a
//!   `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so the
//!   busy timeout applies and no deferred transaction fails half-way on lock
//!   upgrade), and its future resolves only after that transaction commits.
//! - Schema: a `schema_version` table and numbered [`MIGRATIONS`], applied in
//!   one transaction on open; a file whose version is newer than this binary
//!   knows is refused with [`StoreError::Schema`].
//! - Concurrency: one connection behind a mutex, and a queue of calls.
//!   A call is queued, then its caller tries the connection: if it is free,
//!   the caller runs every queued call (up to [`MAX_BATCH`] at a time) in
//!   one transaction, again until the queue is empty — group commit: under
//!   load, many runs' journal entries share one commit, while a lone call
//!   still commits at once. If another caller holds the connection, that
//!   one runs the new call too. A failing call rolls back only its own
//!   savepoint. A run's barrier (an awaited write-behind append, or a new
//!   run) that finds other runs' writes queued first lets the async runtime
//!   turn up to [`GROUP_PASSES`] times, so runs about to reach their own
//!   barrier join its commit (docs/BENCHMARKS.md). Running calls on the
//!   caller's thread instead of a database thread of its own saves two thread
//!   wake-ups per call; on a busy machine each cost hundreds of microseconds
//!   of waiting for a CPU. The price: while another process holds the write
//!   lock, the caller running the queue (a runtime worker, in `host`) blocks
//!   until it is released or the busy timeout ends — in practice microseconds,
//!   since other `host` commands hold it only for one short transaction.
//!   One writer is all SQLite allows anyway; a reader pool can come later
//!   without changing the [`Store`] trait.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use futures::future::BoxFuture;
use rusqlite::config::DbConfig;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row};

mod checkpoint;

pub use checkpoint::{CHECKPOINT_AT, RESTART_AT};

use super::{
    JournalEntry, JournalKind, JournalRecord, NewOutboxEntry, NewRun, OutboxClaim, OutboxRecord,
    OutboxState, OutboxSummary, OutboxTarget, RunFilter, RunRecord, RunStatus, RunUpdate,
    SessionItem, SessionScope, SessionSummary, Store, StoreError, now_ms,
};

/// Schema migrations; migration `n` (1-based) is `MIGRATIONS[n - 1]`. Append
/// only: never edit a released migration.
pub(super) const MIGRATIONS: &[&str] = &[
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
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

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
    /// so that the WAL starts over (see the module docs). Default
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

/// A [`Store`] in one SQLite file (or in memory). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connection; whoever holds it runs the queued calls.
    conn: Mutex<Connection>,
    /// Calls waiting for the connection, in call order.
    queue: Mutex<VecDeque<Op>>,
    /// The file path (or `:memory:`), for messages.
    db: String,
    /// Write transactions committed so far.
    commits: AtomicU64,
    /// Nanoseconds spent running batches (transactions included).
    busy_ns: AtomicU64,
    /// Copies the WAL into the database file (`None` in memory).
    checkpointer: Option<checkpoint::Checkpointer>,
    /// The next journal seq of runs appended to lately.
    seqs: Arc<Seqs>,
}

/// The next journal seq of each run this store appended to lately: an
/// append then skips reading `MAX(seq)` (a tenth of the store's time per
/// workflow). Only a hint: when another process appended to the run
/// meanwhile, the insert fails the unique index and the seq is read again.
/// Forgotten when a call or a commit fails (a rolled-back append must not
/// leave a gap), when the run ends, and wholesale past [`SEQS_KEPT`] runs.
#[derive(Debug, Default)]
struct Seqs(Mutex<HashMap<String, i64>>);

/// Most runs [`Seqs`] remembers.
const SEQS_KEPT: usize = 4096;

impl Seqs {
    fn map(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        // Nothing panics while holding it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self, run_id: &str) -> Option<i64> {
        self.map().get(run_id).copied()
    }

    fn set(&self, run_id: &str, next: i64) {
        let mut map = self.map();
        if let Some(n) = map.get_mut(run_id) {
            *n = next;
            return;
        }
        if map.len() >= SEQS_KEPT {
            map.clear();
        }
        map.insert(run_id.to_owned(), next);
    }

    fn forget(&self, run_id: &str) {
        self.map().remove(run_id);
    }

    fn clear(&self) {
        self.map().clear();
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("db", &self.db).finish()
    }
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Op>> {
        // Nothing panics while holding it; a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a deferred call of a run other than `owner` is queued.
    fn others_queued(&self, owner: u64) -> bool {
        self.queue()
            .iter()
            .any(|op| op.owner != 0 && op.owner != owner)
    }

    /// Queues `op` and runs the queue unless another caller is running it.
    fn submit(&self, op: Op) {
        self.queue().push_back(op);
        self.drive();
    }

    /// Runs queued calls, a batch per transaction, until the queue is empty
    /// — unless another thread holds the connection: that one will.
    fn drive(&self) {
        loop {
            let conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                Err(TryLockError::WouldBlock) => return,
                // A call panicked mid-batch (a bug): end whatever
                // transaction it left open and go on.
                Err(TryLockError::Poisoned(p)) => {
                    let conn = p.into_inner();
                    let _ = conn.execute_batch("ROLLBACK");
                    self.conn.clear_poison();
                    conn
                }
            };
            loop {
                let batch: Vec<Op> = {
                    let mut queue = self.queue();
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let started = std::time::Instant::now();
                let committed = run_batch(&conn, &self.db, &self.seqs, batch);
                let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.busy_ns.fetch_add(took, Ordering::Relaxed);
                if committed {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(conn);
            // A call queued after the last look, whose caller found the
            // connection taken, is ours to run.
            if self.queue().is_empty() {
                return;
            }
        }
    }
}

/// When a queued call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Before the call returns (unless another caller is running the queue).
    Now,
    /// When its future is first polled (after up to [`GROUP_PASSES`] turns
    /// of the runtime while other runs have writes queued), or another call
    /// runs the queue. The number identifies the run (a hash of its id).
    Deferred(u64),
}

/// How many turns of the async runtime a run's barrier lets pass before it
/// commits, while other runs have writes waiting in the queue. In each turn
/// the runtime runs every other ready task and polls for I/O first, so runs
/// about to reach their own barrier queue their writes, and one commit
/// serves them all: under load, a third fewer commits per workflow. A lone
/// run (nothing of another run queued) commits at once: no added latency.
/// Four turns measured best at 16 and 128 runs (2, 3 and 8 were slower;
/// docs/BENCHMARKS.md).
const GROUP_PASSES: u32 = 4;

/// The number a deferred call carries for its run.
fn owner_of(run_id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    // Never 0, which marks calls of no run.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(run_id) | 1
}

impl Drop for Inner {
    /// Deferred calls whose futures were dropped unpolled still run; then
    /// the checkpointer stops.
    fn drop(&mut self) {
        self.drive();
        self.checkpointer.take();
    }
}

/// Most calls one transaction takes.
pub const MAX_BATCH: usize = 256;

/// Sends a call's result once its transaction's fate is known (`Some` is
/// the commit's failure).
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A queued call's body: `(succeeded, reply)`.
type RunOp = dyn FnOnce(Option<&Connection>, &str) -> (bool, Reply) + Send;

/// One queued call: runs against the connection, says whether it succeeded
/// (a failed write's savepoint is rolled back) and how to reply.
struct Op {
    write: bool,
    /// The call is one SQL statement (atomic by itself): no savepoint.
    single: bool,
    /// The run of a deferred call ([`owner_of`]); 0 for any other call.
    owner: u64,
    /// `None`: the transaction could not begin; do nothing, just reply.
    run: Box<RunOp>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op").field("write", &self.write).finish()
    }
}

/// Runs `batch` in one transaction (reads alone need none) and replies to
/// each call once the commit's fate is known. Whether a write transaction
/// committed. A failed call or commit forgets the seq hints (`seqs`).
fn run_batch(conn: &Connection, db: &str, seqs: &Seqs, batch: Vec<Op>) -> bool {
    let writes = batch.iter().any(|op| op.write);
    let begin = if writes {
        run_cached(conn, "BEGIN IMMEDIATE")
            .map_err(|e| db_error(db, e))
            .err()
    } else {
        None
    };
    let mut replies = Vec::with_capacity(batch.len());
    for op in batch {
        if !op.write {
            let (_, reply) = (op.run)(Some(conn), db);
            replies.push(reply);
            continue;
        }
        if begin.is_some() {
            let (_, reply) = (op.run)(None, db);
            replies.push(reply);
            continue;
        }
        if op.single {
            let (ok, reply) = (op.run)(Some(conn), db);
            if !ok {
                seqs.clear();
            }
            replies.push(reply);
            continue;
        }
        let (ok, reply) = match run_cached(conn, "SAVEPOINT call") {
            Ok(()) => (op.run)(Some(conn), db),
            Err(e) => {
                let e = db_error(db, e);
                let (_, reply) = (op.run)(None, db);
                replies.push(Box::new(move |_: Option<&StoreError>| reply(Some(&e))));
                continue;
            }
        };
        let end = if ok {
            run_cached(conn, "RELEASE call")
        } else {
            seqs.clear();
            run_cached(conn, "ROLLBACK TO call").and_then(|()| run_cached(conn, "RELEASE call"))
        };
        if let Err(e) = end {
            tracing::error!(db = %db, error = %e, "ending a savepoint failed");
        }
        replies.push(reply);
    }
    let failed = match (&begin, writes) {
        (Some(e), _) => Some(again(e)),
        (None, true) => run_cached(conn, "COMMIT")
            .map_err(|e| db_error(db, e))
            .err(),
        (None, false) => None,
    };
    if failed.is_some() && begin.is_none() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if failed.is_some() {
        seqs.clear();
    }
    let committed = writes && failed.is_none();
    for reply in replies {
        reply(failed.as_ref());
    }
    committed
}

/// A call that ended without a reply: it panicked (a bug).
fn gone(db: &str) -> StoreError {
    StoreError::Backend {
        db: db.to_owned(),
        source: "a call on the run database ended without a result".into(),
    }
}

/// Runs a parameterless statement through the statement cache.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// A copy of a store error for every call of a failed transaction.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Locked { db } => StoreError::Locked { db: db.clone() },
        StoreError::Corrupt { db, detail } => StoreError::Corrupt {
            db: db.clone(),
            detail: detail.clone(),
        },
        StoreError::Backend { db, source } => StoreError::Backend {
            db: db.clone(),
            source: source.to_string().into(),
        },
        other => StoreError::Conflict(other.to_string()),
    }
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
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                action: "cannot create the directory of the run database",
                path: parent.to_path_buf(),
                source,
            })?;
        }
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
        // bind (a third of this thread's time in profiles). With the query
        // planner stability guarantee the plan made at prepare time stands;
        // the store never runs ANALYZE, so there is no better plan to find.
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
        let inner = Arc::new_cyclic(|weak| Inner {
            conn: Mutex::new(conn),
            queue: Mutex::new(VecDeque::new()),
            db: db.clone(),
            commits: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            seqs: Arc::default(),
            checkpointer: checkpoints.and_then(|(path, shared)| {
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
            }),
        });
        match spawn_error {
            Some(e) => Err(e),
            None => Ok(Self { inner }),
        }
    }

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

    /// Queues `f`; `send` gets its result once its transaction committed
    /// (or the commit's error). [`When::Now`] runs the queue before
    /// returning (unless another caller is running it).
    fn submit<T, F, S>(&self, write: bool, single: bool, when: When, f: F, send: S)
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
        S: FnOnce(Result<T, StoreError>) + Send + 'static,
    {
        let op = Op {
            write,
            single,
            owner: match when {
                When::Deferred(owner) => owner,
                When::Now => 0,
            },
            run: Box::new(move |conn, db| {
                let Some(conn) = conn else {
                    let db = db.to_owned();
                    let reply: Reply = Box::new(move |failed| {
                        send(Err(failed.map(again).unwrap_or(StoreError::Backend {
                            db,
                            source: "the transaction could not begin".into(),
                        })))
                    });
                    return (false, reply);
                };
                let result = f(conn, db);
                let ok = result.is_ok();
                let reply: Reply = Box::new(move |failed| match failed {
                    Some(e) if write => send(Err(again(e))),
                    _ => send(result),
                });
                (ok, reply)
            }),
        };
        match when {
            When::Now => self.inner.submit(op),
            When::Deferred(_) => self.inner.queue().push_back(op),
        }
    }

    fn call_with<'a, T, F>(
        &self,
        write: bool,
        single: bool,
        when: When,
        f: F,
    ) -> BoxFuture<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(write, single, when, f, move |r| {
            let _ = tx.send(r);
        });
        let inner = self.inner.clone();
        Box::pin(async move {
            if let When::Deferred(owner) = when {
                // Not committed yet (by an earlier barrier of this run, or
                // another run's): let runs about to reach their own barrier
                // join, then commit.
                let mut passes = 0;
                while rx.is_empty() && passes < GROUP_PASSES && inner.others_queued(owner) {
                    tokio::task::yield_now().await;
                    passes += 1;
                }
                if rx.is_empty() {
                    inner.drive();
                }
            }
            rx.await.unwrap_or_else(|_| Err(gone(&inner.db)))
        })
    }

    /// A read: sees every committed write.
    fn read<'a, T, F>(&self, f: F) -> BoxFuture<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_with(false, true, When::Now, f)
    }

    /// An atomic write, resolved once committed.
    fn write<'a, T, F>(&self, f: F) -> BoxFuture<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_with(true, false, When::Now, f)
    }
}

/// Appends `entry` to the run's journal inside `tx`; returns its seq.
/// A journal entry with its data already serialized (done by the caller,
/// so the database thread only runs SQL).
struct Prepared {
    kind: JournalKind,
    key: String,
    plugin_digest: Option<String>,
    data: String,
}

impl Prepared {
    fn of(entry: JournalEntry) -> Result<Self, StoreError> {
        Ok(Prepared {
            data: to_json("journal data", &entry.data)?,
            kind: entry.kind,
            key: entry.key,
            plugin_digest: entry.plugin_digest,
        })
    }
}

/// The seq comes from the hint in `seqs` when there is one (and the next
/// seq goes back into it).
fn insert_journal(
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

// ---------------------------------------------------------------------------
// Errors and conversions

/// Maps a rusqlite error: busy/locked → Locked, corrupt/not a database →
/// Corrupt, unreadable values → Corrupt, everything else → Backend.
fn db_error(db: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Locked { db: db.to_owned() }
            }
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => StoreError::Corrupt {
                db: db.to_owned(),
                detail: e.to_string(),
            },
            _ => StoreError::Backend {
                db: db.to_owned(),
                source: Box::new(e),
            },
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => StoreError::Corrupt {
            db: db.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Backend {
            db: db.to_owned(),
            source: Box::new(e),
        },
    }
}

/// Like [`db_error`], but a generic failure while opening is an `Open` error.
fn open_error(db: &str, e: rusqlite::Error) -> StoreError {
    match db_error(db, e) {
        StoreError::Backend { db, source } => StoreError::Open { db, source },
        other => other,
    }
}

fn corrupt(db: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        db: db.to_owned(),
        detail: detail.into(),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(db: &str, what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(db, format!("negative {what} {v}")))
}

fn to_json(what: &'static str, v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Serialization { what, source })
}

fn from_json<T: serde::de::DeserializeOwned>(
    db: &str,
    what: &str,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(db, format!("stored {what} is not valid: {e}")))
}

// ---------------------------------------------------------------------------
// Schema

fn read_schema_version(conn: &Connection, db: &str) -> Result<u64, StoreError> {
    let v: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "schema version", v)
}

fn migrate(conn: &mut Connection, db: &str) -> Result<(), StoreError> {
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

// ---------------------------------------------------------------------------
// Runs

const RUN_COLUMNS: &str = "run_id, status, workflow_key, spec_digest, account_id, user_id, \
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
            usage: from_json(db, "run usage", &self.usage)?,
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

fn query_runs(
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
    let usage = to_json("run usage", &run.usage)?;
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

// ---------------------------------------------------------------------------
// Journal

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

// ---------------------------------------------------------------------------
// Sessions

/// Ensures the session row exists; returns its last assigned item seq.
fn ensure_session(
    tx: &Connection,
    db: &str,
    scope: &SessionScope,
    now: u64,
) -> Result<u64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions (account_id, user_id, session_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute((
            &scope.account_id,
            &scope.user_id,
            &scope.session_id,
            to_i64(now),
        ))
    })
    .map_err(|e| db_error(db, e))?;
    let last: i64 = tx
        .prepare_cached(
            "SELECT last_seq FROM sessions \
             WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3",
        )
        .and_then(|mut s| {
            s.query_row(
                (&scope.account_id, &scope.user_id, &scope.session_id),
                |r| r.get(0),
            )
        })
        .map_err(|e| db_error(db, e))?;
    to_u64(db, "session seq", last)
}

// ---------------------------------------------------------------------------
// Outbox

const OUTBOX_COLUMNS: &str = "run_id, seq, target, event_type, body, state, attempts, \
     next_attempt_at, last_error, created_at, updated_at, lease_owner, lease_until";

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
    ) = raw;
    let target: OutboxTarget = from_json(db, "outbox target", &target)?;
    let lease = match (owner, until) {
        (Some(owner), Some(until)) => Some((owner, to_u64(db, "timestamp", until)?)),
        _ => None,
    };
    Ok((
        OutboxRecord {
            run_id,
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

// ---------------------------------------------------------------------------

impl Store for SqliteStore {
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
            if let Some(entry) = &first {
                insert_journal(tx, db, &run.run_id, entry, now, &seqs)?;
            }
            Ok(run.into_record(now))
        })
    }

    fn get_run<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let run_id = run_id.to_owned();
        self.read(move |conn, db| load_run(conn, db, &run_id))
    }

    fn run_status<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunStatus>, StoreError>> {
        let run_id = run_id.to_owned();
        self.read(move |conn, db| {
            let status: Option<String> = conn
                .prepare_cached("SELECT status FROM runs WHERE run_id = ?1")
                .and_then(|mut s| s.query_row([&run_id], |r| r.get(0)).optional())
                .map_err(|e| db_error(db, e))?;
            status
                .map(|s| {
                    s.parse::<RunStatus>().map_err(|e| StoreError::Corrupt {
                        db: db.to_owned(),
                        detail: e.to_string(),
                    })
                })
                .transpose()
        })
    }

    fn list_runs<'a>(
        &'a self,
        filter: RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        self.read(move |conn, db| {
            let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1");
            let mut params = Vec::new();
            if let Some(status) = filter.status {
                params.push(SqlValue::Text(status.as_str().to_owned()));
                sql.push_str(&format!(" AND status = ?{}", params.len()));
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
        })
    }

    fn update_run<'a>(
        &'a self,
        run_id: &'a str,
        update: RunUpdate,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        let run_id = run_id.to_owned();
        self.write(move |tx, db| {
            let run = update_in(tx, db, &run_id, &update, now_ms())?;
            Ok(run)
        })
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
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        let run_id = run_id.to_owned();
        self.read(move |conn, db| {
            query_journal(
                conn,
                db,
                "SELECT seq, at, kind, key, plugin_digest, data FROM journal \
                 WHERE run_id = ?1 ORDER BY seq",
                &[&run_id],
            )
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

    fn interrupted_runs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        self.read(move |conn, db| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') \
                 ORDER BY created_at, rowid"
            );
            query_runs(conn, db, &sql, Vec::new())
        })
    }

    fn session_history<'a>(
        &'a self,
        scope: &'a SessionScope,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<SessionItem>, StoreError>> {
        let scope = scope.clone();
        self.read(move |conn, db| {
            type Raw = (i64, String, i64, String);
            let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, run_id, at, item FROM ( \
                       SELECT seq, run_id, at, item FROM session_items \
                       WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3 \
                       ORDER BY seq DESC LIMIT ?4 \
                     ) ORDER BY seq",
                )
                .map_err(|e| db_error(db, e))?;
            let raws = stmt
                .query_map(
                    (&scope.account_id, &scope.user_id, &scope.session_id, limit),
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(|e| db_error(db, e))?
                .collect::<rusqlite::Result<Vec<Raw>>>()
                .map_err(|e| db_error(db, e))?;
            raws.into_iter()
                .map(|(seq, run_id, at, item)| {
                    Ok(SessionItem {
                        seq: to_u64(db, "session seq", seq)?,
                        run_id,
                        at_ms: to_u64(db, "timestamp", at)?,
                        item: from_json(db, "session item", &item)?,
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
        let scope = scope.clone();
        let run_id = run_id.to_owned();
        let prepared = items
            .iter()
            .map(|i| to_json("session item", i))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|items| Ok((items, record.map(Prepared::of).transpose()?)));
        let (items, record) = match prepared {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let seqs = self.inner.seqs.clone();
        self.write(move |tx, db| {
            let now = now_ms();
            let mut seq = ensure_session(tx, db, &scope, now)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO session_items \
                         (account_id, user_id, session_id, seq, run_id, at, item) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(|e| db_error(db, e))?;
                for item in &items {
                    seq += 1;
                    insert
                        .execute((
                            &scope.account_id,
                            &scope.user_id,
                            &scope.session_id,
                            to_i64(seq),
                            &run_id,
                            to_i64(now),
                            item,
                        ))
                        .map_err(|e| db_error(db, e))?;
                }
            }
            tx.execute(
                "UPDATE sessions SET last_seq = ?1, updated_at = ?2 \
                 WHERE account_id = ?3 AND user_id = ?4 AND session_id = ?5",
                (
                    to_i64(seq),
                    to_i64(now),
                    &scope.account_id,
                    &scope.user_id,
                    &scope.session_id,
                ),
            )
            .map_err(|e| db_error(db, e))?;
            if let Some(entry) = &record {
                insert_journal(tx, db, &run_id, entry, now, &seqs)?;
            }
            Ok(())
        })
    }

    fn set_session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
        summary: String,
        covers_up_to: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let scope = scope.clone();
        self.write(move |tx, db| {
            let now = now_ms();
            let last = ensure_session(tx, db, &scope, now)?;
            if covers_up_to > last {
                return Err(StoreError::Conflict(format!(
                    "a summary cannot cover item {covers_up_to}: the session's last item is {last}"
                )));
            }
            let key = (&scope.account_id, &scope.user_id, &scope.session_id);
            tx.execute(
                "UPDATE sessions SET summary = ?4, summary_covers_up_to = ?5, summary_at = ?6, \
                 updated_at = ?6 WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3",
                (
                    key.0,
                    key.1,
                    key.2,
                    &summary,
                    to_i64(covers_up_to),
                    to_i64(now),
                ),
            )
            .map_err(|e| db_error(db, e))?;
            tx.execute(
                "DELETE FROM session_items \
                 WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3 AND seq <= ?4",
                (key.0, key.1, key.2, to_i64(covers_up_to)),
            )
            .map_err(|e| db_error(db, e))?;
            Ok(())
        })
    }

    fn session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
    ) -> BoxFuture<'a, Result<Option<SessionSummary>, StoreError>> {
        let scope = scope.clone();
        self.read(move |conn, db| {
            let raw: Option<(String, i64, i64)> = conn
                .prepare_cached(
                    "SELECT summary, summary_covers_up_to, summary_at FROM sessions \
                     WHERE account_id = ?1 AND user_id = ?2 AND session_id = ?3 \
                     AND summary IS NOT NULL AND summary_at IS NOT NULL",
                )
                .and_then(|mut s| {
                    s.query_row(
                        (&scope.account_id, &scope.user_id, &scope.session_id),
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                })
                .map_err(|e| db_error(db, e))?;
            raw.map(|(summary, covers, at)| {
                Ok(SessionSummary {
                    summary,
                    covers_up_to: to_u64(db, "session seq", covers)?,
                    updated_at_ms: to_u64(db, "timestamp", at)?,
                })
            })
            .transpose()
        })
    }

    fn outbox_enqueue<'a>(
        &'a self,
        entries: Vec<NewOutboxEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.write(move |tx, db| {
            let now = to_i64(now_ms());
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO outbox (run_id, url, seq, target, event_type, body, state, \
                     attempts, next_attempt_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7, ?7) \
                     ON CONFLICT DO NOTHING",
                )
                .map_err(|e| db_error(db, e))?;
            for e in &entries {
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
        })
    }

    fn outbox_last_seq<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let (run_id, url) = (run_id.to_owned(), url.to_owned());
        self.read(move |conn, db| {
            let last: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE run_id = ?1 AND url = ?2",
                )
                .and_then(|mut s| s.query_row((&run_id, &url), |r| r.get(0)))
                .map_err(|e| db_error(db, e))?;
            to_u64(db, "outbox seq", last)
        })
    }

    fn outbox_heads<'a>(&'a self) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        self.read(move |conn, db| {
            // SQLite takes the bare columns from the row holding MIN(seq).
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS}, MIN(seq) FROM outbox WHERE state = 'pending' \
                 GROUP BY run_id, url ORDER BY created_at, run_id, url"
            );
            Ok(query_outbox(conn, db, &sql, Vec::new())?
                .into_iter()
                .map(|(r, _)| r)
                .collect())
        })
    }

    fn outbox_claim<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        owner: &'a str,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> BoxFuture<'a, Result<OutboxClaim, StoreError>> {
        let (run_id, url, owner) = (run_id.to_owned(), url.to_owned(), owner.to_owned());
        self.write(move |tx, db| {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox \
                 WHERE run_id = ?1 AND url = ?2 AND state = 'pending' ORDER BY seq LIMIT 1"
            );
            let head = query_outbox(
                tx,
                db,
                &sql,
                vec![SqlValue::Text(run_id.clone()), SqlValue::Text(url.clone())],
            )?
            .into_iter()
            .next();
            let Some((record, lease)) = head else {
                return Ok(OutboxClaim::Empty);
            };
            if let Some((other, until)) = lease
                && other != owner
                && until > now_ms
            {
                return Ok(OutboxClaim::Busy(until));
            }
            if record.next_attempt_at_ms > now_ms {
                return Ok(OutboxClaim::NotDue(record.next_attempt_at_ms));
            }
            tx.prepare_cached(
                "UPDATE outbox SET lease_owner = ?4, lease_until = ?5 \
                 WHERE run_id = ?1 AND url = ?2 AND seq = ?3",
            )
            .and_then(|mut s| {
                s.execute((
                    &run_id,
                    &url,
                    to_i64(record.seq),
                    &owner,
                    to_i64(lease_until_ms),
                ))
            })
            .map_err(|e| db_error(db, e))?;
            Ok(OutboxClaim::Claimed(Box::new(record)))
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
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let run_id = run_id.map(str::to_owned);
        self.read(move |conn, db| {
            let mut sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE 1 = 1");
            let mut params = Vec::new();
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
        })
    }

    fn outbox_summary<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>> {
        let run_id = run_id.to_owned();
        self.read(move |conn, db| {
            let counts = conn
                .prepare_cached(
                    "SELECT state, COUNT(*) FROM outbox WHERE run_id = ?1 GROUP BY state",
                )
                .and_then(|mut s| {
                    s.query_map([&run_id], |r| {
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
                     ORDER BY url, seq"
                );
                summary.dead_entries = query_outbox(conn, db, &sql, vec![SqlValue::Text(run_id)])?
                    .into_iter()
                    .map(|(r, _)| r)
                    .collect();
            }
            Ok(summary)
        })
    }
}

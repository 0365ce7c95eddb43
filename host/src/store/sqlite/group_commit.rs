//! The group-commit executor: one connection, a queue of calls, and
//! transactions shared by many calls. It knows no tables: a call is a
//! closure over the connection.
//!
//! A call is queued, then its caller tries the connection: if it is free,
//! the caller runs every queued call (up to [`MAX_BATCH`] at a time) in one
//! transaction, again until the queue is empty. Under load many runs'
//! journal entries share one commit, while a lone call still commits at
//! once. If another caller holds the connection, that one runs the new call
//! too. A failing call rolls back only its own savepoint. A run's barrier (an
//! awaited write-behind append, or a new run) that finds other runs' writes
//! queued first lets the async runtime turn up to [`GROUP_PASSES`] times, so
//! runs about to reach their own barrier join its commit.
//!
//! Calls run on the caller's thread, not on a database thread of its own:
//! that saves two thread wake-ups per call, costly on a busy machine
//! (docs/BENCHMARKS.md). The price: while another process holds the write
//! lock, the caller running the queue (a runtime worker, in `host`) blocks
//! until it is released or the busy timeout ends; other `host` commands
//! hold it only for one short transaction. One writer is all SQLite allows
//! anyway; a reader pool can come later without changing the store traits.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use futures::future::BoxFuture;
use rusqlite::Connection;

use super::SqliteStore;
use super::checkpoint::Checkpointer;
use super::errors::db_error;
use crate::store::StoreError;

/// The shared state of a [`SqliteStore`] and its clones.
pub(super) struct Inner {
    /// The connection; whoever holds it runs the queued calls.
    pub(super) conn: Mutex<Connection>,
    /// Calls waiting for the connection, in call order.
    queue: Mutex<VecDeque<Op>>,
    /// The file path (or `:memory:`), for messages.
    pub(super) db: String,
    /// Write transactions committed so far.
    pub(super) commits: AtomicU64,
    /// Nanoseconds spent running batches (transactions included).
    pub(super) busy_ns: AtomicU64,
    /// Copies the WAL into the database file (`None` in memory).
    checkpointer: Option<Checkpointer>,
    /// The next journal seq of runs appended to lately.
    pub(super) seqs: Arc<Seqs>,
}

/// The next journal seq of each run this store appended to lately: an
/// append then skips reading `MAX(seq)` (docs/BENCHMARKS.md). Only a hint: when another process appended to the run
/// meanwhile, the insert fails the unique index and the seq is read again.
/// Forgotten when a call or a commit fails (a rolled-back append must not
/// leave a gap), when the run ends, and wholesale past [`SEQS_KEPT`] runs.
#[derive(Debug, Default)]
pub(super) struct Seqs(Mutex<HashMap<String, i64>>);

/// Most runs [`Seqs`] remembers.
const SEQS_KEPT: usize = 4096;

impl Seqs {
    fn map(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        // Nothing panics while holding it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn next(&self, run_id: &str) -> Option<i64> {
        self.map().get(run_id).copied()
    }

    pub(super) fn set(&self, run_id: &str, next: i64) {
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

    pub(super) fn forget(&self, run_id: &str) {
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
    pub(super) fn new(conn: Connection, db: String, checkpointer: Option<Checkpointer>) -> Self {
        Self {
            conn: Mutex::new(conn),
            queue: Mutex::new(VecDeque::new()),
            db,
            commits: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            checkpointer,
            seqs: Arc::default(),
        }
    }

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
    pub(super) fn drive(&self) {
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
pub(super) enum When {
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
/// serves them all. A lone run (nothing of another run queued) commits at
/// once: no added latency. Four is measured (docs/BENCHMARKS.md).
const GROUP_PASSES: u32 = 4;

/// The number a deferred call carries for its run.
pub(super) fn owner_of(run_id: &str) -> u64 {
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
const MAX_BATCH: usize = 256;

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
pub(super) fn gone(db: &str) -> StoreError {
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
    /// Queues `f`; `send` gets its result once its transaction committed
    /// (or the commit's error). [`When::Now`] runs the queue before
    /// returning (unless another caller is running it).
    pub(super) fn submit<T, F, S>(&self, write: bool, single: bool, when: When, f: F, send: S)
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

    pub(super) fn call_with<'a, T, F>(
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
    pub(super) fn read<'a, T, F>(&self, f: F) -> BoxFuture<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_with(false, true, When::Now, f)
    }

    /// An atomic write, resolved once committed.
    pub(super) fn write<'a, T, F>(&self, f: F) -> BoxFuture<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_with(true, false, When::Now, f)
    }
}

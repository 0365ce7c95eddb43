//! WAL checkpoints off the commit path.
//!
//! By default SQLite copies the WAL into the database file from inside the
//! commit that takes the WAL past 1,000 frames, `fsync` included. In `host`
//! that commit runs on a runtime worker, and every run that reaches a
//! barrier meanwhile waits for it, leaving cores idle (docs/BENCHMARKS.md).
//! Here the store's connection only counts frames (a WAL hook, which
//! replaces the automatic checkpoint), and a thread with a connection of its
//! own runs `PASSIVE` checkpoints, which never block a writer.
//!
//! A passive checkpoint copies the frames committed before it began. Under
//! sustained load more always follow, so the WAL is never wholly copied, and
//! SQLite starts the WAL over only when it is: it would grow without end. So
//! once it holds [`RESTART_AT`] frames (by default), the checkpointer also
//! takes the store's connection (this process's calls wait in the store's
//! queue; no thread blocks on them), copies the few frames left, and lets go:
//! the next commit starts the WAL over from its first frame. Another process's
//! writes, or a long read, can keep that from happening; it is tried again
//! after the next [`CHECKPOINT_AT`] frames (by default). Both numbers are
//! [`super::SqliteOptions`].

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::group_commit::Inner;

/// WAL frames (pages written) between two checkpoints: SQLite's default.
pub(crate) const CHECKPOINT_AT: u32 = 1000;

/// WAL frames past which the checkpointer briefly holds this process's
/// writes so that the WAL starts over (32 MiB with 4 KiB pages).
pub(crate) const RESTART_AT: u32 = 8 * CHECKPOINT_AT;

/// The checkpointer thread of a store, stopped (and joined) on drop.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the store's commits and the thread share.
pub(super) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Frames between two checkpoints.
    every: u32,
}

#[derive(Default)]
struct State {
    /// Frames copied into the database by the last checkpoint.
    copied: u32,
    /// A checkpoint is due.
    requested: bool,
    stop: bool,
}

impl Shared {
    pub(super) fn new(every: u32) -> Self {
        Self {
            state: Mutex::default(),
            wake: Condvar::new(),
            every: every.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the WAL hook after every commit: the WAL now holds
    /// `frames`. Cheap: a lock, and a wake-up every `every` frames.
    pub(super) fn committed(&self, frames: u32) {
        let mut state = self.state();
        if frames < state.copied {
            // The WAL started over.
            state.copied = 0;
        }
        if !state.requested && frames >= state.copied.saturating_add(self.every) {
            state.requested = true;
            self.wake.notify_one();
        }
    }

    fn copied(&self, frames: u32) {
        self.state().copied = frames;
    }
}

impl Checkpointer {
    /// Starts the thread for the database at `path`. It opens its own
    /// connection at the first checkpoint; `inner` is the store, for the
    /// brief hold of its connection once the WAL holds `restart` frames.
    pub(super) fn start(
        path: PathBuf,
        shared: Arc<Shared>,
        inner: Weak<Inner>,
        restart: u32,
    ) -> std::io::Result<Self> {
        let thread = std::thread::Builder::new()
            .name("host-db-checkpoint".into())
            .spawn({
                let shared = shared.clone();
                move || run(&path, &shared, &inner, restart)
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            // The store's last handle can be the thread's own, briefly.
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// The thread: waits for a request, checkpoints, and past `restart` frames
/// copies the rest while holding the store's connection.
fn run(path: &std::path::Path, shared: &Shared, inner: &Weak<Inner>, restart: u32) {
    let mut conn: Option<Connection> = None;
    loop {
        {
            let mut state = shared.state();
            while !state.requested && !state.stop {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.stop {
                return;
            }
            state.requested = false;
        }
        if conn.is_none() {
            conn = open(path);
        }
        let Some(own) = conn.as_ref() else {
            // No connection of its own: checkpoint on the store's, as
            // SQLite would have.
            if !holding_writes(inner, |store| passive(store, path), shared) {
                return;
            }
            continue;
        };
        let Some((frames, copied)) = passive(own, path) else {
            continue;
        };
        shared.copied(copied);
        if frames >= restart && !holding_writes(inner, |_| passive(own, path), shared) {
            return;
        }
    }
}

/// Runs `checkpoint` (given the store's connection) while holding it, so
/// this process writes nothing meanwhile, then runs the calls queued in
/// the meantime. False when the store is gone.
fn holding_writes(
    inner: &Weak<Inner>,
    checkpoint: impl FnOnce(&Connection) -> Option<(u32, u32)>,
    shared: &Shared,
) -> bool {
    let Some(inner) = inner.upgrade() else {
        return false;
    };
    {
        let store = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, copied)) = checkpoint(&store) {
            shared.copied(copied);
        }
    }
    // Calls queued meanwhile found the connection taken: run them.
    inner.drive();
    true
}

fn open(path: &std::path::Path) -> Option<Connection> {
    // The store created the file; never create another one.
    let flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
    let opened = Connection::open_with_flags(path, flags).and_then(|conn| {
        // The checkpoint syncs the WAL, then the database file.
        conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
        Ok(conn)
    });
    match opened {
        Ok(conn) => Some(conn),
        Err(e) => {
            tracing::warn!(db = %path.display(), error = %e, "cannot open the checkpoint connection");
            None
        }
    }
}

/// A passive checkpoint: `(frames in the WAL, frames copied)`.
fn passive(conn: &Connection, path: &std::path::Path) -> Option<(u32, u32)> {
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match result {
        Ok((frames, copied)) => Some((
            u32::try_from(frames).unwrap_or(0),
            u32::try_from(copied).unwrap_or(0),
        )),
        Err(e) => {
            tracing::debug!(db = %path.display(), error = %e, "checkpoint failed");
            None
        }
    }
}

//! [`MemoryStore`]: everything in a `std::sync::Mutex`, for library users and
//! tests. Each method does its work under the lock and never awaits while
//! holding it, then returns a ready future. A method either completes or
//! changes nothing (checks run before any mutation).
//!
//! One file per store trait, as in `sqlite`: `runs`, `sessions`, `outbox`.

mod claims;
mod events;
mod outbox;
mod runs;
mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{
    EventRecord, JournalRecord, OutboxRecord, RunRecord, SessionItem, SessionScope, SessionSummary,
    StoreError,
};

/// An in-memory [`Store`](super::Store). Data lives as long as the value.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Creation order, used to break ties between equal timestamps.
    next_order: u64,
    runs: HashMap<String, StoredRun>,
    sessions: HashMap<SessionScope, Session>,
    /// Keyed by (run, target URL, seq): a lane's entries are adjacent and
    /// in `seq` order.
    outbox: BTreeMap<(String, String, u64), OutboxEntry>,
    /// Each run's stored events, in `id` order.
    events: HashMap<String, Vec<EventRecord>>,
}

#[derive(Debug)]
struct OutboxEntry {
    /// Enqueue order, to list lanes oldest first.
    order: u64,
    record: OutboxRecord,
    lease: Option<(String, u64)>,
}

#[derive(Debug)]
struct StoredRun {
    order: u64,
    record: RunRecord,
    journal: Vec<JournalRecord>,
    /// (owner, until): see `claims`.
    lease: Option<(String, u64)>,
}

#[derive(Debug, Default)]
struct Session {
    next_seq: u64,
    summary: Option<SessionSummary>,
    items: Vec<SessionItem>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the state half-updated: every method
        // checks before it mutates.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ready<'a, T: Send + 'a>(r: Result<T, StoreError>) -> BoxFuture<'a, Result<T, StoreError>> {
        futures::future::ready(r).boxed()
    }
}

fn not_found(run_id: &str) -> StoreError {
    StoreError::NotFound {
        run_id: run_id.to_owned(),
    }
}

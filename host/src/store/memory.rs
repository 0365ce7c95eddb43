//! [`MemoryStore`]: everything in a `std::sync::Mutex`, for library users and
//! tests. Each method does its work under the lock and never awaits while
//! holding it, then returns a ready future. A method either completes or
//! changes nothing (checks run before any mutation).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{
    JournalEntry, JournalRecord, NewOutboxEntry, NewRun, OutboxClaim, OutboxRecord, OutboxState,
    OutboxStore, OutboxSummary, RunFilter, RunRecord, RunStatus, RunStore, RunUpdate, SessionItem,
    SessionScope, SessionStore, SessionSummary, StoreError,
};
use crate::util::now_ms;

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

    /// The append, done now under the lock.
    fn append_now(
        &self,
        run_id: &str,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let Some(run) = state.runs.get_mut(run_id) else {
            return Err(not_found(run_id));
        };
        let now = now_ms();
        let mut record = run.record.clone();
        if let Some(update) = &update {
            update.apply_to(&mut record, now)?;
        }
        let seq = run.journal.len() as u64 + 1;
        run.journal.push(JournalRecord {
            seq,
            at_ms: now,
            entry,
        });
        run.record = record;
        Ok(seq)
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

fn outbox_key(run_id: &str, url: &str, seq: u64) -> (String, String, u64) {
    (run_id.to_owned(), url.to_owned(), seq)
}

/// The lane's entries, in `seq` order.
fn lane<'s>(
    state: &'s mut State,
    run_id: &str,
    url: &str,
) -> impl Iterator<Item = &'s mut OutboxEntry> {
    state
        .outbox
        .range_mut(outbox_key(run_id, url, 0)..=outbox_key(run_id, url, u64::MAX))
        .map(|(_, e)| e)
}

fn sorted_newest_first(state: &State, filter: impl Fn(&RunRecord) -> bool) -> Vec<&StoredRun> {
    let mut runs: Vec<&StoredRun> = state.runs.values().filter(|r| filter(&r.record)).collect();
    runs.sort_by_key(|r| std::cmp::Reverse((r.record.created_at_ms, r.order)));
    runs
}

impl RunStore for MemoryStore {
    fn create_run_with<'a>(
        &'a self,
        run: NewRun,
        first: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        let mut state = self.lock();
        if state.runs.contains_key(&run.run_id) {
            return Self::ready(Err(StoreError::Conflict(format!(
                "a run with id {:?} already exists",
                run.run_id
            ))));
        }
        let now = now_ms();
        let record = run.into_record(now);
        let order = state.next_order;
        state.next_order += 1;
        state.runs.insert(
            record.run_id.clone(),
            StoredRun {
                order,
                record: record.clone(),
                journal: first
                    .into_iter()
                    .map(|entry| JournalRecord {
                        seq: 1,
                        at_ms: now,
                        entry,
                    })
                    .collect(),
            },
        );
        Self::ready(Ok(record))
    }

    fn get_run<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state.runs.get(run_id).map(|r| r.record.clone())))
    }

    fn run_status<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunStatus>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state.runs.get(run_id).map(|r| r.record.status)))
    }

    fn list_runs<'a>(
        &'a self,
        filter: RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let state = self.lock();
        let runs = sorted_newest_first(&state, |r| {
            filter.status.is_none_or(|s| r.status == s)
                && filter.session.as_ref().is_none_or(|s| {
                    r.account_id == s.account_id
                        && r.user_id == s.user_id
                        && r.session_id.as_deref() == Some(s.session_id.as_str())
                })
        });
        let limit = filter.limit.unwrap_or(usize::MAX);
        Self::ready(Ok(runs
            .into_iter()
            .take(limit)
            .map(|r| r.record.clone())
            .collect()))
    }

    fn update_run<'a>(
        &'a self,
        run_id: &'a str,
        update: RunUpdate,
    ) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        let mut state = self.lock();
        let Some(run) = state.runs.get_mut(run_id) else {
            return Self::ready(Err(not_found(run_id)));
        };
        let mut record = run.record.clone();
        if let Err(e) = update.apply_to(&mut record, now_ms()) {
            return Self::ready(Err(e));
        }
        run.record = record.clone();
        Self::ready(Ok(record))
    }

    fn append_with_update<'a>(
        &'a self,
        run_id: &'a str,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Self::ready(self.append_now(run_id, entry, update))
    }

    fn append_queued(
        self: Arc<Self>,
        run_id: String,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        Self::ready(self.append_now(&run_id, entry, update))
    }

    fn journal<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state
            .runs
            .get(run_id)
            .map(|r| r.journal.clone())
            .unwrap_or_default()))
    }

    fn journal_by_key<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state
            .runs
            .get(run_id)
            .map(|r| {
                r.journal
                    .iter()
                    .filter(|j| j.entry.key == key)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()))
    }

    fn interrupted_runs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let state = self.lock();
        let mut runs = sorted_newest_first(&state, |r| {
            matches!(r.status, RunStatus::Queued | RunStatus::Running)
        });
        runs.reverse();
        Self::ready(Ok(runs.into_iter().map(|r| r.record.clone()).collect()))
    }
}

impl SessionStore for MemoryStore {
    fn session_history<'a>(
        &'a self,
        scope: &'a SessionScope,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<SessionItem>, StoreError>> {
        let state = self.lock();
        let items = state
            .sessions
            .get(scope)
            .map(|s| {
                let skip = limit.map_or(0, |l| s.items.len().saturating_sub(l));
                s.items[skip..].to_vec()
            })
            .unwrap_or_default();
        Self::ready(Ok(items))
    }

    fn append_session<'a>(
        &'a self,
        scope: &'a SessionScope,
        run_id: &'a str,
        items: Vec<serde_json::Value>,
        record: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        if let Some(entry) = record {
            let Some(run) = state.runs.get_mut(run_id) else {
                return Self::ready(Err(not_found(run_id)));
            };
            let seq = run.journal.len() as u64 + 1;
            run.journal.push(JournalRecord {
                seq,
                at_ms: now_ms(),
                entry,
            });
        }
        let session = state.sessions.entry(scope.clone()).or_default();
        let now = now_ms();
        for item in items {
            session.next_seq += 1;
            session.items.push(SessionItem {
                seq: session.next_seq,
                run_id: run_id.to_owned(),
                at_ms: now,
                item,
            });
        }
        Self::ready(Ok(()))
    }

    fn set_session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
        summary: String,
        covers_up_to: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        let last = state.sessions.get(scope).map_or(0, |s| s.next_seq);
        if covers_up_to > last {
            return Self::ready(Err(StoreError::Conflict(format!(
                "a summary cannot cover item {covers_up_to}: the session's last item is {last}"
            ))));
        }
        let session = state.sessions.entry(scope.clone()).or_default();
        session.items.retain(|i| i.seq > covers_up_to);
        session.summary = Some(SessionSummary {
            summary,
            covers_up_to,
            updated_at_ms: now_ms(),
        });
        Self::ready(Ok(()))
    }

    fn session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
    ) -> BoxFuture<'a, Result<Option<SessionSummary>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state
            .sessions
            .get(scope)
            .and_then(|s| s.summary.clone())))
    }
}

impl OutboxStore for MemoryStore {
    fn outbox_enqueue<'a>(
        &'a self,
        entries: Vec<NewOutboxEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        let now = now_ms();
        for e in entries {
            let key = outbox_key(&e.run_id, &e.target.url, e.seq);
            if state.outbox.contains_key(&key) {
                continue;
            }
            let order = state.next_order;
            state.next_order += 1;
            state.outbox.insert(
                key,
                OutboxEntry {
                    order,
                    lease: None,
                    record: OutboxRecord {
                        run_id: e.run_id,
                        target: e.target,
                        seq: e.seq,
                        event_type: e.event_type,
                        body: e.body,
                        state: OutboxState::Pending,
                        attempts: 0,
                        next_attempt_at_ms: now,
                        last_error: None,
                        created_at_ms: now,
                        updated_at_ms: now,
                    },
                },
            );
        }
        Self::ready(Ok(()))
    }

    fn outbox_last_seq<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut state = self.lock();
        Self::ready(Ok(lane(&mut state, run_id, url)
            .last()
            .map_or(0, |e| e.record.seq)))
    }

    fn outbox_heads<'a>(&'a self) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let state = self.lock();
        let mut heads: BTreeMap<(&str, &str), &OutboxEntry> = BTreeMap::new();
        for e in state.outbox.values() {
            if e.record.state == OutboxState::Pending {
                heads
                    .entry((&e.record.run_id, &e.record.target.url))
                    .or_insert(e);
            }
        }
        let mut heads: Vec<&OutboxEntry> = heads.into_values().collect();
        heads.sort_by_key(|e| (e.record.created_at_ms, e.order));
        Self::ready(Ok(heads.into_iter().map(|e| e.record.clone()).collect()))
    }

    fn outbox_claim<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        owner: &'a str,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> BoxFuture<'a, Result<OutboxClaim, StoreError>> {
        let mut state = self.lock();
        let Some(head) =
            lane(&mut state, run_id, url).find(|e| e.record.state == OutboxState::Pending)
        else {
            return Self::ready(Ok(OutboxClaim::Empty));
        };
        if let Some((other, until)) = &head.lease
            && other != owner
            && *until > now_ms
        {
            return Self::ready(Ok(OutboxClaim::Busy(*until)));
        }
        if head.record.next_attempt_at_ms > now_ms {
            return Self::ready(Ok(OutboxClaim::NotDue(head.record.next_attempt_at_ms)));
        }
        head.lease = Some((owner.to_owned(), lease_until_ms));
        Self::ready(Ok(OutboxClaim::Claimed(Box::new(head.record.clone()))))
    }

    fn outbox_release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        for e in state.outbox.values_mut() {
            if e.lease.as_ref().is_some_and(|(o, _)| o == owner) {
                e.lease = None;
            }
        }
        Self::ready(Ok(()))
    }

    fn outbox_delivered<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        let Some(e) = state.outbox.get_mut(&outbox_key(run_id, url, seq)) else {
            return Self::ready(Err(not_found(run_id)));
        };
        e.lease = None;
        e.record.state = OutboxState::Delivered;
        e.record.attempts += 1;
        e.record.updated_at_ms = now_ms();
        Self::ready(Ok(()))
    }

    fn outbox_failed<'a>(
        &'a self,
        run_id: &'a str,
        url: &'a str,
        seq: u64,
        error: String,
        retry_at_ms: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        let Some(e) = state.outbox.get_mut(&outbox_key(run_id, url, seq)) else {
            return Self::ready(Err(not_found(run_id)));
        };
        e.lease = None;
        e.record.attempts += 1;
        e.record.last_error = Some(error);
        e.record.updated_at_ms = now_ms();
        match retry_at_ms {
            Some(at) => e.record.next_attempt_at_ms = at,
            None => e.record.state = OutboxState::Dead,
        }
        Self::ready(Ok(()))
    }

    fn outbox_entries<'a>(
        &'a self,
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let guard = self.lock();
        Self::ready(Ok(guard
            .outbox
            .values()
            .filter(|e| run_id.is_none_or(|r| e.record.run_id == r))
            .filter(|e| state.is_none_or(|s| e.record.state == s))
            .take(limit.unwrap_or(usize::MAX))
            .map(|e| e.record.clone())
            .collect()))
    }

    fn outbox_summary<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>> {
        let state = self.lock();
        let mut summary = OutboxSummary::default();
        for e in state.outbox.values().filter(|e| e.record.run_id == run_id) {
            match e.record.state {
                OutboxState::Pending => summary.pending += 1,
                OutboxState::Delivered => summary.delivered += 1,
                OutboxState::Dead => {
                    summary.dead += 1;
                    summary.dead_entries.push(e.record.clone());
                }
            }
        }
        Self::ready(Ok(summary))
    }
}

//! [`RunStore`] for [`MemoryStore`].

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{MemoryStore, State, StoredRun, not_found};
use crate::store::{
    JournalEntry, JournalRecord, NewRun, RunFilter, RunRecord, RunStatus, RunStore, RunUpdate,
    Scope, StoreError,
};
use crate::util::now_ms;

impl MemoryStore {
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
                lease: None,
            },
        );
        Self::ready(Ok(record))
    }

    fn get_run<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state
            .runs
            .get(run_id)
            .filter(|r| scope.admits(&r.record.account_id))
            .map(|r| r.record.clone())))
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
        scope: &'a Scope,
        filter: RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let state = self.lock();
        let runs = sorted_newest_first(&state, |r| {
            scope.admits(&r.account_id)
                && filter.status.is_none_or(|s| r.status == s)
                && filter
                    .workflow
                    .as_ref()
                    .is_none_or(|w| &r.workflow_key == w)
                && filter.session.as_ref().is_none_or(|s| {
                    r.account_id == s.account_id
                        && r.user_id == s.user_id
                        && r.session_id.as_deref() == Some(s.session_id.as_str())
                })
        });
        // The cursor's place in this order; an unknown cursor lists nothing.
        let position = |id: &str| {
            state
                .runs
                .get(id)
                .map(|r| (r.record.created_at_ms, r.order))
        };
        let after = match &filter.after {
            Some(id) => match position(id) {
                Some(p) => Some(p),
                None => return Self::ready(Ok(Vec::new())),
            },
            None => None,
        };
        let limit = filter.limit.unwrap_or(usize::MAX);
        Self::ready(Ok(runs
            .into_iter()
            .filter(|r| after.is_none_or(|a| (r.record.created_at_ms, r.order) < a))
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
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        let state = self.lock();
        Self::ready(Ok(state
            .runs
            .get(run_id)
            .filter(|r| scope.admits(&r.record.account_id))
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

    fn interrupted_runs<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        let state = self.lock();
        let mut runs = sorted_newest_first(&state, |r| {
            scope.admits(&r.account_id)
                && matches!(r.status, RunStatus::Queued | RunStatus::Running)
        });
        runs.reverse();
        Self::ready(Ok(runs.into_iter().map(|r| r.record.clone()).collect()))
    }

    fn prune_finished<'a>(&'a self, before_ms: u64) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut state = self.lock();
        let gone: Vec<String> = state
            .runs
            .values()
            .filter(|r| r.record.status.is_terminal() && r.record.updated_at_ms < before_ms)
            .map(|r| r.record.run_id.clone())
            .collect();
        for id in &gone {
            state.runs.remove(id);
            state.events.remove(id);
        }
        state
            .outbox
            .retain(|(run_id, _, _), _| !gone.contains(run_id));
        Self::ready(Ok(gone.len() as u64))
    }
}

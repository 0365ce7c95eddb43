//! [`SessionStore`] for [`MemoryStore`].

use futures::future::BoxFuture;

use super::{MemoryStore, not_found};
use crate::store::{
    JournalEntry, JournalRecord, SessionItem, SessionScope, SessionStore, SessionSummary,
    StoreError,
};
use crate::util::now_ms;

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

//! [`EventStore`] for [`MemoryStore`].

use futures::future::BoxFuture;

use super::MemoryStore;
use crate::store::{EventRecord, EventStore, NewEvent, Scope, StoreError};

impl EventStore for MemoryStore {
    fn events_append<'a>(
        &'a self,
        run_id: &'a str,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        let stored = state.events.entry(run_id.to_owned()).or_default();
        for e in events {
            // Kept in id order; an id stored already stays as it is.
            if let Err(at) = stored.binary_search_by_key(&e.id, |r| r.id) {
                stored.insert(
                    at,
                    EventRecord {
                        run_id: run_id.to_owned(),
                        id: e.id,
                        event_type: e.event_type,
                        body: e.body,
                    },
                );
            }
        }
        Self::ready(Ok(()))
    }

    fn events_after<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<EventRecord>, StoreError>> {
        let state = self.lock();
        let admitted = state
            .runs
            .get(run_id)
            .is_some_and(|r| scope.admits(&r.record.account_id));
        let events = match state.events.get(run_id) {
            Some(events) if admitted => events
                .iter()
                .filter(|e| e.id > after)
                .take(limit)
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        Self::ready(Ok(events))
    }

    fn events_last_id<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let state = self.lock();
        let last = state
            .events
            .get(run_id)
            .and_then(|e| e.last())
            .map_or(0, |e| e.id);
        Self::ready(Ok(last))
    }
}

//! [`OutboxStore`] for [`MemoryStore`].

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{MemoryStore, OutboxEntry, State, not_found};
use crate::store::{
    NewOutboxEntry, OutboxClaim, OutboxRecord, OutboxState, OutboxStore, OutboxSummary, Scope,
    StoreError,
};
use crate::util::now_ms;

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
            let (account_id, user_id) = state
                .runs
                .get(&e.run_id)
                .map(|r| (r.record.account_id.clone(), r.record.user_id.clone()))
                .unwrap_or_default();
            state.outbox.insert(
                key,
                OutboxEntry {
                    order,
                    lease: None,
                    record: OutboxRecord {
                        run_id: e.run_id,
                        account_id,
                        user_id,
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

    fn outbox_heads<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let state = self.lock();
        let mut heads: BTreeMap<(&str, &str), &OutboxEntry> = BTreeMap::new();
        for e in state.outbox.values() {
            if e.record.state == OutboxState::Pending && scope.admits(&e.record.account_id) {
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
        scope: &'a Scope,
        run_id: &'a str,
        url: &'a str,
        owner: &'a str,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> BoxFuture<'a, Result<OutboxClaim, StoreError>> {
        let mut state = self.lock();
        let Some(head) = lane(&mut state, run_id, url)
            .find(|e| e.record.state == OutboxState::Pending && scope.admits(&e.record.account_id))
        else {
            return Self::ready(Ok(OutboxClaim::Empty));
        };
        let lease = head.lease.as_ref().map(|(o, until)| (o.as_str(), *until));
        if let Some(refused) =
            OutboxClaim::refusal(lease, head.record.next_attempt_at_ms, owner, now_ms)
        {
            return Self::ready(Ok(refused));
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
        scope: &'a Scope,
        run_id: Option<&'a str>,
        state: Option<OutboxState>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<OutboxRecord>, StoreError>> {
        let guard = self.lock();
        Self::ready(Ok(guard
            .outbox
            .values()
            .filter(|e| scope.admits(&e.record.account_id))
            .filter(|e| run_id.is_none_or(|r| e.record.run_id == r))
            .filter(|e| state.is_none_or(|s| e.record.state == s))
            .take(limit.unwrap_or(usize::MAX))
            .map(|e| e.record.clone())
            .collect()))
    }

    fn outbox_summary<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<OutboxSummary, StoreError>> {
        let state = self.lock();
        let mut summary = OutboxSummary::default();
        let mine =
            |e: &&OutboxEntry| e.record.run_id == run_id && scope.admits(&e.record.account_id);
        for e in state.outbox.values().filter(mine) {
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

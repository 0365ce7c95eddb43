//! [`ClaimStore`] for [`MemoryStore`]: one process, so no listeners.

use futures::future::BoxFuture;

use super::{MemoryStore, StoredRun};
use crate::store::{ClaimStore, Lease, RunRecord, RunStatus, StoreError};

/// Whether `lease.owner` may take the run's lease.
fn claimable(run: &StoredRun, lease: &Lease<'_>) -> bool {
    match &run.lease {
        Some((owner, until)) => owner == lease.owner || *until < lease.now_ms,
        None => true,
    }
}

impl ClaimStore for MemoryStore {
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        lease: Lease<'a>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut state = self.lock();
        let Some(run) = state.runs.get_mut(run_id) else {
            return Self::ready(Ok(false));
        };
        if run.record.status.is_terminal() || !claimable(run, &lease) {
            return Self::ready(Ok(false));
        }
        run.lease = Some((lease.owner.to_owned(), lease.until_ms));
        Self::ready(Ok(true))
    }

    fn claim_next<'a>(
        &'a self,
        lease: Lease<'a>,
        exclude: &'a [String],
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        let mut state = self.lock();
        let next = state
            .runs
            .values_mut()
            .filter(|r| matches!(r.record.status, RunStatus::Queued | RunStatus::Running))
            .filter(|r| !exclude.contains(&r.record.run_id))
            .filter(|r| {
                // Free or expired only: a run the caller holds already is
                // one it executes.
                r.lease
                    .as_ref()
                    .is_none_or(|(_, until)| *until < lease.now_ms)
            })
            .min_by_key(|r| (r.record.created_at_ms, r.order));
        Self::ready(Ok(next.map(|run| {
            run.lease = Some((lease.owner.to_owned(), lease.until_ms));
            run.record.clone()
        })))
    }

    fn renew_runs<'a>(&'a self, lease: Lease<'a>) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut state = self.lock();
        let mut renewed = 0;
        for run in state.runs.values_mut() {
            if let Some((owner, until)) = &mut run.lease
                && owner == lease.owner
                && *until >= lease.now_ms
            {
                *until = lease.until_ms;
                renewed += 1;
            }
        }
        Self::ready(Ok(renewed))
    }

    fn release_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut state = self.lock();
        if let Some(run) = state.runs.get_mut(run_id)
            && run.lease.as_ref().is_some_and(|(o, _)| o == owner)
        {
            run.lease = None;
        }
        Self::ready(Ok(()))
    }
}

//! Run leases for a fleet of workers sharing one store: [`ClaimStore`].
//!
//! A worker executes a run only while it holds the run's lease: an owner
//! name (unique per process) and a time the lease runs until, renewed
//! while the run executes. When a worker dies its leases expire and
//! another worker claims the run and resumes it from its journal.

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::{RunRecord, StoreError};

/// A claim's arguments: who asks, the time now and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub now_ms: u64,
    pub until_ms: u64,
}

/// Who executes which run. Object-safe.
pub trait ClaimStore: Send + Sync + 'static {
    /// Leases the run to `lease.owner` if it is not finished and its lease
    /// is free, expired or the owner's already; returns whether the owner
    /// now holds it. `false` for an unknown run.
    fn claim_run<'a>(
        &'a self,
        run_id: &'a str,
        lease: Lease<'a>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Leases the oldest run that is `queued` or `running` with a free or
    /// expired lease, leaving out `exclude`; `None` when there is none. Two
    /// workers asking at once get different runs (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`).
    fn claim_next<'a>(
        &'a self,
        lease: Lease<'a>,
        exclude: &'a [String],
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;

    /// Extends every unexpired lease `lease.owner` holds to
    /// `lease.until_ms`; returns how many.
    fn renew_runs<'a>(&'a self, lease: Lease<'a>) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Drops `owner`'s lease on the run (nothing if another holds it) and,
    /// if the run is still `queued` or `running`, tells the listeners.
    fn release_run<'a>(
        &'a self,
        run_id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Run ids other processes made ready (created queued, or released
    /// unfinished), as they commit; `None` when the store has no such
    /// signal (it is private to one process, whose executor knows).
    fn listen_ready<'a>(
        &'a self,
    ) -> BoxFuture<'a, Result<Option<mpsc::UnboundedReceiver<String>>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
}

//! A fleet of workers on one shared store (docs/SCALING.md): each run is
//! executed by the worker holding its lease ([`ClaimStore`]), renewed while
//! it runs. An idle worker claims the oldest queued run, or a run whose
//! worker died (its lease expired), and resumes it from its journal. The
//! store's ready notifications (PostgreSQL's `LISTEN`) wake idle workers;
//! a slow poll finds expired leases and covers a lost listening connection.

use super::App;
use crate::store::{Lease, Store};
use crate::util::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// This worker's part in a fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// This process's lease owner name: unique per process.
    pub owner: String,
    /// How long a lease lasts unless renewed (a third of it apart).
    pub lease: Duration,
}

impl Fleet {
    /// A fleet member named after the host and process, with `lease`.
    pub fn new(lease: Duration) -> Fleet {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        Fleet {
            owner: format!("{host}:{}:{}", std::process::id(), ulid::Ulid::generate()),
            lease: lease.max(Duration::from_secs(1)),
        }
    }

    fn lease_now(&self) -> Lease<'_> {
        let now = now_ms();
        Lease {
            owner: &self.owner,
            now_ms: now,
            until_ms: now + self.lease.as_millis() as u64,
        }
    }

    /// How often idle workers look for work without a notification.
    fn poll(&self) -> Duration {
        (self.lease / 3).min(Duration::from_secs(5))
    }

    /// Takes (or renews) the run's lease; `false` if another worker holds it
    /// or it finished.
    pub(super) async fn claim(&self, store: &dyn Store, run_id: &str) -> bool {
        match store.claim_run(run_id, self.lease_now()).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(run_id = %run_id, error = %e, "cannot claim the run");
                false
            }
        }
    }

    /// Drops the run's lease (it finished or paused here).
    pub(super) async fn release(&self, store: &dyn Store, run_id: &str) {
        if let Err(e) = store.release_run(run_id, &self.owner).await {
            tracing::warn!(run_id = %run_id, error = %e, "cannot release the run's lease");
        }
    }
}

/// Renews this worker's leases every third of a lease, until the process
/// ends (a worker that stops renewing loses its runs to others).
pub(super) async fn renew(store: Arc<dyn Store>, fleet: Arc<Fleet>) {
    loop {
        tokio::time::sleep(fleet.lease / 3).await;
        if let Err(e) = store.renew_runs(fleet.lease_now()).await {
            tracing::warn!(error = %e, "cannot renew the run leases");
        }
    }
}

/// Claims runs while this worker has a free slot, then waits for a
/// notification, a run finishing here or the poll; until the executor stops.
pub(super) async fn claim(app: App, fleet: Arc<Fleet>) {
    let mut listener: Option<mpsc::UnboundedReceiver<String>> = None;
    // Runs this worker cannot execute (their workflow is not registered
    // here): left to other workers.
    let mut foreign: Vec<String> = Vec::new();
    while !app.executor.is_stopping() {
        if listener.is_none() {
            listener = match app.store.listen_ready().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for ready runs; polling");
                    None
                }
            };
        }
        // Registered before claiming: a run finishing meanwhile wakes the
        // wait below at once.
        let finished = app.executor.finished();
        tokio::pin!(finished);
        finished.as_mut().enable();
        while app.executor.has_free_slot() && !app.executor.is_stopping() {
            let run = match app.store.claim_next(fleet.lease_now(), &foreign).await {
                Ok(Some(run)) => run,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a run");
                    break;
                }
            };
            match app.runner_of(&run).await {
                Ok(runner) => {
                    tracing::debug!(run_id = %run.run_id, "claimed a run");
                    let sinks = app.sinks_of(&run.run_id).await;
                    app.executor.submit(&run.run_id, runner, sinks, false);
                }
                Err(e) => {
                    tracing::warn!(
                        run_id = %run.run_id,
                        workflow = %run.workflow_key,
                        "claimed run left to other workers: {}", e.detail
                    );
                    fleet.release(app.store.as_ref(), &run.run_id).await;
                    foreign.push(run.run_id);
                }
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(rx) => rx.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            alive = notified => if !alive { listener = None },
            () = &mut finished => {}
            () = tokio::time::sleep(fleet.poll()) => {}
            () = app.closed() => {}
        }
    }
}

//! Events that other processes sharing the store append (a fleet on
//! PostgreSQL: `LISTEN`): a stream of a run executing on another worker
//! wakes when that run's events commit, instead of polling the store. Where
//! the store has no such signal, or the listening connection is down,
//! streams poll as before.

use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;

/// Run ids whose events another process appended, fanned out to streams.
pub(super) struct RemoteEvents {
    tx: broadcast::Sender<Arc<str>>,
    listening: AtomicBool,
}

/// Notices a slow stream may miss before it reads the store again anyway.
const BUFFER: usize = 1024;

impl RemoteEvents {
    pub(super) fn new() -> Arc<RemoteEvents> {
        Arc::new(RemoteEvents {
            tx: broadcast::channel(BUFFER).0,
            listening: AtomicBool::new(false),
        })
    }

    /// Subscribe before reading the store: a notice that comes after the
    /// read is then not missed.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    /// Whether notices are arriving (else streams poll).
    pub(super) fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Listens for as long as the process runs, again a second after the
    /// connection fails; returns at once if the store has no such signal.
    pub(super) async fn listen(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            match store.listen_events().await {
                Ok(Some(mut rx)) => {
                    self.listening.store(true, Ordering::SeqCst);
                    while let Some(run_id) = rx.recv().await {
                        // No subscriber is not an error.
                        let _ = self.tx.send(run_id.into());
                    }
                    self.listening.store(false, Ordering::SeqCst);
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other workers' events; streams poll")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Waits for a notice about `run_id` (or for a missed notice: the reader
/// fell behind, so it reads the store again).
pub(super) async fn notice(rx: &mut broadcast::Receiver<Arc<str>>, run_id: &str) {
    loop {
        match rx.recv().await {
            Ok(id) if &*id == run_id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

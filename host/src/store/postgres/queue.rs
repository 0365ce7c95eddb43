//! Write-behind appends ([`RunStore::append_queued`]): queued when called,
//! committed in call order by one task of the store, whether or not the
//! caller awaits (or keeps) the returned future.

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::{Inner, PostgresStore};
use crate::store::{JournalEntry, RunUpdate, StoreError};

/// One queued append and where its outcome goes.
pub(super) struct Queued {
    run_id: String,
    entry: JournalEntry,
    update: Option<RunUpdate>,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

pub(super) type Queue = mpsc::UnboundedSender<Queued>;

impl PostgresStore {
    /// Queues the append now; the future reports its outcome.
    pub(super) fn enqueue_append(
        &self,
        run_id: String,
        entry: JournalEntry,
        update: Option<RunUpdate>,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        let queue = self.inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(drain(Arc::downgrade(&self.inner), rx));
            tx
        });
        let (reply, outcome) = oneshot::channel();
        let db = self.inner.db.clone();
        self.inner
            .queued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sent = queue.send(Queued {
            run_id,
            entry,
            update,
            reply,
        });
        Box::pin(async move {
            if sent.is_err() {
                return Err(gone(&db));
            }
            outcome.await.unwrap_or_else(|_| Err(gone(&db)))
        })
    }
}

fn gone(db: &str) -> StoreError {
    StoreError::Backend {
        db: db.to_owned(),
        source: "the store's append queue has stopped".into(),
    }
}

/// Commits the queued appends one after the other, each in its own
/// transaction (a failure is its caller's alone), until the store goes.
async fn drain(store: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(q) = rx.recv().await {
        let Some(inner) = store.upgrade() else { return };
        let store = PostgresStore { inner };
        let result = store.append_now(&q.run_id, q.entry, q.update, false).await;
        store.inner.committed.send_modify(|c| *c += 1);
        let _ = q.reply.send(result);
    }
}

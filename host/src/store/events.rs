//! Stored run events: what a live stream (the server's Server-Sent Events)
//! replays to a client that connects late or reconnects.
//!
//! A run's events are stored in order under an `id` the store's caller
//! assigns: 1, 2, 3… per run, continuing across resumes (an event's
//! envelope `seq` starts again at 1 when a run resumes; the stored `id`
//! does not). The body is the event's JSON envelope, as sent.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Scope, StoreError};

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// 1, 2, 3… per run, across resumes.
    pub id: u64,
    /// The envelope's `type`, e.g. `run.completed`.
    pub event_type: String,
    /// The envelope as JSON.
    pub body: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub run_id: String,
    pub id: u64,
    pub event_type: String,
    pub body: String,
}

/// Run events kept for late and returning readers. Object-safe.
pub trait EventStore: Send + Sync + 'static {
    /// Stores `events` of the run in one transaction. An event whose (run,
    /// id) exists already is left as it is, so storing twice is harmless.
    fn events_append<'a>(
        &'a self,
        run_id: &'a str,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The run's events with an id above `after`, in id order, at most
    /// `limit`; empty when `scope` does not admit the run's account.
    fn events_after<'a>(
        &'a self,
        scope: &'a Scope,
        run_id: &'a str,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<EventRecord>, StoreError>>;

    /// The highest id stored for the run (0: none), so a resumed run's
    /// events continue the numbering.
    fn events_last_id<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The ids of runs whose events any process sharing the store has
    /// appended, as they commit (a run may be named once per append); `None`
    /// when the store has no such signal (it is private to one process,
    /// whose streams follow its runs directly). The receiver ends when the
    /// listening connection fails: listen again.
    fn listen_events<'a>(
        &'a self,
    ) -> BoxFuture<'a, Result<Option<mpsc::UnboundedReceiver<String>>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
}

//! The `http` sink: puts every event in the run database's outbox, from
//! which a [`crate::outbox::Deliverer`] POSTs it. Enqueueing is batched:
//! events that arrive together are written in one store call, from the
//! sink's own thread, so the run never waits for the database or the
//! endpoint.
//!
//! With `format: go` each entry's body is a Go runner callback event
//! ([`super::go_events`]) instead; the entries of a run are numbered in the
//! order they are made, after what an earlier process of the run enqueued.

use super::go_events::GoTranslator;
use super::{HttpTarget, Sink};
use crate::events::Event;
use crate::spec::EventFormat;
use crate::store::{NewOutboxEntry, OutboxTarget, Store};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// What an `http` sink needs besides its target: the store holding the
/// outbox, the deliverer's waker, and the runtime to talk to the store from
/// the sink's thread.
#[derive(Clone)]
pub struct OutboxSink {
    pub store: Arc<dyn Store>,
    pub wake: Arc<Notify>,
    pub runtime: Handle,
}

impl std::fmt::Debug for OutboxSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxSink").finish_non_exhaustive()
    }
}

pub struct HttpSink {
    outbox: OutboxSink,
    target: OutboxTarget,
    /// Added to every event's `seq`: a resumed run's events restart at 1,
    /// and continue after the entries its earlier process enqueued.
    offset: Option<u64>,
    batch: Vec<NewOutboxEntry>,
    /// `format: go`: the translator, and the entries made so far.
    go: Option<(GoTranslator, u64)>,
}

impl HttpSink {
    /// `display_names` (agent key → shown name) are for `format: go`.
    pub fn new(
        target: &HttpTarget,
        outbox: OutboxSink,
        display_names: BTreeMap<String, String>,
    ) -> Self {
        HttpSink {
            outbox,
            // Header values may be secrets: the row keeps their names, the
            // deliverer gets the values from this process's memory.
            target: OutboxTarget {
                url: target.url.clone(),
                secret_env: target.secret_env.clone(),
                headers: Default::default(),
                inline_headers: target.headers.keys().cloned().collect(),
                inline_secret: target.secret.is_some(),
            },
            offset: None,
            batch: Vec::new(),
            go: (target.format == EventFormat::Go).then(|| (GoTranslator::new(display_names), 0)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.outbox
            .runtime
            .block_on(self.outbox.store.outbox_enqueue(batch))
            .map_err(io::Error::other)?;
        self.outbox.wake.notify_one();
        Ok(())
    }
}

impl Sink for HttpSink {
    fn label(&self) -> String {
        format!("http:{}", self.target.url)
    }

    fn durable(&self) -> bool {
        true
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        let offset = match self.offset {
            Some(offset) => offset,
            None => {
                let last = self.outbox.runtime.block_on(
                    self.outbox
                        .store
                        .outbox_last_seq(&event.run_id, &self.target.url),
                );
                let offset = last.map_err(io::Error::other)?;
                self.offset = Some(offset);
                offset
            }
        };
        if let Some((translator, made)) = &mut self.go {
            for go in translator.translate(event) {
                *made += 1;
                self.batch.push(NewOutboxEntry {
                    run_id: event.run_id.clone(),
                    target: self.target.clone(),
                    seq: offset + *made,
                    event_type: go.kind.as_str().to_owned(),
                    body: serde_json::to_string(&go)?,
                });
            }
            return Ok(());
        }
        let mut event = event.clone();
        event.seq += offset;
        let body = serde_json::to_string(&event)?;
        self.batch.push(NewOutboxEntry {
            run_id: event.run_id.clone(),
            target: self.target.clone(),
            seq: event.seq,
            event_type: event.kind.as_str().to_owned(),
            body,
        });
        Ok(())
    }

    fn caught_up(&mut self) -> io::Result<()> {
        self.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

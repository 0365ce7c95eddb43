//! Server-Sent Events: a run's events, from the start or after a
//! `Last-Event-ID`, then live, with no gap and no duplicate, closing after
//! the run's final event; and the plugin notices, live.
//!
//! A run's stream subscribes to the run's live bus *before* it reads the
//! stored backlog, then skips live events it has already sent (by id), so
//! an event stored between the two reads is sent once. A reader that falls
//! behind the bus reads the store again from where it was.

use super::App;
use super::runs::StreamEvent;
use crate::store::Scope;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// Stored events are read this many at a time.
const PAGE: usize = 500;
/// How often a stream of a run nobody executes here (waiting for approval,
/// or executed by another process) looks for new events, unless the store
/// tells it when they come ([`super::remote`]).
const POLL: Duration = Duration::from_millis(250);
/// How often it looks anyway when the store does tell it: a safety net.
const POLL_WHEN_TOLD: Duration = Duration::from_secs(5);

/// A Server-Sent Events response.
pub(super) type SseStream = axum::response::Response;

fn sse(e: &StreamEvent) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(e.event_type.clone())
        .data(e.body.clone())
}

/// The events of run `run_id` (which `scope` admits) after id `after`.
pub(super) fn run_events(app: App, scope: Scope, run_id: String, after: u64) -> SseStream {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    tokio::spawn(async move {
        tokio::select! {
            result = follow(&app, &scope, &run_id, after, &tx) => {
                if let Err(e) = result {
                    tracing::debug!(run_id = %run_id, "event stream ended: {e}");
                }
            }
            () = app.closed() => {}
        }
    });
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

type Tx = mpsc::Sender<Result<SseEvent, Infallible>>;

/// Sends `e` unless it was sent; `Ok(true)` after the final event.
async fn send(tx: &Tx, e: &StreamEvent, last: &mut u64) -> Result<bool, String> {
    if e.id <= *last {
        return Ok(false);
    }
    tx.send(Ok(sse(e)))
        .await
        .map_err(|_| "the client went away".to_owned())?;
    *last = e.id;
    Ok(e.is_final())
}

/// Sends every stored event after `last`; `Ok(true)` after the final one.
async fn send_stored(
    app: &App,
    scope: &Scope,
    run_id: &str,
    last: &mut u64,
    tx: &Tx,
) -> Result<bool, String> {
    loop {
        let page = app
            .store
            .events_after(scope, run_id, *last, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for stored in &page {
            let e = StreamEvent {
                id: stored.id,
                event_type: stored.event_type.clone(),
                body: stored.body.clone(),
            };
            if send(tx, &e, last).await? {
                return Ok(true);
            }
        }
        if page.len() < PAGE {
            return Ok(false);
        }
    }
}

async fn follow(app: &App, scope: &Scope, run_id: &str, after: u64, tx: &Tx) -> Result<(), String> {
    let mut last = after;
    loop {
        let mut told = app.remote.subscribe();
        let live = app.executor.subscribe(run_id);
        // The backlog: everything stored after what was sent.
        if send_stored(app, scope, run_id, &mut last, tx).await? {
            return Ok(());
        }
        match live {
            // Until the bus says the reader is behind or the run stopped
            // executing here: then the store is read again.
            Some(mut rx) => {
                while let Ok(e) = rx.recv().await {
                    if send(tx, &e, &mut last).await? {
                        return Ok(());
                    }
                }
            }
            None => {
                let run = app
                    .store
                    .get_run(scope, run_id)
                    .await
                    .map_err(|e| e.to_string())?;
                match run {
                    // Finished: one more read (the final event may have
                    // been stored just before the status changed), done.
                    Some(r) if r.status.is_terminal() && !app.executor.is_live(run_id) => {
                        send_stored(app, scope, run_id, &mut last, tx).await?;
                        return Ok(());
                    }
                    None => return Ok(()),
                    // Waiting for approval, queued or executed elsewhere.
                    Some(_) => {
                        let poll = poll_override().unwrap_or(if app.remote.listening() {
                            POLL_WHEN_TOLD
                        } else {
                            POLL
                        });
                        tokio::select! {
                            () = tokio::time::sleep(poll) => {}
                            () = super::remote::notice(&mut told, run_id) => {}
                            () = tx.closed() => return Ok(()),
                        }
                    }
                }
            }
        }
    }
}

/// `plugin.reloaded` and `plugin.reload_failed` as they happen.
pub(super) fn plugin_events(app: App) -> SseStream {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    let mut notices = app.catalog.notices();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                r = notices.recv() => r,
                () = app.closed() => return,
            };
            let event = match received {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let body = serde_json::to_string(&*event).unwrap_or_default();
            let e = SseEvent::default()
                .id(event.seq.to_string())
                .event(event.kind.as_str())
                .data(body);
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
    });
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `HOST_STREAM_POLL_MS`, instead of [`POLL`] and [`POLL_WHEN_TOLD`]
/// (tests set it high to show that notices alone carry a stream).
fn poll_override() -> Option<Duration> {
    std::env::var("HOST_STREAM_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

//! Executing runs in the server: at most `max_runs` at once, the rest
//! queued (up to `max_queued`), each run's events stored (for streams that
//! start late or reconnect) and fanned out live, cancels, and the recovery
//! of interrupted runs at start.
//!
//! Every run is first recorded `queued` with its `run_started` entry
//! ([`Runner::enqueue`]) and executed by [`Runner::resume`] when a slot is
//! free, so a run accepted by the API survives a crash before it starts.

use super::fleet::Fleet;
use super::lock;
use super::metrics::Metrics;
use crate::engine::{Caller, ResumeRequest, RunCanceller, RunError, RunHandle, Runner};
use crate::events::{Data, Emitter, Event, EventType, Scope as EventScope};
use crate::sinks::{self, OutboxSink, SinkOptions, SinkSpec};
use crate::store::{NewEvent, RunStatus, RunUpdate, Scope, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc, watch};

/// Events a run's live bus holds for slow readers; one that falls further
/// behind reads the store again (each waiting run pays for these slots).
const LIVE_BUFFER: usize = 64;

/// One stored event of a run, as streams send it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// 1, 2, 3… per run, across resumes: the SSE `id`.
    pub id: u64,
    pub event_type: String,
    /// The event envelope, JSON.
    pub body: String,
}

impl StreamEvent {
    /// The run's last event: completed, failed or cancelled.
    pub fn is_final(&self) -> bool {
        matches!(
            self.event_type.as_str(),
            "run.completed" | "run.failed" | "run.cancelled"
        )
    }
}

/// A run this server has accepted and not finished executing (queued or
/// running).
pub(super) struct LiveRun {
    bus: broadcast::Sender<Arc<StreamEvent>>,
    canceller: Mutex<Option<RunCanceller>>,
    /// Cancelled before it started executing.
    cancelled: AtomicBool,
}

/// Where a run's events go besides the store and its streams.
#[derive(Debug, Clone, Default)]
pub struct RunSinks {
    /// HTTP callbacks (delivered through the outbox).
    pub callbacks: Vec<SinkSpec>,
}

/// Runs executing and queued, and the capacity they share.
pub struct Executor {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    outbox: Option<OutboxSink>,
    permits: Arc<Semaphore>,
    max_queued: usize,
    queued: AtomicUsize,
    running: AtomicUsize,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    stopping: watch::Sender<bool>,
    /// Told each time a run finishes executing.
    idle: Notify,
    /// In a fleet: a run executes here only under its lease.
    fleet: Option<Arc<Fleet>>,
}

/// Why a run was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_runs` run and `max_queued` wait already.
    Full,
    /// The server is shutting down.
    Stopping,
}

impl Executor {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        outbox: Option<OutboxSink>,
        max_runs: usize,
        max_queued: usize,
        fleet: Option<Arc<Fleet>>,
    ) -> Arc<Executor> {
        Arc::new(Executor {
            store,
            metrics,
            outbox,
            permits: Arc::new(Semaphore::new(max_runs.max(1))),
            max_queued,
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            live: Mutex::new(HashMap::new()),
            stopping: watch::channel(false).0,
            idle: Notify::new(),
            fleet,
        })
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Whether a run could start now (a slot no queued run waits for).
    pub fn has_free_slot(&self) -> bool {
        !self.is_stopping() && self.permits.available_permits() > self.queued()
    }

    /// Resolves when a run next finishes executing here.
    pub(super) fn finished(&self) -> tokio::sync::futures::Notified<'_> {
        self.idle.notified()
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Takes a queue place for a new run, or says why not. Release it with
    /// [`Executor::submit`] (which keeps it until the run starts) or
    /// [`Executor::unreserve`].
    pub fn reserve(&self) -> Result<(), Refused> {
        if self.is_stopping() {
            return Err(Refused::Stopping);
        }
        let free = self.permits.available_permits();
        let limit = self.max_queued + free;
        let mut current = self.queued.load(Ordering::SeqCst);
        loop {
            if current >= limit {
                return Err(Refused::Full);
            }
            match self.queued.compare_exchange(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        self.metrics.set_queue_depth(self.queued());
        Ok(())
    }

    pub fn unreserve(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        self.metrics.set_queue_depth(self.queued());
    }

    /// Executes the recorded run `run_id` (queued, interrupted, or waiting
    /// for approvals that are all decided) when a slot is free. Takes over a
    /// place from [`Executor::reserve`] when `reserved`; recovery and
    /// approvals take one regardless of the queue's limit.
    ///
    /// In a fleet, a new run (`reserved`) that finds no free slot here is
    /// not queued here: it waits in the store for whichever worker frees a
    /// slot first (this one's claimer included), and its streams read the
    /// store meanwhile instead of a local bus that would stay silent.
    pub fn submit(self: &Arc<Self>, run_id: &str, runner: Runner, sinks: RunSinks, reserved: bool) {
        if reserved && self.fleet.is_some() && self.permits.available_permits() < self.queued() {
            self.unreserve();
            return;
        }
        if !reserved {
            self.queued.fetch_add(1, Ordering::SeqCst);
            self.metrics.set_queue_depth(self.queued());
        }
        let live = {
            let mut map = lock(&self.live);
            if map.contains_key(run_id) {
                // Already queued or running here.
                drop(map);
                self.unreserve();
                return;
            }
            let live = Arc::new(LiveRun {
                // Small: a reader that falls behind reads the store again.
                bus: broadcast::channel(LIVE_BUFFER).0,
                canceller: Mutex::new(None),
                cancelled: AtomicBool::new(false),
            });
            map.insert(run_id.to_owned(), live.clone());
            live
        };
        let this = self.clone();
        let run_id = run_id.to_owned();
        tokio::spawn(async move {
            let mut stopping = this.stopping.subscribe();
            let permit = tokio::select! {
                p = this.permits.clone().acquire_owned() => p.ok(),
                _ = stopping.wait_for(|s| *s) => None,
            };
            this.unreserve();
            // In a fleet, only under the run's lease: another worker may
            // have claimed it meanwhile (it is that worker's then).
            let claimed = match (&permit, &this.fleet) {
                (Some(_), Some(fleet)) => fleet.claim(this.store.as_ref(), &run_id).await,
                _ => true,
            };
            if let Some(_permit) = permit
                && claimed
                && !live.cancelled.load(Ordering::SeqCst)
            {
                this.running.fetch_add(1, Ordering::SeqCst);
                this.metrics.set_running(this.running());
                // A decision that came while the run was pausing finds no
                // one to continue it: check once it has paused (in a fleet,
                // once its lease is released too: an approver whose claim
                // failed because this worker still held it relies on this).
                while this.execute(&run_id, &runner, &live, sinks.clone()).await
                    == RunStatus::WaitingApproval
                    && this.continues(&run_id).await
                {}
                if let Some(fleet) = &this.fleet {
                    fleet.release(this.store.as_ref(), &run_id).await;
                }
                this.running.fetch_sub(1, Ordering::SeqCst);
                this.metrics.set_running(this.running());
            }
            lock(&this.live).remove(&run_id);
            this.idle.notify_waiters();
        });
    }

    /// Whether a run that paused here for approvals goes on at once: its
    /// approvals are all decided (and, in a fleet, it is still this
    /// worker's after releasing and claiming its lease again).
    async fn continues(&self, run_id: &str) -> bool {
        let decided = || async {
            crate::approvals::pending(self.store.as_ref(), &Scope::Operator, run_id)
                .await
                .is_ok_and(|p| p.is_empty())
        };
        if decided().await {
            return true;
        }
        let Some(fleet) = &self.fleet else {
            return false;
        };
        fleet.release(self.store.as_ref(), run_id).await;
        decided().await && fleet.claim(self.store.as_ref(), run_id).await
    }

    async fn execute(
        &self,
        run_id: &str,
        runner: &Runner,
        live: &LiveRun,
        sinks: RunSinks,
    ) -> RunStatus {
        let started = Instant::now();
        // The run's end is committed only once its last events are stored
        // and in the outbox: a worker killed in between leaves a run that
        // is resumed, never a finished run without its last events.
        let callbacks = self.open_callbacks(run_id, &sinks);
        let (stored, stored_ack) = watch::channel(0);
        let mut event_acks = vec![stored_ack];
        if let Some((_, dispatch)) = &callbacks {
            event_acks.extend(dispatch.acks());
        }
        let mut handle = runner.resume(
            run_id,
            ResumeRequest {
                // The API checked the caller already; the run keeps its owner.
                caller: Caller::Operator,
                deltas: false,
                events: true,
                wait_approval: false,
                event_acks,
            },
        );
        *lock(&live.canceller) = Some(handle.canceller());
        // A cancel that came between the check and here.
        if live.cancelled.load(Ordering::SeqCst) {
            handle.cancel();
        }
        self.pump(run_id, &mut handle, &live.bus, callbacks, stored)
            .await;
        let result = handle.wait().await;
        let status = match &result {
            Ok(_) => RunStatus::Completed,
            Err(RunError::Cancelled) => RunStatus::Cancelled,
            Err(RunError::Paused { .. }) => RunStatus::WaitingApproval,
            Err(e) => {
                tracing::info!(run_id = %run_id, error = %e, "run failed");
                RunStatus::Failed
            }
        };
        self.metrics
            .finished(&runner.workflow().key, status, started.elapsed());
        status
    }

    /// HTTP callbacks for the run's events: a channel the pump feeds.
    fn open_callbacks(
        &self,
        run_id: &str,
        sinks: &RunSinks,
    ) -> Option<(mpsc::UnboundedSender<Event>, sinks::Dispatch)> {
        if sinks.callbacks.is_empty() {
            return None;
        }
        let options = SinkOptions {
            offline: false,
            outbox: self.outbox.clone(),
            display_names: Default::default(),
        };
        let mut opened = Vec::new();
        for spec in &sinks.callbacks {
            match sinks::open(spec, &options) {
                Ok(sink) => opened.push(sink),
                Err(e) => tracing::warn!(run_id = %run_id, error = %e, "callback not opened"),
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        Some((tx, sinks::spawn(rx, opened)))
    }

    /// Stores the run's events (numbered after those it has) and sends each
    /// to the run's live streams and callbacks, until the run ends.
    async fn pump(
        &self,
        run_id: &str,
        handle: &mut RunHandle,
        bus: &broadcast::Sender<Arc<StreamEvent>>,
        callbacks: Option<(mpsc::UnboundedSender<Event>, sinks::Dispatch)>,
        stored_ack: watch::Sender<u64>,
    ) {
        let Some(mut events) = handle.take_events() else {
            return;
        };
        let mut next = match self.store.events_last_id(run_id).await {
            Ok(last) => last + 1,
            Err(e) => {
                tracing::error!(run_id = %run_id, error = %e, "cannot read the run's stored events");
                1
            }
        };
        let mut batch = Vec::new();
        while let Some(first) = events.recv().await {
            batch.push(first);
            while batch.len() < 256 {
                match events.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            let mut stored = Vec::with_capacity(batch.len());
            let last_seq = batch.last().map_or(0, |e| e.seq);
            for event in batch.drain(..) {
                self.metrics.event(&event);
                let body = serde_json::to_string(&event).unwrap_or_default();
                stored.push(NewEvent {
                    id: next,
                    event_type: event.kind.as_str().to_owned(),
                    body,
                });
                next += 1;
                if let Some((tx, _)) = &callbacks {
                    let _ = tx.send(event);
                }
            }
            if let Err(e) = self.store.events_append(run_id, stored.clone()).await {
                tracing::error!(run_id = %run_id, error = %e, "cannot store the run's events");
            }
            // Tried (a failure is logged above; waiting would not mend it).
            stored_ack.send_replace(last_seq);
            for e in stored {
                let _ = bus.send(Arc::new(StreamEvent {
                    id: e.id,
                    event_type: e.event_type,
                    body: e.body,
                }));
            }
        }
        if let Some((tx, dispatch)) = callbacks {
            drop(tx);
            for e in dispatch.finish().await {
                tracing::warn!(run_id = %run_id, error = %e, "callback sink failed");
            }
        }
    }

    /// The live bus of a run this server is executing or has queued.
    pub fn subscribe(&self, run_id: &str) -> Option<broadcast::Receiver<Arc<StreamEvent>>> {
        lock(&self.live).get(run_id).map(|l| l.bus.subscribe())
    }

    pub fn is_live(&self, run_id: &str) -> bool {
        lock(&self.live).contains_key(run_id)
    }

    /// Cancels a run this server holds. `false` if it holds none by that id.
    pub async fn cancel_live(&self, run_id: &str, workflow: &str) -> bool {
        let Some(live) = lock(&self.live).get(run_id).cloned() else {
            return false;
        };
        live.cancelled.store(true, Ordering::SeqCst);
        let canceller = lock(&live.canceller).clone();
        match canceller {
            Some(c) => c.cancel(),
            // Still queued: it will not start; record it cancelled now.
            None => self.cancel_idle(run_id, workflow, Some(&live.bus)).await,
        }
        true
    }

    /// Cancels a run nobody executes (queued, or waiting for approval):
    /// its status, and a `run.cancelled` event for its streams.
    pub async fn cancel_idle(
        &self,
        run_id: &str,
        workflow: &str,
        bus: Option<&broadcast::Sender<Arc<StreamEvent>>>,
    ) {
        if let Err(e) = self
            .store
            .update_run(run_id, RunUpdate::status(RunStatus::Cancelled))
            .await
        {
            tracing::warn!(run_id = %run_id, error = %e, "cannot cancel run");
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        Emitter::new(run_id, workflow, Some(tx), false)
            .emit(&EventScope::default(), Data::RunCancelled);
        let Ok(event) = rx.try_recv() else { return };
        let id = self.store.events_last_id(run_id).await.unwrap_or(0) + 1;
        let stored = NewEvent {
            id,
            event_type: EventType::RunCancelled.as_str().to_owned(),
            body: serde_json::to_string(&event).unwrap_or_default(),
        };
        if self
            .store
            .events_append(run_id, vec![stored.clone()])
            .await
            .is_ok()
            && let Some(bus) = bus
        {
            let _ = bus.send(Arc::new(StreamEvent {
                id: stored.id,
                event_type: stored.event_type,
                body: stored.body,
            }));
        }
        self.metrics
            .finished(workflow, RunStatus::Cancelled, Default::default());
    }

    /// Stops starting runs (queued ones stay queued in the store, for the
    /// next start) and waits up to `grace` for the running ones; returns
    /// how many were still running.
    pub async fn shutdown(&self, grace: std::time::Duration) -> usize {
        let _ = self.stopping.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            if self.running() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.running();
            }
        }
    }

    /// Runs to execute at start: those the store has queued or running (a
    /// previous process died or stopped with them; with `interrupted`), and
    /// those waiting for approvals that have all been decided.
    pub async fn recoverable(
        &self,
        interrupted: bool,
    ) -> Result<Vec<crate::store::RunRecord>, crate::store::StoreError> {
        let mut runs = if interrupted {
            self.store.interrupted_runs(&Scope::Operator).await?
        } else {
            Vec::new()
        };
        let waiting = self
            .store
            .list_runs(
                &Scope::Operator,
                crate::store::RunFilter {
                    status: Some(RunStatus::WaitingApproval),
                    ..Default::default()
                },
            )
            .await?;
        for run in waiting {
            if crate::approvals::pending(self.store.as_ref(), &Scope::Operator, &run.run_id)
                .await?
                .is_empty()
            {
                runs.push(run);
            }
        }
        Ok(runs)
    }
}

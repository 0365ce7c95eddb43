//! The run event model: a stable, versioned JSON envelope.
//!
//! Every event has a type, the schema version, the run id, a per-run
//! sequence number (from 1, no gaps), a UTC timestamp, the workflow key and,
//! where it applies, the stage, step, branch index and agent; the rest is in
//! `data`, typed per event type in [`data`]. The engine emits events
//! through an [`Emitter`]; a [`crate::engine::RunHandle`] hands them to
//! library users in order.

pub mod data;

pub use data::Data;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// Version of the envelope; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "run.started")]
    RunStarted,
    #[serde(rename = "stage.started")]
    StageStarted,
    #[serde(rename = "step.started")]
    StepStarted,
    #[serde(rename = "step.skipped")]
    StepSkipped,
    #[serde(rename = "llm.request")]
    LlmRequest,
    #[serde(rename = "llm.delta")]
    LlmDelta,
    #[serde(rename = "llm.response")]
    LlmResponse,
    #[serde(rename = "tool.called")]
    ToolCalled,
    #[serde(rename = "tool.result")]
    ToolResult,
    #[serde(rename = "guardrail.tripped")]
    GuardrailTripped,
    #[serde(rename = "handoff")]
    Handoff,
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "approval.resolved")]
    ApprovalResolved,
    #[serde(rename = "step.completed")]
    StepCompleted,
    #[serde(rename = "step.failed")]
    StepFailed,
    #[serde(rename = "stage.completed")]
    StageCompleted,
    #[serde(rename = "plugin.reloaded")]
    PluginReloaded,
    #[serde(rename = "plugin.reload_failed")]
    PluginReloadFailed,
    #[serde(rename = "run.completed")]
    RunCompleted,
    #[serde(rename = "run.failed")]
    RunFailed,
    #[serde(rename = "run.cancelled")]
    RunCancelled,
}

impl EventType {
    /// Every event type, in documentation order.
    pub const ALL: [EventType; 21] = [
        EventType::RunStarted,
        EventType::StageStarted,
        EventType::StepStarted,
        EventType::StepSkipped,
        EventType::LlmRequest,
        EventType::LlmDelta,
        EventType::LlmResponse,
        EventType::ToolCalled,
        EventType::ToolResult,
        EventType::GuardrailTripped,
        EventType::Handoff,
        EventType::ApprovalRequested,
        EventType::ApprovalResolved,
        EventType::StepCompleted,
        EventType::StepFailed,
        EventType::StageCompleted,
        EventType::PluginReloaded,
        EventType::PluginReloadFailed,
        EventType::RunCompleted,
        EventType::RunFailed,
        EventType::RunCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RunStarted => "run.started",
            EventType::StageStarted => "stage.started",
            EventType::StepStarted => "step.started",
            EventType::StepSkipped => "step.skipped",
            EventType::LlmRequest => "llm.request",
            EventType::LlmDelta => "llm.delta",
            EventType::LlmResponse => "llm.response",
            EventType::ToolCalled => "tool.called",
            EventType::ToolResult => "tool.result",
            EventType::GuardrailTripped => "guardrail.tripped",
            EventType::Handoff => "handoff",
            EventType::ApprovalRequested => "approval.requested",
            EventType::ApprovalResolved => "approval.resolved",
            EventType::StepCompleted => "step.completed",
            EventType::StepFailed => "step.failed",
            EventType::StageCompleted => "stage.completed",
            EventType::PluginReloaded => "plugin.reloaded",
            EventType::PluginReloadFailed => "plugin.reload_failed",
            EventType::RunCompleted => "run.completed",
            EventType::RunFailed => "run.failed",
            EventType::RunCancelled => "run.cancelled",
        }
    }

    /// Ends a run: nothing follows it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventType::RunCompleted | EventType::RunFailed | EventType::RunCancelled
        )
    }
}

/// One event. `kind` is always `data.kind()`: the [`Emitter`] takes it
/// from the data, and decoding reads the data by the type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub schema_version: u32,
    pub run_id: String,
    /// 1, 2, 3, … per run, in emission order.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-21T06:20:00.123Z`.
    pub timestamp: String,
    pub workflow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The step's name (its `name` in the spec, else its agent key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Set on the events of an agent offered as a tool: the id of the call
    /// it runs for (its turns are numbered from 1 within that call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    pub data: Data,
}

/// The envelope as written, its `data` not yet read: which struct that is
/// depends on `type`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: EventType,
    schema_version: u32,
    run_id: String,
    seq: u64,
    timestamp: String,
    workflow: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    step_index: Option<u32>,
    #[serde(default)]
    branch_index: Option<u32>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    data: Value,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let e = Envelope::deserialize(deserializer)?;
        let data = Data::decode(e.kind, e.data).map_err(|err| {
            serde::de::Error::custom(format_args!("`data` of {}: {err}", e.kind.as_str()))
        })?;
        Ok(Event {
            kind: e.kind,
            schema_version: e.schema_version,
            run_id: e.run_id,
            seq: e.seq,
            timestamp: e.timestamp,
            workflow: e.workflow,
            stage: e.stage,
            step: e.step,
            step_index: e.step_index,
            branch_index: e.branch_index,
            agent: e.agent,
            tool_call_id: e.tool_call_id,
            data,
        })
    }
}

/// Where in a run an event applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub stage: Option<String>,
    pub step: Option<String>,
    pub step_index: Option<u32>,
    pub branch_index: Option<u32>,
    pub agent: Option<String>,
    /// Inside an agent offered as a tool: the call it runs for.
    pub tool_call_id: Option<String>,
}

/// Assigns sequence numbers and timestamps and delivers events in order.
/// Cheap to clone; sending never blocks or fails the run.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<EmitterInner>,
}

struct EmitterInner {
    run_id: String,
    workflow: String,
    /// The last sequence number given out. Numbering and sending happen
    /// under this one lock, so `seq` order is delivery order even when
    /// parallel branches emit at once.
    seq: Mutex<u64>,
    tx: Option<mpsc::UnboundedSender<Event>>,
    /// Emit `llm.delta` events (streamed text) only when someone asks.
    deltas: bool,
    /// Consumers that make events durable (a store, an outbox), each
    /// telling the highest `seq` it has written: [`Emitter::flushed`].
    acks: Vec<EventAck>,
}

/// The highest `seq` of a run's events that one consumer has made durable
/// (stored, or put in the outbox); a consumer that goes away drops its
/// sender and is no longer waited for.
pub type EventAck = watch::Receiver<u64>;

/// How long [`Emitter::flushed`] waits for one consumer before going on
/// without it (it logs a warning: the consumer is stuck, e.g. its store).
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Emitter {
    pub fn new(
        run_id: impl Into<String>,
        workflow: impl Into<String>,
        tx: Option<mpsc::UnboundedSender<Event>>,
        deltas: bool,
    ) -> Self {
        Self::with_acks(run_id, workflow, tx, deltas, Vec::new())
    }

    /// An emitter whose [`Emitter::flushed`] waits for `acks`.
    pub fn with_acks(
        run_id: impl Into<String>,
        workflow: impl Into<String>,
        tx: Option<mpsc::UnboundedSender<Event>>,
        deltas: bool,
        acks: Vec<EventAck>,
    ) -> Self {
        Emitter {
            inner: Arc::new(EmitterInner {
                run_id: run_id.into(),
                workflow: workflow.into(),
                seq: Mutex::new(0),
                tx,
                deltas,
                acks,
            }),
        }
    }

    /// Waits until every durable consumer has written every event emitted
    /// so far. The engine calls it before committing a run's end, so a
    /// process killed in between leaves a run that is resumed (and emits
    /// its end again), never a finished run without its last events.
    pub async fn flushed(&self) {
        if self.inner.acks.is_empty() || self.inner.tx.is_none() {
            return;
        }
        let target = self.inner.seq.lock().map(|s| *s).unwrap_or(0);
        for ack in &self.inner.acks {
            let mut ack = ack.clone();
            let wait = ack.wait_for(|written| *written >= target);
            if tokio::time::timeout(FLUSH_TIMEOUT, wait).await.is_err() {
                tracing::warn!(
                    run_id = %self.inner.run_id,
                    seq = target,
                    "an event consumer has not written the run's events; going on without it"
                );
            }
        }
    }

    /// An emitter that drops everything (tests, benchmarks).
    pub fn disabled() -> Self {
        Self::new("", "", None, false)
    }

    pub fn wants_deltas(&self) -> bool {
        self.inner.deltas && self.inner.tx.is_some()
    }

    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// Sends `data` as the next event; its type comes from the data.
    pub fn emit(&self, scope: &Scope, data: impl Into<Data>) {
        let Some(tx) = &self.inner.tx else { return };
        let data = data.into();
        let Ok(mut seq) = self.inner.seq.lock() else {
            return;
        };
        *seq += 1;
        let seq = *seq;
        let event = Event {
            kind: data.kind(),
            schema_version: SCHEMA_VERSION,
            run_id: self.inner.run_id.clone(),
            seq,
            timestamp: rfc3339_now(),
            workflow: self.inner.workflow.clone(),
            stage: scope.stage.clone(),
            step: scope.step.clone(),
            step_index: scope.step_index,
            branch_index: scope.branch_index,
            agent: scope.agent.clone(),
            tool_call_id: scope.tool_call_id.clone(),
            data,
        };
        // A receiver that went away must not fail the run.
        let _ = tx.send(event);
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

/// Formats `t` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_242_000_123);
        assert_eq!(rfc3339(t), "2026-11-21T06:20:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    /// Every example in docs/EVENTS.md parses as the code's type, comes back
    /// unchanged when serialized, and every type is documented once.
    #[test]
    fn documented_examples_match_the_code() {
        let doc = include_str!("../../docs/EVENTS.md");
        let mut seen = Vec::new();
        for block in doc.split("```json\n").skip(1) {
            let Some((text, _)) = block.split_once("```") else {
                panic!("unterminated json block");
            };
            let event: Event =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
            let written: Value = serde_json::from_str(text).expect("json");
            assert_eq!(
                serde_json::to_value(&event).expect("serialize"),
                written,
                "{text}"
            );
            assert_eq!(event.schema_version, SCHEMA_VERSION);
            seen.push(event.kind);
        }
        assert_eq!(seen, EventType::ALL, "document each type once, in order");
        for kind in EventType::ALL {
            assert!(
                doc.contains(&format!("### `{}`", kind.as_str())),
                "{}",
                kind.as_str()
            );
        }
    }

    #[test]
    fn events_are_numbered_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let e = Emitter::new("r1", "wf", Some(tx), false);
        e.emit(&Scope::default(), data::RunStarted::default());
        e.emit(&Scope::default(), data::RunCompleted::default());
        let a = rx.try_recv().expect("first");
        let b = rx.try_recv().expect("second");
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(
            (a.kind, b.kind),
            (EventType::RunStarted, EventType::RunCompleted)
        );
        let json = serde_json::to_value(&a).expect("serialize");
        assert_eq!(json["type"], "run.started");
        assert_eq!(json["schema_version"], 1);
        assert!(json.get("stage").is_none());
    }

    /// Every variant, in an envelope with and without the optional
    /// fields, decodes back to the same event; `data` is `null` exactly
    /// for the types without data.
    #[test]
    fn every_event_round_trips() {
        for (i, data) in data::tests::samples().into_iter().enumerate() {
            let mut event = Event {
                kind: data.kind(),
                schema_version: SCHEMA_VERSION,
                run_id: "r1".into(),
                seq: i as u64 + 1,
                timestamp: "2026-01-01T00:00:00.000Z".into(),
                workflow: "wf".into(),
                stage: None,
                step: None,
                step_index: None,
                branch_index: None,
                agent: None,
                tool_call_id: None,
                data,
            };
            let kind = event.kind;
            let text = serde_json::to_string(&event).expect("serialize");
            let back: Event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(back, event);
            let json: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(
                json["data"].is_null(),
                matches!(kind, EventType::StepStarted | EventType::RunCancelled),
                "{text}"
            );
            event.stage = Some("s".into());
            event.step = Some("st".into());
            event.step_index = Some(1);
            event.branch_index = Some(2);
            event.agent = Some("a".into());
            event.tool_call_id = Some("call_1".into());
            let text = serde_json::to_string(&event).expect("serialize");
            let back: Event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(back, event);
        }
    }

    /// The envelope's `type` decides how `data` is read: data of another
    /// type is refused, and names the type it was read as.
    #[test]
    fn data_is_read_by_the_type() {
        let text = r#"{"type":"step.failed","schema_version":1,"run_id":"r","seq":1,
            "timestamp":"t","workflow":"w","data":{"reason":"guard returned false"}}"#;
        let err = serde_json::from_str::<Event>(text).expect_err("wrong data");
        assert!(err.to_string().contains("`data` of step.failed"), "{err}");
        let text = r#"{"type":"run.cancelled","schema_version":1,"run_id":"r","seq":1,
            "timestamp":"t","workflow":"w"}"#;
        let event: Event = serde_json::from_str(text).expect("no data is null");
        assert_eq!(event.data, Data::RunCancelled);
    }
}

//! The `data` of each event type, typed.
//!
//! One struct per [`EventType`] with exactly the keys docs/EVENTS.md lists
//! for it, and [`Data`], which serializes untagged into the envelope's
//! `data` object (`null` for the types without data). Nothing is skipped
//! when empty: an absent value is `null`, as the documented examples show.
//!
//! Fields are declared in alphabetical order on purpose. These payloads
//! used to be `json!` maps, which `serde_json` (without `preserve_order`)
//! writes with sorted keys; declaring the fields sorted keeps every event's
//! bytes — what the `jsonl` sink writes and the `http` sink signs — as they
//! were. A test checks the order.
//!
//! `Value` remains for what is free-form by nature: a run's input, step and
//! stage outputs, a guardrail's `info`.

use super::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Tokens per model (the model as the server names it), summed over calls.
pub use crate::usage::UsageByModel;

/// One model call's tokens, as `llm.response` reports them (without the
/// total that per-model sums carry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// How a stage runs its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageMode {
    #[default]
    Sequential,
    Parallel,
}

impl StageMode {
    /// As written in `data.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageMode::Sequential => "sequential",
            StageMode::Parallel => "parallel",
        }
    }
}

/// `run.started`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub input: Value,
    /// A `host replay`.
    pub replay: bool,
    /// A `host resume` continuing an interrupted run.
    pub resumed: bool,
    /// The session id; `null` without one.
    pub session: Option<String>,
    /// How many stages the workflow has.
    pub stages: u64,
    pub workflow_name: String,
}

/// `stage.started`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStarted {
    pub mode: StageMode,
    /// How many steps the stage has.
    pub steps: u64,
}

/// `step.skipped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepSkipped {
    pub reason: String,
}

/// `llm.request`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Conversation items sent.
    pub items: u64,
    pub model: String,
    /// The scripted provider.
    pub offline: bool,
    pub provider: String,
    pub stream: bool,
    /// Tools offered.
    pub tools: u64,
    pub turn: u32,
}

/// `llm.delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmDelta {
    pub text: String,
}

/// `llm.response`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// HTTP attempts, retries included.
    pub attempts: u32,
    pub model: String,
    /// Served from the run's journal by a resume or replay: no call was made.
    pub recorded: bool,
    pub response_id: Option<String>,
    pub turn: u32,
    /// Absent when the server reported no usage for this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Tokens>,
}

/// `tool.called`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCalled {
    /// JSON text, clipped (for a hosted tool: what it was asked).
    pub arguments: String,
    pub call_id: String,
    /// The provider ran the tool itself (web search, hosted MCP, …; the
    /// Responses API's hosted tools); `tool` is then `web_search`,
    /// `file_search`, `code_interpreter`, `image_generation` or
    /// `mcp:<server>.<tool>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hosted: bool,
    pub tool: String,
}

/// `tool.result`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    /// The output is an error message (also a rejected approval).
    pub error: bool,
    /// A hosted tool's result, as the provider reported it (see
    /// [`ToolCalled::hosted`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hosted: bool,
    /// Clipped.
    pub output: String,
    /// SHA-256 of the build that served it; `null` on error.
    pub plugin_digest: Option<String>,
    /// Served from the journal by a resume or replay.
    pub recorded: bool,
    pub tool: String,
}

/// `guardrail.tripped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardrailTripped {
    /// `plugin#entry`.
    pub guardrail: String,
    /// The guardrail's own detail.
    pub info: Value,
    pub message: String,
    /// `input`, `output`, `tool_input` or `tool_output`.
    pub phase: String,
}

/// `handoff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub call_id: String,
    pub from: String,
    pub to: String,
}

/// `approval.requested`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    /// JSON text, clipped.
    pub arguments: String,
    pub call_id: String,
    /// `function` or `mcp`.
    pub kind: String,
    /// `SERVER.TOOL` for MCP.
    pub tool: String,
}

/// `approval.resolved`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalResolved {
    pub approved: bool,
    pub call_id: String,
    /// `null` unless rejected with a reason.
    pub reason: Option<String>,
    pub tool: String,
}

/// `step.completed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCompleted {
    pub elapsed_ms: u64,
    pub output: Value,
    pub turns: u32,
    pub usage: UsageByModel,
}

/// `step.failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepFailed {
    pub error: String,
}

/// `stage.completed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageCompleted {
    /// The next stage's input.
    pub output: Value,
}

/// `plugin.reloaded`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginReloaded {
    /// The loaded build's SHA-256; `null` if the plugin is gone.
    pub new_digest: Option<String>,
    /// The SHA-256 recorded in the journal.
    pub old_digest: String,
    pub plugin: String,
    pub reason: String,
}

/// `plugin.reload_failed`: a changed plugin file did not load; the
/// previous build (if any) keeps serving.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginReloadFailed {
    /// The build still serving; `null` if none.
    pub digest: Option<String>,
    pub error: String,
    pub plugin: String,
}

/// `run.completed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCompleted {
    pub elapsed_ms: u64,
    pub output: Value,
    pub usage: UsageByModel,
}

/// `run.failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFailed {
    pub error: String,
    pub usage: UsageByModel,
}

/// An event's `data`: one variant per [`EventType`], in its order.
///
/// Serialized untagged — the envelope's `type` names the variant — so it
/// only serializes; [`Data::decode`] reads it back given the type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Data {
    RunStarted(RunStarted),
    StageStarted(StageStarted),
    /// `null`.
    StepStarted,
    StepSkipped(StepSkipped),
    LlmRequest(LlmRequest),
    LlmDelta(LlmDelta),
    LlmResponse(LlmResponse),
    ToolCalled(ToolCalled),
    ToolResult(ToolResult),
    GuardrailTripped(GuardrailTripped),
    Handoff(Handoff),
    ApprovalRequested(ApprovalRequested),
    ApprovalResolved(ApprovalResolved),
    StepCompleted(StepCompleted),
    StepFailed(StepFailed),
    StageCompleted(StageCompleted),
    PluginReloaded(PluginReloaded),
    PluginReloadFailed(PluginReloadFailed),
    RunCompleted(RunCompleted),
    RunFailed(RunFailed),
    /// `null`.
    RunCancelled,
}

impl Data {
    /// The event type this data belongs to.
    pub fn kind(&self) -> EventType {
        match self {
            Data::RunStarted(_) => EventType::RunStarted,
            Data::StageStarted(_) => EventType::StageStarted,
            Data::StepStarted => EventType::StepStarted,
            Data::StepSkipped(_) => EventType::StepSkipped,
            Data::LlmRequest(_) => EventType::LlmRequest,
            Data::LlmDelta(_) => EventType::LlmDelta,
            Data::LlmResponse(_) => EventType::LlmResponse,
            Data::ToolCalled(_) => EventType::ToolCalled,
            Data::ToolResult(_) => EventType::ToolResult,
            Data::GuardrailTripped(_) => EventType::GuardrailTripped,
            Data::Handoff(_) => EventType::Handoff,
            Data::ApprovalRequested(_) => EventType::ApprovalRequested,
            Data::ApprovalResolved(_) => EventType::ApprovalResolved,
            Data::StepCompleted(_) => EventType::StepCompleted,
            Data::StepFailed(_) => EventType::StepFailed,
            Data::StageCompleted(_) => EventType::StageCompleted,
            Data::PluginReloaded(_) => EventType::PluginReloaded,
            Data::PluginReloadFailed(_) => EventType::PluginReloadFailed,
            Data::RunCompleted(_) => EventType::RunCompleted,
            Data::RunFailed(_) => EventType::RunFailed,
            Data::RunCancelled => EventType::RunCancelled,
        }
    }

    /// The data of a `kind` event with every field at its default, with the
    /// keys of `partial` (a JSON object) laid over it: events for tests.
    #[cfg(test)]
    pub(crate) fn partial(kind: EventType, partial: Value) -> Data {
        let blank = match kind {
            EventType::RunStarted => Data::RunStarted(Default::default()),
            EventType::StageStarted => Data::StageStarted(Default::default()),
            EventType::StepSkipped => Data::StepSkipped(Default::default()),
            EventType::LlmRequest => Data::LlmRequest(Default::default()),
            EventType::LlmDelta => Data::LlmDelta(Default::default()),
            EventType::LlmResponse => Data::LlmResponse(Default::default()),
            EventType::ToolCalled => Data::ToolCalled(Default::default()),
            EventType::ToolResult => Data::ToolResult(Default::default()),
            EventType::GuardrailTripped => Data::GuardrailTripped(Default::default()),
            EventType::Handoff => Data::Handoff(Default::default()),
            EventType::ApprovalRequested => Data::ApprovalRequested(Default::default()),
            EventType::ApprovalResolved => Data::ApprovalResolved(Default::default()),
            EventType::StepCompleted => Data::StepCompleted(Default::default()),
            EventType::StepFailed => Data::StepFailed(Default::default()),
            EventType::StageCompleted => Data::StageCompleted(Default::default()),
            EventType::PluginReloaded => Data::PluginReloaded(Default::default()),
            EventType::PluginReloadFailed => Data::PluginReloadFailed(Default::default()),
            EventType::RunCompleted => Data::RunCompleted(Default::default()),
            EventType::RunFailed => Data::RunFailed(Default::default()),
            EventType::StepStarted => Data::StepStarted,
            EventType::RunCancelled => Data::RunCancelled,
        };
        let mut value = serde_json::to_value(&blank).unwrap_or_default();
        if let (Some(fields), Value::Object(over)) = (value.as_object_mut(), partial) {
            fields.extend(over);
        }
        match Data::decode(kind, value) {
            Ok(data) => data,
            Err(e) => panic!("{kind:?} test data: {e}"),
        }
    }

    /// Reads the `data` of an event of type `kind`; the types without data
    /// take only `null`.
    pub fn decode(kind: EventType, data: Value) -> Result<Data, serde_json::Error> {
        use serde_json::from_value as de;
        Ok(match kind {
            EventType::RunStarted => Data::RunStarted(de(data)?),
            EventType::StageStarted => Data::StageStarted(de(data)?),
            EventType::StepStarted => {
                de::<()>(data)?;
                Data::StepStarted
            }
            EventType::StepSkipped => Data::StepSkipped(de(data)?),
            EventType::LlmRequest => Data::LlmRequest(de(data)?),
            EventType::LlmDelta => Data::LlmDelta(de(data)?),
            EventType::LlmResponse => Data::LlmResponse(de(data)?),
            EventType::ToolCalled => Data::ToolCalled(de(data)?),
            EventType::ToolResult => Data::ToolResult(de(data)?),
            EventType::GuardrailTripped => Data::GuardrailTripped(de(data)?),
            EventType::Handoff => Data::Handoff(de(data)?),
            EventType::ApprovalRequested => Data::ApprovalRequested(de(data)?),
            EventType::ApprovalResolved => Data::ApprovalResolved(de(data)?),
            EventType::StepCompleted => Data::StepCompleted(de(data)?),
            EventType::StepFailed => Data::StepFailed(de(data)?),
            EventType::StageCompleted => Data::StageCompleted(de(data)?),
            EventType::PluginReloaded => Data::PluginReloaded(de(data)?),
            EventType::PluginReloadFailed => Data::PluginReloadFailed(de(data)?),
            EventType::RunCompleted => Data::RunCompleted(de(data)?),
            EventType::RunFailed => Data::RunFailed(de(data)?),
            EventType::RunCancelled => {
                de::<()>(data)?;
                Data::RunCancelled
            }
        })
    }
}

/// `From<Payload> for Data`, so [`super::Emitter::emit`] takes the payload
/// itself.
macro_rules! into_data {
    ($($payload:ident),* $(,)?) => {
        $(impl From<$payload> for Data {
            fn from(data: $payload) -> Data {
                Data::$payload(data)
            }
        })*
    };
}

into_data!(
    RunStarted,
    StageStarted,
    StepSkipped,
    LlmRequest,
    LlmDelta,
    LlmResponse,
    ToolCalled,
    ToolResult,
    GuardrailTripped,
    Handoff,
    ApprovalRequested,
    ApprovalResolved,
    StepCompleted,
    StepFailed,
    StageCompleted,
    PluginReloaded,
    PluginReloadFailed,
    RunCompleted,
    RunFailed,
);

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::usage::Usage;
    use serde_json::json;
    use std::collections::BTreeSet;

    /// One instance of each variant, every field set to something other
    /// than its default where it has one, in [`EventType::ALL`] order.
    pub(crate) fn samples() -> Vec<Data> {
        let usage = UsageByModel::from([("gpt-4.1-mini".to_owned(), Usage::reported(3, 4, 7))]);
        vec![
            RunStarted {
                input: json!("topic"),
                replay: true,
                resumed: true,
                session: Some("s-1".into()),
                stages: 2,
                workflow_name: "Flow".into(),
            }
            .into(),
            StageStarted {
                mode: StageMode::Parallel,
                steps: 3,
            }
            .into(),
            Data::StepStarted,
            StepSkipped {
                reason: "guard returned false".into(),
            }
            .into(),
            LlmRequest {
                items: 2,
                model: "m".into(),
                offline: true,
                provider: "p".into(),
                stream: true,
                tools: 1,
                turn: 1,
            }
            .into(),
            LlmDelta { text: "Hel".into() }.into(),
            LlmResponse {
                attempts: 2,
                model: "m".into(),
                recorded: true,
                response_id: Some("r-1".into()),
                turn: 1,
                usage: Some(Tokens {
                    input_tokens: 3,
                    output_tokens: 4,
                }),
            }
            .into(),
            ToolCalled {
                arguments: "{}".into(),
                call_id: "c1".into(),
                hosted: false,
                tool: "add".into(),
            }
            .into(),
            ToolResult {
                call_id: "c1".into(),
                error: true,
                hosted: false,
                output: "3".into(),
                plugin_digest: Some("ab".into()),
                recorded: true,
                tool: "add".into(),
            }
            .into(),
            GuardrailTripped {
                guardrail: "pii#check".into(),
                info: json!({"found": ["email"]}),
                message: "no".into(),
                phase: "input".into(),
            }
            .into(),
            Handoff {
                call_id: "c2".into(),
                from: "a".into(),
                to: "b".into(),
            }
            .into(),
            ApprovalRequested {
                arguments: "{}".into(),
                call_id: "c3".into(),
                kind: "function".into(),
                tool: "pay".into(),
            }
            .into(),
            ApprovalResolved {
                approved: false,
                call_id: "c3".into(),
                reason: Some("too much".into()),
                tool: "pay".into(),
            }
            .into(),
            StepCompleted {
                elapsed_ms: 8,
                output: json!({"a": 1}),
                turns: 2,
                usage: usage.clone(),
            }
            .into(),
            StepFailed {
                error: "boom".into(),
            }
            .into(),
            StageCompleted {
                output: json!(["x", "y"]),
            }
            .into(),
            PluginReloaded {
                new_digest: Some("cd".into()),
                old_digest: "ab".into(),
                plugin: "concat".into(),
                reason: "changed".into(),
            }
            .into(),
            PluginReloadFailed {
                digest: Some("ab".into()),
                error: "not a component".into(),
                plugin: "concat".into(),
            }
            .into(),
            RunCompleted {
                elapsed_ms: 9,
                output: json!("done"),
                usage: usage.clone(),
            }
            .into(),
            RunFailed {
                error: "boom".into(),
                usage,
            }
            .into(),
            Data::RunCancelled,
        ]
    }

    #[test]
    fn samples_cover_every_type_in_order() {
        let kinds: Vec<EventType> = samples().iter().map(Data::kind).collect();
        assert_eq!(kinds, EventType::ALL);
    }

    /// Every variant, its `None`s and empty maps included, decodes back to
    /// itself from what it serializes to.
    #[test]
    fn every_variant_round_trips() {
        let mut all = samples();
        all.push(
            RunStarted {
                session: None,
                ..RunStarted::default()
            }
            .into(),
        );
        all.push(
            LlmResponse {
                response_id: None,
                ..LlmResponse::default()
            }
            .into(),
        );
        all.push(ToolResult::default().into());
        all.push(ApprovalResolved::default().into());
        all.push(PluginReloaded::default().into());
        all.push(PluginReloadFailed::default().into());
        all.push(RunFailed::default().into());
        for data in all {
            let value = serde_json::to_value(&data).expect("serialize");
            let back = Data::decode(data.kind(), value.clone())
                .unwrap_or_else(|e| panic!("{}: {e}: {value}", data.kind().as_str()));
            assert_eq!(back, data);
        }
    }

    /// A `None` is written as `null`, never left out: the `json!` maps
    /// these types replace wrote it so.
    #[test]
    fn absent_values_are_null() {
        let v = serde_json::to_value(Data::from(RunFailed::default())).expect("serialize");
        assert_eq!(v, json!({"error": "", "usage": {}}));
        let v = serde_json::to_value(Data::from(ApprovalResolved::default())).expect("serialize");
        assert_eq!(v["reason"], Value::Null);
        assert!(v.as_object().is_some_and(|m| m.contains_key("reason")));
        assert_eq!(
            serde_json::to_value(Data::StepStarted).expect("serialize"),
            Value::Null
        );
    }

    /// Keys come out sorted, byte for byte what a `json!` map of the same
    /// fields wrote (see the module doc).
    #[test]
    fn keys_serialize_in_sorted_order() {
        for data in samples() {
            let direct = serde_json::to_string(&data).expect("serialize");
            let via_map =
                serde_json::to_string(&serde_json::to_value(&data).expect("value")).expect("map");
            assert_eq!(direct, via_map, "{}", data.kind().as_str());
        }
    }

    #[test]
    fn stage_modes_read_as_written() {
        for mode in [StageMode::Sequential, StageMode::Parallel] {
            assert_eq!(serde_json::to_value(mode).ok(), Some(json!(mode.as_str())));
        }
    }

    /// The types without data take nothing but `null`; a payload of the
    /// wrong shape is an error, not a guess.
    #[test]
    fn decoding_checks_the_shape() {
        assert!(Data::decode(EventType::StepStarted, json!({"x": 1})).is_err());
        assert!(Data::decode(EventType::StepFailed, json!({"reason": "x"})).is_err());
        assert_eq!(
            Data::decode(EventType::RunCancelled, Value::Null).ok(),
            Some(Data::RunCancelled)
        );
    }

    /// The `data` keys docs/EVENTS.md lists in prose for `kind`: the
    /// backquoted names of the paragraph starting `` `data`: `` under the
    /// type's heading, leaving out what is in parentheses (values and
    /// remarks) and what follows a `;` (remarks on the envelope).
    fn documented_keys(doc: &str, kind: EventType) -> BTreeSet<String> {
        let heading = format!("### `{}`\n", kind.as_str());
        let Some((_, section)) = doc.split_once(&heading) else {
            panic!("EVENTS.md has no heading for {}", kind.as_str());
        };
        let section = section.split("\n### ").next().unwrap_or("");
        let Some((_, para)) = section.split_once("\n`data`: ") else {
            panic!("{}: no `data`: paragraph", kind.as_str());
        };
        let para = para.split("\n\n").next().unwrap_or("");
        let mut text = String::new();
        let mut depth = 0usize;
        for c in para.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ';' if depth == 0 => break,
                c if depth == 0 => text.push(c),
                _ => {}
            }
        }
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// docs/EVENTS.md lists, for every type, exactly the keys its struct
    /// writes (its JSON examples are checked in `events::tests`).
    #[test]
    fn events_md_lists_the_keys_each_type_writes() {
        let doc = include_str!("../../../docs/EVENTS.md");
        for data in samples() {
            let kind = data.kind();
            let written: BTreeSet<String> = match serde_json::to_value(&data).expect("serialize") {
                Value::Object(m) => m.keys().cloned().collect(),
                _ => BTreeSet::new(),
            };
            assert_eq!(
                documented_keys(doc, kind),
                written,
                "docs/EVENTS.md, `data` of {}",
                kind.as_str()
            );
        }
    }
}

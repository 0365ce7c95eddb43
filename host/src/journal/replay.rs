//! What a replay does besides serving the recorded run: it notices where
//! the run diverges from the recording (a model call whose input is not the
//! recorded one, or that was never made), decides what happens from there,
//! and keeps what the replay would have recorded, for the report to
//! compare with the recording.

use super::Key;
use crate::llm::ModelRequest;
use crate::store::JournalKind;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What a replay does from its first divergence on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterDivergence {
    /// Stop: no recorded answer applies any more, and none is paid for.
    #[default]
    Stop,
    /// Ask the agents' providers (the real models, or the scripted one of
    /// an offline runner) from there on; tools run again too.
    CallModel,
}

/// Why a replay diverged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceCause {
    /// The recorded call's model input (prompt, history, tool results,
    /// handoff) differs from the one the replay would send.
    InputChanged,
    /// The original run made no such call (a path it did not take).
    NotRecorded,
}

/// Where a replay first diverged from the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub cause: DivergenceCause,
    /// The model call's journal key.
    pub key: String,
    pub stage: String,
    pub step_index: u32,
    /// The agent making the call.
    pub agent: String,
}

/// An entry a replay would have recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub kind: JournalKind,
    pub key: String,
    pub data: Value,
}

/// A replay's log, shared with whoever started the replay: its divergence
/// and what it would have recorded.
#[derive(Debug, Default)]
pub struct ReplayLog {
    after: AfterDivergence,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    diverged: Option<Divergence>,
    entries: Vec<Replayed>,
}

impl ReplayLog {
    pub fn new(after: AfterDivergence) -> Self {
        ReplayLog {
            after,
            state: Mutex::default(),
        }
    }

    pub fn after_divergence(&self) -> AfterDivergence {
        self.after
    }

    /// The first divergence, if the replay diverged.
    pub fn divergence(&self) -> Option<Divergence> {
        self.state().diverged.clone()
    }

    /// What the replay would have recorded, in the order it did it.
    pub fn entries(&self) -> Vec<Replayed> {
        self.state().entries.clone()
    }

    pub(super) fn diverged(&self) -> bool {
        self.state().diverged.is_some()
    }

    /// Notes a divergence at the model call `key`; the first one stands.
    pub(super) fn diverge(&self, cause: DivergenceCause, key: &Key, agent: &str) {
        let mut state = self.state();
        if state.diverged.is_none() {
            let (stage, step_index) = key
                .step()
                .map(|s| (s.stage.clone(), s.index))
                .unwrap_or_default();
            state.diverged = Some(Divergence {
                cause,
                key: key.to_string(),
                stage,
                step_index,
                agent: agent.to_owned(),
            });
        }
    }

    pub(super) fn push(&self, entry: Replayed) {
        self.state().entries.push(entry);
    }

    /// Nothing panics while holding the lock; a poisoned log is whole.
    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a model call gets from the journal.
#[derive(Debug)]
pub(crate) enum ModelServed {
    /// The recorded answer applies.
    Recorded(Box<super::ModelCall>),
    /// Ask the provider (a live run, or a replay calling the model after
    /// its divergence).
    Call,
    /// A replay that diverged and stops there.
    Diverged,
}

/// The SHA-256 of what a model is given: model and sampling settings,
/// the request settings (reasoning summary, verbosity, metadata, tool
/// choice, stored prompt), instructions, input items, function tools and
/// output schema. Not the transport (streaming), the hosted tools nor the
/// extra headers and query parameters (whose values may be secrets), so a
/// change there is not seen as a divergence. Unset request settings leave
/// the digest as it was before they existed.
pub fn request_digest(request: &ModelRequest) -> String {
    #[derive(Serialize)]
    struct ModelInput<'a> {
        model: &'a str,
        temperature: Option<f32>,
        top_p: Option<f32>,
        max_output_tokens: Option<u32>,
        reasoning_effort: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reasoning_summary: Option<crate::llm::ReasoningSummary>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verbosity: Option<crate::llm::Verbosity>,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        metadata: &'a std::collections::BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_choice: Option<&'a crate::llm::ToolChoice>,
        #[serde(skip_serializing_if = "Option::is_none")]
        prompt: Option<&'a crate::llm::StoredPrompt>,
        instructions: Option<&'a str>,
        input: &'a [crate::llm::Item],
        tools: &'a [crate::llm::ToolSpec],
        output_schema: Option<&'a crate::llm::OutputSchema>,
    }
    let settings = &request.settings;
    let input = ModelInput {
        model: &settings.model,
        temperature: settings.temperature,
        top_p: settings.top_p,
        max_output_tokens: settings.max_output_tokens,
        reasoning_effort: settings.reasoning_effort.as_deref(),
        reasoning_summary: settings.reasoning_summary,
        verbosity: settings.verbosity,
        metadata: &settings.metadata,
        tool_choice: settings.tool_choice.as_ref(),
        prompt: settings.prompt.as_ref(),
        instructions: request.instructions.as_deref(),
        input: &request.input,
        tools: &request.tools,
        output_schema: request.output_schema.as_ref(),
    };
    // Serialized straight into the hash: no copy of the request is built
    // (it is computed for every model call). These types serialize
    // infallibly (no maps with non-string keys).
    let mut hasher = Hashing(Sha256::new());
    let _ = serde_json::to_writer(&mut hasher, &input);
    hex::encode(hasher.0.finalize())
}

/// An `io::Write` that feeds a SHA-256.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::StepKey;
    use crate::llm::{Item, ModelSettings};

    fn request(text: &str) -> ModelRequest {
        ModelRequest {
            settings: ModelSettings::new("m"),
            instructions: Some("be brief".into()),
            input: vec![Item::user(text)],
            agent: "a".into(),
            ..ModelRequest::default()
        }
    }

    #[test]
    fn the_digest_follows_the_model_input_not_the_transport() {
        let base = request_digest(&request("hello"));
        assert_eq!(base.len(), 64);
        assert_ne!(base, request_digest(&request("hello!")));
        let mut other_instructions = request("hello");
        other_instructions.instructions = Some("be long".into());
        assert_ne!(base, request_digest(&other_instructions));
        let mut streamed = request("hello");
        streamed.stream = true;
        streamed.turn = 7;
        assert_eq!(base, request_digest(&streamed));
    }

    #[test]
    fn the_first_divergence_stands() {
        let log = ReplayLog::new(AfterDivergence::Stop);
        assert!(!log.diverged());
        let step = StepKey::new("synthesize", 0);
        log.diverge(DivergenceCause::InputChanged, &Key::model(&step, 1), "s");
        log.diverge(
            DivergenceCause::NotRecorded,
            &Key::model(&StepKey::new("later", 2), 1),
            "t",
        );
        let d = log.divergence().expect("diverged");
        assert_eq!(
            (
                d.cause,
                d.key.as_str(),
                d.stage.as_str(),
                d.step_index,
                d.agent.as_str()
            ),
            (
                DivergenceCause::InputChanged,
                "synthesize/0/t1/model",
                "synthesize",
                0,
                "s"
            )
        );
    }
}

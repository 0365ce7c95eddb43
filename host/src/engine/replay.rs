//! What a replay changed: the run executed again with the current plugins
//! and its recorded model and tool results, compared with the run as it
//! was recorded — every step and hook whose output changed, and where the
//! replay diverged (a model call whose input is not the recorded one).

mod diff;

use super::{RunError, Runner};
use crate::journal::{AfterDivergence, DivergenceCause, ReplayLog, StepKey};
use crate::store::{JournalRecord, RunRecord};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

pub use diff::HookKind;

/// A replay's outcome next to the original run's. Fields are declared in
/// the order `host replay --json` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// What the replay did from its divergence on: `stop` (no model call
    /// at all) or `call_model`.
    pub after_divergence: ReplayAfter,
    /// Hooks (guards, input mappers, reducers, guardrails) whose output
    /// changed, in the order the replay ran them.
    pub changed_hooks: Vec<ChangedHook>,
    /// Steps whose result differs, in execution order.
    pub changed_steps: Vec<ChangedStep>,
    /// Where the replay first diverged from the recording, if it did.
    pub divergence: Option<ReplayDivergence>,
    /// The step that diverged and every step downstream of it, in workflow
    /// order: their recorded results no longer apply.
    pub diverged_steps: Vec<StepRef>,
    /// The model calls made after the divergence (with `call_model`).
    pub model_calls: ModelCalls,
    pub original_output: Option<Value>,
    /// The new final output; `null` when the replay stopped at a
    /// divergence (it cannot be known without calling the model).
    pub output: Option<Value>,
    /// `null` when the output is unknown.
    pub output_changed: Option<bool>,
    pub run_id: String,
}

/// [`AfterDivergence`] as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayAfter {
    Stop,
    CallModel,
}

/// One step whose result a replay changed. A skipped step's result is
/// `{"skipped": true}`; a step the original run never finished is `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedStep {
    pub after: Value,
    pub agent: String,
    pub before: Value,
    pub stage: String,
    pub step_index: u32,
}

/// One hook whose output a replay changed. A hook that did not run in one
/// of the two is `null` there (a guard now skipping its step runs no
/// mapper).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedHook {
    pub after: Value,
    pub before: Value,
    /// Its journal key (`stage/0/guard`, `stage/reduce`, …).
    pub key: String,
    pub kind: HookKind,
    pub plugin: String,
    pub stage: String,
    /// `null` for a parallel stage's reducer.
    pub step_index: Option<u32>,
}

/// Where a replay diverged, and what that means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayDivergence {
    pub agent: String,
    pub cause: DivergenceCause,
    /// The model call's journal key.
    pub key: String,
    /// One sentence for people.
    pub message: String,
    pub stage: String,
    /// The step's name in the workflow.
    pub step: String,
    pub step_index: u32,
}

/// A step of the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRef {
    pub agent: String,
    pub stage: String,
    pub step: String,
    pub step_index: u32,
}

/// Model calls a replay paid for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ModelCalls {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Runner {
    /// Replays the recorded run `run` (see [`Runner::replay`]) and reports
    /// what changed. From its first divergence on no recorded answer is
    /// served: with [`AfterDivergence::Stop`] it stops there (no model
    /// call at all), with [`AfterDivergence::CallModel`] it asks this
    /// runner's providers.
    pub async fn replay_report(
        &self,
        run: &RunRecord,
        records: Vec<JournalRecord>,
        after: AfterDivergence,
    ) -> Result<ReplayReport, RunError> {
        let log = Arc::new(ReplayLog::new(after));
        let result = self
            .replay_logged(&run.run_id, records.clone(), false, log.clone())
            .wait()
            .await;
        let output = match result {
            Ok(out) => Some(out.output),
            // Stopped at its divergence: the report says where.
            Err(_) if after == AfterDivergence::Stop && log.divergence().is_some() => None,
            Err(e) => return Err(e),
        };
        let replayed = log.entries();
        let diff = diff::Diff::new(&records, &replayed, &self.workflow)?;
        let divergence = log.divergence().map(|d| self.divergence(d, after));
        let diverged_steps = divergence
            .as_ref()
            .map(|d| self.downstream(&StepKey::new(&d.stage, d.step_index)))
            .unwrap_or_default();
        Ok(ReplayReport {
            after_divergence: match after {
                AfterDivergence::Stop => ReplayAfter::Stop,
                AfterDivergence::CallModel => ReplayAfter::CallModel,
            },
            changed_hooks: diff.hooks(output.is_some()),
            changed_steps: diff.steps(),
            divergence,
            diverged_steps,
            model_calls: diff.model_calls(),
            original_output: run.output.clone(),
            output_changed: output.as_ref().map(|o| run.output.as_ref() != Some(o)),
            output,
            run_id: run.run_id.clone(),
        })
    }

    fn divergence(
        &self,
        d: crate::journal::Divergence,
        after: AfterDivergence,
    ) -> ReplayDivergence {
        let step = self
            .workflow
            .stages
            .iter()
            .find(|s| s.name == d.stage)
            .and_then(|s| s.steps.get(d.step_index as usize))
            .map(|s| s.name.clone())
            .unwrap_or_else(|| d.agent.clone());
        let why = match d.cause {
            DivergenceCause::InputChanged => "its input changed",
            DivergenceCause::NotRecorded => "the original run made no such model call",
        };
        let then = match after {
            AfterDivergence::Stop => "downstream outputs cannot be known without calling the model",
            AfterDivergence::CallModel => "the model was called from there on",
        };
        ReplayDivergence {
            message: format!("diverged at stage {}, step {step}: {why}; {then}", d.stage),
            agent: d.agent,
            cause: d.cause,
            key: d.key,
            stage: d.stage,
            step,
            step_index: d.step_index,
        }
    }

    /// The step `at` and every step its output can reach: the later steps
    /// of its stage (unless the stage is parallel: branches are
    /// independent) and every step of the later stages.
    fn downstream(&self, at: &StepKey) -> Vec<StepRef> {
        let stages = &self.workflow.stages;
        let Some(first) = stages.iter().position(|s| s.name == at.stage) else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        for (i, stage) in stages.iter().enumerate().skip(first) {
            for (index, step) in stage.steps.iter().enumerate() {
                let index = index as u32;
                let reached =
                    i > first || index == at.index || (!stage.parallel && index > at.index);
                if reached {
                    steps.push(StepRef {
                        agent: step.agent.clone(),
                        stage: stage.name.clone(),
                        step: step.name.clone(),
                        step_index: index,
                    });
                }
            }
        }
        steps
    }
}

//! What a replay changed: the run executed again with the current plugins
//! and its recorded model and tool results, compared with the run as it
//! was recorded.

use super::{RunError, RunOutput, Runner};
use crate::journal::{StepKey, StepStatus, step_summaries};
use crate::store::{JournalRecord, RunRecord};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A replay's outcome next to the original run's. Fields are declared in
/// the order `host replay --json` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Steps whose result differs, in execution order.
    pub changed_steps: Vec<ChangedStep>,
    pub original_output: Option<Value>,
    pub output: Value,
    pub output_changed: bool,
    pub run_id: String,
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

/// The result of every step the run finished, as a replay compares it.
fn recorded_results(records: &[JournalRecord]) -> Result<BTreeMap<StepKey, Value>, RunError> {
    Ok(step_summaries(records)?
        .into_iter()
        .filter(|s| s.status != StepStatus::Failed)
        .filter_map(|s| {
            let done = s.done?;
            Some((s.step, result_of(done.skipped, done.output)))
        })
        .collect())
}

impl ReplayReport {
    /// Compares `replayed` with the run recorded as `run`, whose steps
    /// finished with the results `before`.
    fn compare(run: &RunRecord, before: &BTreeMap<StepKey, Value>, replayed: &RunOutput) -> Self {
        let changed_steps = replayed
            .steps
            .iter()
            .filter_map(|step| {
                let after = result_of(step.skipped, step.output.clone());
                let key = StepKey::new(&step.stage_name, step.step_index);
                let original = before.get(&key).cloned().unwrap_or(Value::Null);
                (original != after).then(|| ChangedStep {
                    after,
                    agent: step.agent_key.clone(),
                    before: original,
                    stage: step.stage_name.clone(),
                    step_index: step.step_index,
                })
            })
            .collect();
        ReplayReport {
            changed_steps,
            original_output: run.output.clone(),
            output: replayed.output.clone(),
            output_changed: run.output.as_ref() != Some(&replayed.output),
            run_id: run.run_id.clone(),
        }
    }
}

fn result_of(skipped: bool, output: Value) -> Value {
    if skipped {
        json!({ "skipped": true })
    } else {
        output
    }
}

impl Runner {
    /// Replays the recorded run `run` (see [`Runner::replay`]) and reports
    /// what changed.
    pub async fn replay_report(
        &self,
        run: &RunRecord,
        records: Vec<JournalRecord>,
    ) -> Result<ReplayReport, RunError> {
        let before = recorded_results(&records)?;
        let replayed = self.replay(&run.run_id, records, false).wait().await?;
        Ok(ReplayReport::compare(run, &before, &replayed))
    }
}

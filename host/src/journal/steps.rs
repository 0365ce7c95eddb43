//! A journal read back as its steps: what `host runs show` lists and what
//! a replay compares against.

use super::{Key, ModelCall, StepDone, StepFailed, StepKey, Unreadable, decode, served_by};
use crate::llm::{HostedCallSummary, Item};
use crate::store::{JournalKind, JournalRecord};
use std::collections::BTreeMap;

/// How a recorded step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Completed,
    Skipped,
    Failed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Completed => "completed",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
        }
    }
}

/// One recorded step, in the order the run finished its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSummary {
    pub step: StepKey,
    pub status: StepStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Its result, when it completed or was skipped.
    pub done: Option<StepDone>,
    /// The plugins that served its hooks and tools, by name: the SHA-256
    /// of the build each one ran.
    pub plugins: BTreeMap<String, String>,
    /// The tools its provider ran itself (Responses API hosted tools), in
    /// the order of its model calls.
    pub hosted: Vec<HostedCallSummary>,
}

/// Every step the journal has a result for.
pub fn step_summaries(records: &[JournalRecord]) -> Result<Vec<StepSummary>, Unreadable> {
    let mut steps: Vec<StepSummary> = Vec::new();
    for r in records {
        let failed = match r.entry.kind {
            JournalKind::StepCompleted => false,
            JournalKind::StepFailed => true,
            _ => continue,
        };
        let Ok(Key::Done(step)) = r.entry.key.parse::<Key>() else {
            continue;
        };
        let at = match steps.iter().position(|s| s.step == step) {
            Some(at) => at,
            None => {
                steps.push(StepSummary {
                    step,
                    status: StepStatus::Completed,
                    error: None,
                    done: None,
                    plugins: BTreeMap::new(),
                    hosted: Vec::new(),
                });
                steps.len() - 1
            }
        };
        let summary = &mut steps[at];
        if failed {
            summary.status = StepStatus::Failed;
            summary.error = Some(decode::<StepFailed>(r)?.error);
        } else {
            let done: StepDone = decode(r)?;
            summary.status = if done.skipped {
                StepStatus::Skipped
            } else {
                StepStatus::Completed
            };
            summary.done = Some(done);
        }
    }
    for r in records {
        let Some((plugin, digest)) = served_by(r) else {
            continue;
        };
        let Ok(key) = r.entry.key.parse::<Key>() else {
            continue;
        };
        if let Some(step) = key.step()
            && let Some(summary) = steps.iter_mut().find(|s| &s.step == step)
        {
            summary.plugins.insert(plugin, digest.to_owned());
        }
    }
    for r in records {
        if r.entry.kind != JournalKind::ModelResponse {
            continue;
        }
        let Ok(key) = r.entry.key.parse::<Key>() else {
            continue;
        };
        let Some(summary) = key
            .step()
            .and_then(|step| steps.iter_mut().find(|s| &s.step == step))
        else {
            continue;
        };
        let call: ModelCall = decode(r)?;
        for item in &call.response.output {
            if let Item::HostedToolCall { kind, item, .. } = item {
                summary.hosted.push(HostedCallSummary::of(kind, item));
            }
        }
    }
    Ok(steps)
}

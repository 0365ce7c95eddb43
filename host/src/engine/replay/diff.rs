//! The recording and what a replay would have recorded, side by side: the
//! steps' results, the hooks' outputs and the model calls the replay paid
//! for.

use super::{ChangedHook, ChangedStep, ModelCalls};
use crate::engine::RunError;
use crate::journal::{
    GuardrailCheck, HookOutput, Key, ModelCall, Replayed, StepDone, StepStatus, step_summaries,
};
use crate::plan::Workflow;
use crate::store::{JournalKind, JournalRecord};
use serde::{Deserialize as _, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// Which hook produced an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    Guard,
    InputMapper,
    Reducer,
    Guardrail,
}

/// A hook's output as the journal keeps it.
#[derive(Debug, Clone, PartialEq)]
struct Hook {
    kind: HookKind,
    key: Key,
    plugin: String,
    value: Value,
}

pub(super) struct Diff<'a> {
    workflow: &'a Workflow,
    /// Results of the steps the original run finished, by step.
    before_steps: BTreeMap<crate::journal::StepKey, Value>,
    before_hooks: Vec<Hook>,
    /// What the replay would have recorded, in order.
    replayed: &'a [Replayed],
}

impl<'a> Diff<'a> {
    pub(super) fn new(
        records: &[JournalRecord],
        replayed: &'a [Replayed],
        workflow: &'a Workflow,
    ) -> Result<Self, RunError> {
        let before_steps = step_summaries(records)?
            .into_iter()
            .filter(|s| s.status != StepStatus::Failed)
            .filter_map(|s| {
                let done = s.done?;
                Some((s.step, result_of(done.skipped, done.output)))
            })
            .collect();
        let mut before_hooks = Vec::new();
        for r in records {
            if let Some(hook) = hook_of(r.entry.kind, &r.entry.key, &r.entry.data)? {
                before_hooks.push(hook);
            }
        }
        Ok(Diff {
            workflow,
            before_steps,
            before_hooks,
            replayed,
        })
    }

    /// Steps whose result the replay changed, in the order it finished them.
    pub(super) fn steps(&self) -> Vec<ChangedStep> {
        self.replayed
            .iter()
            .filter(|r| r.kind == JournalKind::StepCompleted)
            .filter_map(|r| {
                let Ok(Key::Done(step)) = r.key.parse::<Key>() else {
                    return None;
                };
                let done: StepDone = serde_json::from_value(r.data.clone()).ok()?;
                let after = result_of(done.skipped, done.output);
                let before = self.before_steps.get(&step).cloned().unwrap_or(Value::Null);
                let agent = done.agent.unwrap_or_else(|| self.agent_of(&step));
                (before != after).then(|| ChangedStep {
                    after,
                    agent,
                    before,
                    stage: step.stage.clone(),
                    step_index: step.index,
                })
            })
            .collect()
    }

    /// Hooks whose output changed: those the replay ran, in its order, then
    /// those of the recording that did not run again in a step the replay
    /// finished (all of them when the whole replay `finished`).
    pub(super) fn hooks(&self, finished: bool) -> Vec<ChangedHook> {
        let mut changed = Vec::new();
        let mut seen = HashSet::new();
        for r in self.replayed {
            let Ok(Some(after)) = hook_of(r.kind, &r.key, &r.data) else {
                continue;
            };
            seen.insert(after.key.to_string());
            let before = self.before_hooks.iter().find(|h| h.key == after.key);
            if before.map(|b| &b.value) != Some(&after.value) {
                changed.push(changed_hook(
                    &after,
                    before.map_or(Value::Null, |b| b.value.clone()),
                    after.value.clone(),
                ));
            }
        }
        // A recorded hook that did not run again, of a step the replay
        // finished (or of any step, when the whole replay finished).
        let done: HashSet<crate::journal::StepKey> = self
            .replayed
            .iter()
            .filter(|r| r.kind == JournalKind::StepCompleted)
            .filter_map(|r| match r.key.parse::<Key>() {
                Ok(Key::Done(step)) => Some(step),
                _ => None,
            })
            .collect();
        for before in &self.before_hooks {
            let passed = finished || before.key.step().is_some_and(|s| done.contains(s));
            if passed && !seen.contains(&before.key.to_string()) {
                changed.push(changed_hook(before, before.value.clone(), Value::Null));
            }
        }
        changed
    }

    /// The model calls the replay made (after its divergence).
    pub(super) fn model_calls(&self) -> ModelCalls {
        let mut calls = ModelCalls::default();
        for r in self.replayed {
            if r.kind != JournalKind::ModelResponse {
                continue;
            }
            calls.calls += 1;
            if let Ok(call) = serde_json::from_value::<ModelCall>(r.data.clone()) {
                calls.input_tokens += call.response.usage.input_tokens;
                calls.output_tokens += call.response.usage.output_tokens;
            }
        }
        calls
    }

    fn agent_of(&self, step: &crate::journal::StepKey) -> String {
        self.workflow
            .stages
            .iter()
            .find(|s| s.name == step.stage)
            .and_then(|s| s.steps.get(step.index as usize))
            .map(|s| s.agent.clone())
            .unwrap_or_default()
    }
}

fn changed_hook(hook: &Hook, before: Value, after: Value) -> ChangedHook {
    let (stage, step_index) = match &hook.key {
        Key::Reduce { stage } => (stage.clone(), None),
        key => key
            .step()
            .map(|s| (s.stage.clone(), Some(s.index)))
            .unwrap_or_default(),
    };
    ChangedHook {
        after,
        before,
        key: hook.key.to_string(),
        kind: hook.kind,
        plugin: hook.plugin.clone(),
        stage,
        step_index,
    }
}

/// The hook output an entry holds, if it is one.
fn hook_of(kind: JournalKind, key: &str, data: &Value) -> Result<Option<Hook>, RunError> {
    let decode = |reason: serde_json::Error| crate::journal::Unreadable {
        key: key.to_owned(),
        reason: reason.to_string(),
    };
    let (plugin, value) = match kind {
        JournalKind::PluginOutput => {
            let out = HookOutput::deserialize(data).map_err(decode)?;
            (out.plugin, out.value)
        }
        JournalKind::GuardrailVerdict => {
            let check = GuardrailCheck::deserialize(data).map_err(decode)?;
            let verdict = serde_json::to_value(&check.verdict).map_err(decode)?;
            (check.plugin, verdict)
        }
        _ => return Ok(None),
    };
    let Ok(parsed) = key.parse::<Key>() else {
        return Ok(None);
    };
    let kind = match parsed {
        Key::Guard(_) => HookKind::Guard,
        Key::MapInput(_) => HookKind::InputMapper,
        Key::Reduce { .. } => HookKind::Reducer,
        Key::Guardrail { .. } => HookKind::Guardrail,
        _ => return Ok(None),
    };
    Ok(Some(Hook {
        kind,
        key: parsed,
        plugin,
        value,
    }))
}

fn result_of(skipped: bool, output: Value) -> Value {
    if skipped {
        json!({ "skipped": true })
    } else {
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JournalEntry;

    fn workflow() -> Workflow {
        Workflow {
            key: "w".into(),
            name: "w".into(),
            stages: Vec::new(),
            agents: Default::default(),
            output_schema: None,
            allow_handoffs: false,
            replies: Default::default(),
            mcp: None,
            plugin_limits: Default::default(),
        }
    }

    fn verdict(tripwire: bool) -> Value {
        json!({"plugin": "pii", "guardrail": "pii", "phase": "output",
               "verdict": {"tripwire": tripwire, "message": "", "info": null}})
    }

    fn recorded(kind: JournalKind, key: &str, data: Value) -> JournalRecord {
        JournalRecord {
            seq: 1,
            at_ms: 0,
            entry: JournalEntry::new(kind, key, data),
        }
    }

    fn replayed(kind: JournalKind, key: &str, data: Value) -> Replayed {
        Replayed {
            kind,
            key: key.to_owned(),
            data,
        }
    }

    #[test]
    fn a_changed_guardrail_verdict_and_a_hook_that_no_longer_ran_are_reported() {
        let guardrail = "main/0/t1/output/guardrail/0";
        let records = vec![
            recorded(JournalKind::GuardrailVerdict, guardrail, verdict(false)),
            recorded(
                JournalKind::PluginOutput,
                "main/1/guard",
                json!({"plugin": "gate", "entry": "gate", "value": true}),
            ),
        ];
        let replay = vec![replayed(
            JournalKind::GuardrailVerdict,
            guardrail,
            verdict(true),
        )];
        let workflow = workflow();
        let diff = Diff::new(&records, &replay, &workflow).expect("diff");
        let hooks = diff.hooks(true);
        assert_eq!(hooks.len(), 2, "{hooks:?}");
        assert_eq!(hooks[0].kind, HookKind::Guardrail);
        assert_eq!(hooks[0].plugin, "pii");
        assert_eq!(
            (
                hooks[0].before["tripwire"].clone(),
                hooks[0].after["tripwire"].clone()
            ),
            (json!(false), json!(true))
        );
        assert_eq!(
            (hooks[0].stage.as_str(), hooks[0].step_index),
            ("main", Some(0))
        );
        assert_eq!(hooks[1].kind, HookKind::Guard);
        assert_eq!(
            (hooks[1].before.clone(), hooks[1].after.clone()),
            (json!(true), Value::Null)
        );
        // A replay that stopped before step 1 says nothing of its guard.
        assert_eq!(diff.hooks(false).len(), 1);
        // The same verdict again is no change.
        let same = vec![replayed(
            JournalKind::GuardrailVerdict,
            guardrail,
            verdict(false),
        )];
        let diff = Diff::new(&records[..1], &same, &workflow).expect("diff");
        assert!(diff.hooks(true).is_empty());
    }
}

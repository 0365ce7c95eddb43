//! What the live view knows about the run, updated from its events: the
//! current stage, its steps, and the totals the summary line needs. No I/O
//! here, so the state can be checked without a terminal.

use crate::events::data::StageMode;
use crate::events::{Data, Event};
use std::time::{Duration, Instant};

/// The run as the live view shows it.
pub(super) struct View {
    pub(super) run_started: Instant,
    pub(super) stages_total: u64,
    pub(super) stages_seen: u64,
    /// The stage on screen; `None` between stages.
    pub(super) stage: Option<StageView>,
    /// Input and output tokens so far.
    pub(super) tokens: (u64, u64),
    pub(super) steps_done: u64,
    pub(super) steps_skipped: u64,
    pub(super) steps_failed: u64,
}

pub(super) struct StageView {
    pub(super) name: String,
    pub(super) number: u64,
    pub(super) parallel: bool,
    pub(super) steps_total: u64,
    pub(super) started: Instant,
    pub(super) steps: Vec<StepView>,
    pub(super) end: Option<StageEnd>,
}

/// How a stage ended, and after how long.
#[derive(Clone, Copy)]
pub(super) enum StageEnd {
    Done(Duration),
    /// The run ended during the stage (a failure, a cancel).
    Interrupted(Duration),
}

pub(super) struct StepView {
    pub(super) name: String,
    pub(super) branch: Option<u32>,
    pub(super) state: StepState,
    pub(super) started: Instant,
    /// Frozen when the step ends.
    pub(super) elapsed: Option<Duration>,
    pub(super) turn: u64,
    pub(super) activity: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum StepState {
    Running,
    Done,
    Skipped,
    Failed(String),
    /// Still running when the run ended (another branch failed, cancel).
    Stopped,
}

impl View {
    pub(super) fn new() -> Self {
        View {
            run_started: Instant::now(),
            stages_total: 0,
            stages_seen: 0,
            stage: None,
            tokens: (0, 0),
            steps_done: 0,
            steps_skipped: 0,
            steps_failed: 0,
        }
    }

    fn step_mut(&mut self, e: &Event) -> Option<&mut StepView> {
        let name = e.step.as_deref()?;
        self.stage
            .as_mut()?
            .steps
            .iter_mut()
            .rev()
            .find(|s| s.name == name && s.branch == e.branch_index && s.state == StepState::Running)
    }

    /// Updates the state from `e`. A new stage replaces the current one:
    /// the caller draws the current one a last time before.
    pub(super) fn apply(&mut self, e: &Event) {
        match &e.data {
            Data::RunStarted(d) => {
                self.run_started = Instant::now();
                self.stages_total = d.stages;
            }
            Data::StageStarted(d) => {
                self.stages_seen += 1;
                self.stage = Some(StageView {
                    name: e.stage.clone().unwrap_or_default(),
                    number: self.stages_seen,
                    parallel: d.mode == StageMode::Parallel,
                    steps_total: d.steps,
                    started: Instant::now(),
                    steps: Vec::new(),
                    end: None,
                });
            }
            Data::StepStarted => {
                if let Some(stage) = self.stage.as_mut() {
                    // Branches in branch order, whatever order they start in.
                    let at = match e.branch_index {
                        Some(b) => stage.steps.partition_point(|s| s.branch <= Some(b)),
                        None => stage.steps.len(),
                    };
                    stage.steps.insert(
                        at,
                        StepView {
                            name: e.step.clone().unwrap_or_default(),
                            branch: e.branch_index,
                            state: StepState::Running,
                            started: Instant::now(),
                            elapsed: None,
                            turn: 0,
                            activity: String::new(),
                        },
                    );
                }
            }
            Data::StepSkipped(_) => {
                self.steps_skipped += 1;
                if let Some(step) = self.step_mut(e) {
                    step.state = StepState::Skipped;
                    step.elapsed = Some(step.started.elapsed());
                }
            }
            Data::LlmRequest(d) => {
                if let Some(step) = self.step_mut(e) {
                    step.turn = u64::from(d.turn);
                }
            }
            Data::LlmResponse(d) => {
                if let Some(u) = &d.usage {
                    self.tokens.0 += u.input_tokens;
                    self.tokens.1 += u.output_tokens;
                }
            }
            Data::ToolCalled(d) => {
                if let Some(step) = self.step_mut(e) {
                    step.activity = format!("tool {}", d.tool);
                }
            }
            Data::ApprovalRequested(d) => {
                if let Some(step) = self.step_mut(e) {
                    step.activity = format!("⏸ {} waits for approval", d.tool);
                }
            }
            Data::ApprovalResolved(d) => {
                if let Some(step) = self.step_mut(e) {
                    step.activity = format!(
                        "{} {}",
                        d.tool,
                        if d.approved { "approved" } else { "rejected" }
                    );
                }
            }
            Data::Handoff(d) => {
                if let Some(step) = self.step_mut(e) {
                    step.activity = format!("handoff → {}", d.to);
                }
            }
            Data::GuardrailTripped(d) => {
                if let Some(step) = self.step_mut(e) {
                    step.activity = format!("{} guardrail tripped", d.phase);
                }
            }
            Data::StepCompleted(d) => {
                self.steps_done += 1;
                if let Some(step) = self.step_mut(e) {
                    step.state = StepState::Done;
                    step.turn = u64::from(d.turns);
                    step.elapsed = Some(Duration::from_millis(d.elapsed_ms));
                }
            }
            Data::StepFailed(d) => {
                self.steps_failed += 1;
                if let Some(step) = self.step_mut(e) {
                    step.state = StepState::Failed(d.error.clone());
                    step.elapsed = Some(step.started.elapsed());
                }
            }
            Data::StageCompleted(_) => {
                if let Some(stage) = self.stage.as_mut() {
                    stage.end = Some(StageEnd::Done(stage.started.elapsed()));
                }
            }
            Data::RunCompleted(_) | Data::RunFailed(_) | Data::RunCancelled => {
                if let Some(stage) = self.stage.as_mut() {
                    stage.end = Some(StageEnd::Interrupted(stage.started.elapsed()));
                    for step in &mut stage.steps {
                        if step.state == StepState::Running {
                            step.state = StepState::Stopped;
                            step.elapsed = Some(step.started.elapsed());
                        }
                    }
                }
            }
            Data::LlmDelta(_)
            | Data::ToolResult(_)
            | Data::PluginReloaded(_)
            | Data::PluginReloadFailed(_) => {}
        }
    }
}

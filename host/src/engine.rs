//! The staged workflow engine.
//!
//! Stages run in order. In a sequential stage each step's input is the
//! previous step's output (shaped by its input mapper); a guard returning
//! false skips the step. A parallel stage runs its steps concurrently, each
//! branch with its own guard and mapper; its results, in branch order, are
//! merged by the stage reducer into the next stage's input — or, with no
//! reducer, one output passes through and several become a JSON array. If
//! every branch is skipped, the stage's input passes through unchanged.
//!
//! The library API mirrors a service: build a [`Runner`] from a workflow and
//! plugins, [`Runner::start`] a run, and use the [`RunHandle`] to await the
//! result, cancel it, and receive its events.

mod caller;
mod error;
mod replay;
mod run;
mod runner;
mod stage;
mod step;

pub use crate::agent::SessionConfig;
pub use caller::Caller;
pub use error::{PendingApproval, RunError, StepError};
pub use replay::{
    ChangedHook, ChangedStep, HookKind, ModelCalls, ReplayAfter, ReplayDivergence, ReplayReport,
    StepRef,
};
pub use runner::{
    ResumeRequest, RunCanceller, RunHandle, RunOutput, RunRequest, Runner, new_run_id,
};

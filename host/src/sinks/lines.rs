//! Compact readable lines: the `stdout` sink, and `host run`'s plain trace
//! on stderr.
//!
//! ```text
//! run 01JD2Y8Q5M3ZK4W7V9T6R1N0BC · workflow analysis_parallel · offline (scripted model)
//! ▸ stage analyze (parallel, 2 steps)
//!   · researcher [0] started
//!   · code_assistant [1] started
//!     [1] tool lookup_facts({"query":"offices"})
//!   ✓ researcher [0] (1 turn, 3 ms)
//!   ✓ code_assistant [1] (2 turns, 4 ms)
//! ✓ completed in 12 ms · 120 input / 80 output tokens
//! ```
//!
//! Lines about a step of a parallel stage carry its branch index (`[1]`), so
//! interleaved branches stay readable.

use super::{Sink, SinkOptions};
use crate::events::{Event, EventType};
use crate::util::{first_line, plural};
use serde_json::Value;
use std::io::{self, Write};

/// Writes one line per interesting event to `out`.
pub struct LinesSink<W> {
    out: W,
    label: String,
    options: SinkOptions,
}

impl<W: Write + Send> LinesSink<W> {
    pub fn new(out: W, label: impl Into<String>, options: SinkOptions) -> Self {
        LinesSink {
            out,
            label: label.into(),
            options,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for LinesSink<W> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        write_line(&mut self.out, event, self.options.offline)?;
        self.out.flush()
    }
}

/// The readable line for `e`, if it is one worth a line (model calls and
/// streamed text are not); `offline` labels the first line.
pub fn write_line(out: &mut impl Write, e: &Event, offline: bool) -> io::Result<()> {
    let step = e.step.as_deref().unwrap_or("");
    let branch = e
        .branch_index
        .map(|b| format!(" [{b}]"))
        .unwrap_or_default();
    // Lines nested under a step name their branch first.
    let nested = e
        .branch_index
        .map(|b| format!("[{b}] "))
        .unwrap_or_default();
    match e.kind {
        EventType::RunStarted => writeln!(
            out,
            "run {} · workflow {}{}",
            e.run_id,
            e.workflow,
            if offline {
                " · offline (scripted model)"
            } else {
                ""
            }
        ),
        EventType::StageStarted => {
            let n = e.data["steps"].as_u64().unwrap_or(0);
            writeln!(
                out,
                "▸ stage {} ({}, {n} step{})",
                e.stage.as_deref().unwrap_or(""),
                e.data["mode"].as_str().unwrap_or(""),
                plural(n)
            )
        }
        EventType::StepStarted => writeln!(out, "  · {step}{branch} started"),
        EventType::StepSkipped => writeln!(out, "  - {step}{branch} skipped (guard)"),
        EventType::ToolCalled => writeln!(
            out,
            "    {nested}tool {}({})",
            str_of(&e.data["tool"]),
            str_of(&e.data["arguments"])
        ),
        EventType::ToolResult => writeln!(
            out,
            "    {nested}tool {} → {}",
            str_of(&e.data["tool"]),
            first_line(str_of(&e.data["output"]), 120)
        ),
        EventType::Handoff => writeln!(
            out,
            "    {nested}handoff {} → {}",
            str_of(&e.data["from"]),
            str_of(&e.data["to"])
        ),
        EventType::GuardrailTripped => writeln!(
            out,
            "    {nested}guardrail {} tripped ({}): {}",
            str_of(&e.data["guardrail"]),
            str_of(&e.data["phase"]),
            str_of(&e.data["message"])
        ),
        EventType::StepCompleted => {
            let turns = e.data["turns"].as_u64().unwrap_or(0);
            writeln!(
                out,
                "  ✓ {step}{branch} ({turns} turn{}, {} ms)",
                plural(turns),
                e.data["elapsed_ms"]
            )
        }
        EventType::StepFailed => {
            writeln!(out, "  ✗ {step}{branch}: {}", str_of(&e.data["error"]))
        }
        EventType::RunCompleted => {
            let (i, o) = tokens(&e.data["usage"]);
            writeln!(
                out,
                "✓ completed in {} ms · {i} input / {o} output tokens",
                e.data["elapsed_ms"]
            )
        }
        EventType::RunFailed => writeln!(out, "✗ failed: {}", str_of(&e.data["error"])),
        EventType::RunCancelled => writeln!(out, "✗ cancelled"),
        EventType::ApprovalRequested => writeln!(
            out,
            "    {nested}⏸ tool {} waits for approval (call {})",
            str_of(&e.data["tool"]),
            str_of(&e.data["call_id"])
        ),
        EventType::ApprovalResolved => writeln!(
            out,
            "    {nested}tool {} {} (call {})",
            str_of(&e.data["tool"]),
            if e.data["approved"].as_bool() == Some(true) {
                "approved"
            } else {
                "rejected"
            },
            str_of(&e.data["call_id"])
        ),
        EventType::PluginReloaded => writeln!(
            out,
            "  ! plugin {} changed since the run started: recorded outputs stand, the new build serves new calls",
            str_of(&e.data["plugin"])
        ),
        _ => Ok(()),
    }
}

pub(super) fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Input and output tokens summed over the models of a `usage` object.
pub fn tokens(usage: &Value) -> (u64, u64) {
    usage.as_object().map_or((0, 0), |m| {
        m.values().fold((0, 0), |(i, o), u| {
            (
                i + u["input_tokens"].as_u64().unwrap_or(0),
                o + u["output_tokens"].as_u64().unwrap_or(0),
            )
        })
    })
}

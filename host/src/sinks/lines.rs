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

use super::escape::Escaped;
use super::{Sink, SinkOptions};
use crate::events::data::UsageByModel;
use crate::events::{Data, Event};
use crate::util::{first_line, plural};
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

    /// The line, its model and plugin text escaped for a terminal.
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut out = Escaped::new(&mut self.out);
        write_line(&mut out, event, self.options.offline)?;
        out.flush()
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
    match &e.data {
        Data::RunStarted(_) => writeln!(
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
        Data::StageStarted(d) => writeln!(
            out,
            "▸ stage {} ({}, {} step{})",
            e.stage.as_deref().unwrap_or(""),
            d.mode.as_str(),
            d.steps,
            plural(d.steps)
        ),
        Data::StepStarted => writeln!(out, "  · {step}{branch} started"),
        Data::StepSkipped(_) => writeln!(out, "  - {step}{branch} skipped (guard)"),
        Data::ToolCalled(d) => writeln!(out, "    {nested}tool {}({})", d.tool, d.arguments),
        Data::ToolResult(d) => writeln!(
            out,
            "    {nested}tool {} → {}",
            d.tool,
            first_line(&d.output, 120)
        ),
        Data::Handoff(d) => writeln!(out, "    {nested}handoff {} → {}", d.from, d.to),
        Data::GuardrailTripped(d) => writeln!(
            out,
            "    {nested}guardrail {} tripped ({}): {}",
            d.guardrail, d.phase, d.message
        ),
        Data::StepCompleted(d) => writeln!(
            out,
            "  ✓ {step}{branch} ({} turn{}, {} ms)",
            d.turns,
            plural(u64::from(d.turns)),
            d.elapsed_ms
        ),
        Data::StepFailed(d) => writeln!(out, "  ✗ {step}{branch}: {}", d.error),
        Data::RunCompleted(d) => {
            let (i, o) = tokens(&d.usage);
            let unreported: crate::usage::Usage =
                d.usage
                    .values()
                    .copied()
                    .fold(crate::usage::Usage::default(), |mut sum, u| {
                        sum += u;
                        sum
                    });
            writeln!(
                out,
                "✓ completed in {} ms · {i} input / {o} output tokens{}",
                d.elapsed_ms,
                unreported.unreported_note()
            )
        }
        Data::RunFailed(d) => writeln!(out, "✗ failed: {}", d.error),
        Data::RunCancelled => writeln!(out, "✗ cancelled"),
        Data::ApprovalRequested(d) => writeln!(
            out,
            "    {nested}⏸ tool {} waits for approval (call {})",
            d.tool, d.call_id
        ),
        Data::ApprovalResolved(d) => writeln!(
            out,
            "    {nested}tool {} {} (call {})",
            d.tool,
            if d.approved { "approved" } else { "rejected" },
            d.call_id
        ),
        Data::PluginReloaded(d) => writeln!(
            out,
            "  ! plugin {} changed since the run started: recorded outputs stand, the new build serves new calls",
            d.plugin
        ),
        Data::PluginReloadFailed(d) => writeln!(
            out,
            "  ! plugin {} did not reload ({}); the build it had keeps serving",
            d.plugin, d.error
        ),
        Data::LlmRequest(_)
        | Data::LlmDelta(_)
        | Data::LlmResponse(_)
        | Data::StageCompleted(_) => Ok(()),
    }
}

/// Input and output tokens summed over the models of a `usage` map.
pub fn tokens(usage: &UsageByModel) -> (u64, u64) {
    usage.values().fold((0, 0), |(i, o), u| {
        (i + u.input_tokens, o + u.output_tokens)
    })
}

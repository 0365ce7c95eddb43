//! The `stdout_verbose` sink: every event with its data, streamed model
//! text as it arrives, and the final output last.
//!
//! ```text
//! run 01JD2Y8Q5M3ZK4W7V9T6R1N0BC · workflow analysis_parallel · offline (scripted model)
//!   workflow: Parallel analysis · 2 stages · no session
//!   input: How is remote work changing demand for city-centre office space?
//! ▸ stage analyze (parallel, 2 steps)
//!   · researcher [0] started
//!     [0] → researcher turn 1: gpt-4.1-mini on offline (scripted) · 1 item · 0 tools · stream
//!     [0] » 1. Office occupancy in large city centres has settled …
//!     [0] ← researcher turn 1: scripted-1 · gpt-4.1-mini · 1 attempt · 40 in / 52 out tokens
//!   ✓ researcher [0] by researcher (1 turn, 3 ms · 40 in / 52 out tokens)
//!       output: 1. Office occupancy in large city centres has settled …
//! ```

use super::escape::Escaped;
use super::lines::{tokens, write_line};
use super::{Sink, SinkOptions};
use crate::events::data::UsageByModel;
use crate::events::{Data, Event};
use crate::util::plural;
use serde_json::Value;
use std::io::{self, Write};

/// Writes every event with its data to `out`.
pub struct VerboseSink<W> {
    out: W,
    label: String,
    options: SinkOptions,
    /// The step and branch whose streamed text the current line holds.
    streaming: Option<(Option<String>, Option<u32>)>,
}

impl<W: Write + Send> VerboseSink<W> {
    pub fn new(out: W, label: impl Into<String>, options: SinkOptions) -> Self {
        VerboseSink {
            out,
            label: label.into(),
            options,
            streaming: None,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes `e`, its model and plugin text escaped for a terminal.
    fn write(&mut self, e: &Event) -> io::Result<()> {
        let out = &mut Escaped::new(&mut self.out);
        if let Data::LlmDelta(d) = &e.data {
            let key = (e.step.clone(), e.branch_index);
            if self.streaming.as_ref() != Some(&key) {
                if self.streaming.is_some() {
                    writeln!(out)?;
                }
                write!(out, "    {}» ", nested(e))?;
                self.streaming = Some(key);
            }
            let text = d.text.replace('\n', "\n      ");
            return write!(out, "{text}");
        }
        if self.streaming.take().is_some() {
            writeln!(out)?;
        }
        let n = nested(e);
        let agent = e.agent.as_deref().unwrap_or("");
        match &e.data {
            Data::RunStarted(d) => {
                write_line(out, e, self.options.offline)?;
                let session = match &d.session {
                    Some(s) => format!("session {s}"),
                    None => "no session".into(),
                };
                writeln!(
                    out,
                    "  workflow: {} · {} stage{} · {session}",
                    d.workflow_name,
                    d.stages,
                    plural(d.stages)
                )?;
                field(out, 2, "input", &d.input)
            }
            Data::LlmRequest(d) => writeln!(
                out,
                "    {n}→ {agent} turn {}: {} on {}{} · {} item{} · {} tool{}{}",
                d.turn,
                d.model,
                d.provider,
                if d.offline { " (scripted)" } else { "" },
                d.items,
                plural(d.items),
                d.tools,
                plural(d.tools),
                if d.stream { " · stream" } else { "" }
            ),
            Data::LlmResponse(d) => writeln!(
                out,
                "    {n}← {agent} turn {}: {} · {} · {} attempt{} · {}",
                d.turn,
                d.response_id.as_deref().unwrap_or("(no id)"),
                d.model,
                d.attempts,
                plural(u64::from(d.attempts)),
                match &d.usage {
                    Some(u) => format!("{} in / {} out tokens", u.input_tokens, u.output_tokens),
                    None => "usage not reported".to_owned(),
                },
            ),
            Data::ToolCalled(d) => writeln!(
                out,
                "    {n}tool {}({}) · call {}",
                d.tool, d.arguments, d.call_id
            ),
            Data::ToolResult(d) => {
                let label = if d.error { "error" } else { "result" };
                let digest = d.plugin_digest.as_deref().unwrap_or("");
                writeln!(
                    out,
                    "    {n}tool {} · call {}{}",
                    d.tool,
                    d.call_id,
                    if digest.is_empty() {
                        String::new()
                    } else {
                        format!(" · plugin {}", digest.get(..12).unwrap_or(digest))
                    }
                )?;
                text_field(out, 6, label, &d.output)
            }
            Data::GuardrailTripped(d) => {
                write_line(out, e, self.options.offline)?;
                field(out, 6, "info", &d.info)
            }
            Data::Handoff(d) => writeln!(
                out,
                "    {n}handoff {} → {} · call {}",
                d.from, d.to, d.call_id
            ),
            Data::ApprovalRequested(d) => writeln!(
                out,
                "    {n}approval requested: {}({}) · call {}",
                d.tool, d.arguments, d.call_id
            ),
            Data::ApprovalResolved(d) => writeln!(
                out,
                "    {n}approval {}: call {}{}",
                if d.approved { "granted" } else { "denied" },
                d.call_id,
                d.reason
                    .as_deref()
                    .map(|r| format!(" · {r}"))
                    .unwrap_or_default()
            ),
            Data::StepSkipped(d) => writeln!(
                out,
                "  - {}{} skipped: {}",
                e.step.as_deref().unwrap_or(""),
                branch(e),
                d.reason
            ),
            Data::StepCompleted(d) => {
                let (i, o) = tokens(&d.usage);
                writeln!(
                    out,
                    "  ✓ {}{} by {agent} ({} turn{}, {} ms · {i} in / {o} out tokens)",
                    e.step.as_deref().unwrap_or(""),
                    branch(e),
                    d.turns,
                    plural(u64::from(d.turns)),
                    d.elapsed_ms
                )?;
                field(out, 6, "output", &d.output)
            }
            Data::StageCompleted(d) => {
                writeln!(out, "▸ stage {} done", e.stage.as_deref().unwrap_or(""))?;
                field(out, 2, "output", &d.output)
            }
            Data::PluginReloaded(d) => writeln!(
                out,
                "plugin {} reloaded: {} → {}",
                d.plugin,
                d.old_digest,
                d.new_digest.as_deref().unwrap_or("")
            ),
            Data::PluginReloadFailed(d) => {
                writeln!(out, "plugin {} did not reload: {}", d.plugin, d.error)
            }
            Data::RunCompleted(d) => {
                write_line(out, e, self.options.offline)?;
                usage(out, &d.usage)?;
                // The final output last and as `host run` prints it, so
                // stdout ends with it whichever stdout sink is chosen.
                writeln!(out, "output:")?;
                match &d.output {
                    Value::String(s) => writeln!(out, "{s}"),
                    other => writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(other).unwrap_or_default()
                    ),
                }
            }
            Data::RunFailed(d) => {
                write_line(out, e, self.options.offline)?;
                usage(out, &d.usage)
            }
            // The compact line says everything.
            Data::StageStarted(_)
            | Data::StepStarted
            | Data::StepFailed(_)
            | Data::RunCancelled
            | Data::LlmDelta(_) => write_line(out, e, self.options.offline),
        }
    }
}

impl<W: Write + Send> Sink for VerboseSink<W> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.write(event)?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.streaming.take().is_some() {
            writeln!(self.out)?;
        }
        self.out.flush()
    }
}

fn nested(e: &Event) -> String {
    e.branch_index
        .map(|b| format!("[{b}] "))
        .unwrap_or_default()
}

fn branch(e: &Event) -> String {
    e.branch_index
        .map(|b| format!(" [{b}]"))
        .unwrap_or_default()
}

/// `label: value` at `indent`; text as is, JSON compact when short and
/// pretty otherwise, continuation lines aligned under the value.
fn field(out: &mut impl Write, indent: usize, label: &str, value: &Value) -> io::Result<()> {
    match value {
        Value::String(s) => text_field(out, indent, label, s),
        other => {
            let compact = other.to_string();
            if compact.chars().count() <= 100 {
                text_field(out, indent, label, &compact)
            } else {
                let pretty = serde_json::to_string_pretty(other).unwrap_or(compact);
                text_field(out, indent, label, &pretty)
            }
        }
    }
}

/// `label: text` at `indent`, continuation lines aligned under the text.
fn text_field(out: &mut impl Write, indent: usize, label: &str, text: &str) -> io::Result<()> {
    let pad = " ".repeat(indent + label.len() + 2);
    let mut lines = text.lines();
    writeln!(
        out,
        "{}{label}: {}",
        " ".repeat(indent),
        lines.next().unwrap_or("")
    )?;
    for line in lines {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "{pad}{line}")?;
        }
    }
    Ok(())
}

/// Tokens per model, one line.
fn usage(out: &mut impl Write, usage: &UsageByModel) -> io::Result<()> {
    if usage.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = usage
        .iter()
        .map(|(model, u)| {
            format!(
                "{model} {} in / {} out{}",
                u.input_tokens,
                u.output_tokens,
                u.unreported_note()
            )
        })
        .collect();
    writeln!(out, "  usage: {}", parts.join(" · "))
}

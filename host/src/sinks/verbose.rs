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

use super::lines::{str_of, tokens, write_line};
use super::{Sink, SinkOptions};
use crate::events::{Event, EventType};
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

    fn write(&mut self, e: &Event) -> io::Result<()> {
        let out = &mut self.out;
        if e.kind == EventType::LlmDelta {
            let key = (e.step.clone(), e.branch_index);
            if self.streaming.as_ref() != Some(&key) {
                if self.streaming.is_some() {
                    writeln!(out)?;
                }
                write!(out, "    {}» ", nested(e))?;
                self.streaming = Some(key);
            }
            let text = str_of(&e.data["text"]).replace('\n', "\n      ");
            return write!(out, "{text}");
        }
        if self.streaming.take().is_some() {
            writeln!(out)?;
        }
        let d = &e.data;
        let n = nested(e);
        let agent = e.agent.as_deref().unwrap_or("");
        match e.kind {
            EventType::RunStarted => {
                write_line(out, e, self.options.offline)?;
                let stages = d["stages"].as_u64().unwrap_or(0);
                let session = match d["session"].as_str() {
                    Some(s) => format!("session {s}"),
                    None => "no session".into(),
                };
                writeln!(
                    out,
                    "  workflow: {} · {stages} stage{} · {session}",
                    str_of(&d["workflow_name"]),
                    plural(stages)
                )?;
                field(out, 2, "input", &d["input"])
            }
            EventType::LlmRequest => {
                let items = d["items"].as_u64().unwrap_or(0);
                let tools = d["tools"].as_u64().unwrap_or(0);
                writeln!(
                    out,
                    "    {n}→ {agent} turn {}: {} on {}{} · {items} item{} · {tools} tool{}{}",
                    d["turn"],
                    str_of(&d["model"]),
                    str_of(&d["provider"]),
                    if d["offline"] == true {
                        " (scripted)"
                    } else {
                        ""
                    },
                    plural(items),
                    plural(tools),
                    if d["stream"] == true {
                        " · stream"
                    } else {
                        ""
                    }
                )
            }
            EventType::LlmResponse => {
                let attempts = d["attempts"].as_u64().unwrap_or(0);
                writeln!(
                    out,
                    "    {n}← {agent} turn {}: {} · {} · {attempts} attempt{} · {} in / {} out tokens",
                    d["turn"],
                    d["response_id"].as_str().unwrap_or("(no id)"),
                    str_of(&d["model"]),
                    plural(attempts),
                    d["usage"]["input_tokens"].as_u64().unwrap_or(0),
                    d["usage"]["output_tokens"].as_u64().unwrap_or(0),
                )
            }
            EventType::ToolCalled => writeln!(
                out,
                "    {n}tool {}({}) · call {}",
                str_of(&d["tool"]),
                str_of(&d["arguments"]),
                str_of(&d["call_id"])
            ),
            EventType::ToolResult => {
                let label = if d["error"] == true {
                    "error"
                } else {
                    "result"
                };
                let digest = str_of(&d["plugin_digest"]);
                writeln!(
                    out,
                    "    {n}tool {} · call {}{}",
                    str_of(&d["tool"]),
                    str_of(&d["call_id"]),
                    if digest.is_empty() {
                        String::new()
                    } else {
                        format!(" · plugin {}", digest.get(..12).unwrap_or(digest))
                    }
                )?;
                field(out, 6, label, &d["output"])
            }
            EventType::GuardrailTripped => {
                write_line(out, e, self.options.offline)?;
                field(out, 6, "info", &d["info"])
            }
            EventType::Handoff => writeln!(
                out,
                "    {n}handoff {} → {} · call {}",
                str_of(&d["from"]),
                str_of(&d["to"]),
                str_of(&d["call_id"])
            ),
            EventType::ApprovalRequested => writeln!(
                out,
                "    {n}approval requested: {}({}) · call {}",
                str_of(&d["tool"]),
                str_of(&d["arguments"]),
                str_of(&d["call_id"])
            ),
            EventType::ApprovalResolved => writeln!(
                out,
                "    {n}approval {}: call {}{}",
                if d["approved"] == true {
                    "granted"
                } else {
                    "denied"
                },
                str_of(&d["call_id"]),
                d["reason"]
                    .as_str()
                    .map(|r| format!(" · {r}"))
                    .unwrap_or_default()
            ),
            EventType::StepSkipped => writeln!(
                out,
                "  - {}{} skipped: {}",
                e.step.as_deref().unwrap_or(""),
                branch(e),
                str_of(&d["reason"])
            ),
            EventType::StepCompleted => {
                let turns = d["turns"].as_u64().unwrap_or(0);
                let (i, o) = tokens(&d["usage"]);
                writeln!(
                    out,
                    "  ✓ {}{} by {agent} ({turns} turn{}, {} ms · {i} in / {o} out tokens)",
                    e.step.as_deref().unwrap_or(""),
                    branch(e),
                    plural(turns),
                    d["elapsed_ms"]
                )?;
                field(out, 6, "output", &d["output"])
            }
            EventType::StageCompleted => {
                writeln!(out, "▸ stage {} done", e.stage.as_deref().unwrap_or(""))?;
                field(out, 2, "output", &d["output"])
            }
            EventType::PluginReloaded => writeln!(
                out,
                "plugin {} reloaded: {} → {}",
                str_of(&d["plugin"]),
                str_of(&d["old_digest"]),
                str_of(&d["new_digest"])
            ),
            EventType::RunCompleted => {
                write_line(out, e, self.options.offline)?;
                usage(out, &d["usage"])?;
                // The final output last and as `host run` prints it, so
                // stdout ends with it whichever stdout sink is chosen.
                writeln!(out, "output:")?;
                match &d["output"] {
                    Value::String(s) => writeln!(out, "{s}"),
                    other => writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(other).unwrap_or_default()
                    ),
                }
            }
            EventType::RunFailed => {
                write_line(out, e, self.options.offline)?;
                usage(out, &d["usage"])
            }
            // stage.started, step.started, step.failed, run.cancelled: the
            // compact line says everything.
            _ => write_line(out, e, self.options.offline),
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
    let text = match value {
        Value::String(s) => s.clone(),
        other => {
            let compact = other.to_string();
            if compact.chars().count() <= 100 {
                compact
            } else {
                serde_json::to_string_pretty(other).unwrap_or(compact)
            }
        }
    };
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
fn usage(out: &mut impl Write, usage: &Value) -> io::Result<()> {
    let Some(models) = usage.as_object().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let parts: Vec<String> = models
        .iter()
        .map(|(model, u)| {
            format!(
                "{model} {} in / {} out",
                u["input_tokens"].as_u64().unwrap_or(0),
                u["output_tokens"].as_u64().unwrap_or(0)
            )
        })
        .collect();
    writeln!(out, "  usage: {}", parts.join(" · "))
}

//! The Go runner's console printer: what its `stdout` and `stdout_verbose`
//! callback modes print (the `stdout` / `stdout_verbose` callbacks with
//! `format: go`, or `--callback go:stdout`). It reads the Go events
//! ([`super::go_events`]), so it prints what a Go consumer would see:
//!
//! ```text
//! user: List three fun facts about Mars.
//! tool evaluate called by assistant
//! tool function_call_output output: 89
//! agent assistant: 12 × 7 + 5 = 89.
//! ---
//! Session summary
//!   turns: 1
//!   starting agent: assistant
//!   final agent: assistant
//!   runtime: 12ms
//!   tools: evaluate
//! ```
//!
//! `stdout_verbose` adds `[agent switch] -> NAME` lines and the summary's
//! `final output:` line. Text is clipped as the Go printer clips it (240
//! characters for messages, 200 for tool output, 400 for the final output).

use super::escape::Escaped;
use super::go_events::{GoEvent, GoItem, GoPayload, GoStreamEvent, GoTranslator, text_of};
use super::{Sink, SinkOptions};
use crate::events::Event;
use crate::util::clip;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::Instant;

pub struct GoPrinter<W> {
    out: W,
    label: String,
    verbose: bool,
    translator: GoTranslator,
    started: Option<Instant>,
    turns: u32,
    tools: BTreeSet<String>,
    first_agent: String,
    last_agent: String,
}

impl<W: Write + Send> GoPrinter<W> {
    pub fn new(out: W, label: impl Into<String>, verbose: bool, options: &SinkOptions) -> Self {
        GoPrinter {
            out,
            label: label.into(),
            verbose,
            translator: GoTranslator::new(options.display_names.clone()),
            started: None,
            turns: 0,
            tools: BTreeSet::new(),
            first_agent: String::new(),
            last_agent: String::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn print(&mut self, e: &GoEvent) -> io::Result<()> {
        let runtime = go_duration(self.elapsed_ms());
        let mut out = Escaped::new(&mut self.out);
        match &e.payload {
            GoPayload::Started { query, .. } => {
                self.started = Some(Instant::now());
                writeln!(out, "user: {}", shorten(&text_of(query), 240))?;
            }
            GoPayload::Stream(GoStreamEvent::AgentUpdated { agent_name }) => {
                if self.verbose {
                    writeln!(out, "[agent switch] -> {agent_name}")?;
                }
            }
            GoPayload::Stream(GoStreamEvent::Raw { .. }) => {}
            GoPayload::Stream(GoStreamEvent::RunItem { item, .. }) => match item {
                GoItem::MessageOutputItem { agent, text } => {
                    if self.first_agent.is_empty() {
                        self.first_agent = agent.clone();
                    }
                    self.last_agent = agent.clone();
                    self.turns += 1;
                    let text = shorten(text, 240);
                    if !text.is_empty() {
                        writeln!(out, "agent {agent}: {text}")?;
                    }
                }
                GoItem::ToolCallItem {
                    agent,
                    function_name,
                    ..
                } => {
                    self.tools.insert(function_name.clone());
                    writeln!(out, "tool {function_name} called by {agent}")?;
                }
                GoItem::ToolCallOutputItem { output, .. } => {
                    let output = shorten(output, 200);
                    if !output.is_empty() {
                        writeln!(out, "tool function_call_output output: {output}")?;
                    }
                }
                GoItem::HandoffOutputItem {
                    source_agent,
                    target_agent,
                    ..
                } => writeln!(out, "handoff {source_agent} -> {target_agent}")?,
                GoItem::McpApprovalRequestItem {
                    agent,
                    request_id,
                    tool_name,
                    ..
                } => writeln!(
                    out,
                    "approval required ({agent}): request {} for tool {tool_name}",
                    shorten(request_id, 40)
                )?,
                GoItem::McpApprovalResponseItem {
                    approval_request_id,
                    approve,
                    ..
                } => writeln!(
                    out,
                    "approval response: request {} approve={approve}",
                    shorten(approval_request_id, 40)
                )?,
            },
            GoPayload::Completed { final_output, .. } => {
                writeln!(out, "---")?;
                writeln!(out, "Session summary")?;
                writeln!(out, "  turns: {}", self.turns)?;
                writeln!(out, "  starting agent: {}", self.first_agent)?;
                writeln!(out, "  final agent: {}", self.last_agent)?;
                writeln!(out, "  runtime: {runtime}")?;
                if !self.tools.is_empty() {
                    let tools: Vec<&str> = self.tools.iter().map(String::as_str).collect();
                    writeln!(out, "  tools: {}", tools.join(", "))?;
                }
                if self.verbose && !final_output.is_null() {
                    writeln!(
                        out,
                        "  final output: {}",
                        shorten(&text_of(final_output), 400)
                    )?;
                }
            }
            GoPayload::Failed { error } => {
                writeln!(out, "---")?;
                writeln!(out, "Run failed after {runtime}: {error}")?;
            }
        }
        out.flush()
    }

    fn elapsed_ms(&self) -> u64 {
        self.started
            .map(|s| u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl<W: Write + Send> Sink for GoPrinter<W> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        for e in self.translator.translate(event) {
            self.print(&e)?;
        }
        Ok(())
    }
}

/// Trimmed, and clipped to `max` characters with `…`.
fn shorten(s: &str, max: usize) -> String {
    clip(s.trim(), max)
}

/// A duration in milliseconds as Go prints a `time.Duration` truncated to
/// milliseconds: `0s`, `12ms`, `1.5s`, `2m3.004s`, `1h0m0s`.
pub fn go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{frac:03}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        for (ms, want) in [
            (0, "0s"),
            (12, "12ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (1234, "1.234s"),
            (123_004, "2m3.004s"),
            (3_600_000, "1h0m0s"),
        ] {
            assert_eq!(go_duration(ms), want, "{ms}");
        }
    }
}

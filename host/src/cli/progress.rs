//! `host run`'s trace on stderr: live progress redrawn in place when stderr
//! is a terminal, the plain lines of [`host::sinks::write_line`] otherwise.
//!
//! The live view keeps the current stage at the bottom of the screen and
//! redraws it on every burst of events and ten times a second (ANSI: cursor
//! up, clear to the end of the screen). A finished stage stays in the
//! scrollback as it was last drawn; a summary line ends the run:
//!
//! ```text
//! run 01JD2Y8Q5M3ZK4W7V9T6R1N0BC · workflow analysis_parallel · offline (scripted model)
//! ✓ stage 1/2 analyze · parallel · 2/2 done · 0.4 s · 312 tokens
//!   ✓ researcher      [0] done      0.3 s  1 turn
//!   ✓ code_assistant  [1] done      0.2 s  2 turns · tool lookup_facts
//! ⠹ stage 2/2 synthesize · sequential · 0/1 done · 0.1 s · 312 tokens
//!   ⠹ synthesizer         running   0.1 s  turn 1
//! ```

use host::events::data::StageMode;
use host::events::{Data, Event};
use host::sinks::{LinesSink, Sink, SinkOptions, tokens};
use host::util::first_line;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// How `host run` shows the run on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// `--quiet`: errors only.
    Quiet,
    /// One line per interesting event (not a terminal, or `--no-progress`).
    Plain,
    /// Live progress redrawn in place.
    Live { color: bool },
}

/// What the run's sinks write to stdout, which may share the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStdout {
    Nothing,
    /// `stdout`, `stdout_verbose`: a readable account of the run.
    Lines,
    /// `jsonl:-`.
    Data,
}

impl Trace {
    /// Live on a terminal (not `TERM=dumb`) unless `--no-progress`. When stdout is the same
    /// screen and a sink writes there: nothing if it shows the run already
    /// (the same lines twice), plain lines otherwise (redraws would run
    /// over its lines).
    pub fn choose(quiet: bool, no_progress: bool, on_stdout: OnStdout) -> Trace {
        let stdout_shared = on_stdout != OnStdout::Nothing && io::stdout().is_terminal();
        if quiet || (stdout_shared && on_stdout == OnStdout::Lines) {
            Trace::Quiet
        } else if no_progress
            || stdout_shared
            || !io::stderr().is_terminal()
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb")
        {
            Trace::Plain
        } else {
            Trace::Live {
                color: super::use_color(),
            }
        }
    }

    /// The sink that draws it, if any.
    pub fn sink(self, options: SinkOptions) -> Option<Box<dyn Sink>> {
        match self {
            Trace::Quiet => None,
            Trace::Plain => Some(Box::new(LinesSink::new(io::stderr(), "trace", options))),
            Trace::Live { color } => {
                let (width, height) = terminal_size();
                let mut live = Live::new(io::stderr(), options, color, width, height);
                live.measure = Some(terminal_size);
                Some(Box::new(live))
            }
        }
    }
}

/// Redraws between events, for the spinner and the clocks.
const REFRESH: Duration = Duration::from_millis(100);
/// At most this often on events: streamed text or many branches would
/// otherwise redraw the screen for every event.
const MIN_REDRAW: Duration = Duration::from_millis(50);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The live view.
pub struct Live<W> {
    out: W,
    options: SinkOptions,
    color: bool,
    width: usize,
    /// Most lines the live area may take: cursor-up cannot reach lines
    /// that scrolled off the top of the screen.
    max_lines: usize,
    /// Measures the terminal before each frame.
    measure: Option<fn() -> (usize, usize)>,
    run_started: Instant,
    stages_total: u64,
    stages_seen: u64,
    stage: Option<StageView>,
    tokens: (u64, u64),
    steps_done: u64,
    steps_skipped: u64,
    steps_failed: u64,
    /// Lines of the live area now on screen, above the cursor.
    drawn: usize,
    last_draw: Option<Instant>,
    min_redraw: Duration,
    frame: usize,
}

struct StageView {
    name: String,
    number: u64,
    parallel: bool,
    steps_total: u64,
    started: Instant,
    steps: Vec<StepView>,
    end: Option<StageEnd>,
}

/// How a stage ended, and after how long.
#[derive(Clone, Copy)]
enum StageEnd {
    Done(Duration),
    /// The run ended during the stage (a failure, a cancel).
    Interrupted(Duration),
}

struct StepView {
    name: String,
    branch: Option<u32>,
    state: StepState,
    started: Instant,
    /// Frozen when the step ends.
    elapsed: Option<Duration>,
    turn: u64,
    activity: String,
}

#[derive(Debug, Clone, PartialEq)]
enum StepState {
    Running,
    Done,
    Skipped,
    Failed(String),
    /// Still running when the run ended (another branch failed, cancel).
    Stopped,
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Bold,
    Dim,
    Green,
    Red,
    Yellow,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Green => "\x1b[32m",
            Style::Red => "\x1b[31m",
            Style::Yellow => "\x1b[33m",
        }
    }
}

/// A line of styled pieces, clipped to the screen width when rendered so
/// nothing wraps (a wrapped line would break the cursor arithmetic).
#[derive(Default)]
struct Line(Vec<(Style, String)>);

impl Line {
    fn push(mut self, style: Style, text: impl Into<String>) -> Self {
        self.0.push((style, text.into()));
        self
    }

    fn render(&self, color: bool, width: usize) -> String {
        let mut left = width;
        let mut out = String::new();
        for (style, text) in &self.0 {
            if left == 0 {
                break;
            }
            let n = text.chars().count();
            let piece: String = if n > left {
                let mut s: String = text.chars().take(left.saturating_sub(1)).collect();
                s.push('…');
                s
            } else {
                text.clone()
            };
            left = left.saturating_sub(n.min(left));
            if color && *style != Style::Plain {
                let _ = write!(out, "{}{piece}\x1b[0m", style.code());
            } else {
                out.push_str(&piece);
            }
        }
        out
    }
}

impl<W: Write + Send> Live<W> {
    pub fn new(out: W, options: SinkOptions, color: bool, width: usize, height: usize) -> Self {
        let mut live = Live {
            out,
            options,
            color,
            width: 0,
            max_lines: 0,
            measure: None,
            run_started: Instant::now(),
            stages_total: 0,
            stages_seen: 0,
            stage: None,
            tokens: (0, 0),
            steps_done: 0,
            steps_skipped: 0,
            steps_failed: 0,
            drawn: 0,
            last_draw: None,
            min_redraw: MIN_REDRAW,
            frame: 0,
        };
        live.resize(width, height);
        live
    }

    fn resize(&mut self, width: usize, height: usize) {
        // One column spare: some terminals wrap on the last one.
        self.width = width.max(20) - 1;
        self.max_lines = height.saturating_sub(2).max(3);
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
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

    fn apply(&mut self, e: &Event) -> io::Result<()> {
        match &e.data {
            Data::RunStarted(d) => {
                self.run_started = Instant::now();
                self.stages_total = d.stages;
                let mut header = Vec::new();
                host::sinks::write_line(&mut header, e, self.options.offline)?;
                self.clear()?;
                self.out.write_all(&header)?;
            }
            Data::StageStarted(d) => {
                self.commit()?;
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
                self.tokens.0 += d.usage.input_tokens;
                self.tokens.1 += d.usage.output_tokens;
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
                self.commit()?;
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
                self.commit()?;
                // Written once and never redrawn: no need to clip it.
                let line = self.summary(e);
                writeln!(self.out, "{}", line.render(self.color, usize::MAX))?;
            }
            Data::LlmDelta(_) | Data::ToolResult(_) | Data::PluginReloaded(_) => {}
        }
        Ok(())
    }

    fn summary(&self, e: &Event) -> Line {
        let took = match &e.data {
            Data::RunCompleted(d) => Duration::from_millis(d.elapsed_ms),
            _ => self.run_started.elapsed(),
        };
        let stages = self.stages_seen;
        match &e.data {
            Data::RunCompleted(d) => {
                let (i, o) = tokens(&d.usage);
                let steps = self.steps_done + self.steps_skipped + self.steps_failed;
                let mut detail = Vec::new();
                if self.steps_skipped > 0 {
                    detail.push(format!("{} skipped", self.steps_skipped));
                }
                if self.steps_failed > 0 {
                    detail.push(format!("{} failed", self.steps_failed));
                }
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", detail.join(", "))
                };
                Line::default()
                    .push(Style::Green, "✓ completed")
                    .push(Style::Plain, format!(" in {}", human(took)))
                    .push(
                        Style::Dim,
                        format!(
                            " · {stages} stage{} · {steps} step{}{detail} · {i} input / {o} output tokens",
                            plural(stages),
                            plural(steps)
                        ),
                    )
            }
            Data::RunFailed(d) => Line::default().push(Style::Red, "✗ failed").push(
                Style::Plain,
                format!(" after {}: {}", human(took), first_line(&d.error, 400)),
            ),
            _ => Line::default()
                .push(Style::Red, "✗ cancelled")
                .push(Style::Plain, format!(" after {}", human(took))),
        }
    }

    /// The live area: the current stage and its steps.
    fn lines(&self) -> Vec<Line> {
        let Some(stage) = &self.stage else {
            return Vec::new();
        };
        let spin = SPINNER[self.frame % SPINNER.len()].to_string();
        let done = stage
            .steps
            .iter()
            .filter(|s| !matches!(s.state, StepState::Running))
            .count();
        let (mark, style) = match stage.end {
            Some(StageEnd::Done(_)) => ("✓".to_string(), Style::Green),
            Some(StageEnd::Interrupted(_)) => ("✗".to_string(), Style::Red),
            None => (spin.clone(), Style::Yellow),
        };
        let took = match stage.end {
            Some(StageEnd::Done(d) | StageEnd::Interrupted(d)) => d,
            None => stage.started.elapsed(),
        };
        let mut out = vec![
            Line::default()
                .push(style, mark)
                .push(
                    Style::Bold,
                    format!(
                        " stage {}/{} {}",
                        stage.number, self.stages_total, stage.name
                    ),
                )
                .push(
                    Style::Dim,
                    format!(
                        " · {} · {done}/{} done · {} · {} tokens",
                        if stage.parallel {
                            "parallel"
                        } else {
                            "sequential"
                        },
                        stage.steps_total,
                        human(took),
                        self.tokens.0 + self.tokens.1
                    ),
                ),
        ];
        let name_width = stage
            .steps
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        // Header, steps, and one line for those that do not fit.
        let shown = visible(&stage.steps, self.max_lines.saturating_sub(2));
        for step in shown.iter().map(|&i| &stage.steps[i]) {
            let (mark, style, state) = match &step.state {
                StepState::Running => (spin.clone(), Style::Yellow, "running"),
                StepState::Done => ("✓".into(), Style::Green, "done"),
                StepState::Skipped => ("-".into(), Style::Dim, "skipped"),
                StepState::Failed(_) => ("✗".into(), Style::Red, "failed"),
                StepState::Stopped => ("✗".into(), Style::Red, "stopped"),
            };
            let branch = step.branch.map(|b| format!(" [{b}]")).unwrap_or_default();
            let took = step.elapsed.unwrap_or_else(|| step.started.elapsed());
            let mut detail = match &step.state {
                StepState::Running if step.turn > 0 => format!("turn {}", step.turn),
                StepState::Done => format!("{} turn{}", step.turn, plural(step.turn)),
                StepState::Failed(error) => first_line(error, 200),
                _ => String::new(),
            };
            if !step.activity.is_empty() && !matches!(step.state, StepState::Failed(_)) {
                if !detail.is_empty() {
                    detail.push_str(" · ");
                }
                detail.push_str(&step.activity);
            }
            let line = Line::default()
                .push(Style::Plain, "  ")
                .push(style, mark)
                .push(
                    Style::Plain,
                    format!(" {:<name_width$}{branch} ", step.name),
                );
            out.push(if step.state == StepState::Skipped {
                line.push(style, state)
            } else {
                let line = line
                    .push(style, format!("{state:<8}"))
                    .push(Style::Dim, format!(" {:>7}", human(took)));
                if detail.is_empty() {
                    line
                } else {
                    line.push(Style::Plain, format!("  {detail}"))
                }
            });
        }
        if shown.len() < stage.steps.len() {
            let hidden = stage.steps.len() - shown.len();
            let running = stage
                .steps
                .iter()
                .enumerate()
                .filter(|(i, s)| s.state == StepState::Running && !shown.contains(i))
                .count();
            out.push(Line::default().push(
                Style::Dim,
                format!(
                    "  … {hidden} more ({running} running, {} finished)",
                    hidden - running
                ),
            ));
        }
        out
    }

    /// Redraws the live area in place.
    fn draw(&mut self) -> io::Result<()> {
        if let Some(measure) = self.measure {
            // The terminal may have been resized since the last frame.
            let (width, height) = measure();
            self.resize(width, height);
        }
        let lines = self.lines();
        let mut buf = String::new();
        if self.drawn > 0 {
            // Back to the first line of the area, then clear it all.
            let _ = write!(buf, "\x1b[{}A", self.drawn);
        }
        buf.push_str("\r\x1b[J");
        for line in &lines {
            buf.push_str(&line.render(self.color, self.width));
            buf.push('\n');
        }
        self.drawn = lines.len();
        self.last_draw = Some(Instant::now());
        self.frame = self.frame.wrapping_add(1);
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }

    /// Draws the stage a last time and leaves it in the scrollback.
    fn commit(&mut self) -> io::Result<()> {
        if self.stage.is_some() {
            self.draw()?;
            self.stage = None;
        }
        self.drawn = 0;
        Ok(())
    }

    /// Clears the live area (before writing permanent lines).
    fn clear(&mut self) -> io::Result<()> {
        if self.drawn > 0 {
            write!(self.out, "\x1b[{}A\r\x1b[J", self.drawn)?;
            self.drawn = 0;
        }
        Ok(())
    }
}

impl<W: Write + Send> Sink for Live<W> {
    fn label(&self) -> String {
        "terminal progress".into()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.apply(event)
    }

    fn caught_up(&mut self) -> io::Result<()> {
        let recent = self
            .last_draw
            .is_some_and(|t| t.elapsed() < self.min_redraw);
        if self.stage.is_some() && !recent {
            self.draw()
        } else {
            self.out.flush()
        }
    }

    fn refresh_every(&self) -> Option<Duration> {
        Some(REFRESH)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.commit()?;
        self.out.flush()
    }
}

/// Which steps get a line when not all fit in `room` lines: all when they
/// do (the line saying what is hidden would take one anyway); else the
/// running ones first, then the latest others; in their order.
fn visible(steps: &[StepView], room: usize) -> Vec<usize> {
    if steps.len() <= room + 1 {
        return (0..steps.len()).collect();
    }
    let running = (0..steps.len()).filter(|&i| steps[i].state == StepState::Running);
    let others = (0..steps.len())
        .rev()
        .filter(|&i| steps[i].state != StepState::Running);
    let mut pick: Vec<usize> = running.chain(others).take(room).collect();
    pick.sort_unstable();
    pick
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `340 ms`, `1.2 s`, `2m 05s`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Columns and rows of the terminal on stderr; `COLUMNS` and `LINES`, else
/// 80 × 24, when unknown.
fn terminal_size() -> (usize, usize) {
    #[cfg(unix)]
    if let Ok(size) = rustix::termios::tcgetwinsize(io::stderr())
        && size.ws_col > 0
        && size.ws_row > 0
    {
        return (usize::from(size.ws_col), usize::from(size.ws_row));
    }
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .filter(|&c: &usize| c > 0)
            .unwrap_or(default)
    };
    (var("COLUMNS", 80), var("LINES", 24))
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::events::SCHEMA_VERSION;
    use host::events::data::{
        LlmRequest, LlmResponse, RunCompleted, RunFailed, RunStarted, StageCompleted, StageStarted,
        StepCompleted, StepFailed, StepSkipped, Tokens, UsageByModel,
    };
    use host::llm::Usage;
    use serde_json::json;

    fn event(seq: u64, step: Option<(&str, u32)>, data: impl Into<Data>) -> Event {
        let data = data.into();
        Event {
            kind: data.kind(),
            schema_version: SCHEMA_VERSION,
            run_id: "01RUN".into(),
            seq,
            timestamp: String::new(),
            workflow: "wf".into(),
            stage: Some("fan".into()),
            step: step.map(|(s, _)| s.to_string()),
            step_index: step.map(|(_, b)| b),
            branch_index: step.map(|(_, b)| b),
            agent: step.map(|(s, _)| s.to_string()),
            data,
        }
    }

    fn parallel(steps: u64) -> StageStarted {
        StageStarted {
            mode: StageMode::Parallel,
            steps,
        }
    }

    /// A step done in one turn.
    fn completed(elapsed_ms: u64) -> StepCompleted {
        StepCompleted {
            elapsed_ms,
            turns: 1,
            ..StepCompleted::default()
        }
    }

    fn run(color: bool) -> String {
        let mut live = Live::new(
            Vec::new(),
            SinkOptions {
                offline: true,
                ..SinkOptions::default()
            },
            color,
            60,
            24,
        );
        live.min_redraw = Duration::ZERO;
        let events = [
            event(
                1,
                None,
                RunStarted {
                    stages: 1,
                    ..RunStarted::default()
                },
            ),
            event(2, None, parallel(2)),
            // Branches show in branch order, not in start order.
            event(3, Some(("beta", 1)), Data::StepStarted),
            event(4, Some(("alpha", 0)), Data::StepStarted),
            event(
                5,
                Some(("alpha", 0)),
                LlmRequest {
                    turn: 1,
                    ..LlmRequest::default()
                },
            ),
            event(
                6,
                Some(("alpha", 0)),
                LlmResponse {
                    usage: Tokens {
                        input_tokens: 10,
                        output_tokens: 5,
                    },
                    ..LlmResponse::default()
                },
            ),
            event(
                7,
                Some(("beta", 1)),
                StepSkipped {
                    reason: "guard".into(),
                },
            ),
            event(8, Some(("alpha", 0)), completed(1500)),
            event(9, None, StageCompleted { output: json!("x") }),
            event(
                10,
                None,
                RunCompleted {
                    elapsed_ms: 1700,
                    usage: UsageByModel::from([(
                        "m".to_owned(),
                        Usage {
                            input_tokens: 10,
                            output_tokens: 5,
                            total_tokens: 15,
                        },
                    )]),
                    ..RunCompleted::default()
                },
            ),
        ];
        for (i, e) in events.iter().enumerate() {
            live.event(e).expect("event");
            if i % 2 == 1 {
                live.caught_up().expect("draw");
            }
        }
        live.finish().expect("finish");
        String::from_utf8(live.into_inner()).expect("utf-8")
    }

    #[test]
    fn draws_in_place_and_ends_with_a_summary() {
        let out = run(false);
        assert!(
            out.starts_with("run 01RUN · workflow wf · offline (scripted model)\n"),
            "{out}"
        );
        assert!(
            out.contains("\x1b[3A\r\x1b[J"),
            "redraws move up over the area: {out:?}"
        );
        assert!(!out.contains("\x1b[0m"), "no colour: {out:?}");
        // The stage as last drawn, then the summary.
        let tail = out.rsplit("\r\x1b[J").next().unwrap_or("");
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), 4, "{tail}");
        assert!(
            lines[0].starts_with("✓ stage 1/1 fan · parallel · 2/2 done · ")
                && lines[0].ends_with(" · 15 tokens"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "  ✓ alpha [0] done       1.5 s  1 turn");
        assert_eq!(lines[2], "  - beta  [1] skipped");
        assert_eq!(
            lines[3],
            "✓ completed in 1.7 s · 1 stage · 2 steps (1 skipped) · 10 input / 5 output tokens"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let out = run(true);
        assert!(out.contains("\x1b[32m✓\x1b[0m"), "{out:?}");
    }

    #[test]
    fn a_failed_run_marks_the_stage_and_its_unfinished_steps() {
        let mut live = Live::new(Vec::new(), SinkOptions::default(), false, 80, 24);
        for e in [
            event(
                1,
                None,
                RunStarted {
                    stages: 2,
                    ..RunStarted::default()
                },
            ),
            event(2, None, parallel(2)),
            event(3, Some(("good", 0)), Data::StepStarted),
            event(4, Some(("bad", 1)), Data::StepStarted),
            event(
                5,
                Some(("bad", 1)),
                StepFailed {
                    error: "HTTP 500".into(),
                },
            ),
            event(
                6,
                None,
                RunFailed {
                    error: "stage `fan`, step `bad`: HTTP 500".into(),
                    usage: UsageByModel::new(),
                },
            ),
        ] {
            live.event(&e).expect("event");
        }
        live.finish().expect("finish");
        let out = String::from_utf8(live.into_inner()).expect("utf-8");
        let tail: Vec<&str> = out
            .rsplit("\r\x1b[J")
            .next()
            .unwrap_or("")
            .lines()
            .collect();
        assert!(
            tail[0].starts_with("✗ stage 1/2 fan · parallel · 2/2 done · "),
            "{out}"
        );
        assert!(tail[1].starts_with("  ✗ good [0] stopped "), "{out}");
        assert!(
            tail[2].starts_with("  ✗ bad  [1] failed  ") && tail[2].ends_with("  HTTP 500"),
            "{out}"
        );
        assert!(
            tail[3].starts_with("✗ failed after ")
                && tail[3].ends_with(": stage `fan`, step `bad`: HTTP 500"),
            "{out}"
        );
    }

    #[test]
    fn a_tall_stage_fits_the_screen() {
        let mut live = Live::new(Vec::new(), SinkOptions::default(), false, 60, 8);
        live.event(&event(1, None, parallel(20))).expect("event");
        for b in 0..20 {
            live.event(&event(2 + u64::from(b), Some(("s", b)), Data::StepStarted))
                .expect("event");
        }
        for b in 0..18 {
            live.event(&event(30 + u64::from(b), Some(("s", b)), completed(5)))
                .expect("event");
        }
        let lines: Vec<String> = live.lines().iter().map(|l| l.render(false, 80)).collect();
        assert_eq!(lines.len(), 6, "at most height - 2: {lines:#?}");
        // The two still running, then the latest finished, in branch order.
        assert!(lines[1].contains("s [16] done"), "{lines:#?}");
        assert!(lines[2].contains("s [17] done"), "{lines:#?}");
        assert!(lines[3].contains("s [18] running"), "{lines:#?}");
        assert!(lines[4].contains("s [19] running"), "{lines:#?}");
        assert_eq!(lines[5], "  … 16 more (0 running, 16 finished)");
    }

    #[test]
    fn lines_never_wrap() {
        let line = Line::default().push(Style::Plain, "x".repeat(100));
        assert_eq!(line.render(false, 10).chars().count(), 10);
        assert!(line.render(false, 10).ends_with('…'));
    }
}

//! `host run`'s live progress on a terminal: the current stage redrawn in
//! place, finished stages left in the scrollback. (Elsewhere the trace is
//! the plain lines of [`super::write_line`].)
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
//!
//! [`view`] holds what the events said, [`render`] turns it into lines,
//! [`term`] talks to the terminal; this module paces the redraws.

mod render;
mod term;
mod view;

use super::{Escaped, Sink, SinkOptions, write_line};
use crate::events::{Event, EventType};
use render::Line;
use std::io::{self, Write};
use std::time::{Duration, Instant};
use view::View;

/// Redraws between events, for the spinner and the clocks.
const REFRESH: Duration = Duration::from_millis(100);
/// At most this often on events: streamed text or many branches would
/// otherwise redraw the screen for every event.
const MIN_REDRAW: Duration = Duration::from_millis(50);

/// The live view, a [`Sink`] that draws on `out`.
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
    view: View,
    /// Lines of the live area now on screen, above the cursor.
    drawn: usize,
    last_draw: Option<Instant>,
    min_redraw: Duration,
    frame: usize,
}

impl Live<io::Stderr> {
    /// The live view on stderr, re-measured before every frame (the
    /// terminal may be resized during the run).
    pub fn stderr(options: SinkOptions, color: bool) -> Self {
        let (width, height) = term::size();
        let mut live = Live::new(io::stderr(), options, color, width, height);
        live.measure = Some(term::size);
        live
    }
}

impl<W: Write + Send> Live<W> {
    /// A live view on a screen of `width` columns and `height` rows; `color`
    /// turns ANSI colours on.
    pub fn new(out: W, options: SinkOptions, color: bool, width: usize, height: usize) -> Self {
        let mut live = Live {
            out,
            options,
            color,
            width: 0,
            max_lines: 0,
            measure: None,
            view: View::new(),
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

    pub fn into_inner(self) -> W {
        self.out
    }

    fn apply(&mut self, e: &Event) -> io::Result<()> {
        match e.kind {
            EventType::RunStarted => {
                self.view.apply(e);
                let mut header = Vec::new();
                write_line(&mut Escaped::new(&mut header), e, self.options.offline)?;
                self.clear()?;
                self.out.write_all(&header)?;
            }
            EventType::StageStarted => {
                self.commit()?;
                self.view.apply(e);
            }
            EventType::StageCompleted => {
                self.view.apply(e);
                self.commit()?;
            }
            EventType::RunCompleted | EventType::RunFailed | EventType::RunCancelled => {
                self.view.apply(e);
                self.commit()?;
                // Written once and never redrawn: no need to clip it.
                let line = render::summary(&self.view, e);
                writeln!(self.out, "{}", line.render(self.color, usize::MAX))?;
            }
            _ => self.view.apply(e),
        }
        Ok(())
    }

    fn lines(&self) -> Vec<Line> {
        render::lines(&self.view, self.frame, self.max_lines)
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
        // Back to the first line of the area, then clear it all.
        term::rewind(&mut buf, self.drawn);
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
        if self.view.stage.is_some() {
            self.draw()?;
            self.view.stage = None;
        }
        self.drawn = 0;
        Ok(())
    }

    /// Clears the live area (before writing permanent lines).
    fn clear(&mut self) -> io::Result<()> {
        if self.drawn > 0 {
            let mut buf = String::new();
            term::rewind(&mut buf, self.drawn);
            self.out.write_all(buf.as_bytes())?;
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
        if self.view.stage.is_some() && !recent {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Data, SCHEMA_VERSION};
    use serde_json::{Value, json};

    fn event(seq: u64, kind: EventType, step: Option<(&str, u32)>, data: Value) -> Event {
        Event {
            kind,
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
            tool_call_id: None,
            data: Data::partial(kind, data),
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
            event(1, EventType::RunStarted, None, json!({"stages": 1})),
            event(
                2,
                EventType::StageStarted,
                None,
                json!({"mode": "parallel", "steps": 2}),
            ),
            // Branches show in branch order, not in start order.
            event(3, EventType::StepStarted, Some(("beta", 1)), Value::Null),
            event(4, EventType::StepStarted, Some(("alpha", 0)), Value::Null),
            event(
                5,
                EventType::LlmRequest,
                Some(("alpha", 0)),
                json!({"turn": 1}),
            ),
            event(
                6,
                EventType::LlmResponse,
                Some(("alpha", 0)),
                json!({"usage": {"input_tokens": 10, "output_tokens": 5}}),
            ),
            event(
                7,
                EventType::StepSkipped,
                Some(("beta", 1)),
                json!({"reason": "guard"}),
            ),
            event(
                8,
                EventType::StepCompleted,
                Some(("alpha", 0)),
                json!({"turns": 1, "elapsed_ms": 1500}),
            ),
            event(9, EventType::StageCompleted, None, json!({"output": "x"})),
            event(
                10,
                EventType::RunCompleted,
                None,
                json!({"usage": {"m": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}, "elapsed_ms": 1700}),
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
            event(1, EventType::RunStarted, None, json!({"stages": 2})),
            event(
                2,
                EventType::StageStarted,
                None,
                json!({"mode": "parallel", "steps": 2}),
            ),
            event(3, EventType::StepStarted, Some(("good", 0)), Value::Null),
            event(4, EventType::StepStarted, Some(("bad", 1)), Value::Null),
            event(
                5,
                EventType::StepFailed,
                Some(("bad", 1)),
                json!({"error": "HTTP 500"}),
            ),
            event(
                6,
                EventType::RunFailed,
                None,
                json!({"error": "stage `fan`, step `bad`: HTTP 500", "usage": {}}),
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
        live.event(&event(
            1,
            EventType::StageStarted,
            None,
            json!({"mode": "parallel", "steps": 20}),
        ))
        .expect("event");
        for b in 0..20 {
            live.event(&event(
                2 + u64::from(b),
                EventType::StepStarted,
                Some(("s", b)),
                Value::Null,
            ))
            .expect("event");
        }
        for b in 0..18 {
            live.event(&event(
                30 + u64::from(b),
                EventType::StepCompleted,
                Some(("s", b)),
                json!({"turns": 1, "elapsed_ms": 5}),
            ))
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

    /// A step named in wide glyphs lines up with the others: names pad to
    /// columns, not characters.
    #[test]
    fn wide_step_names_line_up() {
        let mut live = Live::new(Vec::new(), SinkOptions::default(), false, 80, 24);
        for e in [
            event(
                1,
                EventType::StageStarted,
                None,
                json!({"mode": "parallel", "steps": 2}),
            ),
            event(2, EventType::StepStarted, Some(("研究者", 0)), Value::Null),
            event(3, EventType::StepStarted, Some(("writer", 1)), Value::Null),
        ] {
            live.event(&e).expect("event");
        }
        let lines: Vec<String> = live.lines().iter().map(|l| l.render(false, 80)).collect();
        let column = |line: &str| {
            let at = line.find('[').expect("a branch");
            unicode_width::UnicodeWidthStr::width(&line[..at])
        };
        assert_eq!(column(&lines[1]), column(&lines[2]), "{lines:#?}");
    }
}

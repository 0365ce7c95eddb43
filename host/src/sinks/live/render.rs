//! The view as styled lines: the stage area and the run's summary line.
//! Widths are terminal columns ([`unicode_width`]), not characters: a CJK
//! glyph or an emoji takes two, and a line one column too wide wraps and
//! breaks the cursor arithmetic of the redraw.

use super::view::{StageEnd, StepState, StepView, View};
use crate::events::{Data, Event};
use crate::sinks::{escape_controls, tokens};
use crate::util::{first_line, human_duration, plural};
use std::fmt::Write as _;
use std::time::Duration;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Style {
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
pub(super) struct Line(Vec<(Style, String)>);

impl Line {
    /// Adds `text`, its control characters escaped: it may come from a
    /// model or a plugin.
    pub(super) fn push(mut self, style: Style, text: impl Into<String>) -> Self {
        let text = text.into();
        let text = match escape_controls(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        self.0.push((style, text));
        self
    }

    /// At most `width` columns, with `…` where it was cut.
    pub(super) fn render(&self, color: bool, width: usize) -> String {
        let mut left = width;
        let mut out = String::new();
        for (style, text) in &self.0 {
            if left == 0 {
                break;
            }
            let n = text.width();
            let piece = if n > left {
                let mut s = clip_columns(text, left.saturating_sub(1));
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

/// The longest start of `text` that fits in `columns`.
fn clip_columns(text: &str, columns: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += c.width().unwrap_or(0);
        if used > columns {
            break;
        }
        out.push(c);
    }
    out
}

/// `text` padded with spaces to `columns` (`{:<n}` pads by characters).
fn pad(text: &str, columns: usize) -> String {
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(
        ' ',
        columns.saturating_sub(text.width()),
    ));
    out
}

/// The line that ends the run: how, after how long, and what it took.
pub(super) fn summary(view: &View, e: &Event) -> Line {
    let took = match &e.data {
        Data::RunCompleted(d) => Duration::from_millis(d.elapsed_ms),
        _ => view.run_started.elapsed(),
    };
    let stages = view.stages_seen;
    match &e.data {
        Data::RunCompleted(d) => {
            let (i, o) = tokens(&d.usage);
            let steps = view.steps_done + view.steps_skipped + view.steps_failed;
            let mut detail = Vec::new();
            if view.steps_skipped > 0 {
                detail.push(format!("{} skipped", view.steps_skipped));
            }
            if view.steps_failed > 0 {
                detail.push(format!("{} failed", view.steps_failed));
            }
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", detail.join(", "))
            };
            Line::default()
                .push(Style::Green, "✓ completed")
                .push(Style::Plain, format!(" in {}", human_duration(took)))
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
            format!(
                " after {}: {}",
                human_duration(took),
                first_line(&d.error, 400)
            ),
        ),
        _ => Line::default()
            .push(Style::Red, "✗ cancelled")
            .push(Style::Plain, format!(" after {}", human_duration(took))),
    }
}

/// The live area: the current stage and its steps, in at most `max_lines`
/// lines; `frame` turns the spinner.
pub(super) fn lines(view: &View, frame: usize, max_lines: usize) -> Vec<Line> {
    let Some(stage) = &view.stage else {
        return Vec::new();
    };
    let spin = SPINNER[frame % SPINNER.len()].to_string();
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
                    stage.number, view.stages_total, stage.name
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
                    human_duration(took),
                    view.tokens.0 + view.tokens.1
                ),
            ),
    ];
    let name_width = stage
        .steps
        .iter()
        .map(|s| s.name.width())
        .max()
        .unwrap_or(0);
    // Header, steps, and one line for those that do not fit.
    let shown = visible(&stage.steps, max_lines.saturating_sub(2));
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
                format!(" {}{branch} ", pad(&step.name, name_width)),
            );
        out.push(if step.state == StepState::Skipped {
            line.push(style, state)
        } else {
            let line = line
                .push(style, format!("{state:<8}"))
                .push(Style::Dim, format!(" {:>7}", human_duration(took)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_never_wrap() {
        let line = Line::default().push(Style::Plain, "x".repeat(100));
        assert_eq!(line.render(false, 10).chars().count(), 10);
        assert!(line.render(false, 10).ends_with('…'));
    }

    /// Wide glyphs take two columns each: counting characters would let
    /// this line run to 19 columns on a 10-column screen.
    #[test]
    fn wide_glyphs_count_double() {
        let line = Line::default()
            .push(Style::Plain, "ab")
            .push(Style::Bold, "界".repeat(10));
        let out = line.render(false, 10);
        assert_eq!(out, "ab界界界…");
        assert_eq!(out.width(), 9);
        // Emoji too, and a piece that fits leaves the right room.
        let line = Line::default()
            .push(Style::Plain, "🦀🦀")
            .push(Style::Plain, "x".repeat(10));
        assert_eq!(line.render(false, 8), "🦀🦀xxx…");
    }

    #[test]
    fn names_pad_to_columns() {
        assert_eq!(pad("界", 4), "界  ");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcde", 4), "abcde");
    }
}

//! How a command fails: one type, [`CliError`], and one printer,
//! [`CliError::report`], so every error reads the same (uv-style):
//!
//! ```text
//! error: callback `jsonl` needs a target
//!   hint: write `jsonl:PATH`, or `jsonl:-` for stdout
//! ```
//!
//! Commands return `Result<ExitCode, CliError>`: `Ok` is an outcome the
//! command has printed itself (done, paused for approval, interrupted),
//! `Err` a failure nobody has printed yet. Any other error (`?` on a store
//! or I/O error) becomes a failure with code 1 and its `: `-joined chain.

use super::{EXIT_BAD_INPUT, EXIT_FAILED};
use std::fmt;
use std::process::ExitCode;

/// A command's failure: what to print and the process's exit code.
#[derive(Debug)]
pub(super) struct CliError {
    /// [`EXIT_FAILED`] or [`EXIT_BAD_INPUT`] (see `main.rs`).
    pub code: u8,
    pub message: String,
    /// A line of advice, printed under the message.
    pub hint: Option<String>,
    /// `message` is a finished report with its own `error:` lines (a
    /// spec's problems, each with its hint), or text that never had the
    /// prefix (a workflow that does not build): printed as it is.
    verbatim: bool,
    /// Not a failure the command foresaw (a store or I/O error passed up
    /// with `?`): a command working through several runs stops on it.
    unexpected: bool,
}

impl CliError {
    /// The operation failed (exit 1).
    pub(super) fn failed(message: impl Into<String>) -> Self {
        CliError::new(EXIT_FAILED, message.into(), false)
    }

    /// The spec, the plugins or the command line are wrong (exit 2).
    pub(super) fn bad_input(message: impl Into<String>) -> Self {
        CliError::new(EXIT_BAD_INPUT, message.into(), false)
    }

    /// A report printed as it is, without `error: ` in front.
    pub(super) fn verbatim(code: u8, report: impl Into<String>) -> Self {
        CliError::new(code, report.into(), true)
    }

    fn new(code: u8, message: String, verbatim: bool) -> Self {
        CliError {
            code,
            message,
            hint: None,
            verbatim,
            unexpected: false,
        }
    }

    /// Whether this is an error the command did not foresee (see
    /// the `unexpected` field).
    pub(super) fn is_unexpected(&self) -> bool {
        self.unexpected
    }

    pub(super) fn with_hint(mut self, hint: Option<impl Into<String>>) -> Self {
        self.hint = hint.map(Into::into);
        self
    }

    /// Prints the error on stderr, control characters escaped (it may quote
    /// a plugin's or a model's text); the exit code. The one place errors
    /// are printed.
    pub(super) fn report(&self) -> ExitCode {
        eprintln!("{}", host::sinks::escape_controls(&self.to_string()));
        ExitCode::from(self.code)
    }
}

/// `error: message`, then `  hint: …`. A library error that carries its
/// hint in its text (`…\nhint: …`) gets the same indent.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.verbatim {
            f.write_str("error: ")?;
        }
        for (i, line) in self.message.split('\n').enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if line.starts_with("hint: ") {
                f.write_str("  ")?;
            }
            f.write_str(line)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Anything else that went wrong: the operation failed, and the error says
/// why with its sources (`{:#}` of [`anyhow::Error`]).
impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError {
            unexpected: true,
            ..CliError::failed(format!("{:#}", e.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_message_then_an_indented_hint() {
        let e = CliError::bad_input("no input").with_hint(Some("give --input"));
        assert_eq!(e.to_string(), "error: no input\n  hint: give --input");
        assert_eq!(e.code, EXIT_BAD_INPUT);
    }

    #[test]
    fn indents_hints_carried_in_the_text() {
        let e = CliError::bad_input("a.wasm: not a component\nhint: build it for wasip2");
        assert_eq!(
            e.to_string(),
            "error: a.wasm: not a component\n  hint: build it for wasip2"
        );
    }

    #[test]
    fn verbatim_reports_keep_their_lines() {
        let report = "error: $.a: bad\n  hint: fix it\nerror: $.b: bad";
        assert_eq!(
            CliError::verbatim(EXIT_BAD_INPUT, report).to_string(),
            report
        );
    }

    #[test]
    fn other_errors_fail_with_their_chain() {
        let e = CliError::from(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(e.to_string(), "error: outer: inner");
        assert_eq!(e.code, EXIT_FAILED);
    }
}

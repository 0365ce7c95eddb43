//! Who watches a `host run`: the sinks of the spec's `run.callback` and of
//! `--callback`, plus the trace on stderr (live progress or plain lines).
//!
//! What stdout holds then (docs/EVENTS.md, "Sinks"): the final output
//! alone; or the `stdout` sink's lines followed by the final output; or the
//! `stdout_verbose` sink's text, which ends with the final output; or, with
//! `jsonl:-`, JSON lines only (the output is in `run.completed`).

use super::error::CliError;
use super::run::{OnStdout, Trace};
use host::events::Event;
use host::sinks::{self, Dispatch, HttpTarget, OutboxSink, Sink, SinkError, SinkOptions, SinkSpec};
use host::spec::Spec;
use host::util::error_chain;
use std::collections::BTreeMap;
use tokio::sync::mpsc::UnboundedReceiver;

/// The sinks a run will get, checked but not opened.
pub(super) struct SinkPlan {
    sinks: Vec<SinkSpec>,
    /// Agent key → display name, for the Go printer and Go callback events.
    display_names: BTreeMap<String, String>,
    quiet: bool,
    no_progress: bool,
}

impl SinkPlan {
    /// The spec's callbacks, then the command line's; duplicates count once.
    pub(super) fn new(
        spec: &Spec,
        callbacks: &[String],
        quiet: bool,
        no_progress: bool,
    ) -> Result<SinkPlan, SinkError> {
        let from_spec = spec
            .run
            .callback
            .iter()
            .enumerate()
            .map(|(i, c)| {
                SinkSpec::from_callback(c, spec.base_dir()).map_err(|reason| {
                    SinkError::OutsideSpec {
                        at: format!("$.run.callback[{i}].path"),
                        reason,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let from_cli = callbacks
            .iter()
            .map(|c| c.parse::<SinkSpec>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SinkPlan {
            sinks: sinks::check(from_spec.into_iter().chain(from_cli))?,
            display_names: spec
                .agents
                .iter()
                .filter_map(|(key, a)| Some((key.clone(), a.display_name.clone()?)))
                .collect(),
            quiet,
            no_progress,
        })
    }

    /// Some sink shows streamed model text.
    pub(super) fn deltas(&self) -> bool {
        self.sinks.iter().any(SinkSpec::wants_deltas)
    }

    /// A sink already writes the final output to stdout.
    pub(super) fn prints_output(&self) -> bool {
        self.sinks.iter().any(SinkSpec::prints_output)
    }

    /// The `http` sinks.
    pub(super) fn http_targets(&self) -> impl Iterator<Item = &HttpTarget> {
        self.sinks.iter().filter_map(|s| match s {
            SinkSpec::Http(t) => Some(t),
            _ => None,
        })
    }

    /// Opens every sink (creates JSON lines files) before the run starts.
    pub(super) fn open(
        self,
        offline: bool,
        outbox: Option<OutboxSink>,
    ) -> Result<Opened, SinkError> {
        let options = SinkOptions {
            offline,
            outbox,
            display_names: self.display_names.clone(),
        };
        let on_stdout = match self.sinks.iter().find(|s| s.writes_stdout()) {
            Some(SinkSpec::Stdout | SinkSpec::StdoutVerbose | SinkSpec::GoStdout { .. }) => {
                OnStdout::Lines
            }
            Some(_) => OnStdout::Data,
            None => OnStdout::Nothing,
        };
        let mut opened = self
            .sinks
            .iter()
            .map(|s| sinks::open(s, &options))
            .collect::<Result<Vec<_>, _>>()?;
        opened.extend(Trace::choose(self.quiet, self.no_progress, on_stdout).sink(options));
        Ok(Opened(opened))
    }
}

/// Opened sinks, waiting for the run's events.
pub(super) struct Opened(Vec<Box<dyn Sink>>);

impl Opened {
    pub(super) fn spawn(self, events: Option<UnboundedReceiver<Event>>) -> Option<Dispatch> {
        Some(sinks::spawn(events?, self.0))
    }
}

/// Waits for the sinks to write everything; a sink that failed is a
/// warning, never a failed run.
pub(super) async fn finish(dispatch: Option<Dispatch>) {
    if let Some(dispatch) = dispatch {
        for e in dispatch.finish().await {
            eprintln!("warning: {}", error_chain(&e));
        }
    }
}

/// A sink that cannot be set up: bad input, with its hint.
pub(super) fn bad_sink(e: &SinkError) -> CliError {
    CliError::bad_input(error_chain(e)).with_hint(e.hint())
}

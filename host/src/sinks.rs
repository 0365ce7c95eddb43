//! Event sinks: where a run's events go — readable lines or JSON lines on
//! stdout or in a file, or HTTP callbacks through the store's outbox
//! ([`crate::outbox`]).
//!
//! A [`SinkSpec`] names a sink; it comes from the spec's `run.callback`
//! ([`SinkSpec::from_callback`]) or from the command line's `--callback`
//! syntax ([`SinkSpec::from_str`](std::str::FromStr)). [`check`] vets the
//! list a run will use, [`open`] builds a [`Sink`] for each, and [`spawn`]
//! feeds a run's event stream to them.
//!
//! A sink never slows or breaks a run: [`spawn`] forwards each event to
//! every sink over its own unbounded queue, and every sink writes from its
//! own thread. A sink whose writes fail stops; its error comes back from
//! [`Dispatch::finish`] and the run goes on. The `http` sink only enqueues
//! events in the run database; delivery happens elsewhere, so a slow or
//! failing endpoint cannot hold the run up.

mod escape;
pub mod go_events;
mod go_printer;
mod http;
mod jsonl;
mod lines;
mod live;
mod verbose;

pub use escape::{Escaped, escape_controls};
pub use go_printer::{GoPrinter, go_duration};
pub use http::{HttpSink, OutboxSink};
pub use jsonl::JsonlSink;
pub use lines::{LinesSink, tokens, write_line};
pub use live::Live;
pub use verbose::VerboseSink;

use crate::events::{Event, EventAck};
use crate::secret::Secret;
use crate::spec::{Callback, Escape, EventFormat, confine};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What went wrong with a sink: its description, opening it, or writing.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("unknown callback `{0}`")]
    Unknown(String),
    #[error("callback `{kind}` takes no target, got `{input}`")]
    UnexpectedTarget { kind: &'static str, input: String },
    #[error("callback `jsonl` needs a target")]
    MissingPath,
    #[error("callback `http` needs a URL")]
    MissingUrl,
    #[error("callback `http:{0}`: not an http(s) URL")]
    BadUrl(String),
    #[error("callback `http:{url}` needs the run database for its outbox")]
    NoOutbox { url: String },
    #[error("callback `http:{url}`: its signing secret's environment variable {var} is not set")]
    SecretMissing { url: String, var: String },
    #[error("two http callbacks to `{url}` with different settings")]
    HttpTwice { url: String },
    /// A spec's `jsonl` path outside the spec's folder; `at` is its JSON path.
    #[error("{at}: {reason}")]
    OutsideSpec { at: String, reason: Escape },
    #[error("more than one callback writes to stdout: {}", .0.join(", "))]
    StdoutTaken(Vec<String>),
    #[error("cannot open `{}` for events", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("callback {sink} stopped: failed to write events")]
    Write {
        sink: String,
        #[source]
        source: io::Error,
    },
    #[error("callback {sink} stopped: it panicked")]
    Panicked { sink: String },
}

impl SinkError {
    /// A line of advice for the user, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            SinkError::Unknown(_) | SinkError::UnexpectedTarget { .. } => Some(
                "write `stdout`, `stdout_verbose`, `jsonl:PATH`, `jsonl:-` or `http:URL` (with `go:` before it for the Go runner's format)",
            ),
            SinkError::MissingPath => Some("write `jsonl:PATH`, or `jsonl:-` for stdout"),
            SinkError::MissingUrl | SinkError::BadUrl(_) => {
                Some("write `http:https://example.com/hook`")
            }
            SinkError::SecretMissing { .. } => {
                Some("export the variable, or drop `secret_env` to send unsigned requests")
            }
            SinkError::HttpTwice { .. } => Some("keep one `http` callback per URL"),
            SinkError::OutsideSpec { reason, .. } => Some(reason.hint()),
            SinkError::StdoutTaken(_) => Some(
                "keep one of them on stdout and send the other to a file: `jsonl:events.jsonl`",
            ),
            _ => None,
        }
    }
}

/// One sink, before it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// Compact readable lines on stdout, one per interesting event.
    Stdout,
    /// Every event with its data, streamed model text and the final output,
    /// on stdout.
    StdoutVerbose,
    /// The Go runner's console printer on stdout (`go:stdout`,
    /// `go:stdout_verbose`).
    GoStdout { verbose: bool },
    /// One JSON event per line.
    Jsonl(JsonlTarget),
    /// POST each event to a URL, from the run database's outbox.
    Http(HttpTarget),
}

/// Where a `jsonl` sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlTarget {
    Stdout,
    /// Created when missing, appended to otherwise.
    File(PathBuf),
}

/// An HTTP callback's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub url: String,
    pub secret_env: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// From the Go runner's request shape only; prints as `***`.
    pub secret: Option<Secret>,
    /// What each POST carries: this host's event or the Go runner's.
    pub format: EventFormat,
}

impl SinkSpec {
    /// The sink a spec's `run.callback` entry describes. A `jsonl` path is
    /// resolved against `base_dir` (the spec's folder), like every other
    /// path in a spec, and must stay inside it ([`confine`]); the command
    /// line's `jsonl:PATH` may name any file.
    pub fn from_callback(callback: &Callback, base_dir: &Path) -> Result<SinkSpec, Escape> {
        Ok(match callback {
            Callback::Stdout {
                format: EventFormat::Host,
            } => SinkSpec::Stdout,
            Callback::StdoutVerbose {
                format: EventFormat::Host,
            } => SinkSpec::StdoutVerbose,
            Callback::Stdout {
                format: EventFormat::Go,
            } => SinkSpec::GoStdout { verbose: false },
            Callback::StdoutVerbose {
                format: EventFormat::Go,
            } => SinkSpec::GoStdout { verbose: true },
            Callback::Jsonl { path } if path == "-" => SinkSpec::Jsonl(JsonlTarget::Stdout),
            Callback::Jsonl { path } => {
                SinkSpec::Jsonl(JsonlTarget::File(confine(base_dir, Path::new(path))?))
            }
            Callback::Http {
                url,
                secret_env,
                headers,
                format,
                secret,
            } => SinkSpec::Http(HttpTarget {
                url: url.clone(),
                secret_env: secret_env.clone(),
                headers: headers.clone(),
                secret: secret.clone(),
                format: *format,
            }),
        })
    }

    /// Whether the sink writes to the process's stdout.
    pub fn writes_stdout(&self) -> bool {
        matches!(
            self,
            SinkSpec::Stdout
                | SinkSpec::StdoutVerbose
                | SinkSpec::GoStdout { .. }
                | SinkSpec::Jsonl(JsonlTarget::Stdout)
        )
    }

    /// Whether what the sink writes on stdout already holds the run's final
    /// output, so the caller must not print it again.
    pub fn prints_output(&self) -> bool {
        matches!(
            self,
            SinkSpec::StdoutVerbose | SinkSpec::Jsonl(JsonlTarget::Stdout)
        )
    }

    /// Whether the sink shows streamed model text (`llm.delta` events),
    /// which the engine emits only on request.
    pub fn wants_deltas(&self) -> bool {
        matches!(self, SinkSpec::StdoutVerbose)
    }
}

/// The command-line syntax: `stdout`, `stdout_verbose`, `jsonl:PATH`,
/// `jsonl:-`, `http:URL`; `go:stdout`, `go:stdout_verbose` and `go:http:URL`
/// for the Go runner's printer and callback events.
impl FromStr for SinkSpec {
    type Err = SinkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("go:") {
            return match rest.parse::<SinkSpec>()? {
                SinkSpec::Stdout => Ok(SinkSpec::GoStdout { verbose: false }),
                SinkSpec::StdoutVerbose => Ok(SinkSpec::GoStdout { verbose: true }),
                SinkSpec::Http(target) => Ok(SinkSpec::Http(HttpTarget {
                    format: EventFormat::Go,
                    ..target
                })),
                _ => Err(SinkError::Unknown(s.into())),
            };
        }
        // `http://…` alone is taken as `http:http://…`.
        if s.starts_with("http://") || s.starts_with("https://") {
            return http(s);
        }
        let (kind, target) = match s.split_once(':') {
            Some((kind, target)) => (kind, Some(target)),
            None => (s, None),
        };
        match (kind, target) {
            ("stdout", None) => Ok(SinkSpec::Stdout),
            ("stdout_verbose", None) => Ok(SinkSpec::StdoutVerbose),
            ("stdout", Some(_)) => Err(SinkError::UnexpectedTarget {
                kind: "stdout",
                input: s.into(),
            }),
            ("stdout_verbose", Some(_)) => Err(SinkError::UnexpectedTarget {
                kind: "stdout_verbose",
                input: s.into(),
            }),
            ("jsonl", None | Some("")) => Err(SinkError::MissingPath),
            ("jsonl", Some("-")) => Ok(SinkSpec::Jsonl(JsonlTarget::Stdout)),
            ("jsonl", Some(path)) => Ok(SinkSpec::Jsonl(JsonlTarget::File(path.into()))),
            ("http", None | Some("")) => Err(SinkError::MissingUrl),
            ("http", Some(url)) => http(url),
            _ => Err(SinkError::Unknown(s.into())),
        }
    }
}

fn http(url: &str) -> Result<SinkSpec, SinkError> {
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.contains(char::is_whitespace)
    {
        return Err(SinkError::BadUrl(url.into()));
    }
    Ok(SinkSpec::Http(HttpTarget {
        url: url.into(),
        secret_env: None,
        headers: BTreeMap::new(),
        secret: None,
        format: EventFormat::Host,
    }))
}

/// The command-line form (`jsonl:PATH`, `http:URL`, …).
impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::Stdout => f.write_str("stdout"),
            SinkSpec::StdoutVerbose => f.write_str("stdout_verbose"),
            SinkSpec::GoStdout { verbose: false } => f.write_str("go:stdout"),
            SinkSpec::GoStdout { verbose: true } => f.write_str("go:stdout_verbose"),
            SinkSpec::Jsonl(JsonlTarget::Stdout) => f.write_str("jsonl:-"),
            SinkSpec::Jsonl(JsonlTarget::File(path)) => write!(f, "jsonl:{}", path.display()),
            SinkSpec::Http(target) if target.format == EventFormat::Go => {
                write!(f, "go:http:{}", target.url)
            }
            SinkSpec::Http(target) => write!(f, "http:{}", target.url),
        }
    }
}

/// Vets the sinks a run will use, before anything is opened: drops exact
/// duplicates (the same sink from the spec and the command line), allows
/// one writer to stdout at most (two would interleave their lines), one
/// `http` sink per URL (the URL names its outbox lane), and requires the
/// variable an `http` sink's `secret_env` names to be set.
pub fn check(specs: impl IntoIterator<Item = SinkSpec>) -> Result<Vec<SinkSpec>, SinkError> {
    check_with(specs, |var| {
        std::env::var_os(var).is_some_and(|v| !v.is_empty())
    })
}

/// [`check`] with another test for whether a variable is set.
pub fn check_with(
    specs: impl IntoIterator<Item = SinkSpec>,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<SinkSpec>, SinkError> {
    let mut out: Vec<SinkSpec> = Vec::new();
    for spec in specs {
        if out.contains(&spec) {
            continue;
        }
        if let SinkSpec::Http(target) = &spec {
            if out
                .iter()
                .any(|s| matches!(s, SinkSpec::Http(t) if t.url == target.url))
            {
                return Err(SinkError::HttpTwice {
                    url: target.url.clone(),
                });
            }
            if let Some(var) = &target.secret_env
                && !is_set(var)
            {
                return Err(SinkError::SecretMissing {
                    url: target.url.clone(),
                    var: var.clone(),
                });
            }
        }
        out.push(spec);
    }
    let on_stdout: Vec<String> = out
        .iter()
        .filter(|s| s.writes_stdout())
        .map(ToString::to_string)
        .collect();
    if on_stdout.len() > 1 {
        return Err(SinkError::StdoutTaken(on_stdout));
    }
    Ok(out)
}

/// What sinks need to know about the run beyond its events.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Every agent runs on the offline scripted provider (said in the first line).
    pub offline: bool,
    /// Where `http` sinks enqueue their events; without it they cannot open.
    pub outbox: Option<OutboxSink>,
    /// Agent key → the name people see (the spec's `display_name`), for
    /// the Go printer and Go callback events.
    pub display_names: BTreeMap<String, String>,
}

/// Opens one sink: creates or appends to its file, takes stdout, or
/// prepares an `http` sink's outbox.
pub fn open(spec: &SinkSpec, options: &SinkOptions) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match spec {
        SinkSpec::Stdout => Box::new(LinesSink::new(io::stdout(), "stdout", options.clone())),
        SinkSpec::StdoutVerbose => Box::new(VerboseSink::new(
            io::stdout(),
            "stdout_verbose",
            options.clone(),
        )),
        SinkSpec::GoStdout { verbose } => Box::new(GoPrinter::new(
            io::stdout(),
            spec.to_string(),
            *verbose,
            options,
        )),
        SinkSpec::Jsonl(JsonlTarget::Stdout) => Box::new(JsonlSink::new(io::stdout(), "jsonl:-")),
        SinkSpec::Jsonl(JsonlTarget::File(path)) => Box::new(JsonlSink::append(path)?),
        SinkSpec::Http(target) => match &options.outbox {
            Some(outbox) => Box::new(HttpSink::new(
                target,
                outbox.clone(),
                options.display_names.clone(),
            )),
            None => {
                return Err(SinkError::NoOutbox {
                    url: target.url.clone(),
                });
            }
        },
    })
}

/// A consumer of a run's events. Each sink runs on its own thread, so its
/// methods may block on I/O.
pub trait Sink: Send {
    /// Names the sink in errors (`jsonl:events.jsonl`, `terminal progress`).
    fn label(&self) -> String;

    /// One event; events arrive in `seq` order. An error stops the sink.
    fn event(&mut self, event: &Event) -> io::Result<()>;

    /// Whether the run's end waits for this sink to have written its last
    /// events (the outbox: what it holds survives the process).
    fn durable(&self) -> bool {
        false
    }

    /// Called whenever the sink has handled every event that arrived, and
    /// every [`Sink::refresh_every`] while none arrives: the place to redraw
    /// a display once per burst of events.
    fn caught_up(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// How often [`Sink::caught_up`] runs while no event arrives (live
    /// displays with clocks); `None`, the default, waits for events.
    fn refresh_every(&self) -> Option<Duration> {
        None
    }

    /// The stream ended: after the run's last event, or when the run went
    /// away without one.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The running sinks of one run; [`Dispatch::finish`] waits for them.
pub struct Dispatch {
    forward: Option<tokio::task::JoinHandle<()>>,
    /// Per durable sink: the `seq` of the last event it has written and
    /// caught up after (for an outbox sink: enqueued in the store).
    written: Vec<EventAck>,
    workers: Vec<(String, std::thread::JoinHandle<Result<(), SinkError>>)>,
    spawn_errors: Vec<SinkError>,
}

/// Feeds `events` to every sink until the run's last event (or until the
/// stream closes). Must be called inside a tokio runtime: forwarding is a
/// task that never blocks; each sink writes from its own thread.
pub fn spawn(mut events: mpsc::UnboundedReceiver<Event>, sinks: Vec<Box<dyn Sink>>) -> Dispatch {
    let mut queues = Vec::with_capacity(sinks.len());
    let mut workers = Vec::with_capacity(sinks.len());
    let mut spawn_errors = Vec::new();
    let mut written = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let label = sink.label();
        let durable = sink.durable();
        let (tx, rx) = std_mpsc::channel::<Arc<Event>>();
        let (done, ack) = watch::channel(0);
        let worker = std::thread::Builder::new()
            .name(format!("sink {label}"))
            .spawn(move || drive(sink, rx, done));
        match worker {
            Ok(handle) => {
                queues.push(tx);
                workers.push((label, handle));
                if durable {
                    written.push(ack);
                }
            }
            Err(source) => spawn_errors.push(SinkError::Write {
                sink: label,
                source,
            }),
        }
    }
    let forward = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let last = event.kind.is_terminal();
            let event = Arc::new(event);
            // A sink that stopped has dropped its queue; the others go on.
            queues.retain(|q| q.send(event.clone()).is_ok());
            if last {
                break;
            }
        }
    });
    Dispatch {
        forward: Some(forward),
        written,
        workers,
        spawn_errors,
    }
}

impl Dispatch {
    /// What each durable sink has written so far, for
    /// [`Emitter::flushed`] (a sink that stopped is not waited for).
    ///
    /// [`Emitter::flushed`]: crate::events::Emitter::flushed
    pub fn acks(&self) -> Vec<EventAck> {
        self.written.clone()
    }

    /// Waits until every sink has written everything it was given; returns
    /// the errors of sinks that stopped early.
    pub async fn finish(mut self) -> Vec<SinkError> {
        if let Some(forward) = self.forward.take() {
            let _ = forward.await;
        }
        let workers = std::mem::take(&mut self.workers);
        let mut errors = std::mem::take(&mut self.spawn_errors);
        let joined = tokio::task::spawn_blocking(move || {
            workers
                .into_iter()
                .filter_map(|(label, handle)| match handle.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(SinkError::Panicked { sink: label }),
                })
                .collect::<Vec<_>>()
        })
        .await;
        match joined {
            Ok(mut e) => errors.append(&mut e),
            Err(_) => errors.push(SinkError::Panicked {
                sink: "sinks".into(),
            }),
        }
        errors
    }
}

/// One sink's thread: events in order, `caught_up` after each burst, then
/// `done` told the last `seq` written.
fn drive(
    mut sink: Box<dyn Sink>,
    rx: std_mpsc::Receiver<Arc<Event>>,
    done: watch::Sender<u64>,
) -> Result<(), SinkError> {
    let fail = |sink: &dyn Sink, source| SinkError::Write {
        sink: sink.label(),
        source,
    };
    let refresh = sink.refresh_every();
    loop {
        let next = match refresh {
            Some(every) => match rx.recv_timeout(every) {
                Ok(event) => Some(event),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    sink.caught_up().map_err(|e| fail(&*sink, e))?;
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => None,
            },
            None => rx.recv().ok(),
        };
        let Some(event) = next else { break };
        sink.event(&event).map_err(|e| fail(&*sink, e))?;
        let mut last = event.seq;
        while let Ok(event) = rx.try_recv() {
            sink.event(&event).map_err(|e| fail(&*sink, e))?;
            last = event.seq;
        }
        sink.caught_up().map_err(|e| fail(&*sink, e))?;
        done.send_replace(last);
    }
    sink.finish().map_err(|e| fail(&*sink, e))
}

#[cfg(test)]
mod tests;

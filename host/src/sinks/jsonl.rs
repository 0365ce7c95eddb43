//! The `jsonl` sink: one event envelope (docs/EVENTS.md) per line.

use super::{Sink, SinkError};
use crate::events::Event;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// Writes each event as one line of JSON and flushes it, so a process that
/// is killed loses nothing it already wrote.
pub struct JsonlSink<W> {
    out: W,
    label: String,
    line: Vec<u8>,
}

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(out: W, label: impl Into<String>) -> Self {
        JsonlSink {
            out,
            label: label.into(),
            line: Vec::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl JsonlSink<std::fs::File> {
    /// Appends to the file at `path`, creating it when missing, readable
    /// and writable by its owner only (events hold the run's input and
    /// output); an existing file keeps its mode.
    pub fn append(path: &Path) -> Result<Self, SinkError> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|source| SinkError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(JsonlSink::new(file, format!("jsonl:{}", path.display())))
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        // One write per line: appended lines from other writers of the same
        // file do not cut through it.
        self.line.clear();
        serde_json::to_writer(&mut self.line, event)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

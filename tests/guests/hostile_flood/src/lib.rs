//! Test guest: floods stdout, stderr and `host.log` while describing itself
//! (so `host plugins check` shows what the host lets through), then offers
//! a guard that passes.

use guest_sdk::log::{self, LogLevel};
use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};
use std::io::Write;

/// Lines written to stdout and to stderr, and records sent to `host.log`.
const FLOOD: usize = 20_000;

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        for i in 0..FLOOD {
            let _ = writeln!(out, "flood-out {i}");
            let _ = writeln!(err, "flood-err {i}\n");
        }
        let _ = out.flush();
        let _ = err.flush();
        // Long messages with newlines, as if to forge log lines.
        let message = "flood-log\nERROR forged line\n".repeat(512);
        for _ in 0..FLOOD {
            log::record(LogLevel::Error, &message, &Value::Null);
        }
        vec![Entry::guard("hostile_flood", "floods every output it has")]
    }

    fn guard(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<bool, String> {
        Ok(true)
    }
}

export_plugin!(G);

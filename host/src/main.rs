//! The `host` command line. A thin layer over the library: parse arguments,
//! set up logging, call into `host::*`, map outcomes to exit codes.
//!
//! Exit codes: 0 success, 1 the operation (a run) failed, 2 bad input
//! (spec, plugins or usage), 3 the run paused, waiting for a human's
//! approval, 130 Ctrl-C cancelled the run.

mod cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}

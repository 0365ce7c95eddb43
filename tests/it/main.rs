//! The end-to-end tests of `host`, compiled into one binary.
//!
//! Each module was once its own `[[test]]` target; every target linked the
//! whole host and wasmtime, so a change to the library paid for eleven links.
//! As one binary the tests also share one process: nothing here may depend on
//! process-wide state that another test changes (environment variables, the
//! working directory, global subscribers). Tests that need such state run the
//! real `host` binary as a child process instead.

mod common;

mod agent_tools;
mod cli_plugins;
mod console;
mod dev;
mod durable;
mod egress;
mod engine;
mod fleet;
mod go;
mod guests;
mod hosted;
mod hostile;
mod hostile_limits;
mod hostile_load;
mod http_tools;
mod llm;
mod mcp;
mod model_settings;
mod otlp;
mod outbox;
mod plugins;
mod replay;
mod replies;
mod run;
mod scaffold;
mod sdk;
mod secrets;
mod serve_api;
mod serve_load;
mod serve_support;
mod sinks;
mod wire_sent;
mod wire_styles;

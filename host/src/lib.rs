//! `host`: runs declarative multi-agent LLM workflows whose user logic —
//! guards, input mappers, reducers, tools and guardrails — lives in sandboxed
//! WebAssembly components.
//!
//! Module map (data flows one way, top to bottom):
//! - [`llm`]: model providers (OpenAI Responses / Chat, compatible servers,
//!   an offline scripted provider) behind one trait; retries, timeouts, streaming.
//! - [`plugin`]: the wasmtime engine, plugin loading, caching, limits, calls.
//! - [`spec`]: the workflow spec: serde types, validation, JSON Schema.
//! - [`store`]: durable runs, their journals and sessions (SQLite or in memory).
//! - [`events`]: the run event envelope and its ordered per-run stream.
//! - [`sinks`]: where events go: readable lines, JSON lines (stdout or a file),
//!   HTTP callbacks through the store's outbox.
//! - [`outbox`]: delivery of the outbox: in order per run, at least once,
//!   signed, with retries.
//! - [`telemetry`]: OpenTelemetry (OTLP/HTTP) export of the run's `tracing` spans.

pub mod agent;
pub mod approvals;
pub mod engine;
pub mod events;
pub mod journal;
pub mod llm;
pub mod outbox;
pub mod plan;
pub mod plugin;
pub mod retry;
pub mod secret;
pub mod sinks;
pub mod spec;
pub mod store;
pub mod telemetry;
pub mod usage;
pub mod util;

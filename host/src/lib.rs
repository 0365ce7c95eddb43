//! `host`: runs declarative multi-agent LLM workflows whose user logic —
//! guards, input mappers, reducers, tools and guardrails — lives in sandboxed
//! WebAssembly components.
//!
//! Module map, lowest layer first (each imports only modules listed
//! before it; `.ci/layers.py` checks this, docs/ARCHITECTURE.md explains it):
//! - [`util`], [`usage`], [`secret`], [`retry`]: small shared pieces;
//!   [`egress`]: which network destinations the host's HTTP clients may
//!   reach (metadata refused, private only with the operator's allowance).
//! - [`llm`]: model providers (OpenAI Responses / Chat, compatible servers,
//!   an offline scripted provider) behind one trait; retries, streaming.
//! - [`store`]: durable runs, their journals, sessions and the outbox
//!   (SQLite or in memory).
//! - [`events`]: the run event envelope, its typed data and ordered stream.
//! - [`spec`]: the workflow spec: serde types, validation, JSON Schema.
//! - [`plugin`]: the wasmtime engine, plugin loading, caching, limits, calls.
//! - [`journal`]: what a run records, as typed entries under typed keys.
//! - [`plan`]: the executable workflow, compiled from a spec and plugins.
//! - [`agent`]: one agent's turn loop: model calls, tools, guardrails,
//!   approvals, session history.
//! - [`engine`]: runs: stages, steps, hooks, resume, replay; the public
//!   `Runner` API.
//! - [`approvals`]: pending approvals and decisions over runs' journals.
//! - [`sinks`]: where events go: readable lines, JSON lines, HTTP callbacks
//!   through the store's outbox, live terminal progress.
//! - [`outbox`]: delivery of the outbox: in order per run, at least once,
//!   signed, with retries.
//! - [`telemetry`]: OpenTelemetry (OTLP/HTTP) export of the run's spans.

pub mod agent;
pub mod approvals;
pub mod egress;
pub mod engine;
pub mod events;
pub mod journal;
pub mod llm;
pub mod mcp;
pub mod outbox;
pub mod plan;
pub mod plugin;
pub mod retry;
pub mod secret;
pub mod server;
pub mod sinks;
pub mod spec;
pub mod store;
pub mod telemetry;
pub mod usage;
pub mod util;

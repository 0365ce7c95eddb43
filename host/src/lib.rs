//! `host`: runs declarative multi-agent LLM workflows whose user logic —
//! guards, input mappers, reducers, tools and guardrails — lives in sandboxed
//! WebAssembly components.
//!
//! Module map (data flows one way, top to bottom):
//! - [`plugin`]: the wasmtime engine, plugin loading, caching, limits, calls.

pub mod plugin;

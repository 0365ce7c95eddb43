//! The Go workflow runner's request (`WorkflowRequest` of the Go design
//! this product comes from), accepted as a spec exactly as its users send
//! it: its JSON field names, its validation rules (reported at paths of the
//! Go document: `$.workflow.agents[1].handoff[0]`), its callback modes.
//!
//! A document is taken for this shape when it has a top-level `query` or a
//! `workflow.starting_agent`. [`GoRequest`] (in `types.rs`) is the shape;
//! `convert.rs` turns it into a native [`Spec`](super::Spec); `tools.rs`
//! maps its `tools` and `mcp` entries. Every Go field is either honoured or
//! refused with its path — none is dropped. docs/SPEC.md has the full
//! field-by-field table; in short:
//!
//! | Go request | here |
//! |---|---|
//! | `query` (required) | `run.input` |
//! | `session.session_id`, `credentials.user_id`, `credentials.account_id` (all required) | `run.session.{id,user_id,account_id}` |
//! | `session.history_size` (≥ 0; 0 = all) | `run.session.history_size` |
//! | `session.max_turns` (≥ 0; 0 = default) | the step's `max_turns` (the run's turn budget) |
//! | `credentials.capabilities`, `.metadata`, `metadata`, `context`, `workflow.metadata`, agents' `annotations` | kept with the run's stored request; `metadata` also in `run.metadata`, `annotations` in the agent's |
//! | `callback` (`{target, mode}` or a bare target) | `http` (default; needs an http(s) `target`) → an `http` callback with `format: go`; `stdout` / `stdout_verbose` → that callback with `format: go` (the Go printer) |
//! | `workflow.name` (required), `starting_agent` (must name an agent) | `workflow.name` (key: its slug); one sequential stage `main` with one step running it |
//! | `workflow.agents[i]` | `agents.<name>` (names unique), with `allow_handoff_agents` |
//! | `display_name`, `instructions`, `handoff` (singular key), `handoff_description`, `output_type` | `display_name`, `instructions`, `handoffs`, `handoff_description`, `output_schema` (inline `schema`, or `json_object`) |
//! | `model` (absent: [`DEFAULT_MODEL`]) | provider `openai`; `model`, `temperature`, `top_p`, `max_tokens`, `reasoning.effort`, `reasoning.summary`, `verbosity`, `metadata`, `extra_headers`, `extra_query`, `tool_choice` honoured |
//! | `prompt_id` | the agent's stored `prompt` |
//! | `agent_tools[j]` | `agent_tools`: another agent offered as a tool |
//! | `tools[j]` of type `web_search`, `file_search`, `code_interpreter`, `image_generation`, `hosted_mcp` | `hosted_tools` ([`HostedTool`](super::HostedTool)) |
//! | `tools[j]` of type `plugin` (extension) | `tools`: the WASM plugin `name`, with `config`; `require_approval: always` makes each call wait for a human |
//! | `mcp[k]` | a hosted MCP tool (`server_url` = `address`; label defaults to `<workflow>_<agent>`; `additional.headers` / `.allowed_tools`) |
//! | `input_guardrails`, `output_guardrails` | guardrail references by `name`, with `config` and `target`: a plugin of that name, else the host's built-in preset |
//!
//! Refused with their path: a provider other than `openai`, MCP types other
//! than hosted (stdio servers), and any tool `config` key the host does not
//! read.
//!
//! Extensions (not in the Go runner, harmless to its requests):
//! `credentials.api_key` / `base_url` (a [`Secret`](super::Secret) key for
//! this request and where it goes; compiling refuses a `base_url` without
//! `api_key`), `callback.secret` / `headers` (signing and headers of the
//! POSTs), `callback.format: host` (this host's envelope instead of the Go
//! one), and `{"type": "plugin", "name": …}` tools.

mod convert;
mod tools;
mod types;

pub use types::{
    GoAgent, GoAgentTool, GoCallback, GoCallbackMode, GoCallbackObject, GoCredentials, GoGuardrail,
    GoMcp, GoModel, GoOutputType, GoReasoning, GoRequest, GoSession, GoTool, GoWorkflow,
};

use super::GoOrigin;
use serde_json::Value;

/// The model of a Go agent without `model`: what the Agents SDK defaults to.
pub const DEFAULT_MODEL: &str = "gpt-4.1";

/// Whether `doc` is in the Go runner's request shape.
pub(super) fn is_go_request(doc: &Value) -> bool {
    doc.get("query").is_some() || doc.pointer("/workflow/starting_agent").is_some()
}

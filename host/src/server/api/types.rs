//! The JSON bodies of the `/v1` API: what requests carry and responses
//! return. Documented in docs/API.md; the OpenAPI document is generated
//! from these types and the handlers.

use crate::journal::StepSummary;
use crate::plugin::Plugin;
use crate::store::RunRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/runs`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The key of a registered workflow (`GET /v1/workflows`).
    pub workflow: Option<String>,
    /// A whole workflow spec instead of `workflow`; only when the server
    /// runs with `--allow-inline-specs`.
    #[schema(value_type = Option<Object>)]
    pub spec: Option<Value>,
    /// The run's input: text or any JSON value. Default: the spec's
    /// `run.input`.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub input: Value,
    /// Conversation history shared by runs of the caller's account and user.
    pub session: Option<SessionRef>,
    /// Kept with the run, returned by `GET /v1/runs/{id}`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// An `https://` URL that gets the run's events (signed, retried,
    /// through the outbox; docs/EVENTS.md).
    pub callback: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    pub id: String,
    /// Load at most this many of the newest items.
    pub history_size: Option<u32>,
}

/// `202 Accepted`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    pub run_id: String,
    /// `queued` (or the run's status when an `Idempotency-Key` named an
    /// existing run).
    pub status: String,
    /// The run: `/v1/runs/{id}`.
    pub url: String,
    /// Its Server-Sent Events: `/v1/runs/{id}/events`.
    pub events_url: String,
}

/// `GET /v1/runs` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// queued, running, waiting_approval, completed, failed, cancelled.
    pub status: Option<String>,
    /// A workflow key.
    pub workflow: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One run in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    pub run_id: String,
    pub status: String,
    pub workflow: String,
    pub spec_digest: String,
    pub session_id: Option<String>,
    pub last_agent: Option<String>,
    /// Tokens per model.
    #[schema(value_type = Object)]
    pub usage: Value,
    pub error: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<&RunRecord> for RunSummary {
    fn from(r: &RunRecord) -> Self {
        RunSummary {
            run_id: r.run_id.clone(),
            status: r.status.as_str().to_owned(),
            workflow: r.workflow_key.clone(),
            spec_digest: r.spec_digest.clone(),
            session_id: r.session_id.clone(),
            last_agent: r.last_agent.clone(),
            usage: usage_json(&r.usage),
            error: r.error.clone(),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

fn usage_json(usage: &BTreeMap<String, crate::usage::Usage>) -> Value {
    serde_json::to_value(usage).unwrap_or(Value::Null)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// `GET /v1/runs/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Every step with a result, in the order they finished.
    pub steps: Vec<StepView>,
    /// Every plugin call the journal records (hooks of steps and stages,
    /// tools, guardrails), in order: which build served it.
    pub served: Vec<ServedView>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    pub stage: String,
    pub index: u32,
    /// completed, skipped or failed.
    pub status: String,
    pub agent: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub turns: u32,
    #[schema(value_type = Object)]
    pub usage: Value,
    /// The plugins that served its hooks and tools: name → SHA-256 of the
    /// build that ran.
    pub plugins: BTreeMap<String, String>,
}

impl From<&StepSummary> for StepView {
    fn from(s: &StepSummary) -> Self {
        StepView {
            stage: s.step.stage.clone(),
            index: s.step.index,
            status: s.status.as_str().to_owned(),
            agent: s.done.as_ref().and_then(|d| d.agent.clone()),
            output: s.done.as_ref().map(|d| d.output.clone()),
            error: s.error.clone(),
            turns: s.done.as_ref().map_or(0, |d| d.turns),
            usage: s
                .done
                .as_ref()
                .map_or(Value::Null, |d| usage_json(&d.usage)),
            plugins: s.plugins.clone(),
        }
    }
}

/// One recorded plugin call and the build that served it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServedView {
    /// The journal key, e.g. `analyze/reduce` or `research/0/t1/tool/call_1`.
    pub key: String,
    pub plugin: String,
    /// SHA-256 of the build.
    pub digest: String,
}

/// A tool call waiting for a human's decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Approval {
    pub run_id: String,
    pub call_id: String,
    pub tool: String,
    /// The call's arguments as the model sent them (JSON text).
    pub arguments: String,
    pub stage: Option<String>,
    pub step: Option<String>,
    pub agent: Option<String>,
    pub requested_at_ms: u64,
    /// The journal key the decision is recorded under; names the call
    /// exactly when call ids repeat.
    pub key: String,
}

impl From<crate::approvals::PendingCall> for Approval {
    fn from(p: crate::approvals::PendingCall) -> Self {
        Approval {
            run_id: p.run_id,
            call_id: p.call_id,
            tool: p.tool,
            arguments: p.arguments,
            stage: p.stage,
            step: p.step,
            agent: p.agent,
            requested_at_ms: p.requested_at_ms,
            key: p.key,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<Approval>,
}

/// `POST /v1/runs/{id}/approvals/{call_id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve` or `reject`.
    pub decision: String,
    /// Why (a rejection's reason goes to the model as the tool's result).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decided {
    pub run_id: String,
    pub call_id: String,
    pub decision: String,
    /// Whether the run continues now (no other call waits).
    pub resumed: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    pub name: String,
    pub kind: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginView {
    pub name: String,
    pub kinds: Vec<String>,
    pub entries: Vec<EntryView>,
    /// SHA-256 of the build serving; absent when none loaded.
    pub digest: Option<String>,
    pub wit_version: Option<String>,
    pub size: Option<u64>,
    pub loaded_at_ms: Option<u64>,
    pub last_reload_error: Option<String>,
    pub last_reload_error_at_ms: Option<u64>,
}

impl PluginView {
    pub fn of(p: &Plugin, state: &super::super::catalog::PluginState) -> Self {
        PluginView {
            name: p.name().to_owned(),
            kinds: p.kinds().iter().map(|k| k.as_str().to_owned()).collect(),
            entries: p
                .entries()
                .iter()
                .map(|e| EntryView {
                    name: e.name.clone(),
                    kind: e.kind.as_str().to_owned(),
                    description: e.description.clone(),
                })
                .collect(),
            digest: Some(p.digest().to_owned()),
            wit_version: Some(p.wit_version().to_owned()),
            size: Some(p.size()),
            loaded_at_ms: state.loaded_at_ms,
            last_reload_error: state.last_error.clone(),
            last_reload_error_at_ms: state.last_error_at_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowView {
    pub key: String,
    pub name: String,
    pub file: String,
    pub spec_digest: String,
    pub loaded_at_ms: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowProblemView {
    pub file: String,
    pub errors: Vec<crate::server::error::FieldError>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowView>,
    /// Files that do not load (not served), with why.
    pub problems: Vec<WorkflowProblemView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub running: usize,
    pub queued: usize,
}

/// `POST /v1/runs/{id}/replay`: the replay report (see `host replay
/// --json`, docs/STATE.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayView {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub report: Value,
}

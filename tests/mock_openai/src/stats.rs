//! Counters and the request log.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Endpoint;

/// A snapshot of the server's counters (also served as JSON by `GET /stats`).
///
/// `requests` counts API requests (model endpoints and `/v1/models`), not
/// `/stats` or other control endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// All API requests, including rejected ones.
    pub requests: u64,
    /// `POST /v1/responses` requests (streamed or not).
    pub responses: u64,
    /// Of which streamed.
    pub responses_stream: u64,
    /// `POST /v1/chat/completions` requests (streamed or not).
    pub chat: u64,
    /// Of which streamed.
    pub chat_stream: u64,
    /// `GET /v1/models` requests.
    pub models: u64,
    /// Requests to unknown paths (404).
    pub other: u64,
    /// Requests rejected with 400 (invalid JSON or missing fields).
    pub bad_requests: u64,
    /// Streamed model requests (both APIs).
    pub streamed: u64,
    /// Model requests per model name.
    pub per_model: BTreeMap<String, u64>,
    /// Model requests being handled now (until their body is fully sent).
    pub in_flight: u64,
    /// Highest `in_flight` seen since start / reset.
    pub max_in_flight: u64,
    /// Hits per rule name.
    pub rule_hits: BTreeMap<String, u64>,
    /// Requests answered by the default behaviour.
    pub default_replies: u64,
    /// Replies that were function calls (one per reply, not per call).
    pub tool_calls: u64,
    /// Replies that were structured JSON.
    pub structured: u64,
    /// Replies that were MCP approval requests.
    pub mcp_approval_requests: u64,
    /// Replies with hosted tool items (scripted or `[[use_hosted]]`).
    #[serde(default)]
    pub hosted_replies: u64,
    /// Faults served.
    pub faults: u64,
    /// Faults served per kind (`rate_limit`, `server_error`, `error`, `hang`,
    /// `malformed`, `truncated_stream`, `raw`).
    pub faults_by_kind: BTreeMap<String, u64>,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Request path (without query).
    pub path: String,
    /// The query string, if any (`api-version=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// API, for model requests.
    pub endpoint: Option<Endpoint>,
    /// `model` of the body, when readable.
    pub model: Option<String>,
    /// Whether the body asked for a stream.
    pub stream: bool,
    /// Parsed JSON body (None when `log_bodies` is off or the body is not JSON).
    pub body: Option<Value>,
    /// Headers of interest (content-type, accept, user-agent, openai-*,
    /// x-stainless-*, x-mock-*, idempotency-key). Never `authorization`.
    pub headers: BTreeMap<String, String>,
    /// Whether an `Authorization` header was present (its value is not kept).
    pub has_authorization: bool,
    /// Scheme of the `Authorization` header (e.g. `Bearer`), never the key.
    pub auth_scheme: Option<String>,
    /// Name of the rule that answered (None: default behaviour).
    pub rule: Option<String>,
    /// Fault served, if any.
    pub fault: Option<String>,
    /// Wall-clock arrival time.
    pub received_at: SystemTime,
    /// Arrival time since the server started (monotonic).
    pub offset: Duration,
}

pub(crate) const FAULT_KINDS: [&str; 7] = [
    "rate_limit",
    "server_error",
    "error",
    "hang",
    "malformed",
    "truncated_stream",
    "raw",
];

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub responses: AtomicU64,
    pub responses_stream: AtomicU64,
    pub chat: AtomicU64,
    pub chat_stream: AtomicU64,
    pub models: AtomicU64,
    pub other: AtomicU64,
    pub bad_requests: AtomicU64,
    pub streamed: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    pub default_replies: AtomicU64,
    pub tool_calls: AtomicU64,
    pub structured: AtomicU64,
    pub mcp_approval_requests: AtomicU64,
    pub hosted_replies: AtomicU64,
    pub faults: AtomicU64,
    pub faults_by_kind: [AtomicU64; 7],
    pub per_model: Mutex<HashMap<String, u64>>,
}

pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Counters {
    pub(crate) fn count_model(&self, model: &str) {
        let mut map = self
            .per_model
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(model) {
            *n += 1;
        } else {
            map.insert(model.to_owned(), 1);
        }
    }

    pub(crate) fn count_fault(&self, kind: &str) {
        inc(&self.faults);
        if let Some(i) = FAULT_KINDS.iter().position(|k| *k == kind) {
            inc(&self.faults_by_kind[i]);
        }
    }

    pub(crate) fn snapshot(&self, rule_hits: BTreeMap<String, u64>) -> Stats {
        let per_model = self
            .per_model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let faults_by_kind = FAULT_KINDS
            .iter()
            .zip(self.faults_by_kind.iter())
            .filter(|(_, n)| get(n) > 0)
            .map(|(k, n)| ((*k).to_owned(), get(n)))
            .collect();
        Stats {
            requests: get(&self.requests),
            responses: get(&self.responses),
            responses_stream: get(&self.responses_stream),
            chat: get(&self.chat),
            chat_stream: get(&self.chat_stream),
            models: get(&self.models),
            other: get(&self.other),
            bad_requests: get(&self.bad_requests),
            streamed: get(&self.streamed),
            per_model,
            in_flight: get(&self.in_flight),
            max_in_flight: get(&self.max_in_flight),
            rule_hits,
            default_replies: get(&self.default_replies),
            tool_calls: get(&self.tool_calls),
            structured: get(&self.structured),
            mcp_approval_requests: get(&self.mcp_approval_requests),
            hosted_replies: get(&self.hosted_replies),
            faults: get(&self.faults),
            faults_by_kind,
        }
    }

    pub(crate) fn reset(&self) {
        for counter in [
            &self.requests,
            &self.responses,
            &self.responses_stream,
            &self.chat,
            &self.chat_stream,
            &self.models,
            &self.other,
            &self.bad_requests,
            &self.streamed,
            &self.default_replies,
            &self.tool_calls,
            &self.structured,
            &self.mcp_approval_requests,
            &self.hosted_replies,
            &self.faults,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        for counter in &self.faults_by_kind {
            counter.store(0, Ordering::Relaxed);
        }
        self.max_in_flight
            .store(get(&self.in_flight), Ordering::Relaxed);
        self.per_model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Counts a model request as in flight while alive.
pub(crate) struct InFlight(Arc<crate::server::Shared>);

impl InFlight {
    pub(crate) fn enter(shared: &Arc<crate::server::Shared>) -> Self {
        let counters = &shared.stats;
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

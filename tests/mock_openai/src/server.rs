//! The HTTP server: routing, rules, latency, faults.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::{Endpoint, Fault, MockConfig, Reply, Rule};
use crate::hosted;
use crate::render::{self, Call, Meta, Output};
use crate::request::{Format, ReqView};
use crate::respond::{JSON, SSE, api_headers, error_response, event_body, fault_response};
use crate::restyle;
use crate::schema::{generate, short_hash};
use crate::stats::{Counters, InFlight, LoggedRequest, Stats, inc};
use crate::style::{self, Styles};

const MAX_BODY: usize = 64 << 20;
const MAX_KNOWN_CALLS: usize = 100_000;

struct CompiledRule {
    rule: Rule,
    name: String,
    seen: AtomicU64,
    hits: AtomicU64,
}

pub(crate) struct RuleSet {
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    pub(crate) fn new(rules: Vec<Rule>) -> Self {
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| CompiledRule {
                name: rule.name.clone().unwrap_or_else(|| format!("rule{i}")),
                rule,
                seen: AtomicU64::new(0),
                hits: AtomicU64::new(0),
            })
            .collect();
        Self { rules }
    }

    /// First rule matching `view`, counting `after`/`times`.
    fn find(&self, view: &ReqView<'_>) -> Option<usize> {
        for (index, compiled) in self.rules.iter().enumerate() {
            let m = &compiled.rule.matcher;
            if !view.satisfies(m) {
                continue;
            }
            if m.after > 0 || m.times.is_some() {
                let k = compiled.seen.fetch_add(1, Ordering::SeqCst);
                if k < m.after || m.times.is_some_and(|t| k - m.after >= t) {
                    continue;
                }
            }
            compiled.hits.fetch_add(1, Ordering::Relaxed);
            return Some(index);
        }
        None
    }

    fn hits(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in &self.rules {
            *out.entry(r.name.clone()).or_insert(0) += r.hits.load(Ordering::Relaxed);
        }
        out
    }

    fn reset(&self) {
        for r in &self.rules {
            r.seen.store(0, Ordering::SeqCst);
            r.hits.store(0, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Shared {
    latency: Duration,
    spread: bool,
    chunks: usize,
    log_capacity: usize,
    log_bodies: bool,
    models: Vec<String>,
    styles: Styles,
    pub(crate) rules: RwLock<Arc<RuleSet>>,
    pub(crate) stats: Counters,
    pub(crate) log: Mutex<VecDeque<LoggedRequest>>,
    log_seq: AtomicU64,
    ids: AtomicU64,
    calls: Mutex<HashMap<String, String>>,
    shutdown: watch::Receiver<bool>,
    started: Instant,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Arguments as sent on the wire: strings verbatim, other values serialized.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const LOGGED_HEADERS: [&str; 7] = [
    "content-type",
    "accept",
    "user-agent",
    "idempotency-key",
    "openai-organization",
    "openai-project",
    "openai-beta",
];

struct LogInfo<'a> {
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    endpoint: Option<Endpoint>,
    model: Option<&'a str>,
    stream: bool,
    body: Option<&'a Value>,
    rule: Option<&'a str>,
    fault: Option<&'static str>,
}

/// What to send, decided synchronously before any sleep.
pub(crate) enum Plan {
    Json(Bytes),
    Sse(Vec<Bytes>),
    Fault {
        fault: Fault,
        stream: bool,
        chat: bool,
        model: String,
        normal: Box<Plan>,
    },
}

struct Prepared {
    n: u64,
    latency: Duration,
    spread: bool,
    plan: Plan,
}

impl Shared {
    pub(crate) fn new(config: MockConfig, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            latency: config.latency,
            spread: config.spread_stream_latency,
            chunks: config.stream_chunks.max(1),
            log_capacity: config.log_capacity,
            log_bodies: config.log_bodies,
            models: config.models,
            styles: Styles::new(&config.styles),
            rules: RwLock::new(Arc::new(RuleSet::new(config.rules))),
            stats: Counters::default(),
            log: Mutex::new(VecDeque::new()),
            log_seq: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            calls: Mutex::new(HashMap::new()),
            shutdown,
            started: Instant::now(),
        }
    }

    fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn known_call(&self, call_id: &str) -> Option<String> {
        lock(&self.calls).get(call_id).cloned()
    }

    fn remember_calls(&self, calls: &[Call]) {
        let mut map = lock(&self.calls);
        if map.len() > MAX_KNOWN_CALLS {
            map.clear();
        }
        for c in calls {
            map.insert(c.call_id.clone(), c.name.clone());
        }
    }

    fn log(&self, info: LogInfo<'_>) {
        if self.log_capacity == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        for (name, value) in info.headers {
            let name = name.as_str();
            let interesting = LOGGED_HEADERS.contains(&name)
                || name.starts_with("x-stainless-")
                || name.starts_with("x-mock-");
            if interesting && let Ok(v) = value.to_str() {
                headers.insert(name.to_owned(), v.to_owned());
            }
        }
        let auth = info.headers.get(header::AUTHORIZATION);
        let auth_scheme = auth
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_owned);
        let entry = LoggedRequest {
            seq: self.log_seq.fetch_add(1, Ordering::Relaxed) + 1,
            method: info.method.to_string(),
            path: info.path.to_owned(),
            query: info.query.map(str::to_owned),
            endpoint: info.endpoint,
            model: info.model.map(str::to_owned),
            stream: info.stream,
            body: if self.log_bodies {
                info.body.cloned()
            } else {
                None
            },
            headers,
            has_authorization: auth.is_some(),
            auth_scheme,
            rule: info.rule.map(str::to_owned),
            fault: info.fault.map(str::to_owned),
            received_at: SystemTime::now(),
            offset: self.started.elapsed(),
        };
        let mut log = lock(&self.log);
        if log.len() >= self.log_capacity {
            log.pop_front();
        }
        log.push_back(entry);
    }

    fn default_output(&self, view: &ReqView<'_>, n: u64) -> Output {
        if let Some((items, text)) = hosted::default_items(view, n) {
            inc(&self.stats.hosted_replies);
            let text = text.then(|| format!("reply {}", short_hash(&view.last_user)));
            return Output::Hosted { items, text };
        }
        let hash = short_hash(&view.last_user);
        if view.marker
            && view.tool_results.is_empty()
            && let Some(tool) = view.tools.first()
        {
            inc(&self.stats.tool_calls);
            let empty = json!({"type": "object", "properties": {}});
            let params = tool.parameters.filter(|p| !p.is_null()).unwrap_or(&empty);
            let calls = vec![Call {
                item_id: format!("fc_mock{n}_0"),
                call_id: format!("call_mock{n}_0"),
                name: tool.name.to_owned(),
                arguments: generate(params, &format!("arg:{hash}")).to_string(),
            }];
            self.remember_calls(&calls);
            return Output::Calls(calls);
        }
        match view.format {
            Format::JsonSchema(schema) => {
                inc(&self.stats.structured);
                let empty = json!({"type": "object", "properties": {}});
                let schema = if schema.is_null() { &empty } else { schema };
                Output::Text(generate(schema, &hash).to_string())
            }
            Format::JsonObject => {
                inc(&self.stats.structured);
                Output::Text(json!({"reply": hash}).to_string())
            }
            Format::Text => Output::Text(format!("reply {hash}")),
        }
    }

    fn output(&self, view: &ReqView<'_>, reply: &Reply, n: u64) -> Output {
        match reply {
            Reply::Default => {
                inc(&self.stats.default_replies);
                self.default_output(view, n)
            }
            Reply::Fault(_) => self.default_output(view, n),
            Reply::Text(text) => Output::Text(text.clone()),
            Reply::Json(value) => {
                inc(&self.stats.structured);
                Output::Text(value.to_string())
            }
            Reply::ToolCalls(specs) => {
                inc(&self.stats.tool_calls);
                let calls: Vec<Call> = specs
                    .iter()
                    .enumerate()
                    .map(|(i, spec)| Call {
                        item_id: format!("fc_mock{n}_{i}"),
                        call_id: spec
                            .call_id
                            .clone()
                            .unwrap_or_else(|| format!("call_mock{n}_{i}")),
                        name: spec.name.clone(),
                        arguments: arguments_text(&spec.arguments),
                    })
                    .collect();
                self.remember_calls(&calls);
                Output::Calls(calls)
            }
            Reply::Hosted(reply) => {
                inc(&self.stats.hosted_replies);
                Output::Hosted {
                    items: hosted::items_from_specs(&reply.hosted, &view.last_user, n),
                    text: reply.text.clone(),
                }
            }
            Reply::McpApprovalRequest(spec) => {
                inc(&self.stats.mcp_approval_requests);
                Output::Approval {
                    id: spec.id.clone().unwrap_or_else(|| format!("mcpr_mock{n}")),
                    name: spec.name.clone(),
                    arguments: arguments_text(&spec.arguments),
                    server_label: spec.server_label.clone(),
                }
            }
        }
    }

    fn render(
        &self,
        body: &Value,
        view: &ReqView<'_>,
        out: &Output,
        meta: Meta,
        styles: Styles,
    ) -> Plan {
        if !styles.is_empty() {
            return match (view.endpoint, view.stream) {
                (Endpoint::Chat, false) => Plan::Json(restyle::json_body(
                    &render::chat_json(view, out, meta),
                    true,
                    styles,
                )),
                (Endpoint::Chat, true) => {
                    Plan::Sse(restyle::chat_stream(view, out, meta, self.chunks, styles))
                }
                (_, false) => Plan::Json(restyle::json_body(
                    &render::responses_json(body, view, out, meta),
                    false,
                    styles,
                )),
                (_, true) => Plan::Sse(restyle::responses_stream(
                    &render::responses_events(body, view, out, meta, self.chunks),
                    styles,
                )),
            };
        }
        match (view.endpoint, view.stream) {
            (Endpoint::Chat, false) => Plan::Json(render::chat_json(view, out, meta)),
            (Endpoint::Chat, true) => Plan::Sse(render::chat_events(view, out, meta, self.chunks)),
            (_, false) => Plan::Json(render::responses_json(body, view, out, meta)),
            (_, true) => Plan::Sse(render::responses_events(body, view, out, meta, self.chunks)),
        }
    }

    /// Parses, matches and renders a model request; `Err` is an immediate
    /// error response.
    fn prepare(
        &self,
        endpoint: Endpoint,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        raw: &[u8],
    ) -> std::result::Result<Prepared, Box<Response>> {
        let path = uri.path();
        inc(&self.stats.requests);
        match endpoint {
            Endpoint::Chat => inc(&self.stats.chat),
            _ => inc(&self.stats.responses),
        }
        let mut info = LogInfo {
            method,
            path,
            query: uri.query(),
            headers,
            endpoint: Some(endpoint),
            model: None,
            stream: false,
            body: None,
            rule: None,
            fault: None,
        };
        // `FromStr for Value` is compiled (optimized) in serde_json, unlike a
        // `from_slice` instantiated in this opt-level-0 crate.
        let parsed = std::str::from_utf8(raw)
            .map_err(|e| e.to_string())
            .and_then(|text| text.parse::<Value>().map_err(|e| e.to_string()));
        let body: Value = match parsed {
            Ok(v) => v,
            Err(e) => {
                inc(&self.stats.bad_requests);
                self.log(info);
                let msg = format!(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. {e})"
                );
                return Err(Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    &msg,
                    "invalid_request_error",
                    None,
                    None,
                )));
            }
        };
        info.body = Some(&body);
        info.model = body.get("model").and_then(Value::as_str);
        let known = |id: &str| self.known_call(id);
        let view = match ReqView::parse(endpoint, &body, &known) {
            Ok(v) => v,
            Err(bad) => {
                inc(&self.stats.bad_requests);
                self.log(info);
                return Err(Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    &bad.message,
                    "invalid_request_error",
                    bad.param.as_deref(),
                    bad.code,
                )));
            }
        };
        info.stream = view.stream;
        if view.stream {
            inc(&self.stats.streamed);
            match endpoint {
                Endpoint::Chat => inc(&self.stats.chat_stream),
                _ => inc(&self.stats.responses_stream),
            }
        }
        self.stats.count_model(view.model);

        let header_styles = match style::from_header(headers) {
            Ok(s) => s,
            Err(message) => {
                inc(&self.stats.bad_requests);
                self.log(info);
                return Err(Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    &message,
                    "invalid_request_error",
                    Some(style::STYLE_HEADER),
                    None,
                )));
            }
        };
        let rules = self.rules();
        let rule = rules.find(&view).and_then(|i| rules.rules.get(i));
        // Precedence: header, then the rule's styles, then the global ones.
        let styles = header_styles
            .or_else(|| rule.and_then(|r| r.rule.styles.as_deref()).map(Styles::new))
            .unwrap_or(self.styles);
        info.rule = rule.map(|r| r.name.as_str());
        let reply = rule.map_or(&Reply::Default, |r| &r.rule.reply);
        if let Reply::Fault(fault) = reply {
            info.fault = Some(fault.kind());
        }
        self.log(info);

        let latency = header_latency(headers)
            .or_else(|| rule.and_then(|r| r.rule.latency))
            .unwrap_or(self.latency);
        let spread = rule
            .and_then(|r| r.rule.spread_stream_latency)
            .unwrap_or(self.spread);
        let n = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
        let meta = Meta {
            n,
            created: now_secs(),
        };
        let plan = match reply {
            Reply::Fault(fault) => {
                self.stats.count_fault(fault.kind());
                let normal = if matches!(fault, Fault::TruncatedStream { .. }) {
                    let out = self.default_output(&view, n);
                    self.render(&body, &view, &out, meta, styles)
                } else {
                    Plan::Json(Bytes::new())
                };
                Plan::Fault {
                    fault: fault.clone(),
                    stream: view.stream,
                    chat: endpoint == Endpoint::Chat,
                    model: view.model.to_owned(),
                    normal: Box::new(normal),
                }
            }
            _ => {
                let out = self.output(&view, reply, n);
                self.render(&body, &view, &out, meta, styles)
            }
        };
        Ok(Prepared {
            n,
            latency,
            spread: spread && view.stream,
            plan,
        })
    }
}

fn header_latency(headers: &HeaderMap) -> Option<Duration> {
    let ms: f64 = headers
        .get("x-mock-latency-ms")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if ms.is_finite() && ms >= 0.0 {
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        None
    }
}

async fn serve_model(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let guard = InFlight::enter(&shared);
    let prepared = match shared.prepare(endpoint, &method, &uri, &headers, &raw) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    drop(raw);
    let Prepared {
        n,
        latency,
        spread,
        plan,
    } = prepared;
    if let Plan::Fault {
        fault: Fault::Hang, ..
    } = &plan
    {
        let mut rx = shared.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        let error = futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("mock: hang released by shutdown"))
        });
        return (api_headers(n, latency, JSON), Body::from_stream(error)).into_response();
    }
    let spread_events = match &plan {
        Plan::Sse(events) if spread && !latency.is_zero() => Some(events.len().max(1)),
        _ => None,
    };
    let delay = match spread_events {
        Some(count) => latency / u32::try_from(count).unwrap_or(u32::MAX),
        None => {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            Duration::ZERO
        }
    };
    match plan {
        Plan::Json(bytes) => {
            let response = (api_headers(n, latency, JSON), bytes).into_response();
            drop(guard);
            response
        }
        Plan::Sse(events) if delay.is_zero() => {
            // Whole stream at once: one buffer with a Content-Length (cheapest,
            // and readable by minimal benchmark clients).
            let mut all = Vec::with_capacity(events.iter().map(Bytes::len).sum());
            for e in &events {
                all.extend_from_slice(e);
            }
            let response = (api_headers(n, latency, SSE), Bytes::from(all)).into_response();
            drop(guard);
            response
        }
        Plan::Sse(events) => (
            api_headers(n, latency, SSE),
            event_body(events, delay, None, guard),
        )
            .into_response(),
        Plan::Fault {
            fault,
            stream,
            chat,
            model,
            normal,
        } => fault_response(&fault, n, latency, stream, chat, &model, *normal, guard),
    }
}

// ------------------------------------------------------------------ routes

async fn responses(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_model(shared, Endpoint::Responses, method, uri, headers, body).await
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_model(shared, Endpoint::Chat, method, uri, headers, body).await
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"})
}

fn log_simple(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap) {
    shared.log(LogInfo {
        method,
        path: uri.path(),
        query: uri.query(),
        headers,
        endpoint: None,
        model: None,
        stream: false,
        body: None,
        rule: None,
        fault: None,
    });
}

async fn list_models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    inc(&shared.stats.requests);
    inc(&shared.stats.models);
    log_simple(&shared, &method, &uri, &headers);
    let data: Vec<Value> = shared.models.iter().map(|m| model_object(m)).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn get_model(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    inc(&shared.stats.requests);
    inc(&shared.stats.models);
    log_simple(&shared, &method, &uri, &headers);
    axum::Json(model_object(&id)).into_response()
}

async fn stats_route(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.snapshot()).into_response()
}

async fn requests_route(State(shared): State<Arc<Shared>>) -> Response {
    let log: Vec<LoggedRequest> = lock(&shared.log).iter().cloned().collect();
    axum::Json(log).into_response()
}

async fn reset_route(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    inc(&shared.stats.requests);
    inc(&shared.stats.other);
    log_simple(&shared, &method, &uri, &headers);
    error_response(
        StatusCode::NOT_FOUND,
        &format!("Invalid URL ({method} {})", uri.path()),
        "invalid_request_error",
        None,
        None,
    )
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/responses", post(responses))
        .route("/responses", post(responses))
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/models", get(list_models))
        .route("/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/stats", get(stats_route))
        .route("/requests", get(requests_route))
        .route("/reset", post(reset_route))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

impl Shared {
    pub(crate) fn snapshot(&self) -> Stats {
        self.stats.snapshot(self.rules().hits())
    }

    pub(crate) fn reset(&self) {
        self.stats.reset();
        self.rules().reset();
        lock(&self.log).clear();
        self.log_seq.store(0, Ordering::Relaxed);
    }
}

//! `host run --otlp`: the real binary exports its trace to an OTLP/HTTP
//! receiver started by the test on loopback, and the trace mirrors the
//! workflow: one trace, the run at its root, stages, steps (parallel
//! branches included), agents, turns, model calls, tools and plugin calls
//! nested below, with the OpenTelemetry GenAI attributes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use e2e::Ran;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every variable that could point the binary at a collector or change what
/// it exports; each test sets only what it means to.
const OTEL_VARS: [&str; 10] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
];
/// Span kind `CLIENT` in OTLP.
const KIND_CLIENT: i32 = 3;
/// Status code `ERROR` in OTLP.
const STATUS_ERROR: i32 = 2;

/// What one `POST` to the receiver carried.
struct Received {
    path: String,
    content_type: String,
    request: Option<ExportTraceServiceRequest>,
}

/// An OTLP/HTTP receiver on 127.0.0.1: it decodes every export and answers
/// like a collector.
struct Receiver {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let app = Router::new().fallback(collect).with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            received,
            task,
        }
    }

    /// The base URL, as `--otlp` takes it.
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn posts(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Every exported span, after checking that every export went to
    /// `/v1/traces` as protobuf.
    fn trace(&self) -> Trace {
        let received = self.received.lock().expect("receiver lock");
        assert!(!received.is_empty(), "nothing was exported");
        let mut spans = Vec::new();
        let mut services = Vec::new();
        for post in received.iter() {
            assert_eq!(post.path, "/v1/traces");
            assert_eq!(post.content_type, "application/x-protobuf");
            let request = post
                .request
                .as_ref()
                .expect("the body is an ExportTraceServiceRequest");
            for resource_spans in &request.resource_spans {
                let resource = attributes(
                    resource_spans
                        .resource
                        .as_ref()
                        .map_or(&[][..], |r| &r.attributes),
                );
                services.push(resource.get("service.name").cloned());
                for scope_spans in &resource_spans.scope_spans {
                    for span in &scope_spans.spans {
                        spans.push(SpanView {
                            trace_id: hex::encode(&span.trace_id),
                            id: hex::encode(&span.span_id),
                            parent: hex::encode(&span.parent_span_id),
                            name: span.name.clone(),
                            kind: span.kind,
                            status: span.status.as_ref().map_or(0, |s| s.code),
                            attrs: attributes(&span.attributes),
                        });
                    }
                }
            }
        }
        Trace { spans, services }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn collect(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request = ExportTraceServiceRequest::decode(body).ok();
    if let Ok(mut received) = received.lock() {
        received.push(Received {
            path: uri.path().to_string(),
            content_type,
            request,
        });
    }
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_value(kv.value.as_ref())))
        .collect()
}

fn any_value(value: Option<&AnyValue>) -> Value {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        other => json!(format!("{other:?}")),
    }
}

/// One exported span, flattened for assertions.
#[derive(Debug, Clone)]
struct SpanView {
    trace_id: String,
    id: String,
    /// Empty for a root span.
    parent: String,
    name: String,
    kind: i32,
    status: i32,
    attrs: BTreeMap<String, Value>,
}

impl SpanView {
    fn attr(&self, key: &str) -> &Value {
        self.attrs.get(key).unwrap_or(&Value::Null)
    }

    /// An integer attribute (exported as an OTLP int, not a string).
    fn int(&self, key: &str) -> i64 {
        self.attr(key)
            .as_i64()
            .unwrap_or_else(|| panic!("`{}`: {key} is not an integer: {self:#?}", self.name))
    }
}

struct Trace {
    spans: Vec<SpanView>,
    /// `service.name` of every exported resource.
    services: Vec<Option<Value>>,
}

impl Trace {
    fn by_id(&self) -> HashMap<&str, &SpanView> {
        self.spans.iter().map(|s| (s.id.as_str(), s)).collect()
    }

    fn named(&self, name: &str) -> Vec<&SpanView> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> &SpanView {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "expected one `{name}` span: {found:#?}");
        found[0]
    }

    fn parent(&self, span: &SpanView) -> &SpanView {
        self.by_id()
            .get(span.parent.as_str())
            .copied()
            .unwrap_or_else(|| panic!("the parent of `{}` was not exported", span.name))
    }

    fn children(&self, span: &SpanView) -> Vec<&SpanView> {
        self.spans.iter().filter(|s| s.parent == span.id).collect()
    }

    fn child(&self, span: &SpanView, name: &str) -> &SpanView {
        let found: Vec<_> = self
            .children(span)
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{name}` under `{}` in\n{}",
            span.name,
            self.render()
        );
        found[0]
    }

    /// The tree of span names, for failure messages.
    fn render(&self) -> String {
        fn walk(trace: &Trace, span: &SpanView, depth: usize, out: &mut String) {
            out.push_str(&format!(
                "{}{} (status {}) {:?}\n",
                "  ".repeat(depth),
                span.name,
                span.status,
                span.attrs
            ));
            for child in trace.children(span) {
                walk(trace, child, depth + 1, out);
            }
        }
        let mut out = String::new();
        for root in self
            .spans
            .iter()
            .filter(|s| !self.by_id().contains_key(s.parent.as_str()))
        {
            walk(self, root, 0, &mut out);
        }
        out
    }

    /// Span names from `span` up to the root.
    fn path(&self, span: &SpanView) -> Vec<String> {
        let by_id = self.by_id();
        let mut path = vec![span.name.clone()];
        let mut at = span;
        while let Some(parent) = by_id.get(at.parent.as_str()) {
            path.push(parent.name.clone());
            at = parent;
        }
        path
    }

    /// One trace, one root (the run), every parent exported, the resource
    /// named `host`; returns the root.
    fn check_shape(&self) -> &SpanView {
        let ids: std::collections::BTreeSet<_> =
            self.spans.iter().map(|s| s.trace_id.as_str()).collect();
        assert_eq!(ids.len(), 1, "spans of several traces: {ids:?}");
        let roots: Vec<_> = self.spans.iter().filter(|s| s.parent.is_empty()).collect();
        assert_eq!(roots.len(), 1, "expected one root span: {roots:#?}");
        let by_id = self.by_id();
        for span in &self.spans {
            assert!(
                span.parent.is_empty() || by_id.contains_key(span.parent.as_str()),
                "the parent of `{}` was not exported",
                span.name
            );
        }
        assert!(
            self.services.iter().all(|s| *s == Some(json!("host"))),
            "service.name: {:?}",
            self.services
        );
        roots[0]
    }

    fn sorted_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.spans.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names
    }
}

fn example(name: &str) -> PathBuf {
    e2e::repo_root()
        .join("examples")
        .join(name)
        .join("spec.json")
}

/// Runs `host run SPEC --plugins plugins/ ARGS` with the OTEL variables
/// cleared and then `env` set.
async fn run(spec: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut host = e2e::host!()
        .arg("run")
        .arg(spec)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .args(args)
        .env_remove("RUST_LOG");
    for var in OTEL_VARS {
        host = host.env_remove(var);
    }
    host.envs(env.iter().copied()).ran().await
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read plugin")))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("json")
}

/// A port nothing listens on (connection refused).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parallel_run_is_one_trace_shaped_like_the_workflow() {
    let receiver = Receiver::start().await;
    let endpoint = receiver.endpoint();
    // The flag wins over the environment (which points nowhere).
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let ran = run(
        &example("analysis_parallel"),
        &["--offline", "--otlp", &endpoint],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &dead)],
    )
    .await;
    ran.ok();
    assert!(!ran.stderr.contains("warning"), "{}", ran.stderr);
    let trace = receiver.trace();
    // Shown when the test fails.
    eprintln!("{}", trace.render());
    let root = trace.check_shape();

    assert_eq!(
        trace.sorted_names(),
        vec![
            "chat gpt-4.1-mini",
            "chat gpt-4.1-mini",
            "chat gpt-4.1-mini",
            "invoke_agent code_assistant",
            "invoke_agent researcher",
            "invoke_agent synthesizer",
            "reducer concat",
            "run analysis_parallel",
            "stage analyze",
            "stage synthesize",
            "step code_assistant",
            "step researcher",
            "step synthesizer",
            "turn 1",
            "turn 1",
            "turn 1",
        ]
    );
    assert_eq!(root.name, "run analysis_parallel");
    assert_eq!(root.attr("workflow.key"), "analysis_parallel");
    assert_eq!(root.attr("workflow.run.id"), &json!(ran.run_id()));

    let analyze = trace.child(root, "stage analyze");
    assert_eq!(analyze.attr("workflow.stage.parallel"), &json!(true));
    assert_eq!(analyze.int("workflow.stage.index"), 0);
    let synthesize = trace.child(root, "stage synthesize");
    assert_eq!(synthesize.attr("workflow.stage.parallel"), &json!(false));

    // The branches ran on tasks of their own and still nest under their stage.
    for (branch, agent) in [(0, "researcher"), (1, "code_assistant")] {
        let step = trace.child(analyze, &format!("step {agent}"));
        assert_eq!(step.int("workflow.branch.index"), branch);
        assert_eq!(step.int("workflow.step.index"), branch);
        assert_eq!(step.attr("gen_ai.agent.name"), agent);
    }
    let step = trace.child(synthesize, "step synthesizer");
    assert_eq!(step.attr("workflow.branch.index"), &Value::Null);

    // Each step: invoke_agent → turn → chat, with the GenAI attributes.
    let mut input_tokens = 0;
    let mut output_tokens = 0;
    for (stage, agent) in [
        (analyze, "researcher"),
        (analyze, "code_assistant"),
        (synthesize, "synthesizer"),
    ] {
        let step = trace.child(stage, &format!("step {agent}"));
        let invoke = trace.child(step, &format!("invoke_agent {agent}"));
        assert_eq!(invoke.attr("gen_ai.operation.name"), "invoke_agent");
        assert_eq!(invoke.attr("gen_ai.agent.name"), agent);
        let turn = trace.child(invoke, "turn 1");
        assert_eq!(turn.int("workflow.turn"), 1);
        let chat = trace.child(turn, "chat gpt-4.1-mini");
        assert_eq!(chat.kind, KIND_CLIENT);
        assert_eq!(chat.attr("gen_ai.operation.name"), "chat");
        assert_eq!(chat.attr("gen_ai.provider.name"), "scripted");
        assert_eq!(chat.attr("gen_ai.system"), "scripted");
        assert_eq!(chat.attr("gen_ai.request.model"), "gpt-4.1-mini");
        assert_eq!(chat.attr("gen_ai.response.model"), "gpt-4.1-mini");
        assert_eq!(chat.attr("gen_ai.agent.name"), agent);
        assert_eq!(chat.attr("llm.provider"), "offline");
        assert!(
            chat.attr("gen_ai.response.id")
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("scripted-{agent}-"))),
            "{chat:#?}"
        );
        assert!(chat.int("gen_ai.usage.input_tokens") > 0);
        assert!(chat.int("gen_ai.usage.output_tokens") > 0);
        input_tokens += chat.int("gen_ai.usage.input_tokens");
        output_tokens += chat.int("gen_ai.usage.output_tokens");
    }
    // The spans carry the scripted provider's usage: what the run reports…
    assert_eq!((input_tokens, output_tokens), ran.tokens());
    // … and, for the researcher, the provider's estimate (4 characters a
    // token of instructions plus input, and of the scripted reply).
    let spec = read_json(&example("analysis_parallel"));
    let script = read_json(&example("analysis_parallel").with_file_name("script.json"));
    let prompt = spec["agents"]["researcher"]["instructions"]
        .as_str()
        .unwrap_or_default()
        .len()
        + spec["run"]["input"].as_str().unwrap_or_default().len();
    let reply = script["replies"][0]["reply"]["text"]
        .as_str()
        .unwrap_or_default()
        .len();
    let researcher = trace.child(
        trace.child(
            trace.child(
                trace.child(analyze, "step researcher"),
                "invoke_agent researcher",
            ),
            "turn 1",
        ),
        "chat gpt-4.1-mini",
    );
    assert_eq!(
        researcher.int("gen_ai.usage.input_tokens"),
        prompt.div_ceil(4) as i64
    );
    assert_eq!(
        researcher.int("gen_ai.usage.output_tokens"),
        reply.div_ceil(4) as i64
    );

    // The reducer runs in the stage, after its branches.
    let reducer = trace.child(analyze, "reducer concat");
    assert_eq!(reducer.attr("plugin.name"), "concat");
    assert_eq!(reducer.attr("plugin.kind"), "reducer");
    assert_eq!(
        reducer.attr("plugin.digest"),
        &json!(sha256_of(&e2e::plugin("concat")))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_guards_mappers_and_guardrails_nest_under_their_steps() {
    // The trip planner, with a script whose budget specialist calls its
    // calculator on its first turn (turn 2 of the step, after the handoff).
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.json");
    std::fs::copy(example("trip_planner"), &spec).expect("copy spec");
    let mut script = read_json(&example("trip_planner").with_file_name("script.json"));
    script["replies"][1]["when"] = json!({"agent": "budget_specialist", "turn": 2});
    std::fs::write(dir.path().join("script.json"), script.to_string()).expect("script");
    let receiver = Receiver::start().await;
    // Configured by the standard environment variable alone.
    let ran = run(
        &spec,
        &["--offline"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())],
    )
    .await;
    ran.ok();
    let trace = receiver.trace();
    // Shown when the test fails.
    eprintln!("{}", trace.render());
    let root = trace.check_shape();
    assert_eq!(root.name, "run trip_planner");

    // The budget specialist's calculator call: execute_tool → the plugin.
    let tool = trace.one("execute_tool evaluate");
    assert_eq!(tool.attr("gen_ai.operation.name"), "execute_tool");
    assert_eq!(tool.attr("gen_ai.tool.name"), "evaluate");
    assert!(
        tool.attr("gen_ai.tool.call.id")
            .as_str()
            .is_some_and(|id| id.starts_with("call_budget_specialist_")),
        "{tool:#?}"
    );
    let path = trace.path(tool);
    assert_eq!(
        path[1..],
        [
            "turn 2",
            "invoke_agent triage",
            "step triage",
            "stage intake",
            "run trip_planner"
        ],
        "{path:?}"
    );
    assert_eq!(
        trace.parent(tool).attr("gen_ai.agent.name"),
        "budget_specialist"
    );
    let plugin = trace.child(tool, "tool calculator");
    assert_eq!(plugin.attr("plugin.entry"), "evaluate");
    assert_eq!(
        plugin.attr("plugin.digest"),
        &json!(sha256_of(&e2e::plugin("calculator")))
    );
    // Tool guardrails check the call's input and output.
    assert_eq!(
        trace
            .children(tool)
            .iter()
            .filter(|s| s.name == "guardrail pii_guardrail")
            .count(),
        2
    );
    // The triage agent's input guardrail runs in the agent, before its turns.
    trace.child(trace.one("invoke_agent triage"), "guardrail pii_guardrail");

    // Parallel research: a guard in every branch, the mapper where it passed.
    let research = trace.child(root, "stage research");
    for (branch, agent, runs) in [
        (0, "food_scout", true),
        (1, "culture_scout", true),
        (2, "nightlife_scout", false),
    ] {
        let step = trace.child(research, &format!("step {agent}"));
        assert_eq!(step.int("workflow.branch.index"), branch);
        let guard = trace.child(step, "guard keyword_guard");
        assert_eq!(guard.attr("plugin.kind"), "guard");
        let names: Vec<&str> = trace
            .children(step)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        if runs {
            trace.child(step, "input_mapper template_mapper");
            trace.child(step, &format!("invoke_agent {agent}"));
        } else {
            assert_eq!(names, ["guard keyword_guard"], "{agent}");
            assert_eq!(step.attr("workflow.step.skipped"), &json!(true));
        }
    }
    trace.child(research, "reducer concat");
    let writer = trace.child(
        trace.child(root, "stage itinerary"),
        "step itinerary_writer",
    );
    trace.child(writer, "input_mapper template_mapper");
    let invoke = trace.child(writer, "invoke_agent itinerary_writer");
    trace.child(invoke, "guardrail pii_guardrail");

    // Every model call is a chat span under a turn.
    for chat in trace.named("chat gpt-4.1-mini") {
        assert!(trace.parent(chat).name.starts_with("turn "), "{chat:#?}");
    }
    assert_eq!(trace.named("chat gpt-4.1-mini").len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_exported_with_its_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("script.json"), r#"{"replies": []}"#).expect("script");
    let spec = json!({
        "providers": {"offline": {"type": "scripted", "script": "script.json"}},
        "agents": {"a": {"instructions": "Say hello", "model": {"provider": "offline", "name": "m"}}},
        "workflow": {"key": "failing", "steps": [{"agent": "a"}]},
        "run": {"input": "hello"}
    });
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("spec");
    let receiver = Receiver::start().await;
    let ran = run(&path, &["--otlp", &receiver.endpoint()], &[]).await;
    assert_eq!(ran.out.status.code(), Some(1), "{}", ran.stderr);
    let trace = receiver.trace();
    // Shown when the test fails.
    eprintln!("{}", trace.render());
    let root = trace.check_shape();
    assert_eq!(root.name, "run failing");
    assert_eq!(root.status, STATUS_ERROR);
    let chat = trace.one("chat m");
    assert_eq!(chat.status, STATUS_ERROR);
    assert_eq!(chat.attr("error.type"), "script");
    assert_eq!(
        trace.parent(trace.parent(trace.parent(chat))).status,
        STATUS_ERROR
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_nothing_is_exported() {
    let receiver = Receiver::start().await;
    let spec = example("analysis_parallel");
    let plain = run(&spec, &["--offline"], &[]).await;
    plain.ok();
    // Turned off explicitly although the environment names the receiver.
    let endpoint = receiver.endpoint();
    let disabled = run(
        &spec,
        &["--offline"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    )
    .await;
    disabled.ok();
    let empty_flag = run(
        &spec,
        &["--offline", "--otlp", ""],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    )
    .await;
    empty_flag.ok();
    assert_eq!(receiver.posts(), 0);
    for ran in [&plain, &disabled, &empty_flag] {
        assert_eq!(ran.stdout, plain.stdout);
        assert!(!ran.stderr.contains("warning"), "{}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_collector_neither_fails_nor_stalls_the_run() {
    let spec = example("analysis_parallel");
    let baseline = run(&spec, &["--offline"], &[]).await;
    baseline.ok();

    // Nothing listens: connection refused, a couple of quick retries.
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let ran = run(&spec, &["--offline", "--otlp", &refused], &[]).await;
    ran.ok();
    assert_eq!(ran.stdout, baseline.stdout);
    assert!(
        ran.stderr
            .contains("warning: could not export the trace to"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.elapsed < baseline.elapsed + Duration::from_secs(4),
        "refused: {:?} vs {:?} without export",
        ran.elapsed,
        baseline.elapsed
    );

    // Accepts connections and never answers: the export timeout bounds it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("address"));
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let ran = run(
        &spec,
        &["--offline", "--otlp", &silent_url],
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")],
    )
    .await;
    hold.abort();
    ran.ok();
    assert_eq!(ran.stdout, baseline.stdout);
    assert!(ran.stderr.contains("warning"), "{}", ran.stderr);
    assert!(
        ran.elapsed < baseline.elapsed + Duration::from_secs(5),
        "silent collector: {:?} vs {:?} without export",
        ran.elapsed,
        baseline.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_endpoint_is_bad_input() {
    let ran = run(
        &example("analysis_parallel"),
        &["--offline", "--otlp", "localhost:4318"],
        &[],
    )
    .await;
    assert_eq!(ran.out.status.code(), Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("invalid OTLP endpoint `localhost:4318` (from --otlp)"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_span_names_its_session_and_attempts_are_integers() {
    // The first request fails with a 500, the retry is answered: the chat
    // span's `llm.attempts` is 2, as an integer.
    let server = e2e::mock(json!({"rules": [
        {"match": {"times": 1}, "reply": {"fault": {"kind": "error", "status": 500}}},
        {"reply": {"text": "hello"}}
    ]}))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = json!({
        "providers": {"mock": {
            "type": "openai_compatible", "base_url": server.base_url(), "api": "chat",
            "api_key_env": "MOCK_API_KEY", "timeout_ms": 5000,
            "retry": {"max_attempts": 3, "initial_backoff_ms": 1, "max_backoff_ms": 5}
        }},
        "agents": {"a": {"instructions": "Say hello", "model": {"provider": "mock", "name": "m"}}},
        "workflow": {"key": "sessioned", "steps": [{"agent": "a"}]},
        "run": {"input": "hello"}
    });
    let path = e2e::write_spec(dir.path(), &spec);
    let receiver = Receiver::start().await;
    let ran = run(
        &path,
        &["--session", "s-42", "--otlp", &receiver.endpoint()],
        &[],
    )
    .await;
    ran.ok();
    let trace = receiver.trace();
    // Shown when the test fails.
    eprintln!("{}", trace.render());
    let root = trace.check_shape();
    assert_eq!(root.attr("session.id"), "s-42");
    assert_eq!(trace.one("chat m").int("llm.attempts"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_a_session_has_no_session_attribute() {
    let receiver = Receiver::start().await;
    let ran = run(
        &example("analysis_parallel"),
        &["--offline", "--otlp", &receiver.endpoint()],
        &[],
    )
    .await;
    ran.ok();
    let trace = receiver.trace();
    assert_eq!(trace.check_shape().attr("session.id"), &Value::Null);
}

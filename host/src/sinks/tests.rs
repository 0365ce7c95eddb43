use super::*;
use crate::events::data::{
    Handoff, LlmDelta, LlmRequest, LlmResponse, RunCompleted, RunFailed, RunStarted, StageMode,
    StageStarted, StepCompleted, ToolCalled, ToolResult, UsageByModel,
};
use crate::events::{Data, SCHEMA_VERSION};
use crate::llm::Usage;
use serde_json::{Value, json};
use std::sync::Mutex;

fn event(seq: u64, branch: Option<u32>, data: impl Into<Data>) -> Event {
    let data = data.into();
    Event {
        kind: data.kind(),
        schema_version: SCHEMA_VERSION,
        run_id: "01RUN".into(),
        seq,
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        workflow: "wf".into(),
        stage: Some("fan".into()),
        step: branch.map(|b| format!("s{b}")),
        step_index: branch,
        branch_index: branch,
        agent: branch.map(|b| format!("a{b}")),
        tool_call_id: None,
        data,
    }
}

fn parse(s: &str) -> Result<SinkSpec, SinkError> {
    s.parse()
}

#[test]
fn command_line_syntax() {
    assert_eq!(parse("stdout").ok(), Some(SinkSpec::Stdout));
    assert_eq!(parse("stdout_verbose").ok(), Some(SinkSpec::StdoutVerbose));
    assert_eq!(
        parse("jsonl:-").ok(),
        Some(SinkSpec::Jsonl(JsonlTarget::Stdout))
    );
    assert_eq!(
        parse("jsonl:out/events.jsonl").ok(),
        Some(SinkSpec::Jsonl(JsonlTarget::File(
            "out/events.jsonl".into()
        )))
    );
    // A Windows-style path keeps its colon.
    assert_eq!(
        parse("jsonl:C:\\tmp\\e.jsonl").ok(),
        Some(SinkSpec::Jsonl(JsonlTarget::File(
            "C:\\tmp\\e.jsonl".into()
        )))
    );
    for url in ["http:https://example.com/hook", "https://example.com/hook"] {
        match parse(url) {
            Ok(SinkSpec::Http(t)) => assert_eq!(t.url, "https://example.com/hook"),
            other => panic!("{url}: {other:?}"),
        }
    }
    for (input, message) in [
        ("jsonl", "callback `jsonl` needs a target"),
        ("jsonl:", "callback `jsonl` needs a target"),
        ("http:", "callback `http` needs a URL"),
        (
            "http:example.com",
            "callback `http:example.com`: not an http(s) URL",
        ),
        (
            "stdout:x",
            "callback `stdout` takes no target, got `stdout:x`",
        ),
        ("syslog", "unknown callback `syslog`"),
    ] {
        let e = parse(input).expect_err(input);
        assert_eq!(e.to_string(), message);
        assert!(e.hint().is_some(), "{input}: no hint");
    }
    for spec in ["stdout", "stdout_verbose", "jsonl:-", "jsonl:a.jsonl"] {
        assert_eq!(
            parse(spec).map(|s| s.to_string()).ok().as_deref(),
            Some(spec)
        );
    }
}

#[test]
fn spec_callbacks_resolve_relative_paths_against_the_spec() {
    let base = Path::new("/specs/wf");
    let cb = |v: Value| serde_json::from_value::<Callback>(v).expect("callback");
    assert_eq!(
        SinkSpec::from_callback(&cb(json!({"type": "jsonl", "path": "events.jsonl"})), base),
        Ok(SinkSpec::Jsonl(JsonlTarget::File(
            "/specs/wf/events.jsonl".into()
        )))
    );
    assert_eq!(
        SinkSpec::from_callback(&cb(json!({"type": "jsonl", "path": "-"})), base),
        Ok(SinkSpec::Jsonl(JsonlTarget::Stdout))
    );
    assert_eq!(
        SinkSpec::from_callback(&cb(json!({"type": "stdout_verbose"})), base),
        Ok(SinkSpec::StdoutVerbose)
    );
}

#[test]
fn spec_callbacks_stay_in_the_spec_folder() {
    let base = Path::new("/specs/wf");
    let cb = |v: Value| serde_json::from_value::<Callback>(v).expect("callback");
    for path in ["/var/e.jsonl", "../e.jsonl", "logs/../../e.jsonl"] {
        assert!(
            SinkSpec::from_callback(&cb(json!({"type": "jsonl", "path": path})), base).is_err(),
            "{path}"
        );
    }
    // The command line's own sinks are the operator's: any path.
    assert_eq!(
        "jsonl:/var/e.jsonl".parse::<SinkSpec>().ok(),
        Some(SinkSpec::Jsonl(JsonlTarget::File("/var/e.jsonl".into())))
    );
}

#[test]
fn check_dedups_and_guards_stdout() {
    let ok = check([
        SinkSpec::Stdout,
        SinkSpec::Jsonl(JsonlTarget::File("e.jsonl".into())),
        SinkSpec::Stdout,
    ])
    .expect("one stdout writer");
    assert_eq!(ok.len(), 2);
    let e = check([SinkSpec::Stdout, SinkSpec::Jsonl(JsonlTarget::Stdout)])
        .expect_err("two stdout writers");
    assert_eq!(
        e.to_string(),
        "more than one callback writes to stdout: stdout, jsonl:-"
    );
}

#[test]
fn check_vets_http_callbacks() {
    let hook = |secret_env: Option<&str>, team: &str| {
        SinkSpec::Http(HttpTarget {
            url: "http://127.0.0.1:9/hook".into(),
            secret_env: secret_env.map(Into::into),
            headers: BTreeMap::from([("x-team".to_owned(), team.to_owned())]),
            secret: None,
            format: EventFormat::Host,
        })
    };
    let set = |var: &str| var == "HOOK_SECRET";
    let ok = check_with(
        [
            hook(Some("HOOK_SECRET"), "a"),
            hook(Some("HOOK_SECRET"), "a"),
        ],
        set,
    )
    .expect("one http sink");
    assert_eq!(ok.len(), 1);
    let e = check_with([hook(Some("UNSET_VAR"), "a")], set).expect_err("unset secret");
    assert_eq!(
        e.to_string(),
        "callback `http:http://127.0.0.1:9/hook`: its signing secret's environment variable UNSET_VAR is not set"
    );
    assert!(e.hint().is_some());
    let e = check_with([hook(None, "a"), hook(None, "b")], set).expect_err("one url twice");
    assert_eq!(
        e.to_string(),
        "two http callbacks to `http://127.0.0.1:9/hook` with different settings"
    );
    // Without an outbox an http sink cannot open.
    let e = open(&hook(None, "a"), &SinkOptions::default())
        .err()
        .expect("no outbox");
    assert!(e.to_string().contains("needs the run database"), "{e}");
}

#[test]
fn jsonl_writes_one_envelope_per_line() {
    let mut sink = JsonlSink::new(Vec::new(), "test");
    let events = [
        event(1, Some(1), Data::StepStarted),
        event(
            2,
            Some(1),
            StepCompleted {
                elapsed_ms: 3,
                output: json!("two\nlines"),
                turns: 1,
                usage: UsageByModel::new(),
            },
        ),
    ];
    for e in &events {
        sink.event(e).expect("write");
    }
    let text = String::from_utf8(sink.into_inner()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, e) in lines.iter().zip(&events) {
        let back: Event = serde_json::from_str(line).expect("an envelope");
        assert_eq!(&back, e);
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn lines_tag_branches_of_nested_lines() {
    let mut sink = LinesSink::new(
        Vec::new(),
        "test",
        SinkOptions {
            offline: true,
            ..SinkOptions::default()
        },
    );
    let mut started = event(1, None, RunStarted::default());
    started.stage = None;
    for e in [
        started,
        event(
            2,
            None,
            StageStarted {
                mode: StageMode::Parallel,
                steps: 2,
            },
        ),
        event(3, Some(1), Data::StepStarted),
        event(
            4,
            Some(1),
            LlmRequest {
                turn: 1,
                ..LlmRequest::default()
            },
        ),
        event(
            5,
            Some(1),
            ToolCalled {
                arguments: "{}".into(),
                tool: "add".into(),
                ..ToolCalled::default()
            },
        ),
        event(
            6,
            Some(1),
            StepCompleted {
                elapsed_ms: 7,
                turns: 2,
                ..StepCompleted::default()
            },
        ),
    ] {
        sink.event(&e).expect("write");
    }
    let text = String::from_utf8(sink.into_inner()).expect("utf-8");
    assert_eq!(
        text,
        "run 01RUN · workflow wf · offline (scripted model)\n\
         ▸ stage fan (parallel, 2 steps)\n  \
         · s1 [1] started\n    \
         [1] tool add({})\n  \
         ✓ s1 [1] (2 turns, 7 ms)\n"
    );
}

#[test]
fn verbose_streams_text_per_branch_and_ends_with_the_output() {
    let mut sink = VerboseSink::new(Vec::new(), "test", SinkOptions::default());
    let delta = |seq, b, t: &str| event(seq, Some(b), LlmDelta { text: t.into() });
    let mut done = event(
        6,
        None,
        RunCompleted {
            elapsed_ms: 9,
            output: json!({"a": 1}),
            usage: UsageByModel::from([("m".to_owned(), Usage::reported(3, 4, 7))]),
        },
    );
    done.stage = None;
    for e in [
        delta(1, 0, "Hel"),
        delta(2, 0, "lo"),
        delta(3, 1, "Bon"),
        delta(4, 0, " there"),
        event(
            5,
            Some(0),
            StepCompleted {
                elapsed_ms: 2,
                output: json!("Hello there"),
                turns: 1,
                usage: UsageByModel::new(),
            },
        ),
        done,
    ] {
        sink.event(&e).expect("write");
    }
    sink.finish().expect("finish");
    let text = String::from_utf8(sink.into_inner()).expect("utf-8");
    assert_eq!(
        text,
        "    [0] » Hello\n    [1] » Bon\n    [0] »  there\n  \
         ✓ s0 [0] by a0 (1 turn, 2 ms · 0 in / 0 out tokens)\n      \
         output: Hello there\n\
         ✓ completed in 9 ms · 3 input / 4 output tokens\n  \
         usage: m 3 in / 4 out\n\
         output:\n{\n  \"a\": 1\n}\n"
    );
}

/// What a [`Probe`] saw.
#[derive(Default)]
struct Log {
    seen: Vec<u64>,
    finished: bool,
}

/// Records events; optionally fails at one seq, or waits for a gate to
/// open before its first event; says when it finished.
struct Probe {
    log: Arc<Mutex<Log>>,
    fail_at: Option<u64>,
    gate: Option<std_mpsc::Receiver<()>>,
    done: Option<std_mpsc::Sender<()>>,
}

impl Sink for Probe {
    fn label(&self) -> String {
        "probe".into()
    }
    fn durable(&self) -> bool {
        true
    }
    fn event(&mut self, e: &Event) -> io::Result<()> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv_timeout(Duration::from_secs(10));
        }
        if self.fail_at == Some(e.seq) {
            return Err(io::Error::other("disk full"));
        }
        self.log.lock().expect("lock").seen.push(e.seq);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.log.lock().expect("lock").finished = true;
        if let Some(done) = &self.done {
            let _ = done.send(());
        }
        Ok(())
    }
}

fn probe(fail_at: Option<u64>) -> (Probe, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let sink = Probe {
        log: log.clone(),
        fail_at,
        gate: None,
        done: None,
    };
    (sink, log)
}

#[tokio::test]
async fn a_failing_or_stuck_sink_does_not_hold_up_the_others() {
    let (tx, rx) = mpsc::unbounded_channel();
    let (mut good, good_log) = probe(None);
    let (good_done, good_finished) = std_mpsc::channel();
    good.done = Some(good_done);
    let (bad, bad_log) = probe(Some(2));
    let (mut stuck, stuck_log) = probe(None);
    let (open_gate, gate) = std_mpsc::channel();
    stuck.gate = Some(gate);
    let dispatch = spawn(rx, vec![Box::new(good), Box::new(bad), Box::new(stuck)]);
    for seq in 1..=5 {
        let data = if seq == 5 {
            RunCompleted::default().into()
        } else {
            Data::StepStarted
        };
        tx.send(event(seq, None, data))
            .expect("the forwarder is listening");
    }
    // The good sink gets everything while the stuck one has not even
    // taken its first event.
    tokio::task::spawn_blocking(move || good_finished.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("the good sink finished while another was stuck");
    assert!(stuck_log.lock().expect("lock").seen.is_empty());
    open_gate.send(()).expect("open the gate");
    let errors = tokio::time::timeout(Duration::from_secs(10), dispatch.finish())
        .await
        .expect("sinks finish");
    let (good, bad, stuck) = (
        good_log.lock().expect("lock"),
        bad_log.lock().expect("lock"),
        stuck_log.lock().expect("lock"),
    );
    assert_eq!(good.seen, [1, 2, 3, 4, 5]);
    assert_eq!(stuck.seen, [1, 2, 3, 4, 5]);
    assert_eq!(bad.seen, [1]);
    assert!(good.finished && stuck.finished);
    assert!(!bad.finished, "a stopped sink is not finished");
    let messages: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{e}: {}",
                std::error::Error::source(e)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        messages,
        ["callback probe stopped: failed to write events: disk full"]
    );
}

#[tokio::test]
async fn sinks_finish_when_the_run_goes_away_without_a_last_event() {
    let (tx, rx) = mpsc::unbounded_channel();
    let (sink, log) = probe(None);
    let dispatch = spawn(rx, vec![Box::new(sink)]);
    tx.send(event(1, None, Data::StepStarted)).expect("send");
    drop(tx);
    let errors = tokio::time::timeout(Duration::from_secs(10), dispatch.finish())
        .await
        .expect("sinks finish");
    assert!(errors.is_empty());
    let log = log.lock().expect("lock");
    assert_eq!(log.seen, [1]);
    assert!(log.finished);
}

#[test]
fn tokens_sum_over_models() {
    let u = |i, o| Usage::reported(i, o, i + o);
    let usage = UsageByModel::from([("a".to_owned(), u(1, 2)), ("b".to_owned(), u(10, 20))]);
    assert_eq!(tokens(&usage), (11, 22));
    assert_eq!(tokens(&UsageByModel::new()), (0, 0));
}

#[test]
fn the_go_formats_have_a_command_line_syntax() {
    assert_eq!(
        parse("go:stdout").ok(),
        Some(SinkSpec::GoStdout { verbose: false })
    );
    assert_eq!(
        parse("go:stdout_verbose").ok(),
        Some(SinkSpec::GoStdout { verbose: true })
    );
    match parse("go:http:https://example.com/hook") {
        Ok(SinkSpec::Http(t)) => {
            assert_eq!(t.url, "https://example.com/hook");
            assert_eq!(t.format, EventFormat::Go);
        }
        other => panic!("{other:?}"),
    }
    assert!(parse("go:jsonl:-").is_err());
    for spec in [
        "go:stdout",
        "go:stdout_verbose",
        "go:http:https://example.com/hook",
    ] {
        assert_eq!(
            parse(spec).map(|s| s.to_string()).ok().as_deref(),
            Some(spec)
        );
    }
    let cb = |v: Value| serde_json::from_value::<Callback>(v).expect("callback");
    let base = Path::new(".");
    assert_eq!(
        SinkSpec::from_callback(&cb(json!({"type": "stdout", "format": "go"})), base),
        Ok(SinkSpec::GoStdout { verbose: false })
    );
    match SinkSpec::from_callback(
        &cb(json!({"type": "http", "url": "http://127.0.0.1:9/", "format": "go"})),
        base,
    ) {
        Ok(SinkSpec::Http(t)) => assert_eq!(t.format, EventFormat::Go),
        other => panic!("{other:?}"),
    }
}

/// A run of one agent that calls a tool, hands off and answers.
fn go_run() -> Vec<Event> {
    let mut started = event(
        1,
        None,
        RunStarted {
            input: json!("What is 2+2?"),
            session: Some("s1".into()),
            workflow_name: "Math".into(),
            ..RunStarted::default()
        },
    );
    started.stage = None;
    let step = |seq, data: Data| {
        let mut e = event(seq, Some(0), data);
        e.branch_index = None;
        e.agent = Some("calc".into());
        e
    };
    vec![
        started,
        step(2, Data::StepStarted),
        step(
            3,
            LlmResponse {
                response_id: Some("resp_1".into()),
                ..LlmResponse::default()
            }
            .into(),
        ),
        step(
            4,
            ToolCalled {
                tool: "add".into(),
                arguments: "{}".into(),
                ..ToolCalled::default()
            }
            .into(),
        ),
        step(
            5,
            ToolResult {
                tool: "add".into(),
                output: "4".into(),
                ..ToolResult::default()
            }
            .into(),
        ),
        step(
            6,
            Handoff {
                from: "calc".into(),
                to: "writer".into(),
                call_id: "c1".into(),
            }
            .into(),
        ),
        step(7, LlmDelta { text: "Fo".into() }.into()),
        step(
            8,
            LlmResponse {
                response_id: Some("resp_2".into()),
                ..LlmResponse::default()
            }
            .into(),
        ),
        step(
            9,
            StepCompleted {
                output: json!("Four."),
                ..StepCompleted::default()
            }
            .into(),
        ),
        step(
            10,
            RunCompleted {
                output: json!("Four."),
                ..RunCompleted::default()
            }
            .into(),
        ),
    ]
}

#[test]
fn go_events_follow_the_go_runner() {
    let names = BTreeMap::from([("writer".to_string(), "Writer Bot".to_string())]);
    let mut translator = go_events::GoTranslator::new(names);
    let out: Vec<Value> = go_run()
        .iter()
        .flat_map(|e| translator.translate(e))
        .map(|e| serde_json::to_value(e).expect("json"))
        .collect();
    let payloads: Vec<Value> = out
        .iter()
        .map(|e| json!([e["type"], e["payload"]]))
        .collect();
    assert_eq!(
        payloads,
        [
            json!(["run.started", {"workflow": "Math", "session": "s1", "query": "What is 2+2?"}]),
            json!(["run.event", {"event_kind": "agent_updated", "agent_name": "calc"}]),
            json!(["run.event", {"event_kind": "run_item", "name": "tool_called", "item": {
                "type": "tool_call_item", "agent": "calc",
                "tool_call": "responses.ResponseFunctionToolCall", "function_name": "add"}}]),
            json!(["run.event", {"event_kind": "run_item", "name": "tool_output", "item": {
                "type": "tool_call_output_item", "agent": "calc", "output": "4"}}]),
            json!(["run.event", {"event_kind": "run_item", "name": "handoff_occured", "item": {
                "type": "handoff_output_item", "agent": "calc", "source_agent": "calc",
                "target_agent": "Writer Bot"}}]),
            json!(["run.event", {"event_kind": "agent_updated", "agent_name": "Writer Bot"}]),
            json!(["run.event", {"event_kind": "raw", "type": "response.output_text.delta",
                "data": {"type": "response.output_text.delta", "delta": "Fo"}}]),
            json!(["run.event", {"event_kind": "run_item", "name": "message_output_created",
                "item": {"type": "message_output_item", "agent": "calc", "text": "Four."}}]),
            json!(["run.completed", {"final_output": "Four.", "last_response_id": "resp_2"}]),
        ]
    );
    assert_eq!(out[0]["timestamp"], "2026-01-01T00:00:00.000Z");
    assert_eq!(out[0]["metadata"], json!({"run_id": "01RUN", "seq": 1}));
    let failed = event(
        3,
        None,
        RunFailed {
            error: "boom".into(),
            ..RunFailed::default()
        },
    );
    let failed = serde_json::to_value(&translator.translate(&failed)[0]).expect("json");
    assert_eq!(failed["type"], "run.failed");
    assert_eq!(failed["payload"], json!({"error": "boom"}));
}

#[test]
fn the_go_printer_prints_like_the_go_runner() {
    for verbose in [false, true] {
        let mut sink = GoPrinter::new(Vec::new(), "go:stdout", verbose, &SinkOptions::default());
        for e in go_run() {
            sink.event(&e).expect("write");
        }
        let text = String::from_utf8(sink.into_inner()).expect("utf-8");
        let text: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("  runtime: "))
            .collect();
        let mut want = vec![
            "user: What is 2+2?",
            "[agent switch] -> calc",
            "tool add called by calc",
            "tool function_call_output output: 4",
            "handoff calc -> writer",
            "[agent switch] -> writer",
            "agent calc: Four.",
            "---",
            "Session summary",
            "  turns: 1",
            "  starting agent: calc",
            "  final agent: calc",
            "  tools: add",
            "  final output: Four.",
        ];
        if !verbose {
            want.retain(|l| !l.starts_with("[agent switch]") && !l.starts_with("  final output"));
        }
        assert_eq!(text, want, "verbose: {verbose}");
    }
}

/// Each sink's ack tells the last event it has written (after catching
/// up); a sink that stopped drops its ack, so nobody waits for it.
#[tokio::test]
async fn acks_tell_what_each_sink_has_written() {
    let (tx, rx) = mpsc::unbounded_channel();
    let (good, _) = probe(None);
    let (bad, _) = probe(Some(2));
    let (mut stuck, _) = probe(None);
    let (open_gate, gate) = std_mpsc::channel();
    stuck.gate = Some(gate);
    let dispatch = spawn(rx, vec![Box::new(good), Box::new(bad), Box::new(stuck)]);
    let acks = dispatch.acks();
    assert_eq!(acks.len(), 3);
    for seq in 1..=3 {
        tx.send(event(seq, None, Data::StepStarted)).expect("send");
    }
    let (mut good, mut bad, mut stuck) = (acks[0].clone(), acks[1].clone(), acks[2].clone());
    let wait = Duration::from_secs(10);
    tokio::time::timeout(wait, good.wait_for(|n| *n == 3))
        .await
        .expect("the good sink acknowledges")
        .expect("its ack is open");
    tokio::time::timeout(wait, bad.wait_for(|n| *n >= 2))
        .await
        .expect("the failing sink's ack closes")
        .expect_err("closed, never past the event it failed on");
    assert_eq!(*stuck.borrow(), 0, "nothing written yet");
    open_gate.send(()).expect("open the gate");
    tokio::time::timeout(wait, stuck.wait_for(|n| *n == 3))
        .await
        .expect("the stuck sink acknowledges once it wrote")
        .expect("its ack is open");
    drop(tx);
    let _ = dispatch.finish().await;
}

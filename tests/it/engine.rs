//! The engine's library API: build a runner from a spec and plugins, start
//! runs, await them, cancel them and receive their events in order.

use host::engine::{RunError, RunRequest, Runner};
use host::events::EventType;
use host::plan::{self, CompileOptions};
use host::plugin::{Registry, Runtime, RuntimeOptions};
use host::spec::Spec;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn runner_for(doc: Value, offline: bool) -> Runner {
    let dir = e2e::repo_root().join("examples/peer_workflow");
    let spec = Spec::from_value(&doc, &dir).expect("spec");
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(e2e::test_cache_dir()),
        cache_key_file: Some(e2e::test_cache_key()),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let registry = Arc::new(Registry::new(rt));
    registry
        .load_dir(&e2e::plugins_dir(), &plan::load_options(&spec))
        .await
        .expect("plugins");
    let workflow = plan::compile(
        &spec,
        &registry,
        &CompileOptions {
            offline,
            stream: false,
            // The mock server is on loopback.
            egress: host::llm::Egress::allowing_private(),
            ..CompileOptions::default()
        },
    )
    .expect("build");
    Runner::new(Arc::new(workflow), registry)
}

fn peer_spec() -> Value {
    let path = e2e::repo_root().join("examples/peer_workflow/spec.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("spec")).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_in_order_with_the_envelope() {
    let runner = runner_for(peer_spec(), true).await;
    let mut handle = runner.start(RunRequest {
        input: json!("topic"),
        events: true,
        ..RunRequest::default()
    });
    let mut rx = handle.take_events().expect("events");
    let out = tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .expect("timeout")
        .expect("run");
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert_eq!(events.first().map(|e| e.kind), Some(EventType::RunStarted));
    assert_eq!(events.last().map(|e| e.kind), Some(EventType::RunCompleted));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "no gaps, no reordering");
        assert_eq!(e.run_id, out.run_id);
        assert_eq!(e.workflow, "peer_workflow");
    }
    let count = |t: EventType| events.iter().filter(|e| e.kind == t).count();
    assert_eq!(count(EventType::StageStarted), 3);
    assert_eq!(count(EventType::StepSkipped), 1, "researcher_4's guard");
    assert_eq!(count(EventType::StepCompleted), 5);
    assert_eq!(count(EventType::ToolCalled), 1);
    let skipped = events
        .iter()
        .find(|e| e.kind == EventType::StepSkipped)
        .expect("skipped");
    assert_eq!(
        (skipped.stage.as_deref(), skipped.branch_index),
        (Some("fanout"), Some(3))
    );
    // Step results keep stage order, then branch order.
    let order: Vec<(&str, Option<u32>, bool)> = out
        .steps
        .iter()
        .map(|s| (s.agent_key.as_str(), s.branch_index, s.skipped))
        .collect();
    assert_eq!(
        order,
        [
            ("planner", None, false),
            ("researcher_1", Some(0), false),
            ("researcher_2", Some(1), false),
            ("researcher_3", Some(2), false),
            ("researcher_4", Some(3), true),
            ("writer", None, false)
        ]
    );
    assert!(out.output["key_points"].is_array(), "{}", out.output);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_can_be_cancelled() {
    let server = e2e::mock(json!({"rules": [{"reply": {"fault": {"kind": "hang"}}}]})).await;
    let doc = json!({
        "providers": {"mock": {"type": "openai_compatible", "base_url": server.base_url(), "timeout_ms": 60000}},
        "agents": {"a": {"instructions": "a", "model": "gpt-4.1-mini"}},
        "workflow": {"key": "c", "steps": [{"agent": "a"}]}
    });
    let runner = runner_for(doc, false).await;
    let mut handle = runner.start(RunRequest {
        input: json!("x"),
        events: true,
        ..RunRequest::default()
    });
    let mut rx = handle.take_events().expect("events");
    // Wait until the model request is in flight, then cancel.
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("event")
            .expect("open");
        if e.kind == EventType::LlmRequest {
            break;
        }
    }
    handle.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), handle.wait())
        .await
        .expect("cancel is prompt");
    assert!(matches!(result, Err(RunError::Cancelled)), "{result:?}");
    let mut last = None;
    while let Ok(e) = rx.try_recv() {
        last = Some(e.kind);
    }
    assert_eq!(last, Some(EventType::RunCancelled));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_runner_serves_concurrent_runs() {
    let runner = runner_for(peer_spec(), true).await;
    let handles: Vec<_> = (0..50)
        .map(|i| {
            runner.start(RunRequest {
                input: json!(format!("topic {i}")),
                ..RunRequest::default()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let out = tokio::time::timeout(Duration::from_secs(60), h.wait())
            .await
            .expect("timeout")
            .expect("run");
        assert!(ids.insert(out.run_id));
        assert_eq!(out.steps.len(), 6);
    }
}

/// A run belongs to the account and user of its caller, not to what its
/// session names: an account's caller is refused another account's session
/// before anything is recorded, its own runs carry its account, and another
/// account can neither see nor resume them.
#[tokio::test(flavor = "multi_thread")]
async fn runs_belong_to_their_caller() {
    use host::engine::{Caller, ResumeRequest, SessionConfig};
    use host::store::{MemoryStore, RunFilter, Scope, SessionScope, Store};

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner_for(peer_spec(), true)
        .await
        .with_store(store.clone());
    let acme = Caller::account("acme", "u1");
    let foreign = SessionConfig {
        scope: SessionScope::new("globex", "u1", "s1"),
        history_size: None,
    };
    let refused = runner
        .start(RunRequest {
            input: json!("topic"),
            session: Some(foreign),
            caller: acme.clone(),
            ..RunRequest::default()
        })
        .wait()
        .await;
    assert!(
        matches!(refused, Err(RunError::ForeignSession { .. })),
        "{refused:?}"
    );
    let all = store
        .list_runs(&Scope::Operator, RunFilter::default())
        .await
        .expect("runs");
    assert!(all.is_empty(), "nothing recorded: {all:?}");

    let out = runner
        .start(RunRequest {
            input: json!("topic"),
            caller: acme.clone(),
            ..RunRequest::default()
        })
        .wait()
        .await
        .expect("run");
    let run = store
        .get_run(&acme.scope(), &out.run_id)
        .await
        .expect("get")
        .expect("acme's run");
    assert_eq!(
        (run.account_id.as_str(), run.user_id.as_str()),
        ("acme", "u1")
    );
    let globex = Caller::account("globex", "u1");
    assert_eq!(
        store
            .get_run(&globex.scope(), &out.run_id)
            .await
            .expect("get"),
        None
    );
    let resumed = runner
        .resume(
            &out.run_id,
            ResumeRequest {
                caller: globex,
                ..ResumeRequest::default()
            },
        )
        .wait()
        .await;
    assert!(
        matches!(&resumed, Err(RunError::Store(e)) if e.to_string().contains("no run")),
        "another account cannot resume it: {resumed:?}"
    );
}

/// A run's end is committed only once its durable event consumers have
/// written its last event (docs/SCALING.md): until the consumer says so,
/// the run stays `running` with `run.completed` already sent, so a process
/// killed in between leaves a run that is resumed, not a finished run
/// without its last events.
#[tokio::test(flavor = "multi_thread")]
async fn the_end_is_committed_after_its_events_are_written() {
    use host::store::{MemoryStore, RunStatus, Scope, Store};

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner_for(peer_spec(), true)
        .await
        .with_store(store.clone());
    let (written, ack) = tokio::sync::watch::channel(0u64);
    let mut handle = runner.start(RunRequest {
        input: json!("topic"),
        events: true,
        event_acks: vec![ack],
        ..RunRequest::default()
    });
    let run_id = handle.run_id().to_owned();
    let mut rx = handle.take_events().expect("events");
    let end = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("timeout")
            .expect("the run's events");
        // Everything before the end is acknowledged at once.
        if event.kind == EventType::RunCompleted {
            break event;
        }
        written.send_replace(event.seq);
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = |store: Arc<dyn Store>, run_id: String| async move {
        let run = store.get_run(&Scope::Operator, &run_id).await;
        run.expect("get").expect("the run").status
    };
    assert_eq!(
        status(store.clone(), run_id.clone()).await,
        RunStatus::Running,
        "the end was committed before its event was written"
    );
    written.send_replace(end.seq);
    let out = tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .expect("timeout")
        .expect("run");
    assert_eq!(status(store, run_id).await, RunStatus::Completed);
    let end = serde_json::to_value(&end).expect("json");
    assert_eq!(end["data"]["output"], out.output, "{end}");
}

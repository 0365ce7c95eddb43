//! The same behaviour tests against both implementations, plus SQLite-only
//! tests for files, corruption, schema versions and locking.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::json;

use super::*;
use crate::util::now_ms;

fn new_run(run_id: &str, session: Option<&SessionScope>) -> NewRun {
    NewRun {
        run_id: run_id.to_owned(),
        status: RunStatus::Queued,
        workflow_key: "wf".to_owned(),
        spec_digest: "sha256:abc".to_owned(),
        account_id: session.map(|s| s.account_id.clone()).unwrap_or_default(),
        user_id: session.map(|s| s.user_id.clone()).unwrap_or_default(),
        session_id: session.map(|s| s.session_id.clone()),
        input: json!({"q": run_id}),
    }
}

fn entry(kind: JournalKind, key: &str, n: u64) -> JournalEntry {
    JournalEntry::new(kind, key, json!({ "n": n }))
}

fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open_in_memory().expect("open in-memory sqlite")),
        ),
    ]
}

/// Runs an async test body against every implementation.
macro_rules! for_each_store {
    ($name:ident, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            for (label, store) in stores() {
                $body(store)
                    .await
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
            }
        }
    };
}

type TestResult = Result<(), StoreError>;

async fn runs_crud(store: Arc<dyn Store>) -> TestResult {
    let scope = SessionScope::new("acct", "user", "sess");
    let a = store.create_run(new_run("run-a", Some(&scope))).await?;
    assert_eq!(a.status, RunStatus::Queued);
    let b = store.create_run(new_run("run-b", Some(&scope))).await?;
    store.create_run(new_run("run-c", None)).await?;

    // Same id again: conflict, and the first is untouched.
    assert!(matches!(
        store.create_run(new_run("run-a", None)).await,
        Err(StoreError::Conflict(_))
    ));

    let mut usage = BTreeMap::new();
    usage.insert(
        "gpt".to_owned(),
        Usage {
            input_tokens: 10,
            output_tokens: 3,
            total_tokens: 13,
        },
    );
    let updated = store
        .update_run(
            "run-a",
            RunUpdate {
                status: Some(RunStatus::Completed),
                last_agent: Some("writer".to_owned()),
                last_response_id: Some("resp_1".to_owned()),
                output: Some(json!({"answer": 42})),
                usage: Some(usage.clone()),
                ..RunUpdate::default()
            },
        )
        .await?;
    assert_eq!(updated.status, RunStatus::Completed);
    assert!(updated.updated_at_ms >= a.updated_at_ms);

    // Two runs in one session do not overwrite each other.
    let a = store.get_run("run-a").await?.expect("run-a");
    let b2 = store.get_run("run-b").await?.expect("run-b");
    assert_eq!(a.output, Some(json!({"answer": 42})));
    assert_eq!(a.usage, usage);
    assert_eq!(a.last_agent.as_deref(), Some("writer"));
    assert_eq!(a.input, json!({"q": "run-a"}));
    assert_eq!(a.session_scope(), Some(scope.clone()));
    assert_eq!(b2, b);
    assert_eq!(store.get_run("nope").await?, None);

    // Only Some fields change.
    let a2 = store
        .update_run(
            "run-a",
            RunUpdate {
                error: Some("late".to_owned()),
                ..RunUpdate::default()
            },
        )
        .await?;
    assert_eq!(a2.output, Some(json!({"answer": 42})));
    assert_eq!(a2.last_response_id.as_deref(), Some("resp_1"));
    assert_eq!(a2.error.as_deref(), Some("late"));

    // A terminal run cannot change status.
    assert!(matches!(
        store
            .update_run("run-a", RunUpdate::status(RunStatus::Running))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .update_run("nope", RunUpdate::status(RunStatus::Running))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // Listing: newest first, filters, limit.
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_runs(RunFilter::default()).await?),
        ["run-c", "run-b", "run-a"]
    );
    assert_eq!(
        ids(store
            .list_runs(RunFilter {
                status: Some(RunStatus::Completed),
                ..RunFilter::default()
            })
            .await?),
        ["run-a"]
    );
    assert_eq!(
        ids(store
            .list_runs(RunFilter {
                session: Some(scope.clone()),
                ..RunFilter::default()
            })
            .await?),
        ["run-b", "run-a"]
    );
    assert_eq!(
        ids(store
            .list_runs(RunFilter {
                session: Some(SessionScope::new("other", "user", "sess")),
                ..RunFilter::default()
            })
            .await?),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store
            .list_runs(RunFilter {
                limit: Some(1),
                ..RunFilter::default()
            })
            .await?),
        ["run-c"]
    );

    // Interrupted: queued or running, oldest first.
    store
        .update_run("run-c", RunUpdate::status(RunStatus::Running))
        .await?;
    assert_eq!(ids(store.interrupted_runs().await?), ["run-b", "run-c"]);
    Ok(())
}
for_each_store!(runs_create_get_update_list, runs_crud);

async fn journal_seq(store: Arc<dyn Store>) -> TestResult {
    store.create_run(new_run("r1", None)).await?;
    store.create_run(new_run("r2", None)).await?;
    assert_eq!(
        store
            .append("r1", entry(JournalKind::RunStarted, "run", 0))
            .await?,
        1
    );
    assert_eq!(
        store
            .append("r2", entry(JournalKind::RunStarted, "run", 0))
            .await?,
        1
    );
    let mut plugin = entry(JournalKind::PluginOutput, "s/a/0", 1);
    plugin.plugin_digest = Some("deadbeef".to_owned());
    assert_eq!(store.append("r1", plugin.clone()).await?, 2);
    assert_eq!(
        store
            .append("r1", entry(JournalKind::ModelResponse, "s/b/0", 2))
            .await?,
        3
    );
    assert_eq!(
        store
            .append("r2", entry(JournalKind::ToolResult, "s/a/0", 9))
            .await?,
        2
    );

    let j1 = store.journal("r1").await?;
    assert_eq!(j1.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(j1[1].entry, plugin);
    let j2 = store.journal("r2").await?;
    assert_eq!(j2.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);

    let by_key = store.journal_by_key("r1", "s/a/0").await?;
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0].seq, 2);
    assert_eq!(by_key[0].entry.plugin_digest.as_deref(), Some("deadbeef"));
    assert!(store.journal_by_key("r1", "missing").await?.is_empty());
    assert!(store.journal("nope").await?.is_empty());

    assert!(matches!(
        store
            .append("nope", entry(JournalKind::RunStarted, "run", 0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}
for_each_store!(journal_assigns_seq_per_run, journal_seq);

async fn append_atomic(store: Arc<dyn Store>) -> TestResult {
    store.create_run(new_run("r", None)).await?;
    let seq = store
        .append_with_update(
            "r",
            entry(JournalKind::StepCompleted, "s/a", 1),
            Some(RunUpdate {
                status: Some(RunStatus::Running),
                last_agent: Some("a".to_owned()),
                ..RunUpdate::default()
            }),
        )
        .await?;
    assert_eq!(seq, 1);
    let run = store.get_run("r").await?.expect("run");
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.last_agent.as_deref(), Some("a"));

    store
        .append_with_update(
            "r",
            entry(JournalKind::RunFinished, "run", 2),
            Some(RunUpdate::status(RunStatus::Completed)),
        )
        .await?;

    // The update fails (a completed run cannot run again): the entry that
    // was to be committed with it is not there either.
    let failed = store
        .append_with_update(
            "r",
            entry(JournalKind::ModelResponse, "s/b", 3),
            Some(RunUpdate {
                status: Some(RunStatus::Running),
                last_agent: Some("b".to_owned()),
                ..RunUpdate::default()
            }),
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    let journal = store.journal("r").await?;
    assert_eq!(journal.len(), 2);
    let run = store.get_run("r").await?.expect("run");
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.last_agent.as_deref(), Some("a"));

    // And the next append still gets the next number, with no gap.
    assert_eq!(
        store
            .append("r", entry(JournalKind::StepCompleted, "s", 4))
            .await?,
        3
    );
    Ok(())
}
for_each_store!(append_with_update_is_atomic, append_atomic);

/// Many concurrent writers (what group commit batches into shared
/// transactions): a failing call fails alone, every other call lands, and
/// each run's journal is numbered 1..n without gaps.
async fn concurrent_writes(store: Arc<dyn Store>) -> TestResult {
    let first = entry(JournalKind::RunStarted, "run/started", 0);
    let r = store
        .create_run_with(new_run("c0", None), Some(first.clone()))
        .await?;
    assert_eq!(r.run_id, "c0");
    assert_eq!(store.journal("c0").await?[0].entry, first);
    for run in 1..4 {
        store.create_run(new_run(&format!("c{run}"), None)).await?;
    }
    let mut tasks = Vec::new();
    for i in 0..200_u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let run = if i % 10 == 9 {
                "missing".to_owned()
            } else {
                format!("c{}", i % 4)
            };
            let result = store
                .append(&run, entry(JournalKind::ToolResult, &format!("k{i}"), i))
                .await;
            (run, result)
        }));
    }
    let mut landed = 0;
    for task in tasks {
        let (run, result) = task
            .await
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        match (run.as_str(), result) {
            ("missing", Err(StoreError::NotFound { .. })) => {}
            ("missing", other) => panic!("an append to a missing run gave {other:?}"),
            (_, result) => {
                result?;
                landed += 1;
            }
        }
    }
    assert_eq!(landed, 180);
    let mut total = 0;
    for run in 0..4 {
        let journal = store.journal(&format!("c{run}")).await?;
        let seqs: Vec<u64> = journal.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=journal.len() as u64).collect::<Vec<_>>());
        total += journal.len();
    }
    assert_eq!(total, 181, "180 appends and one run_started");
    Ok(())
}
for_each_store!(concurrent_writes_fail_alone, concurrent_writes);

async fn sessions_isolated(store: Arc<dyn Store>) -> TestResult {
    let mine = SessionScope::new("acct-1", "alice", "s1");
    let other_account = SessionScope::new("acct-2", "alice", "s1");
    let other_user = SessionScope::new("acct-1", "bob", "s1");
    store
        .append_session(&mine, "r1", vec![json!("hello"), json!("hi")], None)
        .await?;
    store
        .append_session(&other_account, "r9", vec![json!("secret")], None)
        .await?;
    let items = |v: Vec<SessionItem>| v.into_iter().map(|i| i.item).collect::<Vec<_>>();
    assert_eq!(
        items(store.session_history(&mine, None).await?),
        [json!("hello"), json!("hi")]
    );
    assert_eq!(
        items(store.session_history(&other_account, None).await?),
        [json!("secret")]
    );
    assert!(store.session_history(&other_user, None).await?.is_empty());
    assert!(
        store
            .session_history(&SessionScope::new("", "", "s1"), None)
            .await?
            .is_empty()
    );
    store
        .set_session_summary(&other_account, "theirs".to_owned(), 1)
        .await?;
    assert_eq!(store.session_summary(&mine).await?, None);
    assert_eq!(store.session_summary(&other_user).await?, None);
    Ok(())
}
for_each_store!(sessions_isolated_by_account_and_user, sessions_isolated);

async fn session_order(store: Arc<dyn Store>) -> TestResult {
    let scope = SessionScope::new("", "", "s");
    store
        .append_session(&scope, "r1", vec![json!(1), json!(2)], None)
        .await?;
    store
        .append_session(&scope, "r2", vec![json!(3)], None)
        .await?;
    store.append_session(&scope, "r3", vec![], None).await?;
    store
        .append_session(&scope, "r3", vec![json!(4), json!(5)], None)
        .await?;
    let all = store.session_history(&scope, None).await?;
    assert_eq!(
        all.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(all[2].run_id, "r2");
    assert_eq!(all[4].item, json!(5));
    let last2 = store.session_history(&scope, Some(2)).await?;
    assert_eq!(last2.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5]);
    assert!(store.session_history(&scope, Some(0)).await?.is_empty());

    // Summary replaces the prefix; seq numbers are never reused.
    assert!(matches!(
        store.set_session_summary(&scope, "x".to_owned(), 6).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .set_session_summary(&scope, "one to three".to_owned(), 3)
        .await?;
    let summary = store.session_summary(&scope).await?.expect("summary");
    assert_eq!(summary.summary, "one to three");
    assert_eq!(summary.covers_up_to, 3);
    let rest = store.session_history(&scope, None).await?;
    assert_eq!(rest.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5]);
    store
        .append_session(&scope, "r4", vec![json!(6)], None)
        .await?;
    let rest = store.session_history(&scope, None).await?;
    assert_eq!(rest.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5, 6]);
    Ok(())
}
for_each_store!(session_history_order_limit_summary, session_order);

fn outbox_entry(run_id: &str, url: &str, seq: u64) -> NewOutboxEntry {
    NewOutboxEntry {
        run_id: run_id.to_owned(),
        target: OutboxTarget {
            url: url.to_owned(),
            secret_env: Some("HOOK_SECRET".to_owned()),
            headers: BTreeMap::from([("x-team".to_owned(), "a".to_owned())]),
            inline_secret: false,
        },
        seq,
        event_type: if seq == 1 {
            "run.started"
        } else {
            "step.started"
        }
        .to_owned(),
        body: format!("{{\"seq\":{seq}}}"),
    }
}

async fn outbox_lanes(store: Arc<dyn Store>) -> TestResult {
    const A: &str = "http://a.test/hook";
    const B: &str = "http://b.test/hook";
    store
        .outbox_enqueue((1..=3).map(|s| outbox_entry("r1", A, s)).collect())
        .await?;
    store
        .outbox_enqueue(vec![outbox_entry("r2", A, 1), outbox_entry("r1", B, 1)])
        .await?;
    // Enqueueing again changes nothing.
    let mut again = outbox_entry("r1", A, 1);
    again.body = "changed".to_owned();
    store.outbox_enqueue(vec![again]).await?;
    assert_eq!(store.outbox_last_seq("r1", A).await?, 3);
    assert_eq!(store.outbox_last_seq("r1", B).await?, 1);
    assert_eq!(store.outbox_last_seq("r9", A).await?, 0);

    // One head per lane, each the lane's lowest seq.
    let heads = store.outbox_heads().await?;
    let mut lanes: Vec<(String, String, u64)> = heads
        .iter()
        .map(|h| (h.run_id.clone(), h.target.url.clone(), h.seq))
        .collect();
    lanes.sort();
    assert_eq!(
        lanes,
        [
            ("r1".to_owned(), A.to_owned(), 1),
            ("r1".to_owned(), B.to_owned(), 1),
            ("r2".to_owned(), A.to_owned(), 1),
        ]
    );
    let head = heads.iter().find(|h| h.run_id == "r1" && h.target.url == A);
    let head = head.expect("r1 head");
    assert_eq!(head.body, "{\"seq\":1}");
    assert_eq!(head.state, OutboxState::Pending);
    assert_eq!(head.attempts, 0);
    assert_eq!(head.target.secret_env.as_deref(), Some("HOOK_SECRET"));
    assert_eq!(
        head.target.headers.get("x-team").map(String::as_str),
        Some("a")
    );

    // Claims: leased to one owner at a time, in seq order.
    let now = now_ms();
    let claim = store.outbox_claim("r1", A, "me", now, now + 10_000).await?;
    let OutboxClaim::Claimed(first) = claim else {
        panic!("expected a claim, got {claim:?}");
    };
    assert_eq!(first.seq, 1);
    assert_eq!(
        store
            .outbox_claim("r1", A, "other", now, now + 10_000)
            .await?,
        OutboxClaim::Busy(now + 10_000)
    );
    // An expired lease is no lease.
    assert!(matches!(
        store
            .outbox_claim("r1", A, "other", now + 20_000, now + 30_000)
            .await?,
        OutboxClaim::Claimed(_)
    ));
    // A stopping deliverer lets go of its leases.
    assert!(matches!(
        store.outbox_claim("r2", A, "me", now, now + 10_000).await?,
        OutboxClaim::Claimed(_)
    ));
    store.outbox_release("me").await?;
    assert!(matches!(
        store
            .outbox_claim("r2", A, "other", now, now + 10_000)
            .await?,
        OutboxClaim::Claimed(_)
    ));
    store.outbox_release("other").await?;
    store.outbox_delivered("r1", A, 1).await?;
    // A failure schedules a retry: the lane waits, the next entry too.
    let OutboxClaim::Claimed(second) = store.outbox_claim("r1", A, "me", now, now + 1).await?
    else {
        panic!("seq 2");
    };
    assert_eq!(second.seq, 2);
    store
        .outbox_failed("r1", A, 2, "HTTP 500".to_owned(), Some(now + 5_000))
        .await?;
    assert_eq!(
        store.outbox_claim("r1", A, "me", now, now + 1).await?,
        OutboxClaim::NotDue(now + 5_000)
    );
    let OutboxClaim::Claimed(retry) = store
        .outbox_claim("r1", A, "me", now + 5_000, now + 6_000)
        .await?
    else {
        panic!("seq 2 again");
    };
    assert_eq!((retry.seq, retry.attempts), (2, 1));
    assert_eq!(retry.last_error.as_deref(), Some("HTTP 500"));
    // Dead: the lane moves on to seq 3.
    store
        .outbox_failed("r1", A, 2, "HTTP 410".to_owned(), None)
        .await?;
    let OutboxClaim::Claimed(third) = store
        .outbox_claim("r1", A, "me", now + 5_000, now + 6_000)
        .await?
    else {
        panic!("seq 3");
    };
    assert_eq!(third.seq, 3);
    store.outbox_delivered("r1", A, 3).await?;
    assert_eq!(
        store
            .outbox_claim("r1", A, "me", now + 5_000, now + 6_000)
            .await?,
        OutboxClaim::Empty
    );
    assert!(matches!(
        store.outbox_delivered("r1", A, 99).await,
        Err(StoreError::NotFound { .. })
    ));

    let summary = store.outbox_summary("r1").await?;
    assert_eq!(
        (summary.pending, summary.delivered, summary.dead),
        (1, 2, 1)
    );
    assert_eq!(summary.dead_entries.len(), 1);
    let dead = &summary.dead_entries[0];
    assert_eq!((dead.seq, dead.attempts), (2, 2));
    assert_eq!(dead.event_type, "step.started");
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 410"));
    assert_eq!(
        store.outbox_summary("nope").await?,
        OutboxSummary::default()
    );

    let pending = store
        .outbox_entries(None, Some(OutboxState::Pending), None)
        .await?;
    assert_eq!(pending.len(), 2);
    let r1 = store.outbox_entries(Some("r1"), None, None).await?;
    assert_eq!(
        r1.iter()
            .map(|e| (e.target.url.as_str(), e.seq))
            .collect::<Vec<_>>(),
        [(A, 1), (A, 2), (A, 3), (B, 1)]
    );
    assert_eq!(store.outbox_entries(None, None, Some(1)).await?.len(), 1);
    let heads = store.outbox_heads().await?;
    assert_eq!(heads.len(), 2, "r1→A is done: {heads:?}");
    Ok(())
}
for_each_store!(outbox_lanes_claims_and_states, outbox_lanes);

#[test]
fn status_and_kind_names_round_trip() {
    for s in RunStatus::ALL {
        assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        assert_eq!(serde_json::to_value(s).expect("json"), json!(s.as_str()));
    }
    for k in JournalKind::ALL {
        assert_eq!(k.as_str().parse::<JournalKind>(), Ok(k));
        assert_eq!(serde_json::to_value(k).expect("json"), json!(k.as_str()));
    }
    for s in OutboxState::ALL {
        assert_eq!(s.as_str().parse::<OutboxState>(), Ok(s));
        assert_eq!(serde_json::to_value(s).expect("json"), json!(s.as_str()));
    }
    assert!("paused".parse::<RunStatus>().is_err());
    assert_eq!(RunStatus::ALL.iter().filter(|s| s.is_terminal()).count(), 3);
}

/// The names are stored in databases and shown to users: pinned here so a
/// derive (strum's or serde's) can never rename one unnoticed.
#[test]
fn status_and_kind_names_are_stable() {
    let names = |all: &[&'static str]| all.join(" ");
    assert_eq!(
        names(&RunStatus::ALL.map(RunStatus::as_str)),
        "queued running waiting_approval completed failed cancelled"
    );
    assert_eq!(
        names(&JournalKind::ALL.map(JournalKind::as_str)),
        "run_started model_response tool_result plugin_output guardrail_verdict \
         approval_requested approval_decision step_completed step_failed run_finished \
         session_read session_write"
    );
    assert_eq!(
        names(&OutboxState::ALL.map(OutboxState::as_str)),
        "pending delivered dead"
    );
    assert_eq!(RunStatus::WaitingApproval.to_string(), "waiting_approval");
    assert_eq!(
        "sideways".parse::<JournalKind>().map_err(|e| e.to_string()),
        Err("unknown journal kind \"sideways\"".to_owned())
    );
    assert_eq!(
        "lost".parse::<OutboxState>().map_err(|e| e.to_string()),
        Err("unknown outbox state \"lost\"".to_owned())
    );
}

#[tokio::test]
async fn queued_appends_commit_in_call_order() {
    for (name, store) in stores() {
        store.create_run(new_run("q", None)).await.expect("create");
        let first = store.clone().append_queued(
            "q".to_owned(),
            entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
            None,
        );
        let second = store.clone().append_queued(
            "q".to_owned(),
            entry(JournalKind::ToolResult, "s/0/t1/tool/c", 2),
            None,
        );
        // Awaiting the later one commits the earlier one too, before it.
        assert_eq!(second.await.expect("second"), 2, "{name}");
        assert_eq!(first.await.expect("first"), 1, "{name}");
        // A queued append whose future is dropped unawaited is still written,
        // before anything called after it.
        drop(store.clone().append_queued(
            "q".to_owned(),
            entry(JournalKind::StepCompleted, "s/0/done", 3),
            None,
        ));
        let keys: Vec<_> = store
            .journal("q")
            .await
            .expect("journal")
            .into_iter()
            .map(|r| r.entry.key)
            .collect();
        assert_eq!(
            keys,
            ["s/0/t1/model", "s/0/t1/tool/c", "s/0/done"],
            "{name}"
        );
        let err = store
            .clone()
            .append_queued(
                "nope".to_owned(),
                entry(JournalKind::ToolResult, "k", 1),
                None,
            )
            .await
            .expect_err("unknown run");
        assert!(
            matches!(err, StoreError::NotFound { .. }),
            "{name}: {err:?}"
        );
    }
}

/// Callers on many threads race for the connection: every call is run
/// (none waits forever for a runner that has already left) and each run's
/// seqs stay gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_calls_from_many_threads_all_complete() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
    for run in 0..4 {
        store
            .create_run(new_run(&format!("m{run}"), None))
            .await
            .expect("create");
    }
    let append = |store: Arc<dyn Store>, t: u64| async move {
        for i in 0..1000_u64 {
            let run = format!("m{}", (t + i) % 4);
            let e = entry(JournalKind::ToolResult, &format!("t{t}/{i}"), i);
            if i % 2 == 0 {
                store.append(&run, e).await?;
            } else {
                store.clone().append_queued(run, e, None).await?;
            }
        }
        Ok::<_, StoreError>(())
    };
    let mut tasks = Vec::new();
    for t in 0..6 {
        tasks.push(tokio::spawn(append(store.clone(), t)));
    }
    // And two plain threads outside the runtime.
    let threads: Vec<_> = (6..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || futures::executor::block_on(append(store, t)))
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await.expect("task").expect("appends");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every call completes");
    for thread in threads {
        thread.join().expect("thread").expect("appends");
    }
    let mut total = 0;
    for run in 0..4 {
        let journal = store.journal(&format!("m{run}")).await.expect("journal");
        let seqs: Vec<u64> = journal.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=journal.len() as u64).collect::<Vec<_>>());
        total += journal.len();
    }
    assert_eq!(total, 8000);
}

#[tokio::test]
async fn sqlite_queued_append_survives_dropping_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queued.db");
    {
        let store = Arc::new(SqliteStore::open(&path).expect("open"));
        store.create_run(new_run("q", None)).await.expect("create");
        drop(store.clone().append_queued(
            "q".to_owned(),
            entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
            None,
        ));
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.journal("q").await.expect("journal").len(), 1);
}

/// A lone run's barrier commits on its first poll: no added latency.
#[tokio::test]
async fn sqlite_lone_barrier_commits_at_once() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
    store
        .create_run(new_run("lone", None))
        .await
        .expect("create");
    let before = store.commits();
    let write = store.clone().append_queued(
        "lone".to_owned(),
        entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
        None,
    );
    assert_eq!(write.now_or_never().map(|r| r.is_ok()), Some(true));
    assert_eq!(store.commits(), before + 1);
}

/// The time on the connection grows with every batch and only then.
#[tokio::test]
async fn sqlite_busy_time_counts_batches() {
    let store = SqliteStore::open_in_memory().expect("open");
    let opened = store.busy();
    store
        .create_run(new_run("timed", None))
        .await
        .expect("create");
    let created = store.busy();
    assert!(created > opened, "{created:?} after {opened:?}");
    assert_eq!(store.busy(), created, "nothing ran meanwhile");
    store.get_run("timed").await.expect("read");
    assert!(store.busy() > created, "reads count too");
}

/// While other runs have writes queued, a barrier lets the runtime turn
/// before committing, so a run that reaches its barrier meanwhile shares
/// the commit.
#[tokio::test]
async fn sqlite_barriers_of_concurrent_runs_share_a_commit() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
    for run in ["a", "b", "c"] {
        store.create_run(new_run(run, None)).await.expect("create");
    }
    let before = store.commits();
    // Run c has a write-behind entry queued (its barrier comes later).
    let c = store.clone().append_queued(
        "c".to_owned(),
        entry(JournalKind::PluginOutput, "s/0/map_input", 1),
        None,
    );
    // Run a reaches its barrier; run b reaches its own a moment later.
    let a = store.clone().append_queued(
        "a".to_owned(),
        entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
        None,
    );
    let b = async {
        tokio::task::yield_now().await;
        store
            .clone()
            .append_queued(
                "b".to_owned(),
                entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
                None,
            )
            .await
    };
    let (a, b) = tokio::join!(a, b);
    a.expect("a");
    b.expect("b");
    c.await.expect("c");
    assert_eq!(store.commits(), before + 1, "one commit for all three runs");
    for run in ["a", "b", "c"] {
        assert_eq!(store.journal(run).await.expect("journal").len(), 1);
    }
}

/// The store remembers each run's next seq instead of reading it. When
/// another process (`host approve`, say) appended to the run meanwhile,
/// the remembered seq is taken: the append reads the seq again and gets
/// the next one, not an error.
#[tokio::test]
async fn sqlite_append_after_another_process_appended_takes_the_next_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seq.db");
    let ours = SqliteStore::open(&path).expect("open");
    let theirs = SqliteStore::open(&path).expect("second store");
    ours.create_run(new_run("r", None)).await.expect("create");
    async fn append(store: &SqliteStore, n: u64) -> u64 {
        let key = format!("s/{n}");
        let appended = store
            .append("r", entry(JournalKind::ToolResult, &key, n))
            .await;
        appended.expect("append")
    }
    assert_eq!(append(&ours, 1).await, 1);
    assert_eq!(append(&ours, 2).await, 2);
    assert_eq!(append(&theirs, 3).await, 3);
    assert_eq!(append(&ours, 4).await, 4);
    assert_eq!(append(&theirs, 5).await, 5);
    let seqs: Vec<u64> = ours
        .journal("r")
        .await
        .expect("journal")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

/// An append whose run update fails is rolled back whole, and the seq it
/// took is given to the next append: no gap.
#[tokio::test]
async fn sqlite_rolled_back_append_leaves_no_seq_gap() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
    store.create_run(new_run("r", None)).await.expect("create");
    let first = store
        .append("r", entry(JournalKind::RunStarted, "run", 0))
        .await;
    assert_eq!(first.expect("first"), 1);
    store
        .update_run("r", RunUpdate::status(RunStatus::Completed))
        .await
        .expect("complete");
    // A completed run cannot become running: the update fails, and the
    // entry appended with it is rolled back.
    let refused = store
        .clone()
        .append_queued(
            "r".to_owned(),
            entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
            Some(RunUpdate::status(RunStatus::Running)),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let next = store
        .append("r", entry(JournalKind::ToolResult, "s/0/t1/tool/x", 2))
        .await;
    assert_eq!(next.expect("next"), 2);
    assert_eq!(store.journal("r").await.expect("journal").len(), 2);
}

/// Checkpoints run on the store's own thread, never in a commit. Under
/// writes that never pause, a passive checkpoint never copies the whole
/// WAL, and the WAL would only grow; past `restart_frames` the thread
/// briefly holds the writes so that the WAL starts over. Without that, the
/// WAL here would reach about 50 times `restart_frames`.
#[tokio::test]
async fn sqlite_wal_starts_over_under_writes_that_never_pause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wal.db");
    let restart_frames = 200;
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            checkpoint_frames: 50,
            restart_frames,
            ..SqliteOptions::default()
        },
    )
    .expect("open");
    store.create_run(new_run("w", None)).await.expect("create");
    let wal = dir.path().join("wal.db-wal");
    let frame = 4096 + 24;
    let mut frames_written = 0;
    let mut n = 0;
    while frames_written < 50 * restart_frames {
        n += 1;
        // About 1.5 KiB per entry: a commit writes two or three pages.
        let data = json!({ "n": n, "pad": "x".repeat(1500) });
        store
            .append(
                "w",
                JournalEntry::new(JournalKind::ToolResult, format!("k{n}"), data),
            )
            .await
            .expect("append");
        frames_written += 2;
    }
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(
        size < 10 * u64::from(restart_frames) * frame,
        "the WAL grew to {} frames",
        size / frame
    );
    // Everything is there, through a second connection.
    let reader = SqliteStore::open(&path).expect("reader");
    assert_eq!(
        reader.journal("w").await.expect("journal").len(),
        n as usize
    );
}

#[test]
fn store_is_object_safe_and_shareable() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn Store>();
    let _: Arc<dyn Store> = Arc::new(MemoryStore::new());
}

// ---------------------------------------------------------------------------
// SQLite files

#[tokio::test]
async fn sqlite_file_reopens_with_data_and_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/host.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        store.create_run(new_run("r", None)).await.expect("create");
        store
            .append("r", entry(JournalKind::RunStarted, "run", 0))
            .await
            .expect("append");
        store
            .append_session(
                &SessionScope::new("a", "u", "s"),
                "r",
                vec![json!("x")],
                None,
            )
            .await
            .expect("session");
        store
            .outbox_enqueue(vec![outbox_entry("r", "http://a.test/", 1)])
            .await
            .expect("outbox");
    }
    assert!(path.exists());
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert!(store.get_run("r").await.expect("get").is_some());
    assert_eq!(store.journal("r").await.expect("journal").len(), 1);
    assert_eq!(
        store
            .session_history(&SessionScope::new("a", "u", "s"), None)
            .await
            .expect("history")
            .len(),
        1
    );
    assert_eq!(
        store.outbox_summary("r").await.expect("outbox").pending,
        1,
        "undelivered events survive a restart"
    );
    let mode: String = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_version_1_database_migrates_with_its_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    // What a version-1 host wrote: its schema, a run and two journal entries.
    {
        let c = rusqlite::Connection::open(&path).expect("create");
        c.execute_batch(
            "CREATE TABLE schema_version (
                 version    INTEGER PRIMARY KEY NOT NULL,
                 applied_at INTEGER NOT NULL
             );
             INSERT INTO schema_version (version, applied_at) VALUES (1, 0);",
        )
        .expect("version table");
        c.execute_batch(super::sqlite::MIGRATIONS[0])
            .expect("v1 schema");
        c.execute_batch(
            r#"INSERT INTO runs (run_id, status, workflow_key, spec_digest, account_id, user_id,
                                 input, created_at, updated_at)
               VALUES ('old', 'running', 'wf', 'd', '', '', '"hi"', 1, 1);
               INSERT INTO journal (run_id, seq, at, kind, key, plugin_digest, data)
               VALUES ('old', 1, 1, 'run_started', 'run/started', NULL, '{"input":"hi"}'),
                      ('old', 2, 2, 'model_response', 's/0/t1/model', NULL, '{"n":2}');"#,
        )
        .expect("v1 rows");
    }
    let store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert!(store.get_run("old").await.expect("get").is_some());
    let journal = store.journal("old").await.expect("journal");
    let keys: Vec<_> = journal
        .iter()
        .map(|r| (r.seq, r.entry.key.as_str(), r.entry.data.clone()))
        .collect();
    assert_eq!(
        keys,
        [
            (1, "run/started", json!({"input": "hi"})),
            (2, "s/0/t1/model", json!({"n": 2})),
        ]
    );
    // The run goes on after the migration: seq continues, lookups work.
    let seq = store
        .append("old", entry(JournalKind::ToolResult, "s/0/t1/tool/c", 3))
        .await
        .expect("append after migration");
    assert_eq!(seq, 3);
    let by_key = store
        .journal_by_key("old", "s/0/t1/model")
        .await
        .expect("by key");
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0].seq, 2);
    store
        .outbox_enqueue(vec![outbox_entry("old", "http://a.test/", 1)])
        .await
        .expect("outbox after migration");
}

/// Many openers of one brand-new file at the same moment (several `host`
/// processes started together on a fresh database) all succeed.
#[test]
fn sqlite_new_file_opened_by_many_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..10 {
        let path = dir.path().join(format!("new-{round}.db"));
        let start = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(&path).map(|s| s.schema_version())
                })
            })
            .collect();
        for opener in openers {
            let version = opener
                .join()
                .expect("thread")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(version.expect("version"), SCHEMA_VERSION);
        }
    }
}

#[test]
fn sqlite_garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, garbage).expect("write");
    let err = SqliteStore::open(&path).expect_err("garbage must be refused");
    assert!(
        matches!(err, StoreError::Corrupt { .. }),
        "unexpected error: {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("corrupt or not a SQLite database"), "{msg}");
}

#[test]
fn sqlite_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).expect("create"));
    rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)",
                [],
            )
        })
        .expect("bump version");
    let err = SqliteStore::open(&path).expect_err("newer schema must be refused");
    assert!(
        matches!(
            err,
            StoreError::Schema {
                found: 999,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "unexpected error: {err:?}"
    );
    assert!(err.to_string().contains("999"), "{err}");
}

#[tokio::test]
async fn sqlite_locked_database_gives_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("locked.db");
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            busy_timeout: Duration::from_millis(200),
            ..SqliteOptions::default()
        },
    )
    .expect("open");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("exclusive lock");

    let started = Instant::now();
    let err = store
        .create_run(new_run("r", None))
        .await
        .expect_err("write must fail while locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Once the lock is released, the store works again.
    other.execute_batch("ROLLBACK").expect("release");
    store.create_run(new_run("r", None)).await.expect("create");
}

#[test]
fn default_db_path_honours_env() {
    // Only the default branch: setting $HOST_DB would race other tests.
    if std::env::var_os("HOST_DB").is_none()
        && let Some(path) = default_db_path()
    {
        assert!(path.ends_with("host.db"), "{}", path.display());
    }
}

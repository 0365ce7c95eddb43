//! The journal: per-run seq numbers, atomic appends with run updates,
//! concurrent and queued writers, against both stores.

use super::*;

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

    let j1 = store.journal(ALL, "r1").await?;
    assert_eq!(j1.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(j1[1].entry, plugin);
    let j2 = store.journal(ALL, "r2").await?;
    assert_eq!(j2.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);

    let by_key = store.journal_by_key("r1", "s/a/0").await?;
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0].seq, 2);
    assert_eq!(by_key[0].entry.plugin_digest.as_deref(), Some("deadbeef"));
    assert!(store.journal_by_key("r1", "missing").await?.is_empty());
    assert!(store.journal(ALL, "nope").await?.is_empty());

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
    let run = store.get_run(ALL, "r").await?.expect("run");
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
    let journal = store.journal(ALL, "r").await?;
    assert_eq!(journal.len(), 2);
    let run = store.get_run(ALL, "r").await?.expect("run");
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
    assert_eq!(store.journal(ALL, "c0").await?[0].entry, first);
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
        let journal = store.journal(ALL, &format!("c{run}")).await?;
        let seqs: Vec<u64> = journal.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=journal.len() as u64).collect::<Vec<_>>());
        total += journal.len();
    }
    assert_eq!(total, 181, "180 appends and one run_started");
    Ok(())
}
for_each_store!(concurrent_writes_fail_alone, concurrent_writes);

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
            .journal(ALL, "q")
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

//! [`EventStore`]: stored events in id order, idempotent appends, scoping,
//! and pruning finished runs with everything they own.

use super::*;

async fn stored_in_order_and_idempotent(store: Arc<dyn Store>) -> TestResult {
    store.create_run(new_run("r1", None)).await?;
    let ev = |id: u64| NewEvent {
        id,
        event_type: "step.started".into(),
        body: format!("{{\"n\":{id}}}"),
    };
    store.events_append("r1", vec![ev(1), ev(2)]).await?;
    // Appending again (a retry) changes nothing; later ids extend.
    store.events_append("r1", vec![ev(2), ev(3)]).await?;
    assert_eq!(store.events_last_id("r1").await?, 3);
    let all = store.events_after(ALL, "r1", 0, 100).await?;
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(all[1].body, "{\"n\":2}");
    let after = store.events_after(ALL, "r1", 1, 1).await?;
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), [2]);
    assert_eq!(store.events_last_id("nope").await?, 0);
    Ok(())
}
for_each_store!(
    events_are_stored_in_order_and_idempotent,
    stored_in_order_and_idempotent
);

async fn next_notice(told: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(10), told.recv());
    wait.await.ok().flatten()
}

/// A store shared by processes tells listeners which run's events were
/// appended, once they commit, and not for an append that added nothing;
/// one private to a process has no listeners.
async fn appends_are_told_to_listeners(store: Arc<dyn Store>) -> TestResult {
    let Some(mut told) = store.listen_events().await? else {
        return Ok(());
    };
    store.create_run(new_run("r1", None)).await?;
    store.create_run(new_run("r2", None)).await?;
    let ev = NewEvent {
        id: 1,
        event_type: "run.started".into(),
        body: "{}".into(),
    };
    store.events_append("r1", vec![ev.clone()]).await?;
    assert_eq!(next_notice(&mut told).await.as_deref(), Some("r1"));
    // Again: nothing new, nothing told; then r2's append is the next notice.
    store.events_append("r1", vec![ev.clone()]).await?;
    store.events_append("r2", vec![ev]).await?;
    assert_eq!(next_notice(&mut told).await.as_deref(), Some("r2"));
    Ok(())
}
for_each_store!(appended_events_are_told, appends_are_told_to_listeners);

async fn scoped_to_the_runs_account(store: Arc<dyn Store>) -> TestResult {
    let scope = SessionScope::new("acme", "u", "s");
    store.create_run(new_run("r1", Some(&scope))).await?;
    let ev = NewEvent {
        id: 1,
        event_type: "run.started".into(),
        body: "{}".into(),
    };
    store.events_append("r1", vec![ev]).await?;
    assert_eq!(
        store
            .events_after(&Scope::account("acme"), "r1", 0, 10)
            .await?
            .len(),
        1
    );
    assert!(
        store
            .events_after(&Scope::account("other"), "r1", 0, 10)
            .await?
            .is_empty()
    );
    Ok(())
}
for_each_store!(
    events_are_scoped_to_the_runs_account,
    scoped_to_the_runs_account
);

async fn prune_removes_finished_runs_only(store: Arc<dyn Store>) -> TestResult {
    for id in ["done", "live"] {
        store.create_run(new_run(id, None)).await?;
        store
            .append(id, entry(JournalKind::RunStarted, "run", 1))
            .await?;
        store
            .events_append(
                id,
                vec![NewEvent {
                    id: 1,
                    event_type: "run.started".into(),
                    body: "{}".into(),
                }],
            )
            .await?;
        store
            .outbox_enqueue(vec![outbox_entry(id, "https://x.test/cb", 1)])
            .await?;
    }
    store
        .update_run("done", RunUpdate::status(RunStatus::Completed))
        .await?;
    store
        .update_run("live", RunUpdate::status(RunStatus::Running))
        .await?;
    // Nothing is old enough yet.
    assert_eq!(store.prune_finished(0).await?, 0);
    let gone = store.prune_finished(u64::MAX).await?;
    assert_eq!(gone, 1);
    assert!(store.get_run(ALL, "done").await?.is_none());
    assert!(store.journal(ALL, "done").await?.is_empty());
    assert_eq!(store.events_last_id("done").await?, 0);
    assert!(
        store
            .outbox_entries(ALL, Some("done"), None, None)
            .await?
            .is_empty()
    );
    // The running run keeps everything.
    assert!(store.get_run(ALL, "live").await?.is_some());
    assert_eq!(store.journal(ALL, "live").await?.len(), 1);
    assert_eq!(store.events_last_id("live").await?, 1);
    assert_eq!(
        store
            .outbox_entries(ALL, Some("live"), None, None)
            .await?
            .len(),
        1
    );
    Ok(())
}
for_each_store!(
    prune_removes_finished_runs_with_what_they_own,
    prune_removes_finished_runs_only
);

async fn pages_by_cursor_and_filters_by_workflow(store: Arc<dyn Store>) -> TestResult {
    for (id, wf) in [("a", "one"), ("b", "two"), ("c", "one"), ("d", "one")] {
        let mut run = new_run(id, None);
        run.workflow_key = wf.into();
        store.create_run(run).await?;
    }
    let page = |after: Option<&str>, workflow: Option<&str>| RunFilter {
        after: after.map(str::to_owned),
        workflow: workflow.map(str::to_owned),
        limit: Some(2),
        ..RunFilter::default()
    };
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_runs(ALL, page(None, None)).await?),
        ["d", "c"]
    );
    assert_eq!(
        ids(store.list_runs(ALL, page(Some("c"), None)).await?),
        ["b", "a"]
    );
    assert_eq!(
        ids(store.list_runs(ALL, page(Some("a"), None)).await?),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.list_runs(ALL, page(Some("d"), Some("one"))).await?),
        ["c", "a"]
    );
    assert!(
        store
            .list_runs(ALL, page(Some("zz"), None))
            .await?
            .is_empty()
    );
    Ok(())
}
for_each_store!(
    runs_page_by_cursor_and_filter_by_workflow,
    pages_by_cursor_and_filters_by_workflow
);

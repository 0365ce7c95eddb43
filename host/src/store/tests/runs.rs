//! Runs: create, get, update and list, against both stores.

use super::*;

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
    usage.insert("gpt".to_owned(), Usage::reported(10, 3, 13));
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
    let a = store.get_run(ALL, "run-a").await?.expect("run-a");
    let b2 = store.get_run(ALL, "run-b").await?.expect("run-b");
    assert_eq!(a.output, Some(json!({"answer": 42})));
    assert_eq!(a.usage, usage);
    assert_eq!(a.last_agent.as_deref(), Some("writer"));
    assert_eq!(a.input, json!({"q": "run-a"}));
    assert_eq!(a.session_scope(), Some(scope.clone()));
    assert_eq!(b2, b);
    assert_eq!(store.get_run(ALL, "nope").await?, None);

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
        ids(store.list_runs(ALL, RunFilter::default()).await?),
        ["run-c", "run-b", "run-a"]
    );
    assert_eq!(
        ids(store
            .list_runs(
                ALL,
                RunFilter {
                    status: Some(RunStatus::Completed),
                    ..RunFilter::default()
                }
            )
            .await?),
        ["run-a"]
    );
    assert_eq!(
        ids(store
            .list_runs(
                ALL,
                RunFilter {
                    session: Some(scope.clone()),
                    ..RunFilter::default()
                }
            )
            .await?),
        ["run-b", "run-a"]
    );
    assert_eq!(
        ids(store
            .list_runs(
                ALL,
                RunFilter {
                    session: Some(SessionScope::new("other", "user", "sess")),
                    ..RunFilter::default()
                }
            )
            .await?),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store
            .list_runs(
                ALL,
                RunFilter {
                    limit: Some(1),
                    ..RunFilter::default()
                }
            )
            .await?),
        ["run-c"]
    );

    // Interrupted: queued or running, oldest first.
    store
        .update_run("run-c", RunUpdate::status(RunStatus::Running))
        .await?;
    assert_eq!(ids(store.interrupted_runs(ALL).await?), ["run-b", "run-c"]);
    Ok(())
}
for_each_store!(runs_create_get_update_list, runs_crud);

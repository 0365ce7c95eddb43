//! Run leases ([`ClaimStore`]): one owner at a time, the next claimable run,
//! renewals and releases; and PostgreSQL's ready notifications.

use super::*;

fn lease(owner: &str, now_ms: u64, until_ms: u64) -> Lease<'_> {
    Lease {
        owner,
        now_ms,
        until_ms,
    }
}

async fn one_owner_at_a_time(store: Arc<dyn Store>) -> TestResult {
    store.create_run(new_run("r", None)).await?;
    assert!(store.claim_run("r", lease("a", 100, 200)).await?);
    assert!(
        !store.claim_run("r", lease("b", 150, 300)).await?,
        "held by a until 200"
    );
    assert!(
        store.claim_run("r", lease("a", 150, 300)).await?,
        "a renews its own"
    );
    assert!(
        !store.claim_run("r", lease("b", 299, 400)).await?,
        "still a's"
    );
    assert!(
        store.claim_run("r", lease("b", 301, 400)).await?,
        "a's lease expired"
    );
    assert!(!store.claim_run("r", lease("a", 302, 500)).await?);
    store.release_run("r", "a").await?;
    assert!(
        !store.claim_run("r", lease("a", 303, 500)).await?,
        "a cannot release b's lease"
    );
    store.release_run("r", "b").await?;
    assert!(store.claim_run("r", lease("a", 304, 500)).await?);
    store
        .update_run("r", RunUpdate::status(RunStatus::Completed))
        .await?;
    store.release_run("r", "a").await?;
    assert!(
        !store.claim_run("r", lease("a", 305, 500)).await?,
        "a finished run is never claimed"
    );
    assert!(!store.claim_run("nope", lease("a", 305, 500)).await?);
    Ok(())
}
for_each_store!(a_run_has_one_owner_at_a_time, one_owner_at_a_time);

async fn next_claimable(store: Arc<dyn Store>) -> TestResult {
    for id in ["r1", "r2", "r3", "r4", "r5"] {
        store.create_run(new_run(id, None)).await?;
        // Distinct creation times: the order is by them.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store
        .update_run("r1", RunUpdate::status(RunStatus::Completed))
        .await?;
    store
        .update_run("r2", RunUpdate::status(RunStatus::WaitingApproval))
        .await?;
    store
        .update_run("r4", RunUpdate::status(RunStatus::Running))
        .await?;
    let id = |r: Option<RunRecord>| r.map(|r| r.run_id);
    // r3 is the oldest queued or running run; then r4 (running: e.g. left
    // by a worker that died); r5 is left out; then none.
    assert_eq!(
        id(store.claim_next(lease("a", 100, 200), &[]).await?),
        Some("r3".into())
    );
    assert_eq!(
        id(store
            .claim_next(lease("b", 100, 200), &["r5".to_owned()])
            .await?),
        Some("r4".into())
    );
    assert_eq!(
        id(store
            .claim_next(lease("b", 100, 200), &["r5".to_owned()])
            .await?),
        None
    );
    assert_eq!(
        id(store.claim_next(lease("c", 100, 200), &[]).await?),
        Some("r5".into())
    );
    assert_eq!(id(store.claim_next(lease("c", 150, 250), &[]).await?), None);
    // b and c renew r4 and r5; a does not renew r3, whose lease expires.
    assert_eq!(store.renew_runs(lease("b", 190, 400)).await?, 1);
    assert_eq!(store.renew_runs(lease("c", 190, 400)).await?, 1);
    assert_eq!(
        store.renew_runs(lease("a", 201, 400)).await?,
        0,
        "an expired lease is not renewed"
    );
    assert_eq!(
        id(store.claim_next(lease("c", 250, 500), &[]).await?),
        Some("r3".into()),
        "a's expired lease is taken over"
    );
    assert_eq!(id(store.claim_next(lease("c", 250, 500), &[]).await?), None);
    // A released unfinished run is claimable at once.
    store.release_run("r4", "b").await?;
    assert_eq!(
        id(store.claim_next(lease("d", 260, 500), &[]).await?),
        Some("r4".into())
    );
    Ok(())
}
for_each_store!(claim_next_takes_the_oldest_free_run, next_claimable);

/// Eight claimers at once over 40 runs: every run claimed exactly once.
async fn concurrent_claims(store: Arc<dyn Store>) -> TestResult {
    for i in 0..40 {
        store.create_run(new_run(&format!("c{i:02}"), None)).await?;
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut mine = Vec::new();
            while let Some(run) = store.claim_next(lease(&owner, 1_000, 60_000), &[]).await? {
                mine.push(run.run_id);
            }
            Ok::<_, StoreError>(mine)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("claimer task")?);
    }
    all.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
    assert_eq!(all, expected, "each run claimed once");
    Ok(())
}
for_each_store!(concurrent_claimers_never_share_a_run, concurrent_claims);

/// PostgreSQL tells listeners about runs created queued and runs released
/// unfinished (the other stores are private to one process: no signal).
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification within 10 s")
}

#[tokio::test]
async fn postgres_notifies_ready_runs() {
    for (label, store) in stores() {
        let rx = store.listen_ready().await.expect("listen");
        let Some(mut rx) = rx else {
            assert_ne!(label, "postgres", "PostgreSQL must listen");
            continue;
        };
        store.create_run(new_run("n1", None)).await.expect("create");
        assert_eq!(next(&mut rx).await.as_deref(), Some("n1"));
        assert!(
            store
                .claim_run("n1", lease("a", 1, u64::MAX / 2))
                .await
                .expect("claim")
        );
        store.release_run("n1", "a").await.expect("release");
        assert_eq!(next(&mut rx).await.as_deref(), Some("n1"));
        let mut running = new_run("n2", None);
        running.status = RunStatus::Running;
        store.create_run(running).await.expect("create running");
        store.create_run(new_run("n3", None)).await.expect("create");
        assert_eq!(
            next(&mut rx).await.as_deref(),
            Some("n3"),
            "a run created running is someone's already"
        );
    }
}

//! Tenancy: under [`Scope::Account`], no lookup or listing of one account
//! returns anything of another (runs, journals, interrupted runs, the
//! outbox), against both stores. Sessions are scoped by their own key (see
//! `sessions`).

use super::*;

const URL: &str = "http://hook.test/";

/// Runs of two accounts that share user and session ids, and one without
/// an account; each with a journal and outbox entries.
async fn two_tenants(store: &Arc<dyn Store>) -> TestResult {
    let a = SessionScope::new("acct-a", "u", "s");
    let b = SessionScope::new("acct-b", "u", "s");
    for (id, scope) in [
        ("a1", Some(&a)),
        ("b1", Some(&b)),
        ("a2", Some(&a)),
        ("none", None),
    ] {
        store.create_run(new_run(id, scope)).await?;
        store
            .append(id, entry(JournalKind::RunStarted, "run/started", 1))
            .await?;
        store
            .outbox_enqueue(vec![outbox_entry(id, URL, 1), outbox_entry(id, URL, 2)])
            .await?;
    }
    store
        .update_run("a2", RunUpdate::status(RunStatus::Running))
        .await?;
    store
        .update_run("b1", RunUpdate::status(RunStatus::Running))
        .await?;
    Ok(())
}

fn run_ids(runs: &[RunRecord]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

fn entry_runs(entries: &[OutboxRecord]) -> Vec<&str> {
    let mut ids: Vec<&str> = entries.iter().map(|e| e.run_id.as_str()).collect();
    ids.dedup();
    ids
}

async fn check_runs_and_journals_are_scoped(store: Arc<dyn Store>) -> TestResult {
    two_tenants(&store).await?;
    let (a, b) = (Scope::account("acct-a"), Scope::account("acct-b"));

    // Lookups: another account's run is absent, not forbidden.
    assert_eq!(store.get_run(&a, "b1").await?, None);
    assert_eq!(store.get_run(&a, "none").await?, None);
    let b1 = store.get_run(&b, "b1").await?.expect("b1 in its account");
    assert_eq!(
        (b1.account_id.as_str(), b1.user_id.as_str()),
        ("acct-b", "u")
    );
    assert!(
        store.get_run(ALL, "b1").await?.is_some(),
        "the operator sees all"
    );
    assert!(store.journal(&a, "b1").await?.is_empty());
    assert_eq!(store.journal(&b, "b1").await?.len(), 1);
    assert_eq!(store.journal(ALL, "b1").await?.len(), 1);

    // Listings: only the account's own runs, whatever the filter says.
    assert_eq!(
        run_ids(&store.list_runs(&a, RunFilter::default()).await?),
        ["a2", "a1"]
    );
    assert_eq!(
        run_ids(&store.list_runs(&b, RunFilter::default()).await?),
        ["b1"]
    );
    let b_session = RunFilter {
        session: Some(SessionScope::new("acct-b", "u", "s")),
        ..RunFilter::default()
    };
    assert!(store.list_runs(&a, b_session.clone()).await?.is_empty());
    assert_eq!(run_ids(&store.list_runs(&b, b_session).await?), ["b1"]);
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    assert_eq!(run_ids(&store.list_runs(&a, running).await?), ["a2"]);
    assert_eq!(
        run_ids(&store.list_runs(ALL, RunFilter::default()).await?).len(),
        4
    );

    // Interrupted runs (queued or running), oldest first.
    assert_eq!(run_ids(&store.interrupted_runs(&a).await?), ["a1", "a2"]);
    assert_eq!(run_ids(&store.interrupted_runs(&b).await?), ["b1"]);
    assert_eq!(store.interrupted_runs(ALL).await?.len(), 4);

    // The empty account (runs started without one) is an account like any.
    let anonymous = Scope::account("");
    assert_eq!(
        run_ids(&store.list_runs(&anonymous, RunFilter::default()).await?),
        ["none"]
    );
    assert_eq!(store.get_run(&anonymous, "a1").await?, None);
    // An unknown account sees nothing at all.
    let stranger = Scope::account("acct-c");
    assert!(
        store
            .list_runs(&stranger, RunFilter::default())
            .await?
            .is_empty()
    );
    assert!(store.interrupted_runs(&stranger).await?.is_empty());
    Ok(())
}

for_each_store!(
    runs_and_journals_are_scoped,
    check_runs_and_journals_are_scoped
);

async fn check_outbox_is_scoped(store: Arc<dyn Store>) -> TestResult {
    two_tenants(&store).await?;
    let (a, b) = (Scope::account("acct-a"), Scope::account("acct-b"));

    // Entries carry their run's account and user.
    let b_entries = store.outbox_entries(&b, None, None, None).await?;
    assert_eq!(entry_runs(&b_entries), ["b1"]);
    assert!(
        b_entries
            .iter()
            .all(|e| e.account_id == "acct-b" && e.user_id == "u")
    );

    // Listing, by run or not, in any state.
    let a_entries = store.outbox_entries(&a, None, None, None).await?;
    assert_eq!(entry_runs(&a_entries), ["a1", "a2"]);
    assert!(
        store
            .outbox_entries(&a, Some("b1"), Some(OutboxState::Pending), None)
            .await?
            .is_empty()
    );
    assert_eq!(store.outbox_entries(ALL, None, None, None).await?.len(), 8);

    // The summary of another account's run is empty.
    assert_eq!(
        store.outbox_summary(&a, "b1").await?,
        OutboxSummary::default()
    );
    assert_eq!(store.outbox_summary(&b, "b1").await?.pending, 2);

    // Heads and claims: a deliverer of account A never gets B's events.
    let heads = store.outbox_heads(&a).await?;
    assert_eq!(entry_runs(&heads), ["a1", "a2"]);
    let now = crate::util::now_ms();
    assert_eq!(
        store
            .outbox_claim(&a, "b1", URL, "a-deliverer", now, now + 10_000)
            .await?,
        OutboxClaim::Empty
    );
    let OutboxClaim::Claimed(head) = store
        .outbox_claim(&b, "b1", URL, "b-deliverer", now, now + 10_000)
        .await?
    else {
        panic!("account B claims its own lane");
    };
    assert_eq!((head.run_id.as_str(), head.seq), ("b1", 1));
    assert_eq!(entry_runs(&store.outbox_heads(ALL).await?).len(), 4);
    Ok(())
}

for_each_store!(outbox_is_scoped, check_outbox_is_scoped);

/// An entry enqueued for a run the store does not know (no foreign key)
/// is in the empty account.
async fn check_outbox_entry_of_an_unknown_run(store: Arc<dyn Store>) -> TestResult {
    store
        .outbox_enqueue(vec![outbox_entry("ghost", URL, 1)])
        .await?;
    let entries = store
        .outbox_entries(&Scope::account(""), None, None, None)
        .await?;
    assert_eq!(entry_runs(&entries), ["ghost"]);
    assert_eq!(entries[0].account_id, "");
    assert!(
        store
            .outbox_entries(&Scope::account("acct-a"), None, None, None)
            .await?
            .is_empty()
    );
    Ok(())
}

for_each_store!(
    outbox_entry_of_an_unknown_run,
    check_outbox_entry_of_an_unknown_run
);

/// A version-3 database (before tenancy) migrates: its outbox entries take
/// their run's account and user, and are scoped like new ones.
#[tokio::test]
async fn sqlite_version_3_outbox_migrates_to_its_runs_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v3.db");
    {
        let c = rusqlite::Connection::open(&path).expect("create");
        c.execute_batch(
            "CREATE TABLE schema_version (
                 version    INTEGER PRIMARY KEY NOT NULL,
                 applied_at INTEGER NOT NULL
             );
             INSERT INTO schema_version (version, applied_at) VALUES (1, 0), (2, 0), (3, 0);",
        )
        .expect("version table");
        for sql in &crate::store::sqlite::MIGRATIONS[..3] {
            c.execute_batch(sql).expect("v3 schema");
        }
        c.execute_batch(
            r#"INSERT INTO runs (run_id, status, workflow_key, spec_digest, account_id, user_id,
                                 input, created_at, updated_at)
               VALUES ('old-a', 'completed', 'wf', 'd', 'acct-a', 'u', '"hi"', 1, 1),
                      ('old-b', 'completed', 'wf', 'd', 'acct-b', 'v', '"hi"', 2, 2);
               INSERT INTO outbox (run_id, url, seq, target, event_type, body, state,
                                   attempts, next_attempt_at, created_at, updated_at)
               VALUES ('old-a', 'http://a.test/', 1, '{"url":"http://a.test/"}', 'run.started',
                       '{}', 'pending', 0, 1, 1, 1),
                      ('old-b', 'http://a.test/', 1, '{"url":"http://a.test/"}', 'run.started',
                       '{}', 'dead', 3, 1, 2, 2),
                      ('gone', 'http://a.test/', 1, '{"url":"http://a.test/"}', 'run.started',
                       '{}', 'pending', 0, 1, 3, 3);"#,
        )
        .expect("v3 rows");
    }
    let store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let all = store
        .outbox_entries(ALL, None, None, None)
        .await
        .expect("entries");
    let owners: Vec<_> = all
        .iter()
        .map(|e| (e.run_id.as_str(), e.account_id.as_str(), e.user_id.as_str()))
        .collect();
    assert_eq!(
        owners,
        [
            ("gone", "", ""),
            ("old-a", "acct-a", "u"),
            ("old-b", "acct-b", "v")
        ]
    );
    let b = Scope::account("acct-b");
    let mine = store.outbox_entries(&b, None, None, None).await.expect("b");
    assert_eq!(entry_runs(&mine), ["old-b"]);
    assert_eq!(
        store
            .outbox_summary(&Scope::account("acct-a"), "old-b")
            .await
            .expect("summary"),
        OutboxSummary::default()
    );
    assert_eq!(
        store
            .outbox_summary(&b, "old-b")
            .await
            .expect("summary")
            .dead,
        1
    );
}

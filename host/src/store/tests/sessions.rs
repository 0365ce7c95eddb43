//! Session history: isolation by account and user, order, limits and
//! summaries, against both stores.

use super::*;

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

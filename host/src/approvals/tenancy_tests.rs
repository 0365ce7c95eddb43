//! Approvals are scoped: an account lists and decides only its own runs'
//! pending calls, against both stores.

use super::*;
use crate::store::{JournalEntry, MemoryStore, NewRun, RunUpdate, SqliteStore};
use serde_json::json;
use std::sync::Arc;

fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open_in_memory().expect("open in-memory sqlite")),
        ),
    ]
}

/// A run of `account` waiting for approval of call `call-1`.
async fn waiting_run(store: &dyn Store, run_id: &str, account: &str) {
    store
        .create_run(NewRun {
            run_id: run_id.to_owned(),
            status: RunStatus::Running,
            workflow_key: "wf".to_owned(),
            spec_digest: "d".to_owned(),
            account_id: account.to_owned(),
            user_id: "u".to_owned(),
            session_id: None,
            input: json!("hi"),
        })
        .await
        .expect("create");
    let request = JournalEntry::new(
        JournalKind::ApprovalRequested,
        "main/0/t1/approval/call-1",
        json!({"call_id": "call-1", "tool": "pay", "arguments": "{\"amount\":1}"}),
    );
    store
        .append_with_update(
            run_id,
            request,
            Some(RunUpdate::status(RunStatus::WaitingApproval)),
        )
        .await
        .expect("request");
}

fn runs_of(pending: &[PendingCall]) -> Vec<&str> {
    pending.iter().map(|p| p.run_id.as_str()).collect()
}

#[tokio::test]
async fn an_account_sees_and_decides_only_its_own_approvals() {
    for (label, store) in stores() {
        let store = store.as_ref();
        waiting_run(store, "run-a", "acct-a").await;
        waiting_run(store, "run-b", "acct-b").await;
        let (a, b) = (Scope::account("acct-a"), Scope::account("acct-b"));

        let listed = pending_all(store, &a).await.expect("pending");
        assert_eq!(runs_of(&listed), ["run-a"], "{label}");
        assert!(
            pending(store, &a, "run-b")
                .await
                .expect("pending")
                .is_empty(),
            "{label}"
        );
        let everyone = pending_all(store, &Scope::Operator).await.expect("all");
        assert_eq!(everyone.len(), 2, "{label}");

        // Account A cannot decide B's call: B's run is not found for A,
        // and nothing is recorded.
        let err = decide(store, &a, "run-b", "call-1", Decision::approve(), None)
            .await
            .expect_err("A decides B's call");
        assert!(
            matches!(err, ApprovalError::Store(StoreError::NotFound { .. })),
            "{label}: {err}"
        );
        assert_eq!(
            runs_of(&pending(store, &b, "run-b").await.expect("pending")),
            ["run-b"],
            "{label}: still pending"
        );

        // B decides its own.
        decide(store, &b, "run-b", "call-1", Decision::approve(), None)
            .await
            .expect("B decides");
        assert!(
            pending_all(store, &b).await.expect("pending").is_empty(),
            "{label}"
        );
        assert_eq!(
            runs_of(&pending_all(store, &a).await.expect("pending")),
            ["run-a"],
            "{label}"
        );
    }
}

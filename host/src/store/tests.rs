//! The same behaviour tests against every implementation (memory, SQLite
//! and, on a throwaway cluster, PostgreSQL), plus SQLite-only tests for
//! files, corruption, schema versions and locking, and PostgreSQL-only
//! tests for its migrations and errors. The shared
//! helpers and the `for_each_store!` macro live here, before the `mod`
//! lines, so that every submodule can use them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::*;

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

/// Every implementation, each empty; PostgreSQL on a fresh database of
/// the test cluster (`e2e::postgres`), left out only when PostgreSQL is
/// not installed and `CI` is unset.
fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut stores: Vec<(&'static str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open_in_memory().expect("open in-memory sqlite")),
        ),
    ];
    if let Some(url) = e2e::postgres::database() {
        stores.push((
            "postgres",
            Arc::new(PostgresStore::open(&url).expect("open the test database")),
        ));
    }
    stores
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

/// The operator's scope: every account (what most tests read with).
const ALL: &Scope = &Scope::Operator;

/// Here, not in `outbox`, because the SQLite file tests enqueue these too.
fn outbox_entry(run_id: &str, url: &str, seq: u64) -> NewOutboxEntry {
    NewOutboxEntry {
        run_id: run_id.to_owned(),
        target: OutboxTarget {
            url: url.to_owned(),
            secret_env: Some("HOOK_SECRET".to_owned()),
            headers: BTreeMap::from([("x-team".to_owned(), "a".to_owned())]),
            inline_headers: Vec::new(),
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

mod claims;
mod events;
mod journal;
mod outbox;
mod postgres;
mod runs;
mod sessions;
mod sqlite;
mod tenancy;

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

#[test]
fn store_is_object_safe_and_shareable() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn Store>();
    let _: Arc<dyn Store> = Arc::new(MemoryStore::new());
}

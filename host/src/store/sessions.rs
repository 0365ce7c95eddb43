//! Conversation sessions: the record types and [`SessionStore`].

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{JournalEntry, StoreError};

/// Who a session belongs to. Every session query filters on all three
/// fields; empty strings stand for an absent account or user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionScope {
    pub account_id: String,
    pub user_id: String,
    pub session_id: String,
}

impl SessionScope {
    pub fn new(
        account_id: impl Into<String>,
        user_id: impl Into<String>,
        session_id: impl Into<String>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            user_id: user_id.into(),
            session_id: session_id.into(),
        }
    }
}

/// One item of a session's conversation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    /// 1, 2, 3… per session; never reused, also after a summary replaced a prefix.
    pub seq: u64,
    /// The run that appended it.
    pub run_id: String,
    pub at_ms: u64,
    pub item: serde_json::Value,
}

/// The summary that replaced a session's history up to `covers_up_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub summary: String,
    pub covers_up_to: u64,
    pub updated_at_ms: u64,
}

/// Sessions' conversation histories and summaries. Object-safe.
pub trait SessionStore: Send + Sync + 'static {
    /// The session's history after its summary (if any), oldest first; with
    /// `limit`, only the newest `limit` items (still oldest first).
    fn session_history<'a>(
        &'a self,
        scope: &'a SessionScope,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<SessionItem>, StoreError>>;

    /// Appends items to the session (creating it) and, in the same
    /// transaction, `record` to run `run_id`'s journal (so a resumed run
    /// knows whether its items are in the session).
    fn append_session<'a>(
        &'a self,
        scope: &'a SessionScope,
        run_id: &'a str,
        items: Vec<serde_json::Value>,
        record: Option<JournalEntry>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The summary strategy: stores `summary` as standing for every item with
    /// `seq <= covers_up_to` and deletes those items, in one transaction.
    /// [`StoreError::Conflict`] if `covers_up_to` is beyond the last item.
    fn set_session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
        summary: String,
        covers_up_to: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn session_summary<'a>(
        &'a self,
        scope: &'a SessionScope,
    ) -> BoxFuture<'a, Result<Option<SessionSummary>, StoreError>>;
}

//! Durable state: runs, their append-only journals, conversation sessions,
//! and the outbox of events waiting for HTTP delivery.
//!
//! [`Store`] is the one interface the engine talks to. It is deliberately free
//! of SQL: ids are strings, payloads are JSON values, timestamps are unix
//! milliseconds, and ordering (`seq`) is assigned by the store. Like Spin's
//! factors, it is smaller traits, one per kind of state:
//! [`RunStore`] (runs and their journals), [`SessionStore`],
//! [`OutboxStore`], [`EventStore`] (events kept for live streams) and
//! [`ClaimStore`] (which worker executes which run); `Store` is all five, implemented for any type that
//! implements them, so `Arc<dyn Store>` is what callers hold. Two
//! implementations ship:
//!
//! - [`SqliteStore`]: the embedded default, one file (`--db`, by default
//!   [`default_db_path`]) in WAL mode with versioned schema migrations;
//! - [`MemoryStore`]: in-process, for library users and tests;
//! - [`PostgresStore`]: a PostgreSQL server (`--db postgres://…`) shared by
//!   a fleet of `host` processes (docs/SCALING.md).
//!
//! Guarantees every implementation keeps:
//! - runs are keyed by run id, never by session id;
//! - a journal entry and the run update given with it
//!   ([`RunStore::append_with_update`]) are committed together or not at all,
//!   and journal sequence numbers are 1, 2, 3… per run with no gaps;
//! - every session query filters on account, user *and* session id, so one
//!   account never sees another's session even when the session ids collide;
//! - every run, journal and outbox query a caller makes by id or as a
//!   listing takes a [`Scope`]: under [`Scope::Account`] a run of another
//!   account, its journal (approvals included) and its outbox entries are
//!   absent. Runs carry their account and user; outbox entries carry their
//!   run's (looked up when they are enqueued). The calls a running engine
//!   makes on its own run (append, update, the journal by key, the status,
//!   the outbox's next seq, a claimed entry's outcome) take the run id it
//!   already holds;
//! - a terminal run ([`RunStatus::is_terminal`]) never changes status again
//!   (such an update is a [`StoreError::Conflict`]);
//! - a run's lease ([`ClaimStore`]) has at most one unexpired owner at any
//!   time: a claim succeeds only on a free, expired or already-owned lease,
//!   atomically, so two workers claiming at once never both win, and
//!   [`ClaimStore::claim_next`] hands two callers different runs. A lease
//!   is advisory for the other traits: the store does not refuse a write
//!   from a worker whose lease expired (docs/SCALING.md says what that
//!   means for a worker that stalls longer than its lease).
//!
//! Timestamps (`*_at_ms`) are unix epoch milliseconds (UTC).

mod claims;
mod columns;
mod events;
mod memory;
mod outbox;
mod postgres;
mod runs;
mod scope;
mod sessions;
mod sqlite;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use claims::{ClaimStore, Lease};
pub use events::{EventRecord, EventStore, NewEvent};
pub use memory::MemoryStore;
pub use outbox::{
    NewOutboxEntry, OutboxClaim, OutboxRecord, OutboxState, OutboxStore, OutboxSummary,
    OutboxTarget,
};
pub use postgres::{PG_SCHEMA_VERSION, PostgresStore, is_postgres_url};
pub use runs::{
    JournalEntry, JournalKind, JournalRecord, NewRun, RunFilter, RunRecord, RunStatus, RunStore,
    RunUpdate,
};
pub use scope::Scope;
pub use sessions::{SessionItem, SessionScope, SessionStore, SessionSummary};
pub use sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to a store. `db` names the database
/// (a file path, `:memory:`, or a backend's address) so messages are actionable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run database {db}: {source}")]
    Open {
        db: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "the run database {db} is corrupt or not a SQLite database ({detail}); \
         move it aside or choose another file with --db"
    )]
    Corrupt { db: String, detail: String },
    /// A stored value this host cannot read (a server database, where
    /// [`StoreError::Corrupt`]'s advice about files does not apply).
    #[error("the run database {db} holds a value this host cannot read: {detail}")]
    Invalid { db: String, detail: String },
    #[error(
        "the run database {db} is locked by another process (still busy after the busy timeout); \
         is another `host` using it?"
    )]
    Locked { db: String },
    #[error(
        "the run database {db} has schema version {found}, newer than this host supports \
         ({supported}); upgrade host or use another --db"
    )]
    Schema {
        db: String,
        found: u64,
        supported: u64,
    },
    #[error("no run with id {run_id:?}")]
    NotFound { run_id: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot (de)serialize {what}: {source}")]
    Serialization {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("run database {db}: {source}")]
    Backend {
        db: String,
        #[source]
        source: BoxError,
    },
    /// One failure reported to each of several waiters (e.g. the barriers
    /// of a run's parallel branches that waited for the same write).
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

/// An unknown status or journal-kind string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

/// Parses one of the store's string enums (the names strum derives, the
/// same as serde's) with this module's own error, which names what was
/// being parsed; strum's `EnumString` would report only "Matching variant
/// not found".
fn parse_name<T>(what: &'static str, s: &str) -> Result<T, UnknownName>
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS
        .iter()
        .copied()
        .find(|v| Into::<&'static str>::into(*v) == s)
        .ok_or_else(|| UnknownName {
            what,
            value: s.to_owned(),
        })
}

/// strum's `VARIANTS` as an array, so callers can `map` the public `ALL`
/// constants; a wrong `N` fails to compile, so `ALL` cannot miss a variant.
const fn all_variants<T: Copy, const N: usize>(variants: &[T]) -> [T; N] {
    match variants.first_chunk::<N>() {
        Some(all) if variants.len() == N => *all,
        _ => panic!("ALL must list every variant"),
    }
}

pub use crate::usage::Usage;

/// Durable state for runs, journals, sessions, the outbox and stored
/// events, and the runs' leases: all five store traits. Object-safe: use it as `Arc<dyn Store>` (and bring the
/// trait whose methods you call into scope).
pub trait Store: RunStore + SessionStore + OutboxStore + EventStore + ClaimStore {}

impl<T: RunStore + SessionStore + OutboxStore + EventStore + ClaimStore + ?Sized> Store for T {}

/// The default database file: `$HOST_DB` if set, else `host.db` in the
/// user's data directory (e.g. `~/.local/share/host/host.db` on Linux).
pub fn default_db_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HOST_DB").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("dev", "wasm-workflow", "host")
        .map(|d| d.data_dir().join("host.db"))
}

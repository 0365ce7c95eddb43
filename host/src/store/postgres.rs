//! [`PostgresStore`]: the store on a PostgreSQL server, for a fleet of
//! `host` processes sharing one database (docs/SCALING.md).
//!
//! - A `deadpool-postgres` pool of `tokio-postgres` connections (no TLS:
//!   run it on a trusted network or a local socket); every write call is
//!   one transaction at PostgreSQL's default `READ COMMITTED` isolation,
//!   and what must not interleave takes a row lock first: a run's row for
//!   its journal (`journal_seq` numbers the entries 1, 2, 3… with no gaps
//!   whoever appends), a session's row for its items, a lane's head for an
//!   outbox claim.
//! - Schema: a `schema_version` table and numbered migrations, applied in
//!   one transaction under an advisory lock on first use, so several
//!   processes starting at once migrate once; a database whose version is
//!   newer than this binary knows is refused with [`StoreError::Schema`].
//! - JSON is stored as text (key order kept, as in SQLite), timestamps as
//!   `BIGINT` unix milliseconds.
//!
//! Files: `schema` the migrations; `errors` maps driver errors and stored
//! values; `runs`, `sessions`, `outbox`, `events` and `claims` implement
//! one store trait (or part) each.

mod claims;
mod errors;
mod events;
mod outbox;
mod queue;
mod runs;
mod schema;
mod sessions;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::OnceCell;

use super::StoreError;
use errors::open_error;
pub use schema::PG_SCHEMA_VERSION;

/// Connections the pool keeps at most, unless the URL says otherwise.
const POOL_SIZE: usize = 16;

/// A [`Store`](super::Store) in a PostgreSQL database. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The server's address without the password, for messages.
    db: String,
    /// The configuration, for the connection that listens.
    config: tokio_postgres::Config,
    /// The migrations, run once on first use.
    migrated: OnceCell<()>,
    /// Write-behind appends, started on first use (`queue`).
    queue: std::sync::OnceLock<queue::Queue>,
    /// Appends queued so far, and (told by the queue's task) committed so
    /// far: every other call first waits for those queued before it.
    queued: std::sync::atomic::AtomicU64,
    committed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("db", &self.inner.db)
            .finish_non_exhaustive()
    }
}

/// Whether `--db` names a PostgreSQL server (`postgres://` or
/// `postgresql://`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `postgres://user@host:port/dbname`: the URL without its password.
fn display_name(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let dbname = config.get_dbname().unwrap_or("");
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{host}:{port}/{dbname}")
}

impl PostgresStore {
    /// A store on the server at `url` (`postgres://user:pass@host/db`).
    /// Connects lazily: nothing is sent until the first call (or
    /// [`PostgresStore::connect`]), which also migrates the schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            db: url.split('@').next_back().unwrap_or("").to_owned(),
            source: Box::new(e),
        })?;
        let db = display_name(&config);
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Open {
                db: db.clone(),
                source: Box::new(e),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                db,
                config,
                migrated: OnceCell::new(),
                queue: std::sync::OnceLock::new(),
                queued: std::sync::atomic::AtomicU64::new(0),
                committed: tokio::sync::watch::channel(0).0,
            }),
        })
    }

    /// Opens, connects and migrates now, so a bad address fails at start.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url)?;
        drop(store.client().await?);
        Ok(store)
    }

    /// The database's address (without the password).
    pub fn db(&self) -> &str {
        &self.inner.db
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        schema::read_version(&**client, &self.inner.db).await
    }

    /// A pooled connection, the schema migrated, once every append queued
    /// before this call has committed (so calls take effect in call order).
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let queued = self.inner.queued.load(std::sync::atomic::Ordering::SeqCst);
        if queued > *self.inner.committed.borrow() {
            let mut committed = self.inner.committed.subscribe();
            // An error: the queue's task is gone (and told its callers).
            let _ = committed.wait_for(|c| *c >= queued).await;
        }
        self.pooled().await
    }

    /// A pooled connection, the schema migrated, without waiting for the
    /// queue (the queue's own task).
    async fn pooled(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let db = &self.inner.db;
        let mut client = self.inner.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => open_error(db, e),
            e => StoreError::Open {
                db: db.clone(),
                source: Box::new(e),
            },
        })?;
        if !self.inner.migrated.initialized() {
            self.inner
                .migrated
                .get_or_try_init(|| schema::migrate(&mut client, db))
                .await?;
        }
        Ok(client)
    }
}

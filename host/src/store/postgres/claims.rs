//! Runs ready for a worker: the `NOTIFY` that wakes idle workers.

use tokio_postgres::GenericClient;

use super::errors::db_error;
use crate::store::StoreError;

/// The channel idle workers `LISTEN` on; the payload is the run id.
pub(super) const READY_CHANNEL: &str = "host_runs_ready";

/// Tells the listening workers, when the transaction commits, that the run
/// is ready to be claimed.
pub(super) async fn notify_ready(
    tx: &impl GenericClient,
    db: &str,
    run_id: &str,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&READY_CHANNEL, &run_id])
        .await
        .map_err(|e| db_error(db, e))?;
    Ok(())
}

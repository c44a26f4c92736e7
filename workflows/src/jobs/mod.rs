//! The job layer on apalis-postgres.
//!
//! Job arguments are small serde structs implementing [`JobSpec`], each with an
//! explicit, stable queue name (apalis would otherwise use the Rust type path,
//! which changes when a type is renamed or moved). Jobs are always enqueued
//! with [`enqueue`] on the caller's connection or transaction, so a job exists
//! exactly when the state change that asked for it commits.
//!
//! Traps of apalis 1.0 we route around (see shared/design/APALIS.md):
//! no `.timeout()` layer (it strands jobs `Running`): handlers bound their own
//! work; no `RetryAfterError` (it loops forever): durable backoff re-pushes a
//! job with a `run_after`; worker names are unique per process run (a
//! same-name restart never rescues its own orphans); `max_attempts` is set on
//! every task (the default 25 retries hot, with no backoff).

pub mod admin;
pub mod canary;
pub mod cleanup;
pub mod context;
pub mod legacy_backfill;
pub mod prune;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod sync_item;

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgConnection;

pub use context::JobContext;
pub use settings::WorkerSettings;

/// Typed job arguments bound to one queue.
pub trait JobSpec: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The queue (`apalis.jobs.job_type`). Stable forever: rows in flight carry it.
    const QUEUE: &'static str;
    /// Attempts apalis makes before the row ends `Failed`. Keep it small: apalis
    /// retries immediately, so this guards against crashes, not outages.
    const MAX_ATTEMPTS: u32;
}

/// Errors while enqueueing.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The arguments did not serialise (a bug).
    #[error("job arguments did not serialise: {0}")]
    Encode(#[from] serde_json::Error),
    /// The insert failed.
    #[error("could not enqueue job: {0}")]
    Push(#[from] apalis_postgres::Error),
}

/// Pushes one job on `conn` (pass `&mut *tx` to enqueue inside a transaction:
/// the job then exists only if the transaction commits, and workers are
/// notified on commit because `pg_notify` is transactional).
///
/// `run_after` delays the job; apalis stores whole seconds, so a delay is
/// rounded up to the next second.
pub async fn enqueue<J: JobSpec>(
    conn: &mut PgConnection,
    job: &J,
    run_after: Option<Duration>,
) -> Result<TaskId, EnqueueError> {
    enqueue_with_id(conn, job, ulid::Ulid::generate(), run_after).await
}

/// [`enqueue`] with a task id chosen by the caller (guard tables record it).
pub async fn enqueue_with_id<J: JobSpec>(
    conn: &mut PgConnection,
    job: &J,
    id: ulid::Ulid,
    run_after: Option<Duration>,
) -> Result<TaskId, EnqueueError> {
    let task_id = TaskId::from_ulid(id);
    let mut builder = TaskBuilder::new(serde_json::to_vec(job)?)
        .task_id(task_id.clone())
        .max_attempts(J::MAX_ATTEMPTS as usize);
    if let Some(delay) = run_after {
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        builder = builder.run_after(Duration::from_secs(secs));
    }
    apalis_postgres::queries::push_tasks(conn, J::QUEUE, vec![builder.build()]).await?;
    Ok(task_id)
}

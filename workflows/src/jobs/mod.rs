//! The job layer on apalis-postgres.
//!
//! Job arguments are small serde structs implementing [`JobSpec`], each with an
//! explicit, stable queue name (apalis would otherwise use the Rust type path,
//! which changes when a type is renamed or moved). Jobs are always enqueued
//! with [`enqueue`] on the caller's connection or transaction, so a job exists
//! exactly when the state change that asked for it commits.
//!
//! Traps of apalis 1.0 we route around (measured in the project's apalis 1.0 notes):
//! no `.timeout()` layer (it strands jobs `Running`): handlers bound their own
//! work; no `RetryAfterError` (it loops forever): durable backoff re-pushes a
//! job with a `run_after`; worker names are unique per process run (a
//! same-name restart never rescues its own orphans); `max_attempts` is set on
//! every task (the default 25 retries hot, with no backoff).

pub mod admin;
pub mod canary;
pub mod cleanup;
pub mod context;
pub mod cron_schedule;
pub mod legacy_backfill;
pub mod prune;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod sync_item;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
/// rounded up to the next second (see [`due_timestamp`]).
pub async fn enqueue<J: JobSpec>(
    conn: &mut PgConnection,
    job: &J,
    run_after: Option<Duration>,
) -> Result<TaskId, EnqueueError> {
    enqueue_with_id(conn, job, ulid::Ulid::generate(), run_after).await
}

/// The `run_at` (Unix seconds) of a job pushed at `now` with `delay`: the delay
/// rounded up to whole seconds, and the due time rounded up too. apalis'
/// own `run_after` truncates the due time, so a job delayed 1 s at x.9 s was
/// due at x+1, 0.1 s later: durable backoff depends on never running early.
pub fn due_timestamp(now: SystemTime, delay: Duration) -> u64 {
    let whole = Duration::from_secs(delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
    let due = (now + whole).duration_since(UNIX_EPOCH).unwrap_or_default();
    due.as_secs() + u64::from(due.subsec_nanos() > 0)
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
        builder = builder.run_at_timestamp(due_timestamp(SystemTime::now(), delay));
    }
    apalis_postgres::queries::push_tasks(conn, J::QUEUE, vec![builder.build()]).await?;
    Ok(task_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn a_delayed_job_is_never_due_before_its_delay_rounded_up_to_whole_seconds() {
        // Late in a second: truncating would make it due 0.1 s later.
        assert_eq!(due_timestamp(at(10_900), Duration::from_secs(1)), 12);
        // On a whole second, nothing to round.
        assert_eq!(due_timestamp(at(10_000), Duration::from_secs(1)), 11);
        // A jittered 0.85 s backoff waits a whole second.
        assert_eq!(due_timestamp(at(10_000), Duration::from_millis(850)), 11);
        assert_eq!(due_timestamp(at(10_001), Duration::from_millis(850)), 12);
    }
}

//! The legacy-backfill resolver job (see [`crate::backfill`]).
//!
//! Queued by the discovery step while a legacy secret is pending, at most one
//! not-yet-started job at a time: the `legacy_backfill_job` guard row is
//! written with the job's task id in the same transaction as the push, and the
//! job deletes it as it starts. Secrets that hit a passing Plaid error stay
//! pending and the job re-queues itself with a durable, growing delay
//! (apalis' own retries are immediate); a run that used up its time budget
//! re-queues itself at once.

use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::{EnqueueError, JobContext, JobSpec};
use crate::{
    backfill::{self, BackfillError, Env, Report},
    db::legacy_backfill as db,
};

/// Resolve the pending legacy secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LegacyBackfill {
    /// How many backoff re-queues led here (0 for a fresh run); sets the next delay.
    #[serde(default)]
    pub round: u32,
}

impl JobSpec for LegacyBackfill {
    const QUEUE: &'static str = "plaid-sync.legacy-backfill";
    // Crash and database protection only: Plaid errors are retried durably by re-queueing.
    const MAX_ATTEMPTS: u32 = 3;
}

/// First re-queue delay after passing errors; doubles per round.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// Longest re-queue delay.
const BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// The delay before round `round + 1`: 30 s, 1 min, 2 min, ... capped at 1 h.
pub fn backoff(round: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1u32 << round.min(12))
        .min(BACKOFF_MAX)
}

/// Enqueues `job` unless a resolver job that has not started exists; true
/// when it enqueued.
pub async fn ensure_job(
    conn: &mut PgConnection,
    job: &LegacyBackfill,
    run_after: Option<Duration>,
) -> Result<bool, EnqueueError> {
    let task_id = ulid::Ulid::generate();
    let claimed = db::claim_job_guard(conn, &task_id.to_string())
        .await
        .map_err(apalis_postgres::Error::from)?;
    if claimed {
        super::enqueue_with_id(conn, job, task_id, run_after).await?;
    }
    Ok(claimed)
}

/// One run: release the guard, resolve, re-queue what is left.
pub async fn execute(env: Env<'_>, job: &LegacyBackfill) -> Result<Report, BackfillError> {
    db::release_job_guard(&mut *env.pool.acquire().await?).await?;
    let report = backfill::run_once(env, backfill::RUN_BUDGET).await?;
    let next = if report.deferred > 0 {
        Some((LegacyBackfill { round: job.round }, None))
    } else if report.retry_later > 0 {
        Some((LegacyBackfill { round: job.round + 1 }, Some(backoff(job.round))))
    } else {
        None
    };
    if let Some((next, delay)) = next {
        ensure_job(&mut *env.pool.acquire().await?, &next, delay).await?;
    }
    Ok(report)
}

/// The job handler.
pub async fn handle(job: LegacyBackfill, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let report = execute(Env::from(&*ctx), &job).await?;
    tracing::info!(
        resolved = report.resolved,
        failed = report.failed,
        retry_later = report.retry_later,
        deferred = report.deferred,
        mapped_accounts = report.mapped_accounts,
        unmatched_accounts = report.unmatched_accounts,
        "legacy backfill run finished"
    );
    Ok(())
}

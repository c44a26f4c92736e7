//! The pruner: keeps the job table from growing forever.
//!
//! apalis never deletes `Done` rows or dead `apalis.workers` rows. This job
//! deletes finished jobs (`Done`, `Killed`) whose `done_at` is older than the
//! retention, and worker rows not seen for that long that no job still points
//! at (`jobs.lock_by` references `workers.id`). `Failed` jobs are kept: they are
//! what an operator needs to see. Deletion runs in batches so one run never
//! holds a long lock on a large table.

use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::{JobContext, JobSpec};

/// Rows deleted per statement.
const BATCH: i64 = 5_000;

/// Arguments of a prune run (none: the retention comes from configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PruneJobs {}

impl JobSpec for PruneJobs {
    const QUEUE: &'static str = "plaid-sync.prune-jobs";
    const MAX_ATTEMPTS: u32 = 3;
}

/// What one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Finished job rows deleted.
    pub jobs: u64,
    /// Dead worker rows deleted.
    pub workers: u64,
}

/// Deletes finished jobs and dead workers older than `retention`.
pub async fn run_once(pool: &PgPool, retention: Duration) -> Result<PruneReport, sqlx::Error> {
    let secs = retention.as_secs_f64();
    let mut report = PruneReport::default();
    loop {
        let deleted = sqlx::query(
            "delete from apalis.jobs where id in (
                 select id from apalis.jobs
                 where status in ('Done', 'Killed')
                   and done_at < now() - make_interval(secs => $1)
                 limit $2)",
        )
        .bind(secs)
        .bind(BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        report.jobs += deleted;
        if deleted < BATCH as u64 {
            break;
        }
    }
    report.workers = sqlx::query(
        "delete from apalis.workers w
         where w.last_seen < now() - make_interval(secs => $1)
           and not exists (select 1 from apalis.jobs j where j.lock_by = w.id)",
    )
    .bind(secs)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(report)
}

/// The job handler.
pub async fn handle(_job: PruneJobs, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let report = run_once(&ctx.pool, ctx.job_retention).await?;
    let rollup = crate::monitoring::rollup::prune(&ctx.pool).await?;
    tracing::info!(
        jobs = report.jobs,
        workers = report.workers,
        rollup,
        "pruned job table and rollup"
    );
    Ok(())
}

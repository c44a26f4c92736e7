//! The canary job: proof that workers pick up and finish work.
//!
//! `plaid-sync check jobs` enqueues one and waits for its run row; the test
//! suite uses a long `hold_ms` to have a job in flight when a worker is killed.

use std::time::Duration;

use apalis::prelude::{Attempt, BoxDynError, Data, WorkerContext};
use serde::{Deserialize, Serialize};

use super::{JobContext, JobSpec};

/// The longest a canary may hold its worker: bounded so a typo cannot park a
/// worker slot for hours (handlers bound their own time; no `.timeout()` layer).
pub const MAX_HOLD: Duration = Duration::from_secs(300);

/// Arguments of a canary run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Canary {
    /// Identifies the run in `job_canary_runs`.
    pub token: String,
    /// How long the job holds its worker before finishing.
    pub hold_ms: u64,
}

impl JobSpec for Canary {
    const QUEUE: &'static str = "plaid-sync.canary";
    const MAX_ATTEMPTS: u32 = 3;
}

/// Records the start, holds, records the finish.
pub async fn handle(
    job: Canary,
    attempt: Attempt,
    worker: WorkerContext,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    let run_id: i64 = sqlx::query_scalar(
        "insert into job_canary_runs (token, worker, attempt) values ($1, $2, $3) returning id",
    )
    .bind(&job.token)
    .bind(worker.name())
    .bind(attempt.current() as i32)
    .fetch_one(&ctx.pool)
    .await?;
    tokio::time::sleep(Duration::from_millis(job.hold_ms).min(MAX_HOLD)).await;
    sqlx::query("update job_canary_runs set finished_at = now() where id = $1")
        .bind(run_id)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

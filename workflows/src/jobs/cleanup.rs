//! The jobs of unlink and dormant-item cleanup. They carry ids only: the
//! workflow's state is in `item_removals` and `plaid_items`
//! ([`crate::lifecycle::removal`] has the state machine), so a job is a timer
//! or a step executor that starts with a compare-and-set on that state.

use apalis::prelude::{BoxDynError, Data, TaskId};
use serde::{Deserialize, Serialize};

use super::{JobContext, JobSpec};
use crate::lifecycle::{cleanup, removal};

/// Calls Plaid's `/item/remove` for one removal (an attempt; failures re-push it with backoff).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RemoveItem {
    /// `item_removals.id`.
    pub removal_id: i64,
}

impl JobSpec for RemoveItem {
    const QUEUE: &'static str = "plaid-sync.remove-item";
    // Crash and database-error protection only: Plaid failures are retried
    // durably by re-pushing with a delay.
    const MAX_ATTEMPTS: u32 = 5;
}

/// The end of a dormant item's grace window: re-check, then remove or cancel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CleanupDue {
    /// `item_removals.id`.
    pub removal_id: i64,
}

impl JobSpec for CleanupDue {
    const QUEUE: &'static str = "plaid-sync.cleanup-due";
    const MAX_ATTEMPTS: u32 = 5;
}

/// One cleanup run (`CLEANUP_CRON`): find dormant items and start their
/// workflows, retry failed removals, resume removals whose job went missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CleanupRun {}

impl JobSpec for CleanupRun {
    const QUEUE: &'static str = "plaid-sync.cleanup-run";
    const MAX_ATTEMPTS: u32 = 3;
}

/// Handler of [`RemoveItem`].
pub async fn handle_remove(
    job: RemoveItem,
    task_id: TaskId,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    let step = removal::remove_step(&ctx, job.removal_id, &task_id.to_string()).await?;
    tracing::info!(removal_id = job.removal_id, ?step, "remove-item step");
    Ok(())
}

/// Handler of [`CleanupDue`].
pub async fn handle_due(job: CleanupDue, task_id: TaskId, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let step = cleanup::due_step(&ctx.pool, &ctx.cleanup, job.removal_id, &task_id.to_string()).await?;
    tracing::info!(removal_id = job.removal_id, ?step, "cleanup-due step");
    Ok(())
}

/// Handler of [`CleanupRun`].
pub async fn handle_run(_job: CleanupRun, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let report = cleanup::run_once(&ctx.pool, &ctx.cleanup).await?;
    tracing::info!(?report, "cleanup run finished");
    Ok(())
}

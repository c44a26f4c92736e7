//! The safety net: syncs what webhooks missed.
//!
//! Webhooks can be lost (Plaid gives up after 24 h, or stops retrying an
//! endpoint that rejected >90 % of them), so a schedule re-requests syncs of:
//! - active items not synced for `SAFETY_NET_STALE_AFTER`;
//! - items stuck `sync_needed` with no pending job for 5 minutes (a lost job);
//! - items stuck `syncing` past their lease (a crashed run that nothing retried);
//! - `failed` items whose retry is due but has no pending job.
//!
//! First it releases guards whose job can no longer run (see
//! [`release_stale_guards`]), so a spent job cannot block its item forever.
//!
//! Each query is served by a partial index of the foundation migration.
//! Requests go through `request_sync_many`, so an item with a pending job is
//! never queued twice.

use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::jobs::{EnqueueError, JobContext, JobSpec, sync_item::request_sync_many};

/// Items per batch.
const BATCH: i64 = 1_000;
/// A `sync_needed` item without a pending job for this long lost its job.
const LOST_JOB_AFTER: Duration = Duration::from_secs(300);

/// Arguments of a safety-net run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SafetyNet {}

impl JobSpec for SafetyNet {
    const QUEUE: &'static str = "plaid-sync.safety-net";
    const MAX_ATTEMPTS: u32 = 3;
}

/// What a run found and queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SafetyNetReport {
    /// Items found needing a sync.
    pub found: u64,
    /// Sync jobs enqueued (items with a pending job are not queued again).
    pub enqueued: u64,
    /// Guards released because their job could no longer run.
    pub stale_guards: u64,
}

/// Finds the items above and requests their syncs, in batches.
pub async fn run_once(pool: &PgPool, stale_after: Duration) -> Result<SafetyNetReport, EnqueueError> {
    let db = |e: sqlx::Error| EnqueueError::Push(e.into());
    let mut report = SafetyNetReport {
        stale_guards: release_stale_guards(pool).await.map_err(db)?,
        ..SafetyNetReport::default()
    };
    let mut after = 0i64;
    loop {
        let mut tx = pool.begin().await.map_err(db)?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "select id from plaid_items i
             where id > $1 and lifecycle <> 'removed' and (
                   (sync_status = 'active' and lifecycle = 'active'
                    and (last_synced_at is null or last_synced_at < now() - make_interval(secs => $2)))
                or (sync_status = 'sync_needed' and coalesce(sync_requested_at, created_at) < now() - make_interval(secs => $3)
                    and not exists (select 1 from sync_pending p where p.plaid_item_id = i.id))
                or (sync_status = 'syncing' and (sync_lease_until is null or sync_lease_until < now()))
                or (sync_status = 'failed' and next_retry_at <= now()
                    and not exists (select 1 from sync_pending p where p.plaid_item_id = i.id)))
             order by id limit $4",
        )
        .bind(after)
        .bind(stale_after.as_secs_f64())
        .bind(LOST_JOB_AFTER.as_secs_f64())
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let Some(last) = ids.last().copied() else { break };
        report.found += ids.len() as u64;
        report.enqueued += request_sync_many(&mut tx, &ids).await?;
        tx.commit().await.map_err(db)?;
        after = last;
    }
    Ok(report)
}

/// Deletes `sync_pending` guards whose job can no longer run: gone (pruned or
/// deleted by hand), finished, or pending with its attempts spent (apalis
/// never fetches a job whose `attempts` reached `max_attempts`, and a worker
/// that dies holding a job spends one when the job is rescued). Such a guard
/// would stop every later request of its item from enqueueing a job; once it
/// is gone, the scan below finds the item and queues a fresh job.
async fn release_stale_guards(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let released = sqlx::query(
        "delete from sync_pending p
         where not exists (
             select 1 from apalis.jobs j
             where j.id = p.task_id
               and (j.status = 'Running' or (j.status in ('Pending', 'Queued') and j.attempts < j.max_attempts)))",
    )
    .execute(pool)
    .await?
    .rows_affected();
    if released > 0 {
        tracing::warn!(released, "released sync guards whose jobs can no longer run");
    }
    Ok(released)
}

/// The job handler.
pub async fn handle(_job: SafetyNet, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let report = run_once(&ctx.pool, ctx.safety_net_stale_after).await?;
    tracing::info!(found = report.found, enqueued = report.enqueued, "safety net ran");
    Ok(())
}

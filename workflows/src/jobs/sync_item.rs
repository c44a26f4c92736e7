//! The sync job of one item, and how it is requested.
//!
//! "Request a sync" marks the item (`sync_requested_at`, status) and makes sure
//! one not-yet-started sync job exists for it: the `sync_pending` guard row is
//! inserted with the new job's task id in the same transaction as the push, and
//! the job deletes its guard as it starts. So N webhooks before the job starts
//! queue one job, and a webhook during a sync queues the next.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::{EnqueueError, JobSpec};

/// Sync one item from its stored cursor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncItem {
    /// `plaid_items.id`.
    pub plaid_item_id: i64,
}

impl JobSpec for SyncItem {
    const QUEUE: &'static str = "plaid-sync.sync-item";
    // Crash protection only: Plaid errors are retried durably by re-pushing.
    const MAX_ATTEMPTS: u32 = 5;
}

/// What a sync request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRequest {
    /// No such item (or it is removed).
    UnknownItem,
    /// Marked; a new job was enqueued.
    Enqueued {
        /// `plaid_items.id`.
        plaid_item_id: i64,
    },
    /// Marked; a job that has not started yet already covers it.
    AlreadyQueued {
        /// `plaid_items.id`.
        plaid_item_id: i64,
    },
    /// Marked, but the item needs the user to re-authenticate first; the reauth
    /// transition enqueues its catch-up sync.
    AwaitingReauth {
        /// `plaid_items.id`.
        plaid_item_id: i64,
    },
}

/// Which item a sync request is for.
#[derive(Debug, Clone, Copy)]
pub enum ItemRef<'a> {
    /// `plaid_items.id`.
    Id(i64),
    /// Plaid's `item_id` (what a webhook names).
    PlaidId(&'a str),
}

/// Marks the item for sync and ensures one pending job.
pub async fn request_sync(conn: &mut PgConnection, item: ItemRef<'_>) -> Result<SyncRequest, EnqueueError> {
    // `$1` is the id, `$2` the Plaid id; exactly one is non-null.
    let (id, plaid_id) = match item {
        ItemRef::Id(id) => (Some(id), None),
        ItemRef::PlaidId(plaid_id) => (None, Some(plaid_id)),
    };
    let row: Option<(i64, String, bool)> = sqlx::query_as(
        "update plaid_items
         set sync_requested_at = now(),
             sync_status = case when sync_status in ('active', 'failed') then 'sync_needed' else sync_status end
         where (id = $1 or item_id = $2) and lifecycle <> 'removed'
         returning id, sync_status, coalesce(next_retry_at > now(), false)",
    )
    .bind(id)
    .bind(plaid_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(apalis_postgres::Error::from)?;
    finish(conn, row).await
}

async fn finish(
    conn: &mut PgConnection,
    row: Option<(i64, String, bool)>,
) -> Result<SyncRequest, EnqueueError> {
    let Some((plaid_item_id, status, in_backoff)) = row else {
        return Ok(SyncRequest::UnknownItem);
    };
    if status == "needs_reauth" {
        return Ok(SyncRequest::AwaitingReauth { plaid_item_id });
    }
    if ensure_job(conn, plaid_item_id, None).await? {
        return Ok(SyncRequest::Enqueued { plaid_item_id });
    }
    // A pending job covers this request, but may be scheduled later (deferred
    // behind a lease): bring it forward, unless it is a backoff retry, whose
    // delay protects Plaid (rate limits, an institution that is down).
    if !in_backoff {
        move_pending_job(conn, plaid_item_id, "least(j.run_at, now())").await?;
    }
    Ok(SyncRequest::AlreadyQueued { plaid_item_id })
}

/// Pushes one sync job per claimed guard `(plaid_item_id, task_id)`, in one statement.
async fn push_sync_jobs(conn: &mut PgConnection, claimed: &[(i64, String)]) -> Result<(), EnqueueError> {
    if claimed.is_empty() {
        return Ok(());
    }
    let mut tasks = Vec::with_capacity(claimed.len());
    for (plaid_item_id, task_id) in claimed {
        // The caller generated these ids; they parse.
        let id = ulid::Ulid::from_string(task_id).expect("a ulid we generated");
        tasks.push(
            apalis::prelude::TaskBuilder::new(serde_json::to_vec(&SyncItem {
                plaid_item_id: *plaid_item_id,
            })?)
            .task_id(apalis::prelude::TaskId::from_ulid(id))
            .max_attempts(SyncItem::MAX_ATTEMPTS as usize)
            .build(),
        );
    }
    apalis_postgres::queries::push_tasks(conn, SyncItem::QUEUE, tasks).await?;
    Ok(())
}

/// Enqueues a sync job unless one that has not started exists; true when it enqueued.
/// `run_after` delays it (durable retries).
pub async fn ensure_job(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    run_after: Option<std::time::Duration>,
) -> Result<bool, EnqueueError> {
    let task_id = ulid::Ulid::generate();
    let claimed = sqlx::query(
        "insert into sync_pending (plaid_item_id, task_id) values ($1, $2) on conflict (plaid_item_id) do nothing",
    )
    .bind(plaid_item_id)
    .bind(task_id.to_string())
    .execute(&mut *conn)
    .await
    .map_err(apalis_postgres::Error::from)?
    .rows_affected()
        == 1;
    if claimed {
        super::enqueue_with_id(conn, &SyncItem { plaid_item_id }, task_id, run_after).await?;
    }
    Ok(claimed)
}

/// Makes sure the item's next sync runs now: enqueues one, or pulls the
/// pending one forward (e.g. a job deferred behind a lease that was just
/// released). Used when a sync ends with the item due again.
pub async fn ensure_job_now(conn: &mut PgConnection, plaid_item_id: i64) -> Result<(), EnqueueError> {
    if !ensure_job(conn, plaid_item_id, None).await? {
        move_pending_job(conn, plaid_item_id, "least(j.run_at, now())").await?;
    }
    Ok(())
}

/// Makes sure the item's next sync runs no earlier than `delay` from now
/// (durable backoff): enqueues one, or pushes the pending one back.
pub async fn ensure_job_after(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    delay: std::time::Duration,
) -> Result<(), EnqueueError> {
    if !ensure_job(conn, plaid_item_id, Some(delay)).await? {
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        let expr = format!("greatest(j.run_at, now() + interval '{secs} seconds')");
        move_pending_job(conn, plaid_item_id, &expr).await?;
    }
    Ok(())
}

/// Sets `run_at` of the item's guarded, not yet started job. `run_at` is one of
/// the two expressions above (never user input).
async fn move_pending_job(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    run_at: &str,
) -> Result<(), EnqueueError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update apalis.jobs j set run_at = {run_at}
         from sync_pending p
         where p.plaid_item_id = $1 and j.id = p.task_id and j.status = 'Pending'"
    )))
    .bind(plaid_item_id)
    .execute(conn)
    .await
    .map_err(apalis_postgres::Error::from)?;
    Ok(())
}

/// The job handler: one sync run. Plaid's verdicts are recorded on the item
/// (and retried durably where that makes sense), so they are `Ok` here; only
/// infrastructure failures (the database) return `Err` and let apalis retry.
pub async fn handle(
    job: SyncItem,
    task_id: apalis::prelude::TaskId,
    worker: apalis::prelude::WorkerContext,
    ctx: apalis::prelude::Data<super::JobContext>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let started = std::time::Instant::now();
    let result = crate::sync::run(
        &ctx.pool,
        &ctx.plaid,
        &ctx.secrets,
        &ctx.sync,
        job.plaid_item_id,
        &task_id.to_string(),
        worker.name(),
    )
    .await;
    crate::metrics::sync_finished(&result, started.elapsed());
    record_outcome(&ctx.pool, crate::metrics::sync_outcome_label(&result)).await;
    let outcome = result?;
    tracing::info!(
        plaid_item_id = job.plaid_item_id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ?outcome,
        "sync run finished"
    );
    Ok(())
}

/// Counts the run in the dashboard's rollup (`sync_<outcome>`). Its own
/// statement after the run's transactions: a lost increment costs a chart
/// point, never a sync.
async fn record_outcome(pool: &sqlx::PgPool, label: &str) {
    let kind = format!("sync_{label}");
    let recorded = match pool.acquire().await {
        Ok(mut conn) => crate::monitoring::rollup::bump(&mut conn, &kind).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, kind, "could not count a sync run in the rollup");
    }
}

/// Requests syncs of many items at once (set-based: one guard insert and one
/// bulk push per call). Items that already have a not-started job, need
/// reauthentication or are removed are skipped. Returns how many jobs were enqueued.
pub async fn request_sync_many(conn: &mut PgConnection, plaid_item_ids: &[i64]) -> Result<u64, EnqueueError> {
    if plaid_item_ids.is_empty() {
        return Ok(0);
    }
    let db = |e: sqlx::Error| EnqueueError::Push(e.into());
    let marked: Vec<i64> = sqlx::query_scalar(
        "update plaid_items
         set sync_requested_at = now(),
             sync_status = case when sync_status in ('active', 'failed') then 'sync_needed' else sync_status end
         where id = any($1) and lifecycle <> 'removed' and sync_status <> 'needs_reauth'
         returning id",
    )
    .bind(plaid_item_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let task_ids: Vec<String> = marked
        .iter()
        .map(|_| ulid::Ulid::generate().to_string())
        .collect();
    let claimed: Vec<(i64, String)> = sqlx::query_as(
        "insert into sync_pending (plaid_item_id, task_id)
         select * from unnest($1::bigint[], $2::text[])
         on conflict (plaid_item_id) do nothing
         returning plaid_item_id, task_id",
    )
    .bind(&marked)
    .bind(&task_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    push_sync_jobs(conn, &claimed).await?;
    Ok(claimed.len() as u64)
}

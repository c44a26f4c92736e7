//! Operator actions shared by the jobs API and the `enqueue` commands, so both
//! mark and enqueue exactly the same way.

use sqlx::PgPool;

use crate::{
    db::items,
    jobs::{
        EnqueueError,
        sync_item::{ItemRef, SyncRequest, request_sync, request_sync_many},
    },
};

/// Items handled per transaction by [`process_sync_needed`].
pub const BATCH: i64 = 1_000;

/// Errors of operator actions.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No item with that Plaid item id.
    #[error("no item with item_id {0}")]
    UnknownItem(String),
    /// The database or the queue failed.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A cleanup step failed (database or queue).
    #[error(transparent)]
    Removal(#[from] crate::lifecycle::removal::RemovalError),
}

/// Enqueues a sync of every `sync_needed` item, in batches; `progress` is
/// called after each batch with (items seen, jobs enqueued). Returns the jobs enqueued.
pub async fn process_sync_needed(pool: &PgPool, mut progress: impl FnMut(u64, u64)) -> Result<u64, OpsError> {
    let (mut after, mut seen, mut enqueued) = (0i64, 0u64, 0u64);
    loop {
        let mut tx = pool.begin().await?;
        let ids = items::sync_needed_ids(&mut tx, after, BATCH).await?;
        let Some(last) = ids.last().copied() else { break };
        enqueued += request_sync_many(&mut tx, &ids).await?;
        tx.commit().await?;
        seen += ids.len() as u64;
        after = last;
        progress(seen, enqueued);
    }
    Ok(enqueued)
}

/// Marks one item (by Plaid item id) for sync and enqueues its job; returns 1
/// when a job was enqueued, 0 when one was already pending (or it awaits reauth).
pub async fn sync_item(pool: &PgPool, item_id: &str) -> Result<u64, OpsError> {
    let mut tx = pool.begin().await?;
    let request = request_sync(&mut tx, ItemRef::PlaidId(item_id)).await?;
    tx.commit().await?;
    match request {
        SyncRequest::UnknownItem => Err(OpsError::UnknownItem(item_id.to_owned())),
        SyncRequest::Enqueued { .. } => Ok(1),
        SyncRequest::AlreadyQueued { .. } | SyncRequest::AwaitingReauth { .. } => Ok(0),
    }
}

/// The operator's "sync now" (`POST /api/admin/items/{item_id}/sync`): what
/// [`sync_item`] does, answering what happened and the item's pending job id.
pub async fn sync_item_now(pool: &PgPool, item_id: &str) -> Result<(SyncRequest, Option<String>), OpsError> {
    let mut tx = pool.begin().await?;
    // An operator's "now" overrides a backoff (the retry delay protects Plaid
    // from our automatic retries, not from a deliberate request).
    sqlx::query("update plaid_items set next_retry_at = null where item_id = $1 and next_retry_at > now()")
        .bind(item_id)
        .execute(&mut *tx)
        .await?;
    let request = request_sync(&mut tx, ItemRef::PlaidId(item_id)).await?;
    let job_id = match request {
        SyncRequest::Enqueued { plaid_item_id } | SyncRequest::AlreadyQueued { plaid_item_id } => {
            sqlx::query_scalar("select task_id from sync_pending where plaid_item_id = $1")
                .bind(plaid_item_id)
                .fetch_optional(&mut *tx)
                .await?
        }
        SyncRequest::UnknownItem | SyncRequest::AwaitingReauth { .. } => None,
    };
    tx.commit().await?;
    match request {
        SyncRequest::UnknownItem => Err(OpsError::UnknownItem(item_id.to_owned())),
        other => Ok((other, job_id)),
    }
}

/// Runs the safety net now; returns the sync jobs it enqueued.
pub async fn safety_net(pool: &PgPool, stale_after: std::time::Duration) -> Result<u64, OpsError> {
    Ok(crate::safety_net::run_once(pool, stale_after).await?.enqueued)
}

/// Runs dormant-item cleanup now (what the `cleanup` schedule's job does):
/// starts the workflow of every dormant item, retries failed removals, resumes
/// removals whose job went missing. Returns the jobs enqueued: one grace timer
/// per workflow started, one removal attempt per removal retried or resumed.
pub async fn cleanup(
    pool: &PgPool,
    settings: &crate::lifecycle::cleanup::CleanupSettings,
) -> Result<u64, OpsError> {
    Ok(crate::lifecycle::cleanup::run_once(pool, settings)
        .await?
        .enqueued())
}

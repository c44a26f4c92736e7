//! The reauth transition.
//!
//! Entering `needs_reauth` (a sync got a needs-reauth error, or an ITEM
//! webhook said so) writes one local notification per episode; the item and
//! its accounts stop syncing. Leaving it (update-mode Link exchanged, or
//! `LOGIN_REPAIRED`) returns the item and its accounts to `sync_needed` and
//! queues the catch-up sync.

use serde_json::json;
use sqlx::PgConnection;

use crate::{
    db::notifications::notify_once,
    jobs::{
        EnqueueError,
        sync_item::{ItemRef, SyncRequest, request_sync},
    },
    sync::outcome::accounts_follow,
};

/// Moves the item to `needs_reauth` (if it is not there yet) and notifies its
/// user once. True when this call made the transition.
pub async fn enter(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    code: &str,
    message: &str,
) -> Result<bool, sqlx::Error> {
    let entered: Option<(i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "update plaid_items set sync_status = 'needs_reauth', reauth_needed_at = coalesce(reauth_needed_at, now()),
             last_error_code = $2, last_sync_error = $3, next_retry_at = null
         where id = $1 and sync_status <> 'needs_reauth' and lifecycle <> 'removed'
         returning user_id, item_id, reauth_needed_at",
    )
    .bind(plaid_item_id)
    .bind(code)
    .bind(message)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user_id, item_id, since)) = entered else {
        return Ok(false);
    };
    accounts_follow(conn, plaid_item_id, "needs_reauth", false).await?;
    notify_once(
        conn,
        user_id,
        Some(plaid_item_id),
        "reauth_needed",
        &json!({ "item_id": item_id, "error_code": code, "since": since }),
        &format!("reauth_needed:{plaid_item_id}:{}", since.timestamp_micros()),
    )
    .await?;
    Ok(true)
}

/// Returns a `needs_reauth` item to `sync_needed` and queues its catch-up
/// sync. Nothing happens for an item in any other state.
pub async fn leave(conn: &mut PgConnection, plaid_item_id: i64) -> Result<Option<SyncRequest>, EnqueueError> {
    let left = sqlx::query(
        "update plaid_items set sync_status = 'sync_needed', reauth_needed_at = null,
             last_error_code = null, last_sync_error = null, sync_attempts = 0
         where id = $1 and sync_status = 'needs_reauth'",
    )
    .bind(plaid_item_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| EnqueueError::Push(e.into()))?
    .rows_affected();
    if left == 0 {
        return Ok(None);
    }
    accounts_follow(conn, plaid_item_id, "sync_needed", false)
        .await
        .map_err(|e| EnqueueError::Push(e.into()))?;
    // Repaired during a removal's grace window: the removal is cancelled.
    super::removal::revive(conn, plaid_item_id)
        .await
        .map_err(|e| EnqueueError::Push(e.into()))?;
    Ok(Some(request_sync(conn, ItemRef::Id(plaid_item_id)).await?))
}

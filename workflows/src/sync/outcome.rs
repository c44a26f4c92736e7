//! How a sync that did not apply ends: each is a guarded update that releases
//! the lease (`where sync_lease_owner = <run id>`), so only the lease holder
//! can record an outcome.

use std::time::Duration;

use rand::Rng;
use sqlx::{PgConnection, PgPool};

use super::{SyncError, SyncSettings, lease::Lease};
use crate::{
    jobs::{
        enqueue,
        sync_item::{SyncItem, ensure_job_after},
    },
    lifecycle::reauth,
};

/// Backoff of the n-th consecutive failure (n from 1): `backoff_base`
/// doubling, capped at `backoff_cap`, ±20 % jitter so items that failed
/// together do not retry together. Rate limits wait at least
/// `rate_limit_floor`: Plaid's limits are per minute.
pub fn backoff(settings: &SyncSettings, attempt: u32, rate_limited: bool) -> Duration {
    let base = settings.backoff_base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let capped = base.min(settings.backoff_cap.as_secs_f64());
    let jittered = capped * rand::thread_rng().gen_range(0.8..1.2);
    let floor = if rate_limited {
        settings.rate_limit_floor.as_secs_f64()
    } else {
        0.0
    };
    Duration::from_secs_f64(jittered.max(floor))
}

/// Delay before re-checking an item whose transactions are not ready: 5 s
/// doubling up to 5 min. Plaid's `SYNC_UPDATES_AVAILABLE` usually comes first.
pub fn not_ready_delay(attempt: u32) -> Duration {
    Duration::from_secs((5u64 << attempt.saturating_sub(1).min(6)).min(300))
}

/// Checks for fresh items stop after this many: the webhook takes over.
pub const MAX_NOT_READY_CHECKS: u32 = 8;

/// The item's mapped, active accounts take the item's status.
pub async fn accounts_follow(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    status: &str,
    synced: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update accounts a
         set sync_status = $2, last_synced_at = case when $3 then now() else a.last_synced_at end
         from plaid_item_accounts m
         where m.plaid_item_id = $1 and m.active and a.id = m.account_id",
    )
    .bind(plaid_item_id)
    .bind(status)
    .bind(synced)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fresh item, transactions not ready: stays `sync_needed`, checked again shortly.
pub async fn not_ready(pool: &PgPool, lease: &Lease) -> Result<(), SyncError> {
    let mut tx = pool.begin().await?;
    let attempts: Option<i32> = sqlx::query_scalar(
        "update plaid_items set sync_status = 'sync_needed', sync_attempts = sync_attempts + 1,
             sync_lease_owner = null, sync_lease_worker = null, sync_lease_until = null
         where id = $1 and sync_lease_owner = $2
         returning sync_attempts",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(attempts) = attempts else {
        return Err(SyncError::LeaseLost);
    };
    accounts_follow(&mut tx, lease.plaid_item_id, "sync_needed", false).await?;
    let attempts = attempts as u32;
    if attempts <= MAX_NOT_READY_CHECKS {
        // Not guarded: a webhook meanwhile must still queue an immediate sync.
        enqueue(
            &mut tx,
            &SyncItem {
                plaid_item_id: lease.plaid_item_id,
            },
            Some(not_ready_delay(attempts)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A retryable failure: `failed`, the error recorded, a durable retry queued.
pub async fn retry_later(
    pool: &PgPool,
    settings: &SyncSettings,
    lease: &Lease,
    code: &str,
    message: &str,
    rate_limited: bool,
) -> Result<Duration, SyncError> {
    let mut tx = pool.begin().await?;
    let attempts: Option<i32> = sqlx::query_scalar(
        "update plaid_items set sync_status = 'failed', sync_attempts = sync_attempts + 1,
             last_error_code = $3, last_sync_error = $4,
             sync_lease_owner = null, sync_lease_worker = null, sync_lease_until = null
         where id = $1 and sync_lease_owner = $2
         returning sync_attempts",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .bind(code)
    .bind(message)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(attempts) = attempts else {
        return Err(SyncError::LeaseLost);
    };
    let delay = backoff(settings, attempts as u32, rate_limited);
    // The backoff ends when the retry job is due: the job's due time is the
    // delay rounded up to whole seconds (apalis keeps seconds), and the lease
    // refuses any other job of the item before `next_retry_at`, so both must
    // name the same instant or a webhook's job could run first.
    let due = crate::jobs::due_timestamp(std::time::SystemTime::now(), delay);
    sqlx::query("update plaid_items set next_retry_at = to_timestamp($2) where id = $1")
        .bind(lease.plaid_item_id)
        .bind(due as f64)
        .execute(&mut *tx)
        .await?;
    accounts_follow(&mut tx, lease.plaid_item_id, "failed", false).await?;
    ensure_job_after(&mut tx, lease.plaid_item_id, delay).await?;
    tx.commit().await?;
    Ok(delay)
}

/// A terminal failure: `failed` with the error, no retry.
pub async fn give_up(pool: &PgPool, lease: &Lease, code: &str, message: &str) -> Result<(), SyncError> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "update plaid_items set sync_status = 'failed', sync_attempts = sync_attempts + 1,
             last_error_code = $3, last_sync_error = $4, next_retry_at = null,
             sync_lease_owner = null, sync_lease_worker = null, sync_lease_until = null
         where id = $1 and sync_lease_owner = $2",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .bind(code)
    .bind(message)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(SyncError::LeaseLost);
    }
    accounts_follow(&mut tx, lease.plaid_item_id, "failed", false).await?;
    tx.commit().await?;
    Ok(())
}

/// The user must reauthenticate: `needs_reauth` (the reauth transition writes
/// its notification once), no retry until then.
pub async fn needs_reauth(pool: &PgPool, lease: &Lease, code: &str, message: &str) -> Result<(), SyncError> {
    let mut tx = pool.begin().await?;
    let released = sqlx::query(
        "update plaid_items set sync_lease_owner = null, sync_lease_worker = null, sync_lease_until = null,
             sync_attempts = sync_attempts + 1
         where id = $1 and sync_lease_owner = $2",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if released == 0 {
        return Err(SyncError::LeaseLost);
    }
    reauth::enter(&mut tx, lease.plaid_item_id, code, message).await?;
    tx.commit().await?;
    Ok(())
}

/// Best effort after an infrastructure error: hand the lease back so the
/// retried job need not wait for it to expire.
pub async fn release(pool: &PgPool, lease: &Lease) {
    let _ = sqlx::query(
        "update plaid_items set sync_lease_owner = null, sync_lease_worker = null, sync_lease_until = null,
             sync_status = case when sync_status = 'syncing' then 'sync_needed' else sync_status end
         where id = $1 and sync_lease_owner = $2",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .execute(pool)
    .await;
}

//! The per-item lease: one sync of an item at a time, enforced by the database.
//!
//! Taking the lease is a compare-and-set on `plaid_items`: it succeeds when no
//! lease is held, when the holder's lease expired, or when the holder's apalis
//! worker stopped heartbeating (it crashed). Every write a sync makes checks
//! `sync_lease_owner = <its run id>`, so a sync that lost its lease (paused
//! past expiry, then resumed) can never apply over a newer one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::jobs::{EnqueueError, sync_item::ensure_job};

/// How soon a sync that found the item busy looks again.
pub const BUSY_RECHECK: Duration = Duration::from_secs(2);

/// A held lease.
#[derive(Debug, Clone)]
pub struct Lease {
    /// `plaid_items.id`.
    pub plaid_item_id: i64,
    /// This run's id: the fencing token.
    pub run_id: String,
    /// The stored cursor to start from (`None`/empty: from the beginning).
    pub cursor: Option<String>,
    /// Where the access token is.
    pub secret_ref: Option<String>,
    /// When this run took the lease (database clock).
    pub started_at: DateTime<Utc>,
}

/// Result of trying to take the lease.
#[derive(Debug)]
pub enum Acquire {
    /// Ours.
    Acquired(Lease),
    /// Another live sync holds it, or the item's backoff retry is not due
    /// yet; a delayed job was queued (unless one was pending).
    Busy {
        /// How long until the lease expires or the retry is due.
        retry_in: Duration,
    },
    /// The item needs reauthentication, is removed, or does not exist: no sync.
    Skip {
        /// Why.
        reason: &'static str,
    },
}

#[derive(sqlx::FromRow)]
struct Taken {
    cursor: Option<String>,
    secret_ref: Option<String>,
    started_at: DateTime<Utc>,
}

/// Takes the lease for `plaid_item_id`, clearing this job's pending guard in
/// the same transaction (so a webhook arriving during the sync queues the
/// next one). `worker_stale_after` is when a silent worker counts as dead.
pub async fn acquire(
    pool: &PgPool,
    plaid_item_id: i64,
    task_id: &str,
    worker: &str,
    lease_for: Duration,
    worker_stale_after: Duration,
) -> Result<Acquire, EnqueueError> {
    let db = |e: sqlx::Error| EnqueueError::Push(e.into());
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("delete from sync_pending where plaid_item_id = $1 and task_id = $2")
        .bind(plaid_item_id)
        .bind(task_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let status: Option<(String, String, f64)> = sqlx::query_as(
        "select sync_status, lifecycle,
                greatest(coalesce(extract(epoch from next_retry_at - now()), 0), 0)::float8
         from plaid_items where id = $1 for update",
    )
    .bind(plaid_item_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let skip = match status.as_ref().map(|(s, l, _)| (s.as_str(), l.as_str())) {
        None => Some("item not found"),
        Some((_, "removed")) => Some("item removed"),
        Some(("needs_reauth", _)) => Some("item needs reauthentication"),
        _ => None,
    };
    if let Some(reason) = skip {
        tx.commit().await.map_err(db)?;
        return Ok(Acquire::Skip { reason });
    }
    // The item is backing off (a failed run scheduled its retry): a job that
    // was queued meanwhile (a webhook during the failed run; a worker may
    // already have fetched it, so moving its `run_at` could not stop it)
    // must not call Plaid before the retry is due. It hands over to a job at
    // that time instead.
    let backoff_left = status.map_or(0.0, |(_, _, left)| left);
    if backoff_left > 0.0 {
        let retry_in = Duration::from_secs_f64(backoff_left);
        ensure_job(&mut tx, plaid_item_id, Some(retry_in)).await?;
        tx.commit().await.map_err(db)?;
        return Ok(Acquire::Busy { retry_in });
    }
    let run_id = ulid::Ulid::generate().to_string();
    let taken: Option<Taken> = sqlx::query_as(
        "update plaid_items i
         set sync_lease_owner = $2, sync_lease_worker = $3,
             sync_lease_until = now() + make_interval(secs => $4),
             sync_started_at = now(), sync_status = 'syncing'
         where id = $1
           and (sync_lease_until is null or sync_lease_until < now()
                or not exists (select 1 from apalis.workers w
                               where w.id = i.sync_lease_worker
                                 and w.last_seen > now() - make_interval(secs => $5)))
         returning cursor, secret_ref, sync_started_at as started_at",
    )
    .bind(plaid_item_id)
    .bind(&run_id)
    .bind(worker)
    .bind(lease_for.as_secs_f64())
    .bind(worker_stale_after.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let outcome = match taken {
        Some(t) => Acquire::Acquired(Lease {
            plaid_item_id,
            run_id,
            cursor: t.cursor.filter(|c| !c.is_empty()),
            secret_ref: t.secret_ref,
            started_at: t.started_at,
        }),
        None => {
            let remaining: f64 = sqlx::query_scalar(
                "select greatest(extract(epoch from sync_lease_until - now()), 0)::float8 from plaid_items where id = $1",
            )
            .bind(plaid_item_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            // Never run beside the holder: come back shortly (most syncs take
            // well under a second) or when its lease ends, whichever is first.
            let retry_in = Duration::from_secs_f64(remaining.min(BUSY_RECHECK.as_secs_f64()) + 1.0);
            ensure_job(&mut tx, plaid_item_id, Some(retry_in)).await?;
            Acquire::Busy { retry_in }
        }
    };
    tx.commit().await.map_err(db)?;
    Ok(outcome)
}

/// Extends the lease; false when it is no longer ours.
pub async fn renew(pool: &PgPool, lease: &Lease, lease_for: Duration) -> Result<bool, sqlx::Error> {
    let renewed = sqlx::query(
        "update plaid_items set sync_lease_until = now() + make_interval(secs => $3)
         where id = $1 and sync_lease_owner = $2",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .bind(lease_for.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(renewed == 1)
}

/// Renews a lease in the background every third of its duration until
/// dropped, so a slow page or a slow apply never lets it lapse while the run
/// is alive. A run whose lease was taken anyway applies nothing (every write
/// is fenced by the run id); the keeper just stops renewing.
pub struct LeaseKeeper(tokio::task::JoinHandle<()>);

impl LeaseKeeper {
    /// Starts renewing `lease`.
    pub fn start(pool: PgPool, lease: Lease, lease_for: Duration) -> Self {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease_for / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                match renew(&pool, &lease, lease_for).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            plaid_item_id = lease.plaid_item_id,
                            "sync lease lost; this run will apply nothing"
                        );
                        return;
                    }
                    // A passing database error: try again at the next tick.
                    Err(e) => {
                        tracing::warn!(plaid_item_id = lease.plaid_item_id, error = %e, "could not renew the sync lease")
                    }
                }
            }
        }))
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

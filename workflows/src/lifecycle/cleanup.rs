//! Dormant-item cleanup: the run that finds dormant items, and the step at
//! the end of each grace window.
//!
//! **Dormant** (contract `DORMANT_AFTER`), for an item that still has an access token:
//! - `needs_reauth` or `failed`, for `DORMANT_AFTER`: its status has not
//!   changed for that long, *or* it has not synced successfully for that long
//!   (a `failed` item's durable retries flip it through `syncing`, which resets
//!   `sync_status_changed_at`, but it stays unsynced); or
//! - no active mapped account, for `DORMANT_AFTER`: since its last mapping
//!   changed (was deactivated), or since it was created if it never had one.
//!
//! An item that just lost its last account to a user's DELETE is not waited
//! for: unlink removes it at once ([`super::unlink`]).
//!
//! **The workflow** of a dormant item (state in `item_removals` and
//! `plaid_items`; every step one transaction with the job it asks for):
//! 1. [`run_once`] (cron `CLEANUP_CRON`, the jobs API, `plaid-sync enqueue
//!    cleanup`): a `cleanup_scheduled` notification; the item becomes
//!    `pending_cleanup` with `cleanup_notified_at` and `cleanup_due_at = now +
//!    CLEANUP_GRACE`; a `grace` removal; a [`CleanupDue`] job pushed with
//!    `run_after = CLEANUP_GRACE`.
//! 2. The wait is that pending job row: it holds no worker and survives
//!    restarts and deploys; a job that arrives early re-schedules itself.
//! 3. [`due_step`]: still dormant → `pending` and a [`RemoveItem`] job
//!    ([`super::removal`] does the Plaid call, retries and the rest); no longer
//!    dormant (reauthenticated, relinked, recovered) → `cancelled`, the item back
//!    to `active`, a `cleanup_cancelled` notification. A reauth or relink
//!    cancels at once ([`super::removal::revive`]), without waiting for the due date.
//!
//! Each run also retries removals that ended `failed` (one new attempt series
//! per run, if the removal is still wanted) and resumes open removals whose
//! job went missing (past their next step by [`STUCK_AFTER`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use super::removal::{self, Removal, RemovalError};
use crate::{
    db::notifications::notify_once,
    jobs::cleanup::{CleanupDue, RemoveItem},
};

/// What cleanup needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct CleanupSettings {
    /// `DORMANT_AFTER`.
    pub dormant_after: Duration,
    /// `CLEANUP_GRACE`.
    pub grace: Duration,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            dormant_after: Duration::from_secs(30 * 24 * 3600),
            grace: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// An open removal this far past its next step lost its job; a run resumes it.
pub const STUCK_AFTER: Duration = Duration::from_secs(5 * 60);

/// Items examined per query of a run.
const BATCH: i64 = 500;

/// The dormancy test on `plaid_items i`; `$1` is `DORMANT_AFTER` in seconds.
/// Served by `plaid_items_dormant_status` and `plaid_item_accounts_active`.
const DORMANT: &str = "(
    (i.sync_status in ('needs_reauth', 'failed')
     and (i.sync_status_changed_at <= now() - make_interval(secs => $1)
          or coalesce(i.last_synced_at, i.created_at) <= now() - make_interval(secs => $1)))
    or (not exists (select 1 from plaid_item_accounts m where m.plaid_item_id = i.id and m.active)
        and greatest(i.created_at, (select max(m.updated_at) from plaid_item_accounts m where m.plaid_item_id = i.id))
            <= now() - make_interval(secs => $1)))";

/// What a run did; [`CleanupReport::enqueued`] is what the jobs API answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    /// Dormant items whose workflow started (one grace timer job each).
    pub started: u64,
    /// Failed removals given a new series of attempts.
    pub retried: u64,
    /// Open removals whose lost job was replaced.
    pub resumed: u64,
}

impl CleanupReport {
    /// Jobs enqueued by the run.
    pub fn enqueued(&self) -> u64 {
        self.started + self.retried + self.resumed
    }
}

/// Whether the item is `pending_cleanup` and (still) dormant.
pub async fn is_dormant_pending(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    dormant_after: Duration,
) -> Result<bool, sqlx::Error> {
    let dormant: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select i.lifecycle = 'pending_cleanup' and i.secret_ref is not null and {DORMANT}
         from plaid_items i where i.id = $2"
    )))
    .bind(dormant_after.as_secs_f64())
    .bind(plaid_item_id)
    .fetch_optional(conn)
    .await?;
    Ok(dormant.unwrap_or(false))
}

/// One cleanup run.
pub async fn run_once(pool: &PgPool, settings: &CleanupSettings) -> Result<CleanupReport, RemovalError> {
    let resumed = resume_stuck(pool).await?;
    let retried = retry_failed(pool, settings).await?;
    let started = start_dormant(pool, settings).await?;
    Ok(CleanupReport {
        started,
        retried,
        resumed,
    })
}

/// Step 1 for every dormant item without an open removal.
async fn start_dormant(pool: &PgPool, settings: &CleanupSettings) -> Result<u64, RemovalError> {
    let (mut after, mut started) = (0i64, 0u64);
    loop {
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select i.id from plaid_items i
             where i.lifecycle = 'active' and i.secret_ref is not null and i.id > $2 and {DORMANT}
               and not exists (select 1 from item_removals r
                               where r.plaid_item_id = i.id and r.state in ('grace', 'pending', 'removing'))
             order by i.id limit $3"
        )))
        .bind(settings.dormant_after.as_secs_f64())
        .bind(after)
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        for id in &ids {
            started += u64::from(start(pool, settings, *id).await?);
        }
        match ids.last() {
            Some(last) if ids.len() as i64 == BATCH => after = *last,
            _ => return Ok(started),
        }
    }
}

/// Step 1 for one item, guarded: the item must still be `active` and dormant,
/// and have no open removal. False when it was not started.
pub async fn start(
    pool: &PgPool,
    settings: &CleanupSettings,
    plaid_item_id: i64,
) -> Result<bool, RemovalError> {
    let mut tx = pool.begin().await?;
    let started: Option<(i64, String, Option<String>, DateTime<Utc>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "update plaid_items i set lifecycle = 'pending_cleanup', cleanup_notified_at = now(),
                 cleanup_due_at = now() + make_interval(secs => $3)
             where i.id = $2 and i.lifecycle = 'active' and i.secret_ref is not null and {DORMANT}
             returning i.user_id, i.item_id, i.institution_id, i.cleanup_due_at"
        )))
        .bind(settings.dormant_after.as_secs_f64())
        .bind(plaid_item_id)
        .bind(settings.grace.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
    let Some((user_id, item_id, institution_id, due_at)) = started else {
        return Ok(false);
    };
    let removal_id: Option<i64> = sqlx::query_scalar(
        "insert into item_removals (plaid_item_id, reason, state, due_at, next_step_at)
         values ($1, 'dormant', 'grace', $2, $2)
         on conflict (plaid_item_id) where state in ('grace', 'pending', 'removing') do nothing
         returning id",
    )
    .bind(plaid_item_id)
    .bind(due_at)
    .fetch_optional(&mut *tx)
    .await?;
    // A removal opened meanwhile (an unlink): leave the item to it (rollback).
    let Some(removal_id) = removal_id else {
        return Ok(false);
    };
    notify_once(
        &mut tx,
        user_id,
        Some(plaid_item_id),
        "cleanup_scheduled",
        &json!({ "item_id": item_id, "institution_id": institution_id, "due_at": due_at }),
        &format!("cleanup_scheduled:{removal_id}"),
    )
    .await?;
    removal::schedule(&mut tx, removal_id, &CleanupDue { removal_id }, settings.grace).await?;
    tx.commit().await?;
    tracing::info!(plaid_item_id, removal_id, %due_at, "dormant item: removal announced");
    Ok(true)
}

/// What the step at the end of a grace window did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueStep {
    /// Superseded or no longer in its grace window: nothing done.
    Stale,
    /// Arrived before `cleanup_due_at`: re-scheduled.
    Deferred,
    /// No longer dormant: cancelled, the user notified.
    Cancelled,
    /// Still dormant: the removal is under way.
    RemovalStarted,
}

/// Step 3 (the [`CleanupDue`] job `task_id` of removal `removal_id`).
pub async fn due_step(
    pool: &PgPool,
    settings: &CleanupSettings,
    removal_id: i64,
    task_id: &str,
) -> Result<DueStep, RemovalError> {
    let mut tx = pool.begin().await?;
    let Some(removal) = removal::lock(&mut tx, removal_id).await? else {
        return Ok(DueStep::Stale);
    };
    if removal.task_id.as_deref() != Some(task_id) || removal.state != "grace" {
        return Ok(DueStep::Stale);
    }
    if removal.wait_secs > 0.0 {
        let wait = Duration::from_secs_f64(removal.wait_secs);
        removal::schedule(&mut tx, removal_id, &CleanupDue { removal_id }, wait).await?;
        tx.commit().await?;
        return Ok(DueStep::Deferred);
    }
    if !is_dormant_pending(&mut tx, removal.plaid_item_id, settings.dormant_after).await? {
        removal::cancel(&mut tx, &removal).await?;
        tx.commit().await?;
        tracing::info!(removal_id, "dormant item came back to life; removal cancelled");
        return Ok(DueStep::Cancelled);
    }
    sqlx::query(
        "update item_removals set state = 'pending', next_step_at = now() where id = $1 and state = 'grace'",
    )
    .bind(removal_id)
    .execute(&mut *tx)
    .await?;
    removal::schedule(&mut tx, removal_id, &RemoveItem { removal_id }, Duration::ZERO).await?;
    tx.commit().await?;
    Ok(DueStep::RemovalStarted)
}

/// Failed removals (the item's latest, item not removed) get a new series of
/// attempts if still wanted; a dormant one whose item came back to life ends
/// the item's cleanup instead.
async fn retry_failed(pool: &PgPool, settings: &CleanupSettings) -> Result<u64, RemovalError> {
    let failed: Vec<i64> = sqlx::query_scalar(
        "select f.id from item_removals f join plaid_items i on i.id = f.plaid_item_id
         where f.state = 'failed' and i.lifecycle <> 'removed' and i.secret_ref is not null
           and not exists (select 1 from item_removals n where n.plaid_item_id = f.plaid_item_id and n.id > f.id)
         order by f.id limit $1",
    )
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let mut retried = 0;
    for id in failed {
        let mut tx = pool.begin().await?;
        let Some(failed) = removal::lock(&mut tx, id).await? else {
            continue;
        };
        let latest: i64 = sqlx::query_scalar("select max(id) from item_removals where plaid_item_id = $1")
            .bind(failed.plaid_item_id)
            .fetch_one(&mut *tx)
            .await?;
        if failed.state != "failed" || latest != id {
            continue;
        }
        if !removal::still_wanted(&mut tx, &failed, settings.dormant_after).await? {
            if failed.reason == "dormant" {
                removal::end_cleanup(&mut tx, failed.plaid_item_id, id, false).await?;
            }
            tx.commit().await?;
            continue;
        }
        let new_id: i64 = sqlx::query_scalar(
            "insert into item_removals (plaid_item_id, reason, state, due_at, next_step_at)
             values ($1, $2, 'pending', (select due_at from item_removals where id = $3), now()) returning id",
        )
        .bind(failed.plaid_item_id)
        .bind(&failed.reason)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        removal::schedule(
            &mut tx,
            new_id,
            &RemoveItem { removal_id: new_id },
            Duration::ZERO,
        )
        .await?;
        tx.commit().await?;
        retried += 1;
    }
    Ok(retried)
}

/// Open removals far past their next step lost their job: schedule it again.
/// (A job that was only late is superseded and does nothing.)
async fn resume_stuck(pool: &PgPool) -> Result<u64, RemovalError> {
    let stuck: Vec<i64> = sqlx::query_scalar(
        "select id from item_removals
         where state in ('grace', 'pending', 'removing') and next_step_at < now() - make_interval(secs => $1)
         order by next_step_at limit $2",
    )
    .bind(STUCK_AFTER.as_secs_f64())
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let mut resumed = 0;
    for id in stuck {
        let mut tx = pool.begin().await?;
        let Some(open) = removal::lock(&mut tx, id).await? else {
            continue;
        };
        if !is_open(&open) || open.wait_secs > 0.0 {
            continue;
        }
        removal::resume(&mut tx, &open).await?;
        tx.commit().await?;
        tracing::warn!(removal_id = id, state = %open.state, "removal had lost its job; resumed");
        resumed += 1;
    }
    Ok(resumed)
}

fn is_open(removal: &Removal) -> bool {
    matches!(removal.state.as_str(), "grace" | "pending" | "removing")
}

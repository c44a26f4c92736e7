//! Removing an item at Plaid: the state machine behind unlink and dormant-item
//! cleanup (README "Unlink and dormant-item cleanup").
//!
//! Plaid bills an Item every month while its access token is valid, and only
//! `/item/remove` ends that (PLAID.md §7.1). Each attempt to remove an item is a
//! row of `item_removals`; the apalis jobs that drive it ([`RemoveItem`],
//! [`CleanupDue`]) carry only the row id:
//!
//! ```text
//!  dormant:  grace ──(cleanup_due_at, still dormant)──▶ pending
//!  unlink:                                               pending ──claim──▶ removing ──Plaid ok / gone──▶ done
//!  grace, pending ──(the item came back to life)──▶ cancelled     removing ──Plaid error──▶ pending (backoff)
//!                                                                 removing ──error, MAX_ATTEMPTS──▶ failed
//! ```
//!
//! Rules every step follows, so a repeated or duplicated step (apalis delivers
//! at least once) does no harm:
//! - **One open removal per item** (unique partial index on grace/pending/removing).
//! - **The row names its driver.** `task_id` is the job that drives the removal
//!   next; it is written in the same transaction that pushes that job. A job
//!   carrying another id was superseded and does nothing. A job delivered twice
//!   (orphan rescue) carries the same id and meets the compare-and-set below.
//! - **Every transition is a compare-and-set** on `state` (and, after a Plaid
//!   call, on the attempt's `claim_token`), committed with the job it asks for.
//! - **Lock order**: the `plaid_items` row, then the `item_removals` row.
//!
//! **Never two Plaid calls for one attempt.** Before calling Plaid a step claims
//! the removal (`pending → removing`, a fresh `claim_token`, the claim expiring
//! at `next_step_at = now() + CLAIM_TTL`) and commits; any other delivery finds
//! `removing` with a live claim and only re-schedules itself for the claim's
//! expiry. The claim expires so that a crash mid-call is retried. The trade-off:
//! a crash between Plaid's 200 and our commit (or a timeout after Plaid acted)
//! means the retry calls `/item/remove` again, which answers `ITEM_NOT_FOUND` or
//! `INVALID_ACCESS_TOKEN`: that counts as removed (so does
//! `ITEM_CONCURRENTLY_DELETED`). Billing only needs the item gone once.
//!
//! **Failures** are retried durably: the job is re-pushed with a `run_after`
//! (the sync engine's backoff), never through apalis' immediate retries. After
//! [`MAX_ATTEMPTS`] the removal is `failed`: the item is not marked removed, its
//! secret is kept, the error stays on the row and on `plaid_items.last_sync_error`,
//! and the next cleanup run tries again. Only a confirmed removal deletes the
//! secret and sets `lifecycle = removed`.

use std::time::Duration;

use serde_json::json;
use sqlx::PgConnection;

use crate::{
    db::notifications::notify_once,
    jobs::{
        EnqueueError, JobContext, JobSpec,
        cleanup::{CleanupDue, RemoveItem},
        enqueue_with_id,
    },
    lifecycle::cleanup,
    plaid::{AccessToken, PlaidError, types::ItemRemoveRequest},
    secrets::{SecretError, SecretStore},
    sync::outcome::backoff,
};

/// `/item/remove` calls of one removal before it ends `failed` (with the sync
/// engine's backoff, 30 s doubling to 1 h: about ten hours of trying).
pub const MAX_ATTEMPTS: i32 = 16;

/// How long a claim on a Plaid call holds: well past the Plaid client's own
/// 30 s timeout, so a live attempt always records its result first.
pub const CLAIM_TTL: Duration = Duration::from_secs(90);

/// Answers of `/item/remove` that mean "this item is already gone".
pub const GONE_CODES: &[&str] = &[
    "ITEM_NOT_FOUND",
    "INVALID_ACCESS_TOKEN",
    "ITEM_CONCURRENTLY_DELETED",
];

/// What `plaid_items.last_sync_error` starts with while a removal fails.
pub const ERROR_PREFIX: &str = "removing this item at Plaid failed: ";

/// Failures of a step that are not Plaid's (the job is retried by apalis).
#[derive(Debug, thiserror::Error)]
pub enum RemovalError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The next step could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// An `item_removals` row, as a step sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Removal {
    /// `item_removals.id`.
    pub id: i64,
    /// `plaid_items.id`.
    pub plaid_item_id: i64,
    /// `unlink` or `dormant`.
    pub reason: String,
    /// `grace`, `pending`, `removing`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// The job that drives it next.
    pub task_id: Option<String>,
    /// Plaid calls started.
    pub attempts: i32,
    /// Seconds until `next_step_at` (database clock; 0 when due or unset).
    pub wait_secs: f64,
}

/// What one remove step did.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoveStep {
    /// Superseded, finished, or unknown: nothing done.
    Stale,
    /// Too early (backoff, or another attempt's live claim): re-scheduled.
    Deferred,
    /// The item came back to life: removal cancelled, Plaid not called.
    Cancelled,
    /// Plaid confirmed (or said the item was already gone): `removed`, secret deleted.
    Removed {
        /// Plaid answered ITEM_NOT_FOUND / INVALID_ACCESS_TOKEN.
        already_gone: bool,
    },
    /// Plaid failed; another attempt is scheduled.
    Retrying {
        /// Attempts so far.
        attempts: i32,
        /// Plaid's error code (or ours).
        code: String,
        /// When the next attempt runs.
        retry_in: Duration,
    },
    /// Given up: the item and its secret are kept.
    Failed {
        /// Plaid's error code (or ours).
        code: String,
    },
    /// Our claim expired and another attempt took over; it records the outcome.
    ClaimLost,
}

/// Locks the removal (after its item, the lock order) and reads it.
pub(crate) async fn lock(conn: &mut PgConnection, removal_id: i64) -> Result<Option<Removal>, sqlx::Error> {
    let item: Option<i64> = sqlx::query_scalar("select plaid_item_id from item_removals where id = $1")
        .bind(removal_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(item) = item else { return Ok(None) };
    sqlx::query("select 1 from plaid_items where id = $1 for update")
        .bind(item)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(
        "select id, plaid_item_id, reason, state, task_id, attempts,
                greatest(coalesce(extract(epoch from next_step_at - now()), 0), 0)::float8 as wait_secs
         from item_removals where id = $1 for update",
    )
    .bind(removal_id)
    .fetch_optional(conn)
    .await
}

/// Makes `job` the removal's next step, `delay` from now: records its task id
/// and pushes it, on the caller's transaction.
pub(crate) async fn schedule<J: JobSpec>(
    conn: &mut PgConnection,
    removal_id: i64,
    job: &J,
    delay: Duration,
) -> Result<(), RemovalError> {
    let task_id = ulid::Ulid::generate();
    sqlx::query("update item_removals set task_id = $2 where id = $1")
        .bind(removal_id)
        .bind(task_id.to_string())
        .execute(&mut *conn)
        .await?;
    // apalis stores whole seconds of a truncated "now": one more second keeps
    // the job from arriving before next_step_at (it would only defer itself).
    let run_after = (!delay.is_zero()).then(|| delay + Duration::from_secs(1));
    enqueue_with_id(conn, job, task_id, run_after).await?;
    Ok(())
}

/// Asks for the item's removal now (the user unlinked its last account); the
/// item row must be locked by the caller. Opens an `unlink` removal, or turns a
/// dormant one still in its grace window into one. False when a removal is
/// already under way.
pub(crate) async fn request_now(conn: &mut PgConnection, plaid_item_id: i64) -> Result<bool, RemovalError> {
    let open: Option<(i64, String)> = sqlx::query_as(
        "select id, state from item_removals
         where plaid_item_id = $1 and state in ('grace', 'pending', 'removing') for update",
    )
    .bind(plaid_item_id)
    .fetch_optional(&mut *conn)
    .await?;
    let id = match open {
        Some((id, state)) if state == "grace" => {
            sqlx::query(
                "update item_removals set state = 'pending', reason = 'unlink', next_step_at = now()
                 where id = $1 and state = 'grace'",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            id
        }
        Some(_) => return Ok(false),
        None => {
            sqlx::query_scalar(
                "insert into item_removals (plaid_item_id, reason, state, next_step_at)
                 values ($1, 'unlink', 'pending', now()) returning id",
            )
            .bind(plaid_item_id)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    schedule(conn, id, &RemoveItem { removal_id: id }, Duration::ZERO).await?;
    Ok(true)
}

/// Whether the removal is still wanted: an unlinked item still has no active
/// mapped account; a dormant one is still `pending_cleanup` and dormant.
pub(crate) async fn still_wanted(
    conn: &mut PgConnection,
    removal: &Removal,
    dormant_after: Duration,
) -> Result<bool, sqlx::Error> {
    if removal.reason == "dormant" {
        return cleanup::is_dormant_pending(conn, removal.plaid_item_id, dormant_after).await;
    }
    let wanted: Option<bool> = sqlx::query_scalar(
        "select i.lifecycle <> 'removed'
                and not exists (select 1 from plaid_item_accounts m where m.plaid_item_id = i.id and m.active)
         from plaid_items i where i.id = $1",
    )
    .bind(removal.plaid_item_id)
    .fetch_optional(conn)
    .await?;
    Ok(wanted.unwrap_or(false))
}

/// Cancels a removal not yet under way (`grace`/`pending`); the item returns
/// to `active`. True when this call cancelled it.
pub(crate) async fn cancel(conn: &mut PgConnection, removal: &Removal) -> Result<bool, sqlx::Error> {
    let cancelled = sqlx::query(
        "update item_removals set state = 'cancelled', finished_at = now(), next_step_at = null, claim_token = null
         where id = $1 and state in ('grace', 'pending')",
    )
    .bind(removal.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if cancelled == 0 {
        return Ok(false);
    }
    end_cleanup(
        conn,
        removal.plaid_item_id,
        removal.id,
        removal.reason == "dormant",
    )
    .await?;
    Ok(true)
}

/// Returns a `pending_cleanup` item to `active` (and clears a failed removal
/// attempt's message from `last_sync_error`). The user was told it would
/// be removed, so they are told it will not (once per removal): when this
/// call made the transition, or when `announced` (a dormant removal, whose
/// item a relink may already have returned to `active`).
pub(crate) async fn end_cleanup(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    removal_id: i64,
    announced: bool,
) -> Result<(), sqlx::Error> {
    let ended = sqlx::query(
        "update plaid_items set lifecycle = 'active', cleanup_notified_at = null, cleanup_due_at = null
         where id = $1 and lifecycle = 'pending_cleanup'",
    )
    .bind(plaid_item_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // A failed attempt's message no longer applies.
    sqlx::query(
        "update plaid_items set last_sync_error = null where id = $1 and starts_with(last_sync_error, $2)",
    )
    .bind(plaid_item_id)
    .bind(ERROR_PREFIX)
    .execute(&mut *conn)
    .await?;
    if ended == 0 && !announced {
        return Ok(());
    }
    let (user_id, item_id, institution_id): (i64, String, Option<String>) =
        sqlx::query_as("select user_id, item_id, institution_id from plaid_items where id = $1")
            .bind(plaid_item_id)
            .fetch_one(&mut *conn)
            .await?;
    notify_once(
        conn,
        user_id,
        Some(plaid_item_id),
        "cleanup_cancelled",
        &json!({ "item_id": item_id, "institution_id": institution_id }),
        &format!("cleanup_cancelled:{removal_id}"),
    )
    .await?;
    Ok(())
}

/// Called when an item was reauthenticated or relinked: if it is healthy again
/// (syncable, with an active mapped account), a removal not yet under way is
/// cancelled and a `pending_cleanup` item returns to `active`, with the
/// cancellation notice. A removal already calling Plaid is not stopped.
/// True when something was cancelled.
pub async fn revive(conn: &mut PgConnection, plaid_item_id: i64) -> Result<bool, sqlx::Error> {
    let healthy: Option<bool> = sqlx::query_scalar(
        "select i.sync_status not in ('needs_reauth', 'failed') and i.lifecycle <> 'removed'
                and exists (select 1 from plaid_item_accounts m where m.plaid_item_id = i.id and m.active)
         from plaid_items i where i.id = $1 for update",
    )
    .bind(plaid_item_id)
    .fetch_optional(&mut *conn)
    .await?;
    if healthy != Some(true) {
        return Ok(false);
    }
    let open: Option<Removal> = sqlx::query_as(
        "select id, plaid_item_id, reason, state, task_id, attempts, 0::float8 as wait_secs
         from item_removals where plaid_item_id = $1 and state in ('grace', 'pending') for update",
    )
    .bind(plaid_item_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(open) = open {
        return cancel(conn, &open).await;
    }
    // An earlier removal that failed leaves its item pending_cleanup.
    let latest: Option<i64> =
        sqlx::query_scalar("select max(id) from item_removals where plaid_item_id = $1")
            .bind(plaid_item_id)
            .fetch_one(&mut *conn)
            .await?;
    if let Some(latest) = latest {
        end_cleanup(conn, plaid_item_id, latest, false).await?;
    }
    Ok(false)
}

/// One remove step (the [`RemoveItem`] job `task_id` of removal `removal_id`).
pub async fn remove_step(
    ctx: &JobContext,
    removal_id: i64,
    task_id: &str,
) -> Result<RemoveStep, RemovalError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(removal) = lock(&mut tx, removal_id).await? else {
        return Ok(RemoveStep::Stale);
    };
    if removal.task_id.as_deref() != Some(task_id)
        || !matches!(removal.state.as_str(), "pending" | "removing")
    {
        return Ok(RemoveStep::Stale);
    }
    if removal.wait_secs > 0.0 {
        // A backoff not over yet, or the live claim of an attempt that may
        // still be running (e.g. this very job, rescued after a crash).
        let wait = Duration::from_secs_f64(removal.wait_secs);
        schedule(&mut tx, removal_id, &RemoveItem { removal_id }, wait).await?;
        tx.commit().await?;
        return Ok(RemoveStep::Deferred);
    }
    // An expired claim (`removing`) is not re-checked: Plaid may have acted on
    // it, so the call is repeated to learn the outcome.
    if removal.state == "pending" && !still_wanted(&mut tx, &removal, ctx.cleanup.dormant_after).await? {
        cancel(&mut tx, &removal).await?;
        tx.commit().await?;
        return Ok(RemoveStep::Cancelled);
    }
    let secret_ref: Option<String> = sqlx::query_scalar("select secret_ref from plaid_items where id = $1")
        .bind(removal.plaid_item_id)
        .fetch_one(&mut *tx)
        .await?;
    let token = match secret_ref {
        None => Err((
            "NO_ACCESS_TOKEN",
            "the item has no stored access token".to_owned(),
        )),
        Some(secret_ref) => match ctx.secrets.get(&mut tx, &secret_ref).await {
            Ok(token) => Ok(token),
            Err(SecretError::Database(e)) => return Err(e.into()),
            Err(e) => Err(("ACCESS_TOKEN_UNREADABLE", e.to_string())),
        },
    };
    let token = match token {
        Ok(token) => token,
        Err((code, message)) => {
            // Nothing to call Plaid with: retrying cannot help.
            give_up(&mut tx, &removal, None, code, &message).await?;
            tx.commit().await?;
            tracing::error!(removal_id, code, "item removal failed: {message}");
            return Ok(RemoveStep::Failed {
                code: code.to_owned(),
            });
        }
    };
    let claim = ulid::Ulid::generate().to_string();
    let attempts: i32 = sqlx::query_scalar(
        "update item_removals set state = 'removing', claim_token = $2, attempts = attempts + 1,
             next_step_at = now() + make_interval(secs => $3)
         where id = $1 and state in ('pending', 'removing') returning attempts",
    )
    .bind(removal_id)
    .bind(&claim)
    .bind(CLAIM_TTL.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    // Durable claim first: no other step calls Plaid for this removal until it expires.
    tx.commit().await?;

    let result = ctx
        .plaid
        .item_remove(&ItemRemoveRequest::new(AccessToken::new(token.expose())))
        .await;
    let mut tx = ctx.pool.begin().await?;
    let step = match result {
        Ok(_) => complete(&mut tx, &removal, &claim, &ctx.secrets, false).await?,
        Err(e) if e.error_code().is_some_and(|code| GONE_CODES.contains(&code)) => {
            complete(&mut tx, &removal, &claim, &ctx.secrets, true).await?
        }
        Err(e) => attempt_failed(&mut tx, ctx, &removal, &claim, attempts, &e).await?,
    };
    tx.commit().await?;
    Ok(step)
}

/// Plaid confirmed: the removal is `done`, the item `removed` with its
/// mappings deactivated, and its secret deleted.
async fn complete(
    conn: &mut PgConnection,
    removal: &Removal,
    claim: &str,
    secrets: &SecretStore,
    already_gone: bool,
) -> Result<RemoveStep, RemovalError> {
    let (user_id, item_id, secret_ref): (i64, String, Option<String>) =
        sqlx::query_as("select user_id, item_id, secret_ref from plaid_items where id = $1 for update")
            .bind(removal.plaid_item_id)
            .fetch_one(&mut *conn)
            .await?;
    let done = sqlx::query(
        "update item_removals set state = 'done', finished_at = now(), next_step_at = null, claim_token = null
         where id = $1 and state = 'removing' and claim_token = $2",
    )
    .bind(removal.id)
    .bind(claim)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if done == 0 {
        return Ok(RemoveStep::ClaimLost);
    }
    sqlx::query(
        "update plaid_items set lifecycle = 'removed', removed_at = now(),
             last_sync_error = case when starts_with(last_sync_error, $2) then null else last_sync_error end
         where id = $1",
    )
    .bind(removal.plaid_item_id)
    .bind(ERROR_PREFIX)
    .execute(&mut *conn)
    .await?;
    sqlx::query("update plaid_item_accounts set active = false where plaid_item_id = $1 and active")
        .bind(removal.plaid_item_id)
        .execute(&mut *conn)
        .await?;
    if let Some(secret_ref) = secret_ref {
        secrets.delete(conn, &secret_ref).await?;
    }
    if removal.reason == "dormant" {
        notify_once(
            conn,
            user_id,
            Some(removal.plaid_item_id),
            "item_removed",
            &json!({ "item_id": item_id }),
            &format!("item_removed:{}", removal.id),
        )
        .await?;
    }
    tracing::info!(
        removal_id = removal.id,
        item_id,
        already_gone,
        "item removed at Plaid"
    );
    Ok(RemoveStep::Removed { already_gone })
}

/// A failed Plaid call: another attempt after a backoff, or `failed` after
/// [`MAX_ATTEMPTS`].
async fn attempt_failed(
    conn: &mut PgConnection,
    ctx: &JobContext,
    removal: &Removal,
    claim: &str,
    attempts: i32,
    error: &PlaidError,
) -> Result<RemoveStep, RemovalError> {
    let code = error.error_code().unwrap_or(match error {
        PlaidError::Timeout { .. } => "PLAID_TIMEOUT",
        PlaidError::Transport { .. } => "PLAID_UNREACHABLE",
        PlaidError::Decode { .. } => "PLAID_BAD_RESPONSE",
        _ => "PLAID_ERROR",
    });
    let message = error.to_string();
    sqlx::query("select 1 from plaid_items where id = $1 for update")
        .bind(removal.plaid_item_id)
        .execute(&mut *conn)
        .await?;
    if attempts >= MAX_ATTEMPTS {
        if !give_up(conn, removal, Some(claim), code, &message).await? {
            return Ok(RemoveStep::ClaimLost);
        }
        tracing::error!(
            removal_id = removal.id,
            attempts,
            code,
            "item removal failed for good: {message}"
        );
        return Ok(RemoveStep::Failed {
            code: code.to_owned(),
        });
    }
    let retry_in = backoff(&ctx.sync, attempts as u32, error.is_rate_limit());
    let retried = sqlx::query(
        "update item_removals set state = 'pending', claim_token = null, last_error_code = $3, last_error = $4,
             next_step_at = now() + make_interval(secs => $5)
         where id = $1 and state = 'removing' and claim_token = $2",
    )
    .bind(removal.id)
    .bind(claim)
    .bind(code)
    .bind(&message)
    .bind(retry_in.as_secs_f64())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if retried == 0 {
        return Ok(RemoveStep::ClaimLost);
    }
    record_on_item(conn, removal.plaid_item_id, &message).await?;
    schedule(
        conn,
        removal.id,
        &RemoveItem {
            removal_id: removal.id,
        },
        retry_in,
    )
    .await?;
    tracing::warn!(
        removal_id = removal.id,
        attempts,
        code,
        ?retry_in,
        "item removal failed; retrying later"
    );
    Ok(RemoveStep::Retrying {
        attempts,
        code: code.to_owned(),
        retry_in,
    })
}

/// Ends the removal `failed` (guarded by the attempt's claim, when given); the
/// item and its secret are kept. False when the guard did not hold.
async fn give_up(
    conn: &mut PgConnection,
    removal: &Removal,
    claim: Option<&str>,
    code: &str,
    message: &str,
) -> Result<bool, sqlx::Error> {
    let failed = sqlx::query(
        "update item_removals set state = 'failed', finished_at = now(), next_step_at = null, claim_token = null,
             last_error_code = $3, last_error = $4
         where id = $1 and state in ('pending', 'removing') and ($2::text is null or claim_token = $2)",
    )
    .bind(removal.id)
    .bind(claim)
    .bind(code)
    .bind(message)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if failed == 1 {
        record_on_item(conn, removal.plaid_item_id, message).await?;
    }
    Ok(failed == 1)
}

/// Shows the failure where users and operators look at items.
async fn record_on_item(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update plaid_items set last_sync_error = $2 where id = $1")
        .bind(plaid_item_id)
        .bind(format!("{ERROR_PREFIX}{message}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Re-schedules an open removal whose job went missing (killed, or failed
/// on database errors): the step its state calls for, now.
pub(crate) async fn resume(conn: &mut PgConnection, removal: &Removal) -> Result<(), RemovalError> {
    let removal_id = removal.id;
    if removal.state == "grace" {
        schedule(conn, removal_id, &CleanupDue { removal_id }, Duration::ZERO).await
    } else {
        schedule(conn, removal_id, &RemoveItem { removal_id }, Duration::ZERO).await
    }
}

/// Figures for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RemovalHealth {
    /// Open removals whose last Plaid attempt failed (being retried).
    pub retrying: i64,
    /// Items not removed whose latest removal ended `failed`.
    pub failed: i64,
    /// Items in their grace window.
    pub pending_cleanup: i64,
}

/// Current [`RemovalHealth`].
pub async fn health(conn: &mut PgConnection) -> Result<RemovalHealth, sqlx::Error> {
    sqlx::query_as(
        "select
            (select count(*) from item_removals
             where state in ('pending', 'removing') and last_error_code is not null) as retrying,
            (select count(*) from item_removals f join plaid_items i on i.id = f.plaid_item_id
             where f.state = 'failed' and i.lifecycle <> 'removed'
               and not exists (select 1 from item_removals n where n.plaid_item_id = f.plaid_item_id and n.id > f.id))
             as failed,
            (select count(*) from plaid_items where lifecycle = 'pending_cleanup') as pending_cleanup",
    )
    .fetch_one(conn)
    .await
}

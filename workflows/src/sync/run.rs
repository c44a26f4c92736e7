//! One sync run of one item, start to finish.

use std::time::Duration;

use super::{
    SyncError, SyncSettings, apply, fetch, initial_load,
    lease::{self, Acquire, Lease},
    outcome,
};
use crate::{
    plaid::{AccessToken, ErrorClass, PlaidClient, PlaidError},
    secrets::SecretStore,
};

/// How a run ended (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Applied.
    Synced {
        /// Pages fetched in the final (successful) attempt.
        pages: u32,
        /// Entries received (added + modified + removed).
        staged: u64,
        /// Rows upserted.
        upserted: u64,
        /// Rows tombstoned.
        tombstoned: u64,
        /// Rows of `upserted` loaded by `COPY` (an initial load).
        copied: u64,
        /// Restarts after mutation during pagination.
        restarts: u32,
        /// Plaid's `added` entries in the applied update.
        added: u64,
        /// Plaid's `modified` entries in the applied update.
        modified: u64,
        /// Plaid's `removed` entries in the applied update.
        removed: u64,
    },
    /// Transactions not ready yet (fresh item).
    NotReady,
    /// Another sync holds the item; retried after its lease.
    Deferred,
    /// Nothing to do (needs reauth, removed, unknown).
    Skipped(&'static str),
    /// Retryable failure; retried durably.
    RetryScheduled {
        /// Plaid's code (or ours).
        code: String,
        /// When.
        retry_in: Duration,
    },
    /// The user must reauthenticate.
    NeedsReauth(String),
    /// Terminal failure.
    Failed(String),
}

/// Runs a sync of `plaid_item_id` for the job `task_id` on `worker`.
pub async fn run(
    pool: &sqlx::PgPool,
    plaid: &PlaidClient,
    secrets: &SecretStore,
    settings: &SyncSettings,
    plaid_item_id: i64,
    task_id: &str,
    worker: &str,
) -> Result<SyncOutcome, SyncError> {
    let lease = match lease::acquire(
        pool,
        plaid_item_id,
        task_id,
        worker,
        settings.lease,
        settings.worker_stale_after,
    )
    .await?
    {
        Acquire::Acquired(lease) => lease,
        Acquire::Busy { .. } => return Ok(SyncOutcome::Deferred),
        Acquire::Skip { reason } => return Ok(SyncOutcome::Skipped(reason)),
    };
    let keeper = lease::LeaseKeeper::start(pool.clone(), lease.clone(), settings.lease);
    let result = tokio::time::timeout(
        settings.run_timeout,
        run_leased(pool, plaid, secrets, settings, &lease),
    )
    .await;
    drop(keeper);
    match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(SyncError::Plaid(e))) => record_plaid_error(pool, settings, &lease, &e).await,
        Ok(Err(SyncError::Secret(e))) => {
            tracing::error!(plaid_item_id, error = %e, "the item's access token cannot be read");
            outcome::give_up(
                pool,
                &lease,
                "ACCESS_TOKEN_UNREADABLE",
                "the stored access token cannot be decrypted",
            )
            .await?;
            Ok(SyncOutcome::Failed("ACCESS_TOKEN_UNREADABLE".into()))
        }
        Ok(Err(e)) => {
            outcome::release(pool, &lease).await;
            Err(e)
        }
        Err(_) => {
            let message = format!("the sync did not finish within {:?}", settings.run_timeout);
            let retry_in =
                outcome::retry_later(pool, settings, &lease, "SYNC_TIMEOUT", &message, false).await?;
            Ok(SyncOutcome::RetryScheduled {
                code: "SYNC_TIMEOUT".into(),
                retry_in,
            })
        }
    }
}

async fn run_leased(
    pool: &sqlx::PgPool,
    plaid: &PlaidClient,
    secrets: &SecretStore,
    settings: &SyncSettings,
    lease: &Lease,
) -> Result<SyncOutcome, SyncError> {
    let Some(secret_ref) = lease.secret_ref.as_deref() else {
        outcome::give_up(
            pool,
            lease,
            "NO_ACCESS_TOKEN",
            "the item has no stored access token",
        )
        .await?;
        return Ok(SyncOutcome::Failed("NO_ACCESS_TOKEN".into()));
    };
    let token = secrets.get(&mut *pool.acquire().await?, secret_ref).await?;
    let access_token = AccessToken::new(token.expose());

    let mut restarts = 0;
    let mut copy_allowed = true;
    let (tx, fetched) = loop {
        // One transaction per attempt: its pages are applied on it and only
        // `apply::finish` commits, so a restart, an error or a crash (the
        // connection dies with the process) leaves nothing behind.
        let mut tx = pool.begin().await?;
        match fetch::fetch_update(&mut tx, plaid, settings, lease, &access_token, copy_allowed).await {
            Ok(fetched) => break (tx, fetched),
            Err(SyncError::Database(e)) if copy_allowed && initial_load::is_repeated_row(&e) => {
                // A transaction came twice in an initial load: redo the
                // update through the upsert, which keeps the latest entry.
                tx.rollback().await?;
                copy_allowed = false;
                tracing::warn!(
                    plaid_item_id = lease.plaid_item_id,
                    "a transaction repeated across pages of an initial load; redoing the update without COPY"
                );
            }
            Err(SyncError::Plaid(e))
                if e.is_mutation_during_pagination() && restarts < settings.max_restarts =>
            {
                // Everything applied in this attempt is rolled back and the
                // loop restarts from the update's first cursor.
                tx.rollback().await?;
                restarts += 1;
                tracing::info!(
                    plaid_item_id = lease.plaid_item_id,
                    restarts,
                    "mutation during pagination; restarting"
                );
            }
            Err(e) => {
                tx.rollback().await.ok();
                return Err(e);
            }
        }
    };
    if fetched.not_ready {
        tx.rollback().await?;
        outcome::not_ready(pool, lease).await?;
        return Ok(SyncOutcome::NotReady);
    }
    let applied = apply::finish(tx, lease, &fetched).await?;
    Ok(SyncOutcome::Synced {
        pages: fetched.pages,
        staged: fetched.staged,
        upserted: applied.upserted,
        tombstoned: applied.tombstoned,
        copied: fetched.copied,
        restarts,
        added: fetched.added,
        modified: fetched.modified,
        removed: fetched.removed,
    })
}

async fn record_plaid_error(
    pool: &sqlx::PgPool,
    settings: &SyncSettings,
    lease: &Lease,
    e: &PlaidError,
) -> Result<SyncOutcome, SyncError> {
    let code = e.error_code().unwrap_or(match e {
        PlaidError::Timeout { .. } => "PLAID_TIMEOUT",
        PlaidError::Transport { .. } => "PLAID_UNREACHABLE",
        PlaidError::Decode { .. } => "PLAID_BAD_RESPONSE",
        _ => "PLAID_ERROR",
    });
    let message = e.to_string();
    match e.class() {
        ErrorClass::NeedsReauth => {
            outcome::needs_reauth(pool, lease, code, &message).await?;
            Ok(SyncOutcome::NeedsReauth(code.to_owned()))
        }
        ErrorClass::Terminal => {
            outcome::give_up(pool, lease, code, &message).await?;
            Ok(SyncOutcome::Failed(code.to_owned()))
        }
        // Developer errors (bad credentials, a request Plaid rejects) are ours
        // to fix; retrying with backoff heals the item once the fix ships.
        ErrorClass::Retryable | ErrorClass::Developer => {
            let retry_in =
                outcome::retry_later(pool, settings, lease, code, &message, e.is_rate_limit()).await?;
            Ok(SyncOutcome::RetryScheduled {
                code: code.to_owned(),
                retry_in,
            })
        }
    }
}

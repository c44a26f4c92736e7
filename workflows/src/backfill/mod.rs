//! The legacy backfill: from per-account legacy secrets to `plaid_items` and
//! `plaid_item_accounts` (README "Legacy backfill").
//!
//! Before `plaid_items` existed, a Plaid account lived only in `accounts`
//! (`provider = 'plaid'`) with a `secret_ref` to its Item's access token; the
//! accounts of one Item shared that secret. Nothing in those rows says which
//! Plaid Item or Plaid account they are, so the backfill asks Plaid:
//!
//! 1. **Discover** ([`discover`], run by `db::migrate_all` after the
//!    migrators, so by `plaid-sync migrate` and every `serve` start): in one
//!    transaction, record a `pending` row in `legacy_backfill` for each
//!    distinct legacy secret that has an unmapped legacy account and no row
//!    yet, and, while any row is pending, make sure one resolver job is queued
//!    (guard `legacy_backfill_job`). With nothing to do it is two index probes.
//! 2. **Resolve** ([`run_once`], the `plaid-sync.legacy-backfill` job): for
//!    each pending secret, decrypt it, call `/item/get` (item id, institution)
//!    and `/accounts/get`, then in one transaction create the `plaid_items` row
//!    (or reuse the owner's existing one), map the legacy accounts
//!    ([`matching`]), mark the secret `resolved` and request a sync of the item.
//!
//! What can go wrong, and what happens (`legacy_backfill.error_code`):
//!
//! * Plaid says the token is dead or needs the user (`INVALID_ACCESS_TOKEN`,
//!   `ITEM_NOT_FOUND`, `ITEM_LOGIN_REQUIRED`, ...: classes terminal and
//!   needs-reauth): the secret is `failed` with Plaid's code. Its accounts stay
//!   exactly as they were (never deleted, archived or changed) and are
//!   reported by `plaid-sync check backfill`.
//! * A passing error (5xx, rate limit, timeout, institution down) or one of
//!   ours (bad API keys): the secret stays `pending` with the error noted, and
//!   the job re-queues itself with exponential backoff.
//! * The secret row is gone (`secret_missing`) or does not open with the
//!   configured keys (`secret_unreadable`; fix `SECRETS_KEY_PREVIOUS`, then
//!   re-open the row): `failed`.
//! * The legacy accounts of one secret belong to several users
//!   (`several_users`), or the Item is already another user's
//!   (`item_owned_by_another_user`): `failed`; we do not pick an owner.
//! * A legacy account with no unique partner among the Item's Plaid accounts
//!   stays unmapped (counted in `unmatched_accounts`, listed by the check).
//!
//! A `resolved` or `failed` row is final: discovery never re-opens it, which
//! is why running everything twice changes nothing. An operator retries a
//! secret with `update legacy_backfill set status = 'pending', finished_at =
//! null, error_code = null where secret_ref = '...'` and `plaid-sync migrate`.

pub mod matching;
mod resolve;

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use crate::{
    db::legacy_backfill as db,
    jobs::{EnqueueError, JobContext, legacy_backfill},
    plaid::PlaidClient,
    secrets::SecretStore,
};

pub use resolve::Outcome;

/// How long one resolver run keeps starting new secrets before it hands the
/// rest to a fresh run (handlers bound their own time).
pub const RUN_BUDGET: Duration = Duration::from_secs(120);

/// What resolving needs: the part of [`JobContext`] it uses, so tests and
/// tools can build one without a worker's settings.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The database.
    pub pool: &'a PgPool,
    /// The Plaid client.
    pub plaid: &'a PlaidClient,
    /// The secret store holding the legacy access tokens.
    pub secrets: &'a SecretStore,
}

impl<'a> From<&'a JobContext> for Env<'a> {
    fn from(ctx: &'a JobContext) -> Self {
        Self {
            pool: &ctx.pool,
            plaid: &ctx.plaid,
            secrets: &ctx.secrets,
        }
    }
}

/// Failures that abort a step (per-secret Plaid and secret errors do not:
/// they are recorded on the secret's row).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A job could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

/// What the discovery step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// New pending secrets recorded.
    pub recorded: u64,
    /// Whether a resolver job was enqueued (false when none is needed or one
    /// is already queued).
    pub enqueued: bool,
}

/// The migration step: records pending secrets and makes sure a resolver job
/// is queued while any is pending. Idempotent and concurrency-safe (any
/// number of processes may run it at once).
pub async fn discover(pool: &PgPool) -> Result<Discovery, BackfillError> {
    let mut tx = pool.begin().await?;
    let recorded = db::record_unmapped_secrets(&mut tx).await?;
    let enqueued = if db::any_pending(&mut tx).await? {
        legacy_backfill::ensure_job(&mut tx, &legacy_backfill::LegacyBackfill::default(), None).await?
    } else {
        false
    };
    tx.commit().await?;
    if recorded > 0 || enqueued {
        tracing::info!(recorded, enqueued, "legacy backfill: pending secrets recorded");
    }
    Ok(Discovery { recorded, enqueued })
}

/// What one resolver run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Secrets resolved to an item.
    pub resolved: u32,
    /// Secrets failed for good.
    pub failed: u32,
    /// Secrets left pending after a passing error.
    pub retry_later: u32,
    /// Secrets another run finished meanwhile.
    pub skipped: u32,
    /// Pending secrets not attempted because the run's budget ran out.
    pub deferred: u32,
    /// Legacy accounts mapped.
    pub mapped_accounts: u32,
    /// Legacy accounts of resolved secrets left without a partner.
    pub unmatched_accounts: u32,
}

/// Resolves pending secrets until none is left or `budget` has passed (the
/// testable core of the job; [`legacy_backfill::execute`] adds the re-queueing).
pub async fn run_once(env: Env<'_>, budget: Duration) -> Result<Report, BackfillError> {
    let started = tokio::time::Instant::now();
    let pending = db::pending_secrets(&mut *env.pool.acquire().await?).await?;
    let mut report = Report::default();
    for (done, secret_ref) in pending.iter().enumerate() {
        if started.elapsed() >= budget {
            report.deferred = u32::try_from(pending.len() - done).unwrap_or(u32::MAX);
            break;
        }
        match resolve::resolve(env, secret_ref).await? {
            Outcome::Resolved {
                mapped, unmatched, ..
            } => {
                report.resolved += 1;
                report.mapped_accounts += mapped;
                report.unmatched_accounts += unmatched;
            }
            Outcome::Failed { .. } => report.failed += 1,
            Outcome::RetryLater { .. } => report.retry_later += 1,
            Outcome::Skipped => report.skipped += 1,
        }
    }
    Ok(report)
}

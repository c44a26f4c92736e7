//! `legacy_backfill`, its job guard, and the statements the legacy backfill
//! runs on `accounts`, `plaid_items` and `plaid_item_accounts`
//! (see [`crate::backfill`]).
//!
//! "Legacy Plaid account" everywhere below means an `accounts` row with
//! `provider = 'plaid'` and a non-null `secret_ref` (only the pre-plaid_items
//! code wrote that column; the Link flow never does).

use serde::Serialize;
use sqlx::PgConnection;

/// Records a pending row for every legacy secret that has a legacy account
/// without a mapping and no row yet; returns how many it recorded. Served by
/// the partial index `accounts_legacy_plaid_secret` and the primary keys, so
/// it is cheap when there is nothing to do.
pub async fn record_unmapped_secrets(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "insert into legacy_backfill (secret_ref)
         select distinct a.secret_ref
         from accounts a
         where a.provider = 'plaid' and a.secret_ref is not null
           and not exists (select 1 from plaid_item_accounts m where m.account_id = a.id)
           and not exists (select 1 from legacy_backfill b where b.secret_ref = a.secret_ref)
         on conflict (secret_ref) do nothing",
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Whether any secret is still pending.
pub async fn any_pending(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from legacy_backfill where status = 'pending')")
        .fetch_one(conn)
        .await
}

/// Claims the job guard for `task_id`; true when the caller must now push that
/// job. The guard is taken when absent, or when the job it names can no longer
/// run (finished, killed, failed for good, or pruned): a stale guard must not
/// block the backfill forever.
pub async fn claim_job_guard(conn: &mut PgConnection, task_id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "insert into legacy_backfill_job (task_id) values ($1)
         on conflict (singleton) do update set task_id = excluded.task_id, created_at = now()
         where not exists (
             select 1 from apalis.jobs j
             where j.id = legacy_backfill_job.task_id
               and (j.status in ('Pending', 'Queued', 'Running')
                    or (j.status = 'Failed' and j.attempts < j.max_attempts)))",
    )
    .bind(task_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Deletes the job guard (the job does it as it starts, so a secret discovered
/// during a run gets the next run).
pub async fn release_job_guard(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("delete from legacy_backfill_job")
        .execute(conn)
        .await?
        .rows_affected())
}

/// Pending secrets, least-tried first (new secrets are not starved by ones
/// that keep hitting a passing error).
pub async fn pending_secrets(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select secret_ref from legacy_backfill where status = 'pending' order by attempts, secret_ref",
    )
    .fetch_all(conn)
    .await
}

/// The distinct owners of the legacy accounts of a secret.
pub async fn legacy_owners(conn: &mut PgConnection, secret_ref: &str) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select distinct user_id from accounts
         where provider = 'plaid' and secret_ref = $1 order by user_id",
    )
    .bind(secret_ref)
    .fetch_all(conn)
    .await
}

/// Locks the backfill row of `secret_ref` if it is still pending; false when
/// it is not (another run finished it meanwhile, or it does not exist).
pub async fn lock_pending(conn: &mut PgConnection, secret_ref: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, i32>(
        "select 1 from legacy_backfill where secret_ref = $1 and status = 'pending' for update",
    )
    .bind(secret_ref)
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// A legacy account of one secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LegacyAccount {
    /// `accounts.id`.
    pub id: i64,
    /// Its owner.
    pub user_id: i64,
    /// Display name.
    pub name: String,
    /// Last digits, when known.
    pub mask: Option<String>,
    /// Archived accounts are mapped as inactive.
    pub archived: bool,
    /// True when it already has a `plaid_item_accounts` row.
    pub mapped: bool,
}

/// The legacy accounts of a secret, locked (the caller is in the transaction
/// that maps them).
pub async fn lock_legacy_accounts(
    conn: &mut PgConnection,
    secret_ref: &str,
) -> Result<Vec<LegacyAccount>, sqlx::Error> {
    sqlx::query_as(
        "select a.id, a.user_id, a.name, a.mask, a.archived,
                exists (select 1 from plaid_item_accounts m where m.account_id = a.id) as mapped
         from accounts a
         where a.provider = 'plaid' and a.secret_ref = $1
         order by a.id
         for update of a",
    )
    .bind(secret_ref)
    .fetch_all(conn)
    .await
}

/// An item found by Plaid id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExistingItem {
    /// `plaid_items.id`.
    pub id: i64,
    /// Its owner.
    pub user_id: i64,
}

/// The item with Plaid id `item_id`, locked.
pub async fn lock_item(conn: &mut PgConnection, item_id: &str) -> Result<Option<ExistingItem>, sqlx::Error> {
    sqlx::query_as("select id, user_id from plaid_items where item_id = $1 for update")
        .bind(item_id)
        .fetch_optional(conn)
        .await
}

/// Inserts a backfilled item pointing at the legacy secret; `None` when an
/// item with that Plaid id appeared meanwhile (the caller looks it up again).
pub async fn insert_item(
    conn: &mut PgConnection,
    user_id: i64,
    item_id: &str,
    secret_ref: &str,
    institution_id: Option<&str>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into plaid_items (user_id, item_id, secret_ref, institution_id, sync_status)
         values ($1, $2, $3, $4, 'sync_needed')
         on conflict (item_id) do nothing
         returning id",
    )
    .bind(user_id)
    .bind(item_id)
    .bind(secret_ref)
    .bind(institution_id)
    .fetch_optional(conn)
    .await
}

/// Points a reused item at the legacy secret only when it has none: a secret
/// it already has came from a later Link and is the one to keep.
pub async fn adopt_secret_if_none(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    secret_ref: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update plaid_items set secret_ref = $2
         where id = $1 and secret_ref is null and exists (select 1 from secrets where secret_ref = $2)",
    )
    .bind(plaid_item_id)
    .bind(secret_ref)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Plaid account ids already mapped in the item (not available to legacy accounts).
pub async fn mapped_plaid_accounts(
    conn: &mut PgConnection,
    plaid_item_id: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select plaid_account_id from plaid_item_accounts where plaid_item_id = $1")
        .bind(plaid_item_id)
        .fetch_all(conn)
        .await
}

/// Maps a legacy account; false when either side was taken meanwhile.
pub async fn insert_mapping(
    conn: &mut PgConnection,
    account_id: i64,
    plaid_item_id: i64,
    plaid_account_id: &str,
    active: bool,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "insert into plaid_item_accounts (account_id, plaid_item_id, plaid_account_id, active)
         values ($1, $2, $3, $4)
         on conflict do nothing",
    )
    .bind(account_id)
    .bind(plaid_item_id)
    .bind(plaid_account_id)
    .bind(active)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Marks a pending secret resolved.
pub async fn mark_resolved(
    conn: &mut PgConnection,
    secret_ref: &str,
    plaid_item_id: Option<i64>,
    unmatched_accounts: i32,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update legacy_backfill
         set status = 'resolved', plaid_item_id = $2, unmatched_accounts = $3,
             error_code = null, last_error = null, attempts = attempts + 1, finished_at = now()
         where secret_ref = $1 and status = 'pending'",
    )
    .bind(secret_ref)
    .bind(plaid_item_id)
    .bind(unmatched_accounts)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Marks a pending secret failed for good (its accounts stay as they are).
pub async fn mark_failed(
    conn: &mut PgConnection,
    secret_ref: &str,
    error_code: &str,
    message: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update legacy_backfill
         set status = 'failed', error_code = $2, last_error = $3,
             attempts = attempts + 1, finished_at = now()
         where secret_ref = $1 and status = 'pending'",
    )
    .bind(secret_ref)
    .bind(error_code)
    .bind(message)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Records a passing error on a pending secret (it stays pending).
pub async fn note_passing_error(
    conn: &mut PgConnection,
    secret_ref: &str,
    error_code: &str,
    message: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update legacy_backfill set error_code = $2, last_error = $3, attempts = attempts + 1
         where secret_ref = $1 and status = 'pending'",
    )
    .bind(secret_ref)
    .bind(error_code)
    .bind(message)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Counts of legacy Plaid accounts (`plaid-sync check backfill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccountCounts {
    /// Legacy Plaid accounts.
    pub legacy_accounts: i64,
    /// Those whose Item is known: mapped, or their secret resolved to an item
    /// (a failed secret has no item, even when Plaid named one).
    pub with_item: i64,
    /// Those with a `plaid_item_accounts` row.
    pub with_mapping: i64,
}

/// Counts legacy Plaid accounts with an item and with a mapping.
pub async fn account_counts(conn: &mut PgConnection) -> Result<AccountCounts, sqlx::Error> {
    sqlx::query_as(
        "select count(*) as legacy_accounts,
                count(*) filter (where m.plaid_item_id is not null
                                    or (b.status = 'resolved' and b.plaid_item_id is not null)) as with_item,
                count(m.account_id) as with_mapping
         from accounts a
         left join plaid_item_accounts m on m.account_id = a.id
         left join legacy_backfill b on b.secret_ref = a.secret_ref
         where a.provider = 'plaid' and a.secret_ref is not null",
    )
    .fetch_one(conn)
    .await
}

/// Backfill rows per status, as `(status, count)`.
pub async fn secret_counts(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("select status, count(*) from legacy_backfill group by status order by status")
        .fetch_all(conn)
        .await
}

/// A secret that did not resolve (failed, or pending with a passing error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SecretProblem {
    /// The legacy secret reference.
    pub secret_ref: String,
    /// `failed` or `pending`.
    pub status: String,
    /// Plaid's or our error code.
    pub error_code: Option<String>,
    /// The operator sentence.
    pub last_error: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    /// Legacy accounts using this secret.
    pub accounts: i64,
}

/// Failed secrets, and pending ones that hit an error, with their account counts.
pub async fn secret_problems(conn: &mut PgConnection) -> Result<Vec<SecretProblem>, sqlx::Error> {
    sqlx::query_as(
        "select b.secret_ref, b.status, b.error_code, b.last_error, b.attempts,
                (select count(*) from accounts a where a.provider = 'plaid' and a.secret_ref = b.secret_ref) as accounts
         from legacy_backfill b
         where b.status = 'failed' or (b.status = 'pending' and b.error_code is not null)
         order by b.status, b.secret_ref",
    )
    .fetch_all(conn)
    .await
}

/// A legacy Plaid account without a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UnmappedAccount {
    /// `accounts.id`.
    pub id: i64,
    /// Its owner.
    pub user_id: i64,
    /// Display name.
    pub name: String,
    /// Last digits.
    pub mask: Option<String>,
    /// Its legacy secret.
    pub secret_ref: String,
    /// The backfill status of that secret (`None`: not discovered yet).
    pub status: Option<String>,
    /// The secret's error code, if any.
    pub error_code: Option<String>,
}

/// Up to `limit` legacy Plaid accounts without a mapping, oldest first.
pub async fn unmapped_accounts(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<UnmappedAccount>, sqlx::Error> {
    sqlx::query_as(
        "select a.id, a.user_id, a.name, a.mask, a.secret_ref, b.status, b.error_code
         from accounts a
         left join legacy_backfill b on b.secret_ref = a.secret_ref
         where a.provider = 'plaid' and a.secret_ref is not null
           and not exists (select 1 from plaid_item_accounts m where m.account_id = a.id)
         order by a.id
         limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

//! `plaid_items` and `plaid_item_accounts`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// Result of linking (or relinking) an item for a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UpsertedItem {
    /// `plaid_items.id`.
    pub id: i64,
    /// True for a new item.
    pub inserted: bool,
    /// The secret the item pointed at before (to delete once replaced).
    pub old_secret_ref: Option<String>,
}

/// Inserts the item, or (re-exchange / reauth) points it at the new secret and
/// returns it to `sync_needed`. `None` when the item belongs to another user:
/// the row is left untouched.
pub async fn upsert_for_user(
    conn: &mut PgConnection,
    user_id: i64,
    item_id: &str,
    secret_ref: &str,
    institution_id: Option<&str>,
) -> Result<Option<UpsertedItem>, sqlx::Error> {
    sqlx::query_as(
        "with prev as (select secret_ref from plaid_items where item_id = $2)
         insert into plaid_items (user_id, item_id, secret_ref, institution_id, sync_status)
         values ($1, $2, $3, $4, 'sync_needed')
         on conflict (item_id) do update
           set secret_ref = excluded.secret_ref,
               institution_id = coalesce(excluded.institution_id, plaid_items.institution_id),
               sync_status = case when plaid_items.sync_status = 'syncing' then 'syncing' else 'sync_needed' end,
               reauth_needed_at = null,
               last_sync_error = null,
               next_retry_at = null,
               -- A relink during the cleanup grace window cancels the removal.
               lifecycle = case when plaid_items.lifecycle = 'pending_cleanup' then 'active' else plaid_items.lifecycle end,
               cleanup_notified_at = case when plaid_items.lifecycle = 'pending_cleanup' then null else plaid_items.cleanup_notified_at end,
               cleanup_due_at = case when plaid_items.lifecycle = 'pending_cleanup' then null else plaid_items.cleanup_due_at end
           where plaid_items.user_id = excluded.user_id
         returning id, (xmax = 0) as inserted, (select secret_ref from prev) as old_secret_ref",
    )
    .bind(user_id)
    .bind(item_id)
    .bind(secret_ref)
    .bind(institution_id)
    .fetch_optional(conn)
    .await
}

/// The owner of an item, by Plaid id.
pub async fn owner_of(conn: &mut PgConnection, item_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select user_id from plaid_items where item_id = $1")
        .bind(item_id)
        .fetch_optional(conn)
        .await
}

/// An item of a user, for update-mode Link.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnedItem {
    /// `plaid_items.id`.
    pub id: i64,
    /// Where the access token is.
    pub secret_ref: Option<String>,
    /// `active`, `pending_cleanup` or `removed`.
    pub lifecycle: String,
}

/// The user's item with Plaid id `item_id` (`None` if absent or another user's).
pub async fn find_owned(
    conn: &mut PgConnection,
    user_id: i64,
    item_id: &str,
) -> Result<Option<OwnedItem>, sqlx::Error> {
    sqlx::query_as("select id, secret_ref, lifecycle from plaid_items where item_id = $1 and user_id = $2")
        .bind(item_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// One account as Plaid lists it, to store.
#[derive(Debug, Clone)]
pub struct PlaidAccountRow {
    /// Plaid's `account_id`.
    pub plaid_account_id: String,
    /// Display name.
    pub name: String,
    /// Last digits.
    pub mask: Option<String>,
    /// Type.
    pub kind: String,
    /// Subtype.
    pub subtype: Option<String>,
    /// Balances JSON.
    pub balances: serde_json::Value,
}

/// Creates or refreshes the item's accounts and mappings; mappings of accounts
/// Plaid no longer lists are deactivated (accounts are kept). Returns the
/// internal account ids in the order given.
pub async fn sync_accounts(
    conn: &mut PgConnection,
    user_id: i64,
    plaid_item_id: i64,
    accounts: &[PlaidAccountRow],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(accounts.len());
    for account in accounts {
        let existing: Option<i64> = sqlx::query_scalar(
            "select account_id from plaid_item_accounts where plaid_item_id = $1 and plaid_account_id = $2",
        )
        .bind(plaid_item_id)
        .bind(&account.plaid_account_id)
        .fetch_optional(&mut *conn)
        .await?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "update accounts set name = $2, mask = $3, type = $4, subtype = $5, balances = $6, archived = false
                     where id = $1",
                )
                .bind(id)
                .bind(&account.name)
                .bind(&account.mask)
                .bind(&account.kind)
                .bind(&account.subtype)
                .bind(&account.balances)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "update plaid_item_accounts set active = true where account_id = $1 and not active",
                )
                .bind(id)
                .execute(&mut *conn)
                .await?;
                id
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "insert into accounts (user_id, provider, name, mask, type, subtype, balances, sync_status)
                     values ($1, 'plaid', $2, $3, $4, $5, $6, 'sync_needed') returning id",
                )
                .bind(user_id)
                .bind(&account.name)
                .bind(&account.mask)
                .bind(&account.kind)
                .bind(&account.subtype)
                .bind(&account.balances)
                .fetch_one(&mut *conn)
                .await?;
                sqlx::query(
                    "insert into plaid_item_accounts (account_id, plaid_item_id, plaid_account_id) values ($1, $2, $3)",
                )
                .bind(id)
                .bind(plaid_item_id)
                .bind(&account.plaid_account_id)
                .execute(&mut *conn)
                .await?;
                id
            }
        };
        ids.push(id);
    }
    let listed: Vec<&str> = accounts.iter().map(|a| a.plaid_account_id.as_str()).collect();
    sqlx::query(
        "update plaid_item_accounts set active = false
         where plaid_item_id = $1 and active and not (plaid_account_id = any($2))",
    )
    .bind(plaid_item_id)
    .bind(&listed)
    .execute(&mut *conn)
    .await?;
    Ok(ids)
}

/// Marks the item's stored, not yet processed transactions webhooks as
/// processed: the sync just requested covers whatever they announced.
pub async fn absorb_pending_events(conn: &mut PgConnection, item_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update plaid_webhook_events set processed_at = now()
         where item_id = $1 and processed_at is null and webhook_type = 'TRANSACTIONS'",
    )
    .bind(item_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// An item as the user API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ItemView {
    /// Plaid's item id.
    pub item_id: String,
    /// Institution.
    pub institution_id: Option<String>,
    /// Sync status.
    pub sync_status: String,
    /// Lifecycle.
    pub lifecycle: String,
    /// Last webhook or request asking for a sync.
    pub sync_requested_at: Option<DateTime<Utc>>,
    /// Last successful sync.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When the item started needing reauthentication.
    pub reauth_needed_at: Option<DateTime<Utc>>,
    /// The last sync error, if the last sync failed.
    pub last_sync_error: Option<String>,
    /// When removal was announced.
    pub cleanup_notified_at: Option<DateTime<Utc>>,
    /// When removal is due.
    pub cleanup_due_at: Option<DateTime<Utc>>,
    /// When the item was removed at Plaid.
    pub removed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Its accounts (JSON array).
    pub accounts: serde_json::Value,
}

/// A user's items with their accounts, oldest first.
pub async fn list_for_user(conn: &mut PgConnection, user_id: i64) -> Result<Vec<ItemView>, sqlx::Error> {
    sqlx::query_as(
        "select i.item_id, i.institution_id, i.sync_status, i.lifecycle, i.sync_requested_at, i.last_synced_at,
                i.reauth_needed_at, i.last_sync_error, i.cleanup_notified_at, i.cleanup_due_at, i.removed_at,
                i.created_at, i.updated_at,
                coalesce((select jsonb_agg(jsonb_build_object(
                        'id', a.id, 'name', a.name, 'mask', a.mask, 'type', a.type, 'subtype', a.subtype,
                        'active', m.active, 'sync_status', a.sync_status, 'archived', a.archived)
                        order by a.id)
                    from plaid_item_accounts m join accounts a on a.id = m.account_id
                    where m.plaid_item_id = i.id), '[]'::jsonb) as accounts
         from plaid_items i where i.user_id = $1 order by i.id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Ids of items waiting for a sync (`sync_needed`, not removed), in id order
/// after `after_id`, at most `limit` (keyset pages for large runs).
pub async fn sync_needed_ids(
    conn: &mut PgConnection,
    after_id: i64,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from plaid_items
         where sync_status = 'sync_needed' and lifecycle <> 'removed' and id > $1
         order by id limit $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// `plaid_items.id` of a Plaid item id (any user; for operators).
pub async fn id_of(conn: &mut PgConnection, item_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(item_id)
        .fetch_optional(conn)
        .await
}

//! `accounts` (with their Plaid mapping, when they have one).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// An account as the user API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountView {
    /// Internal id.
    pub id: i64,
    /// `plaid`, `web3`, `cex`, ...
    pub provider: String,
    /// Display name.
    pub name: String,
    /// Last digits, when known.
    pub mask: Option<String>,
    /// Plaid account type.
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Plaid account subtype.
    pub subtype: Option<String>,
    /// Sync status (Plaid accounts).
    pub sync_status: Option<String>,
    /// Last successful sync.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Balances as last reported.
    pub balances: Option<serde_json::Value>,
    /// Archived (unlinked) accounts keep their transactions.
    pub archived: bool,
    /// Plaid's item id, for linked Plaid accounts.
    pub item_id: Option<String>,
    /// Whether the Plaid mapping is active.
    pub linked: Option<bool>,
}

/// A user's accounts, oldest first.
pub async fn list_for_user(conn: &mut PgConnection, user_id: i64) -> Result<Vec<AccountView>, sqlx::Error> {
    sqlx::query_as(
        "select a.id, a.provider, a.name, a.mask, a.type, a.subtype, a.sync_status, a.last_synced_at,
                a.balances, a.archived, pi.item_id, pia.active as linked
         from accounts a
         left join plaid_item_accounts pia on pia.account_id = a.id
         left join plaid_items pi on pi.id = pia.plaid_item_id
         where a.user_id = $1
         order by a.id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// The provider of one of the user's accounts (`None`: absent or not theirs).
pub async fn provider_of(
    conn: &mut PgConnection,
    user_id: i64,
    account_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select provider from accounts where id = $1 and user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

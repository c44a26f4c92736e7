//! `GET /api/accounts`: the caller's accounts with their sync status.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use workflows::db::accounts;

use super::{auth::AuthUser, error::AppResult};
use crate::state::AppState;

/// One account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountJson {
    /// Internal id.
    pub id: i64,
    /// `plaid`, `web3`, `cex`, ...
    pub provider: String,
    /// Display name.
    pub name: String,
    /// Last digits.
    pub mask: Option<String>,
    /// Plaid account type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Plaid account subtype.
    pub subtype: Option<String>,
    /// `sync_needed`, `syncing`, `active`, `needs_reauth` or `failed` (Plaid accounts).
    pub sync_status: Option<String>,
    /// Last successful sync.
    pub last_synced_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Balances as Plaid last reported them.
    #[schema(value_type = Option<Object>)]
    pub balances: Option<serde_json::Value>,
    /// Unlinked accounts are archived; their transactions are kept.
    pub archived: bool,
    /// Plaid's item id.
    pub item_id: Option<String>,
    /// Whether the Plaid link of this account is active.
    pub linked: Option<bool>,
}

/// The list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    /// Accounts, oldest first.
    pub accounts: Vec<AccountJson>,
}

/// The caller's accounts.
#[utoipa::path(get, path = "/api/accounts", tag = "accounts", security(("api_token" = [])),
    responses(
        (status = 200, description = "The caller's accounts", body = AccountList),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, AuthUser(user): AuthUser) -> AppResult<Json<AccountList>> {
    let mut conn = state.pool.acquire().await?;
    let rows = accounts::list_for_user(&mut conn, user.id).await?;
    let accounts = rows
        .into_iter()
        .map(|a| AccountJson {
            id: a.id,
            provider: a.provider,
            name: a.name,
            mask: a.mask,
            kind: a.kind,
            subtype: a.subtype,
            sync_status: a.sync_status,
            last_synced_at: a.last_synced_at,
            balances: a.balances,
            archived: a.archived,
            item_id: a.item_id,
            linked: a.linked,
        })
        .collect();
    Ok(Json(AccountList { accounts }))
}

//! `GET /api/accounts`: the caller's accounts with their sync status.
//! `DELETE /api/accounts/{id}`: unlink one account
//! ([`workflows::lifecycle::unlink`] has the rules).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Serialize;
use utoipa::ToSchema;
use workflows::{
    db::accounts,
    lifecycle::{
        removal::RemovalError,
        unlink::{self, Unlink},
    },
};

use super::{
    auth::AuthUser,
    error::{AppError, AppResult},
};
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

/// Unlinks one of the caller's Plaid accounts: its link is deactivated and the
/// account archived (its transactions are kept); sibling accounts of the same
/// item keep syncing. When it was the item's last active mapped account, the
/// item is removed at Plaid (durably, in the background) so it stops being
/// billed. Deleting an account that is already unlinked answers 204 again.
#[utoipa::path(delete, path = "/api/accounts/{id}", tag = "accounts", security(("api_token" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 204, description = "Unlinked (or already unlinked)"),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody),
        (status = 404, description = "Not the caller's linked Plaid account", body = super::error::ErrorBody)))]
pub async fn unlink(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    // An id that is not a number names no account: 404 like any other.
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("account"))?;
    let outcome = unlink::unlink_account(&state.pool, user.id, id)
        .await
        .map_err(|e| match e {
            RemovalError::Database(e) => AppError::from(e),
            other => AppError::Internal(other.into()),
        })?;
    match outcome {
        Unlink::NotFound => Err(AppError::NotFound("account")),
        Unlink::AlreadyUnlinked | Unlink::Unlinked { .. } => Ok(StatusCode::NO_CONTENT),
    }
}

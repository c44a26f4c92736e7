//! Manual Plaid sync endpoints, deliberately disabled: sync is webhook-driven.
//!
//! `POST /api/accounts/{id}/sync` and `/refresh-metadata` answer 410
//! `plaid_manual_sync_disabled` for the caller's Plaid accounts. Other
//! providers are not handled by this service (404), and another user's
//! account is a 404 like any absent one.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use workflows::db::accounts;

use super::{
    auth::AuthUser,
    error::{AppError, AppResult},
};
use crate::state::AppState;

const MESSAGE: &str = "manual Plaid syncs are disabled: accounts sync automatically when Plaid's webhooks \
    arrive (POST /webhook/plaid); operators can force a sync with POST /api/jobs/plaid/process \
    {\"item_id\": ...} or `plaid-sync enqueue sync --item ITEM_ID`";

async fn refuse(state: &AppState, user_id: i64, account_id: &str) -> AppResult<StatusCode> {
    // An id that is not a number names no account: 404 like any other (as DELETE does).
    let account_id: i64 = account_id.parse().map_err(|_| AppError::NotFound("account"))?;
    let mut conn = state.pool.acquire().await?;
    match accounts::provider_of(&mut conn, user_id, account_id)
        .await?
        .as_deref()
    {
        Some("plaid") => Err(AppError::status(
            StatusCode::GONE,
            "plaid_manual_sync_disabled",
            MESSAGE,
        )),
        _ => Err(AppError::NotFound("account")),
    }
}

/// Disabled: Plaid accounts sync by webhook.
#[utoipa::path(post, path = "/api/accounts/{id}/sync", tag = "accounts", security(("api_token" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 410, description = "plaid_manual_sync_disabled", body = super::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody),
        (status = 404, description = "Not the caller's account, or not a Plaid account", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody)))]
pub async fn sync(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    refuse(&state, user.id, &id).await
}

/// Disabled: Plaid account metadata refreshes with each sync.
#[utoipa::path(post, path = "/api/accounts/{id}/refresh-metadata", tag = "accounts", security(("api_token" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 410, description = "plaid_manual_sync_disabled", body = super::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody),
        (status = 404, description = "Not the caller's account, or not a Plaid account", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody)))]
pub async fn refresh_metadata(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    refuse(&state, user.id, &id).await
}

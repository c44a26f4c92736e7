//! `/healthz` (the process is up) and `/readyz` (database reachable, migrations applied).

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{AppError, AppResult};
use crate::state::AppState;

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database is reachable and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable or migrations pending", body = super::error::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> AppResult<Json<Health>> {
    if !workflows::db::migrate::migrations_applied(&state.pool).await? {
        return Err(AppError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations_pending",
            "migrations are not applied; run `plaid-sync migrate`",
        ));
    }
    Ok(Json(Health { status: "ok" }))
}

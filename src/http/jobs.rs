//! The jobs API (`Authorization: Bearer $JOBS_SECRET`): what cron, a deploy
//! hook or an operator calls to enqueue work. Answers 202 with the count.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::ops::{self, OpsError};

use super::{
    error::{AppError, AppResult},
    json_body,
};
use crate::state::AppState;

/// Body of `POST /api/jobs/plaid/process`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProcessRequest {
    /// Only this item (Plaid's item id); otherwise every `sync_needed` item.
    pub item_id: Option<String>,
}

/// How many jobs were enqueued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    /// Jobs enqueued (items that already had a pending job are not counted).
    pub enqueued: u64,
}

fn ops_error(e: OpsError) -> AppError {
    match e {
        OpsError::UnknownItem(_) => AppError::NotFound("item"),
        OpsError::Database(e) => AppError::from(e),
        OpsError::Enqueue(e) => AppError::Internal(e.into()),
        OpsError::Removal(e) => AppError::Internal(e.into()),
    }
}

/// Enqueues syncs of all `sync_needed` items, or of one item.
#[utoipa::path(post, path = "/api/jobs/plaid/process", tag = "jobs", security(("jobs_secret" = [])),
    request_body(content = ProcessRequest, description = "Optional item_id"),
    responses(
        (status = 202, description = "Jobs enqueued", body = Enqueued),
        (status = 400, description = "Malformed body", body = super::error::ErrorBody),
        (status = 401, description = "Missing or wrong JOBS_SECRET", body = super::error::ErrorBody),
        (status = 404, description = "No such item", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody),
        (status = 503, description = "JOBS_SECRET is not configured", body = super::error::ErrorBody)))]
pub async fn process(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Enqueued>)> {
    let request: ProcessRequest = match body {
        // No body (or no JSON content type) means "all items".
        Err(JsonRejection::MissingJsonContentType(_)) => ProcessRequest::default(),
        other => json_body::required(other)?,
    };
    let enqueued = match request.item_id {
        Some(item_id) => ops::sync_item(&state.pool, &item_id).await,
        None => ops::process_sync_needed(&state.pool, |_, _| {}).await,
    }
    .map_err(ops_error)?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { enqueued })))
}

/// Runs the safety net now: syncs stale, stuck and due-for-retry items.
#[utoipa::path(post, path = "/api/jobs/plaid/safety-net", tag = "jobs", security(("jobs_secret" = [])),
    responses(
        (status = 202, description = "Sync jobs enqueued", body = Enqueued),
        (status = 401, description = "Missing or wrong JOBS_SECRET", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody),
        (status = 503, description = "JOBS_SECRET is not configured", body = super::error::ErrorBody)))]
pub async fn safety_net(State(state): State<AppState>) -> AppResult<(StatusCode, Json<Enqueued>)> {
    let enqueued = ops::safety_net(&state.pool, state.config.safety_net_stale_after)
        .await
        .map_err(ops_error)?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { enqueued })))
}

/// Runs dormant-item cleanup now: starts the removal workflow (notification,
/// grace window) of every dormant item, retries failed removals and resumes
/// stuck ones. `enqueued` counts the jobs that started.
#[utoipa::path(post, path = "/api/jobs/plaid/cleanup", tag = "jobs", security(("jobs_secret" = [])),
    responses(
        (status = 202, description = "Cleanup jobs enqueued (grace timers and removal attempts)", body = Enqueued),
        (status = 401, description = "Missing or wrong JOBS_SECRET", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody),
        (status = 503, description = "JOBS_SECRET is not configured", body = super::error::ErrorBody)))]
pub async fn cleanup(State(state): State<AppState>) -> AppResult<(StatusCode, Json<Enqueued>)> {
    let enqueued = ops::cleanup(&state.pool, &state.config.cleanup_settings())
        .await
        .map_err(ops_error)?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { enqueued })))
}

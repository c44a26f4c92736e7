//! Operator repair action on items: `POST /api/admin/items/{item_id}/sync`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Serialize;
use workflows::{
    jobs::sync_item::SyncRequest,
    ops::{self, OpsError},
};

use super::error::{AppError, AppResult};
use crate::state::AppState;

/// Answer of [`sync_now`].
#[derive(Debug, Serialize)]
pub struct SyncQueued {
    /// Plaid's item id.
    pub item_id: String,
    /// `enqueued` (a new job) or `already_queued` (a job that had not started
    /// covers it; it was moved to run now unless it is a backoff retry).
    pub result: &'static str,
    /// The item's sync job that has not started yet.
    pub job_id: Option<String>,
}

/// Marks the item (by Plaid item id) for sync and makes sure a job will run
/// it now: 202, 404 for an unknown or removed item, 409 for an item waiting
/// for its user to re-authenticate (a sync cannot succeed before that).
pub async fn sync_now(
    State(state): State<AppState>,
    Path(item_id): Path<String>,
) -> AppResult<(StatusCode, Json<SyncQueued>)> {
    let (request, job_id) = ops::sync_item_now(&state.pool, &item_id)
        .await
        .map_err(|e| match e {
            OpsError::UnknownItem(_) => AppError::NotFound("item"),
            OpsError::Database(e) => AppError::from(e),
            other => AppError::Internal(other.into()),
        })?;
    let result = match request {
        SyncRequest::Enqueued { .. } => "enqueued",
        SyncRequest::AlreadyQueued { .. } => "already_queued",
        SyncRequest::AwaitingReauth { .. } | SyncRequest::UnknownItem => {
            return Err(AppError::status(
                StatusCode::CONFLICT,
                "awaiting_reauth",
                "the item needs its user to re-authenticate (Link update mode) before it can sync",
            ));
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncQueued {
            item_id,
            result,
            job_id,
        }),
    ))
}

//! Operator read routes: `GET /api/admin/status` (the monitoring checklist),
//! `GET /api/admin/dashboard/series` (the rollup, for the charts) and
//! `GET /api/admin/attention` (items needing attention).

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use workflows::monitoring::{
    attention::{self, AttentionItem},
    rollup::{self, Series},
    status::{self, Checklist},
};

use super::error::{AppError, AppResult};
use crate::state::AppState;

/// The monitoring checklist, computed from the database now.
pub async fn status(State(state): State<AppState>) -> AppResult<Json<Checklist>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        status::checklist(&mut conn, state.config.safety_net_stale_after).await?,
    ))
}

/// Query of [`series`].
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    /// Hours back (1 to 168; default 24).
    pub hours: Option<i64>,
    /// Minutes per bucket (1 to 60; default 5).
    pub step: Option<i64>,
}

/// A query string that does not parse: the contract's JSON 400, not axum's plain text.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> AppResult<T> {
    query
        .map(|Query(q)| q)
        .map_err(|e| AppError::status(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

/// The rollup of the last `hours`, in buckets of `step` minutes.
pub async fn series(
    State(state): State<AppState>,
    q: Result<Query<SeriesQuery>, QueryRejection>,
) -> AppResult<Json<Series>> {
    let q = query(q)?;
    let hours = q.hours.unwrap_or(24).clamp(1, 168);
    let step = q.step.unwrap_or(5).clamp(1, 60);
    let mut conn = state.pool.acquire().await?;
    Ok(Json(rollup::series(&mut conn, hours * 60, step).await?))
}

/// Query of [`attention`].
#[derive(Debug, Deserialize)]
pub struct AttentionQuery {
    /// Items per reason (1 to 500; default 50).
    pub limit: Option<i64>,
}

/// Answer of [`attention`].
#[derive(Debug, Serialize)]
pub struct Attention {
    /// Failed, then waiting for reauth, then pending cleanup; oldest first.
    pub items: Vec<AttentionItem>,
    /// Items per reason at most (the status has the totals).
    pub limit: i64,
}

/// Items needing attention.
pub async fn attention(
    State(state): State<AppState>,
    q: Result<Query<AttentionQuery>, QueryRejection>,
) -> AppResult<Json<Attention>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let mut conn = state.pool.acquire().await?;
    Ok(Json(Attention {
        items: attention::list(&mut conn, limit).await?,
        limit,
    }))
}

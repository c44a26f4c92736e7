//! `GET /metrics`: Prometheus text. The process's counters and histograms
//! (webhooks, syncs, transactions, Plaid calls), then gauges of database state
//! computed now (items, sync lag, queues, failed and killed jobs).

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use workflows::{jobs::runtime::QUEUES, monitoring::gauges};

use super::error::AppResult;
use crate::state::AppState;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric.
pub async fn metrics(State(state): State<AppState>) -> AppResult<Response> {
    let handle = crate::metrics::prometheus();
    crate::metrics::collect_process();
    handle.run_upkeep();
    let mut body = handle.render();
    let mut conn = state.pool.acquire().await?;
    body.push_str(&gauges::render(&mut conn, QUEUES).await?);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

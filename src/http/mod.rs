//! The HTTP edge: two listeners.
//!
//! - public ([`public_router`]): webhook, user API, jobs API, health, OpenAPI;
//! - operator ([`admin_router`]): everything behind `ADMIN_TOKEN`.

pub mod accounts;
pub mod admin_items;
pub mod admin_jobs;
pub mod admin_metrics;
pub mod admin_status;
pub mod auth;
pub mod board;
pub mod body_limit;
pub mod dashboard;
pub mod disabled;
pub mod error;
pub mod health;
pub mod jobs;
pub mod json_body;
pub mod openapi;
pub mod plaid;
pub mod request_log;
pub mod same_origin;
pub mod text_guard;
pub mod transactions;
pub mod webhooks;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{any, delete, get, post},
};

use crate::state::AppState;

/// Routes of the public listener.
pub fn public_router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::openapi_json))
        .route(
            "/webhook/plaid",
            post(webhooks::receive::receive).layer(DefaultBodyLimit::max(webhooks::receive::MAX_BODY)),
        )
        .merge(api_router(state.clone()))
        .with_state(state);
    request_log::layer(router)
}

/// The user and jobs APIs, with their body limit ([`body_limit`]).
fn api_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/plaid/link-token", post(plaid::link_token))
        .route("/api/plaid/exchange-token", post(plaid::exchange_token))
        .route("/api/plaid/items", get(plaid::list_items))
        .route("/api/accounts", get(accounts::list))
        .route("/api/accounts/{id}", delete(accounts::unlink))
        .route("/api/accounts/{id}/transactions", get(transactions::list))
        .route("/api/accounts/{id}/sync", post(disabled::sync))
        .route(
            "/api/accounts/{id}/refresh-metadata",
            post(disabled::refresh_metadata),
        )
        .merge(jobs_router(state))
        // route_layer: an unknown path stays a plain 404 (see `jobs_router`).
        .route_layer(middleware::from_fn(body_limit::refuse_oversized))
        .route_layer(middleware::from_fn(text_guard::refuse_nul_in_uri))
        .route_layer(DefaultBodyLimit::max(body_limit::API_MAX_BODY))
}

/// `/api/jobs/*`, behind `JOBS_SECRET`.
fn jobs_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/jobs/plaid/process", post(jobs::process))
        .route("/api/jobs/plaid/safety-net", post(jobs::safety_net))
        .route("/api/jobs/plaid/cleanup", post(jobs::cleanup))
        // route_layer, not layer: a layer also wraps the fallback, and merged into the
        // public router that made every unknown path a 401 asking for JOBS_SECRET.
        .route_layer(middleware::from_fn_with_state(state, auth::require_jobs_secret))
}

/// Routes of the operator listener, all behind `ADMIN_TOKEN`: ours first,
/// then the apalis board (API at `/api/v1`, its UI for every other path).
pub fn admin_router(state: AppState) -> Router {
    let board = board::router(&state.pool);
    let router = Router::new()
        .route("/metrics", get(admin_metrics::metrics))
        .route("/dashboard", get(dashboard::index))
        .route("/dashboard/", get(dashboard::index))
        .route("/dashboard/{file}", get(dashboard::asset))
        .route("/api/admin/status", get(admin_status::status))
        .route("/api/admin/dashboard/series", get(admin_status::series))
        .route("/api/admin/attention", get(admin_status::attention))
        .merge(admin_actions())
        // Not the board UI's index.html: a JSON 404.
        .route("/api/admin/{*rest}", any(admin_not_found))
        .with_state(state.clone())
        .merge(board)
        .layer(middleware::from_fn(body_limit::refuse_oversized))
        .layer(middleware::from_fn(text_guard::refuse_nul_in_uri))
        .layer(DefaultBodyLimit::max(body_limit::API_MAX_BODY))
        .layer(middleware::from_fn(same_origin::refuse_cross_site))
        .layer(middleware::from_fn_with_state(state, auth::require_admin));
    request_log::layer(router)
}

/// The operator's state-changing routes: JSON only ([`same_origin`]).
fn admin_actions() -> Router<AppState> {
    Router::new()
        .route("/api/admin/items/{item_id}/sync", post(admin_items::sync_now))
        .route("/api/admin/jobs/{job_id}/retry", post(admin_jobs::retry))
        .route("/api/admin/jobs/{job_id}/kill", post(admin_jobs::kill))
        .route_layer(middleware::from_fn(same_origin::require_json))
}

async fn admin_not_found() -> error::AppError {
    error::AppError::NotFound("route")
}

//! The HTTP edge: two listeners.
//!
//! - public ([`public_router`]): webhook, user API, jobs API, health, OpenAPI;
//! - operator ([`admin_router`]): everything behind `ADMIN_TOKEN`.

pub mod accounts;
pub mod admin_jobs;
pub mod auth;
pub mod disabled;
pub mod error;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod plaid;
pub mod webhooks;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{delete, get, post},
};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Routes of the public listener.
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::openapi_json))
        .route(
            "/webhook/plaid",
            post(webhooks::receive::receive).layer(DefaultBodyLimit::max(webhooks::receive::MAX_BODY)),
        )
        .route("/api/plaid/link-token", post(plaid::link_token))
        .route("/api/plaid/exchange-token", post(plaid::exchange_token))
        .route("/api/plaid/items", get(plaid::list_items))
        .route("/api/accounts", get(accounts::list))
        .route("/api/accounts/{id}", delete(accounts::unlink))
        .route("/api/accounts/{id}/sync", post(disabled::sync))
        .route(
            "/api/accounts/{id}/refresh-metadata",
            post(disabled::refresh_metadata),
        )
        .merge(jobs_router(state.clone()))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/api/jobs/*`, behind `JOBS_SECRET`.
fn jobs_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/jobs/plaid/process", post(jobs::process))
        .route("/api/jobs/plaid/safety-net", post(jobs::safety_net))
        .route("/api/jobs/plaid/cleanup", post(jobs::cleanup))
        .layer(middleware::from_fn_with_state(state, auth::require_jobs_secret))
}

/// Routes of the operator listener, all behind `ADMIN_TOKEN`.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/api/admin/jobs/{job_id}/retry", post(admin_jobs::retry))
        .route("/api/admin/jobs/{job_id}/kill", post(admin_jobs::kill))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_admin))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

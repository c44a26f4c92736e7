//! The handler of `POST /webhook/plaid`.

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use serde::Serialize;
use utoipa::ToSchema;
use workflows::metrics;

use super::verify::{self, Rejection};
use crate::{
    http::error::{AppError, AppResult},
    state::AppState,
};

/// Largest body accepted (contract: 256 KiB; Plaid's bodies are a few hundred bytes).
pub const MAX_BODY: usize = 256 * 1024;

/// Answer to Plaid.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// `accepted` for a new event, `duplicate` for one already stored.
    pub status: &'static str,
}

/// Receives a Plaid webhook: verify the raw bytes, parse, store and act in
/// one transaction, then answer. Nothing is stored for a rejected request.
#[utoipa::path(post, path = "/webhook/plaid", tag = "webhooks",
    request_body(content = String, content_type = "application/json",
        description = "The raw webhook body as Plaid sends it"),
    params(
        ("Plaid-Verification" = Option<String>, Header, description = "Plaid's ES256 JWT"),
        ("X-Webhook-Signature" = Option<String>, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>"),
    ),
    responses(
        (status = 200, description = "Stored (or a duplicate of a stored event)", body = Accepted),
        (status = 400, description = "Verified but not a JSON object (`invalid_json`), or text with a NUL character, which PostgreSQL cannot store (`invalid_text`)", body = crate::http::error::ErrorBody),
        (status = 401, description = "Bad, missing or stale signature; nothing stored", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = crate::http::error::ErrorBody),
        (status = 503, description = "Database unavailable; nothing stored (Plaid retries)", body = crate::http::error::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> AppResult<Json<Accepted>> {
    let started = std::time::Instant::now();
    let result = handle(&state, &headers, body).await;
    match &result {
        Ok(Json(answer)) => metrics::webhook_stored(answer.status == "duplicate", started.elapsed()),
        Err((_, reason)) => metrics::webhook_rejected(reason, started.elapsed()),
    }
    result.map_err(|(error, _)| error)
}

/// The reason label of a refusal that is not a signature rejection: its error code.
fn refused(error: AppError) -> (AppError, &'static str) {
    let reason = match &error {
        AppError::Status { code, .. } => code,
        AppError::DatabaseUnavailable(_) => "database_unavailable",
        _ => "internal_error",
    };
    (error, reason)
}

/// [`receive`], answering a refusal with its metrics reason.
async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, (AppError, &'static str)> {
    let body = body.map_err(|e| {
        refused(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "webhook bodies are limited to 256 KiB",
            )
        } else {
            AppError::status(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            )
        })
    })?;

    if let Err(rejection) = verify::verify(state, &state.webhook_keys, headers, &body).await {
        tracing::warn!(reason = rejection.reason(), "webhook rejected");
        return Err((rejection_error(rejection), rejection.reason()));
    }

    let parsed: serde_json::Value = serde_json::from_slice(&body)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| {
            refused(AppError::status(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the webhook body is not a JSON object",
            ))
        })?;

    // Verified, but PostgreSQL's jsonb cannot hold a NUL character: refuse it
    // here, clearly, rather than fail the database batch it would join.
    if crate::http::text_guard::has_nul(&parsed) {
        return Err(refused(crate::http::text_guard::nul_refused("webhook body")));
    }
    let webhook_type = parsed
        .get("webhook_type")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let webhook_code = parsed
        .get("webhook_code")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let answer: AppResult<Json<Accepted>> = match state.ingest.ingest(parsed).await {
        Ok(done) => {
            tracing::info!(
                event_id = done.event_id,
                duplicate = done.duplicate,
                webhook_type,
                webhook_code,
                sync = ?done.sync,
                "webhook stored"
            );
            Ok(Json(Accepted {
                status: if done.duplicate { "duplicate" } else { "accepted" },
            }))
        }
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "database unavailable while ingesting a webhook");
            Err(AppError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; retry later",
            ))
        }
        Err(e) => Err(AppError::Internal(e.into())),
    };
    answer.map_err(refused)
}

fn rejection_error(rejection: Rejection) -> AppError {
    match rejection {
        Rejection::KeyUnavailable => AppError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "verification_unavailable",
            "the webhook verification key could not be fetched now; retry later",
        ),
        other => AppError::status(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            format!("webhook signature rejected: {}", other.reason()),
        ),
    }
}

//! JSON request bodies of the API routes, refused with the contract's error body.
//!
//! axum's own rejections are plain text with statuses of their choosing (415,
//! 422, 413); the contract says every error is `{"error", "message"}`. Handlers
//! extract `Json<Value>` (so axum still checks the content type and the syntax)
//! and pass the result here, which refuses text PostgreSQL cannot store
//! ([`super::text_guard`]) and then deserializes the route's type.

use axum::{Json, extract::rejection::JsonRejection, http::StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    body_limit::{API_MAX_BODY, too_large},
    error::{AppError, AppResult},
    text_guard,
};

/// The body a route requires: any rejection is a JSON 4xx (413 over the size limit,
/// 400 `invalid_body` otherwise, with serde's description of what is wrong).
pub fn required<T: DeserializeOwned>(body: Result<Json<Value>, JsonRejection>) -> AppResult<T> {
    body.map_err(refusal).and_then(|Json(value)| typed(value))
}

/// A body a route may go without (`Result<Option<Json<_>>, _>` is axum's: no
/// `Content-Type` at all is `None`): absent is `T::default()`; present, it must be valid.
pub fn optional<T: DeserializeOwned + Default>(
    body: Result<Option<Json<Value>>, JsonRejection>,
) -> AppResult<T> {
    match body.map_err(refusal)? {
        Some(Json(value)) => typed(value),
        None => Ok(T::default()),
    }
}

fn typed<T: DeserializeOwned>(value: Value) -> AppResult<T> {
    if text_guard::has_nul(&value) {
        return Err(text_guard::nul_refused("body"));
    }
    serde_json::from_value(value).map_err(|e| {
        AppError::status(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        )
    })
}

fn refusal(rejection: JsonRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(API_MAX_BODY);
    }
    AppError::status(StatusCode::BAD_REQUEST, "invalid_body", rejection.body_text())
}

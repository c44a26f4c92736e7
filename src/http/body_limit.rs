//! Request body size on the API routes of both listeners (the webhook has its own
//! 256 KiB limit, in `webhooks::receive`).
//!
//! Two parts, because either alone leaves a gap: [`refuse_oversized`] answers a
//! declared `Content-Length` over [`API_MAX_BODY`] with the contract's JSON 413
//! before any handler runs (so a route that never reads its body cannot act on
//! an oversized request), and `DefaultBodyLimit::max(API_MAX_BODY)` stops a
//! chunked body at the same size inside the JSON extractor, whose rejection
//! [`super::json_body`] turns into the same 413.

use axum::{
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::AppError;

/// Largest API request body: our bodies are a few dozen bytes of JSON.
pub const API_MAX_BODY: usize = 64 * 1024;

/// The 413 every listener answers for a body over its limit.
pub fn too_large(limit: usize) -> AppError {
    AppError::status(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request bodies are limited to {} KiB", limit / 1024),
    )
}

/// Middleware: 413 for a declared body over [`API_MAX_BODY`].
pub async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > API_MAX_BODY as u64) {
        return too_large(API_MAX_BODY).into_response();
    }
    next.run(request).await
}

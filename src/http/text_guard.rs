//! PostgreSQL `text` cannot hold NUL (U+0000): a statement with such a bound
//! parameter fails (SQLSTATE 22021), which would surface as a 500. Client input
//! carrying one is refused at the edge with a 400 instead, before any query.
//! In a URI a NUL can only arrive percent-encoded; in JSON only as `\u0000`.

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::error::AppError;

/// The 400 for text containing NUL.
pub fn nul_refused(where_: &str) -> AppError {
    AppError::status(
        StatusCode::BAD_REQUEST,
        "invalid_text",
        format!("the {where_} contains a NUL character, which no field accepts"),
    )
}

/// Whether any string (or object key) in `value` contains NUL. Recursion is
/// bounded: serde_json refuses documents nested deeper than 128.
pub fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Middleware: 400 for a path or query string carrying `%00`.
pub async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let encoded_nul = |s: &str| s.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
    if encoded_nul(uri.path()) || uri.query().is_some_and(encoded_nul) {
        return nul_refused("request URI").into_response();
    }
    next.run(request).await
}

//! Authentication at the edge.
//!
//! - [`AuthUser`]: an extractor for user routes (`Authorization: Bearer <API token>`).
//! - [`require_admin`]: the operator listener's `ADMIN_TOKEN` (bearer, or basic
//!   auth with the token as password so a browser can log in).
//! - [`require_jobs_secret`]: `JOBS_SECRET` for `/api/jobs/*`.
//!
//! Shared secrets are compared in constant time ([`workflows::auth::secret_matches`]).
//! An unset secret disables its routes with 503 rather than leaving them open.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    middleware::Next,
    response::Response,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use workflows::{auth, db::users::User, redact::Secret};

use super::error::AppError;
use crate::state::AppState;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser(pub User);

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    decoded.split_once(':').map(|(_, password)| password.to_owned())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(AppError::Unauthorized {
            message: "send your API token as Authorization: Bearer <token>",
            basic_realm: false,
        })?;
        let mut conn = state.pool.acquire().await?;
        match auth::authenticate(&mut conn, token).await? {
            Some(user) => Ok(AuthUser(user)),
            None => Err(AppError::Unauthorized {
                message: "invalid or revoked API token",
                basic_realm: false,
            }),
        }
    }
}

fn disabled(what: &'static str, variable: &str) -> AppError {
    AppError::status(
        StatusCode::SERVICE_UNAVAILABLE,
        what,
        format!("this listener is disabled until {variable} is configured"),
    )
}

/// Middleware of the operator listener: `ADMIN_TOKEN` as bearer or basic-auth password.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let expected: &Secret = state
        .config
        .admin_token
        .as_ref()
        .ok_or_else(|| disabled("admin_disabled", "ADMIN_TOKEN"))?;
    let presented = bearer(request.headers())
        .map(str::to_owned)
        .or_else(|| basic_password(request.headers()));
    match presented {
        Some(p) if auth::secret_matches(&p, expected) => Ok(next.run(request).await),
        _ => Err(AppError::Unauthorized {
            message: "operator routes need ADMIN_TOKEN (bearer, or basic auth password)",
            basic_realm: true,
        }),
    }
}

/// Middleware of `/api/jobs/*`: `JOBS_SECRET` as bearer.
pub async fn require_jobs_secret(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let expected = state
        .config
        .jobs_secret
        .as_ref()
        .ok_or_else(|| disabled("jobs_disabled", "JOBS_SECRET"))?;
    match bearer(request.headers()) {
        Some(p) if auth::secret_matches(p, expected) => Ok(next.run(request).await),
        _ => Err(AppError::Unauthorized {
            message: "jobs routes need Authorization: Bearer <JOBS_SECRET>",
            basic_realm: false,
        }),
    }
}

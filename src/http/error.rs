//! The one error type of the HTTP edge.
//!
//! Every error answers JSON `{"error": "<snake_case_code>", "message": "..."}`.
//! Internal errors are logged with their cause and answered with a generic
//! message: causes can carry SQL, hosts or other detail users need not see.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The error body of every non-2xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable snake_case code to branch on.
    pub error: String,
    /// A sentence for humans.
    pub message: String,
}

/// Errors a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401: missing or wrong credentials. `basic_realm` asks a browser to log in.
    #[error("{message}")]
    Unauthorized {
        /// Human message.
        message: &'static str,
        /// Whether to send `WWW-Authenticate: Basic`.
        basic_realm: bool,
    },
    /// 404: absent, or not the caller's (never tell the two apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Any status with a code and message chosen by the handler.
    #[error("{message}")]
    Status {
        /// HTTP status.
        status: StatusCode,
        /// snake_case code.
        code: &'static str,
        /// Human message.
        message: String,
    },
    /// 503: the database cannot be reached.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(#[source] sqlx::Error),
    /// 500: a bug or an unexpected failure (logged, not shown).
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// Shorthand for [`AppError::Status`].
    pub fn status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Status {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::DatabaseUnavailable(e)
        } else {
            Self::Internal(e.into())
        }
    }
}

pub use workflows::db::is_unavailable;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            AppError::Unauthorized { message, .. } => {
                (StatusCode::UNAUTHORIZED, "unauthorized", (*message).to_owned())
            }
            AppError::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", format!("{what} not found")),
            AppError::Status {
                status,
                code,
                message,
            } => (*status, *code, message.clone()),
            AppError::DatabaseUnavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable; retry later".to_owned(),
                )
            }
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred".to_owned(),
                )
            }
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                message,
            }),
        )
            .into_response();
        if let AppError::Unauthorized {
            basic_realm: true, ..
        } = self
        {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"plaid-sync operator\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// Result alias for handlers.
pub type AppResult<T> = Result<T, AppError>;

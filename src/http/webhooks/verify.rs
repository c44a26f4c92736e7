//! Which scheme applies, and why a webhook was rejected.

use axum::http::HeaderMap;

use super::{hmac_sig, jwt, keys::KeyCache};
use crate::state::AppState;

/// How far a signature's time may be from ours, either way (contract: 300 s).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was not accepted. Every rejection stores nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Neither a `Plaid-Verification` nor a usable `X-Webhook-Signature` header.
    MissingSignature,
    /// A header that does not parse.
    Malformed,
    /// A JWT whose `alg` is not ES256 (e.g. `none`, `HS256`).
    BadAlgorithm,
    /// Plaid does not know the `kid`.
    UnknownKey,
    /// The key has an `expired_at`.
    ExpiredKey,
    /// Signature does not verify.
    BadSignature,
    /// `iat` / `t` too far from now.
    Stale,
    /// The body's SHA-256 differs from the signed one.
    BodyMismatch,
    /// The key could not be fetched now (Plaid unreachable, fetch budget spent): retryable.
    KeyUnavailable,
}

impl Rejection {
    /// A stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::MissingSignature => "missing_signature",
            Rejection::Malformed => "malformed_signature",
            Rejection::BadAlgorithm => "bad_algorithm",
            Rejection::UnknownKey => "unknown_key",
            Rejection::ExpiredKey => "expired_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale_signature",
            Rejection::BodyMismatch => "body_mismatch",
            Rejection::KeyUnavailable => "key_unavailable",
        }
    }
}

/// Verifies a webhook: accepted when either scheme holds (Plaid's JWT, or our
/// HMAC when `PLAID_WEBHOOK_SECRET` is set). When both headers are present and
/// both fail, the JWT's reason is reported.
pub async fn verify(
    state: &AppState,
    keys: &KeyCache,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Rejection> {
    let now = chrono::Utc::now().timestamp();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let hmac_result = match (header(hmac_sig::HEADER), &state.config.plaid_webhook_secret) {
        (Some(value), Some(secret)) => Some(hmac_sig::verify(
            value,
            body,
            secret.expose().as_bytes(),
            now,
            TOLERANCE_SECS,
        )),
        _ => None,
    };
    if let Some(Ok(())) = hmac_result {
        return Ok(());
    }
    match header(jwt::HEADER) {
        Some(token) => jwt::verify(token, body, keys, now, TOLERANCE_SECS).await,
        None => Err(hmac_result
            .and_then(Result::err)
            .unwrap_or(Rejection::MissingSignature)),
    }
}

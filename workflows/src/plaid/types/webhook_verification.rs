//! `/webhook_verification_key/get` (SPEC L11624, `JWKPublicKey`; PLAID.md §5).

use serde::{Deserialize, Serialize};

/// Body of `/webhook_verification_key/get`.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookVerificationKeyGetRequest {
    /// The `kid` from the `Plaid-Verification` JWT header.
    pub key_id: String,
}

/// Response of `/webhook_verification_key/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookVerificationKeyGetResponse {
    /// The public key.
    pub key: JwkPublicKey,
    /// Plaid's request id.
    pub request_id: String,
}

/// A P-256 public key as a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JwkPublicKey {
    /// `ES256`; reject anything else.
    pub alg: String,
    /// `P-256`.
    pub crv: String,
    /// Key id.
    pub kid: String,
    /// `EC`.
    pub kty: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// Base64url, big-endian x coordinate.
    pub x: String,
    /// Base64url, big-endian y coordinate.
    pub y: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; a key with an expiry must no longer be trusted.
    #[serde(default)]
    pub expired_at: Option<i64>,
}

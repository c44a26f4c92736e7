//! API tokens and shared-secret checks.
//!
//! A user's API token is 32 random bytes, base64url, prefixed `psk_` so it is
//! recognisable in a leaked-secret scan. Only its SHA-256 is stored.
//! Shared secrets (`ADMIN_TOKEN`, `JOBS_SECRET`) are compared in constant time
//! over their SHA-256 digests, which also hides the secret's length.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;

use crate::{
    db::users::{self, User},
    redact::Secret,
};

/// The prefix of every API token.
pub const TOKEN_PREFIX: &str = "psk_";

/// A freshly issued API token: shown to the user once, never stored.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token row's id (for revocation).
    pub id: i64,
    /// The token itself.
    pub token: Secret,
}

/// SHA-256 of a token, as stored in `api_tokens.token_sha256`.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Issues a new API token for a user and stores its digest.
pub async fn issue_token(conn: &mut PgConnection, user_id: i64) -> Result<IssuedToken, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let id = users::insert_api_token(conn, user_id, &token_digest(&token)).await?;
    Ok(IssuedToken {
        id,
        token: Secret::new(token),
    })
}

/// The user a presented token belongs to, if it is valid and not revoked.
pub async fn authenticate(conn: &mut PgConnection, presented: &str) -> Result<Option<User>, sqlx::Error> {
    if !presented.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    users::user_for_token_digest(conn, &token_digest(presented)).await
}

/// Compares a presented value with a configured secret in constant time.
pub fn secret_matches(presented: &str, expected: &Secret) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_matches_only_the_exact_value() {
        let expected = Secret::new("s3cret");
        assert!(secret_matches("s3cret", &expected));
        assert!(!secret_matches("s3cre", &expected));
        assert!(!secret_matches("s3cret ", &expected));
        assert!(!secret_matches("", &expected));
    }

    #[test]
    fn token_digest_is_sha256() {
        assert_eq!(
            hex::encode(token_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

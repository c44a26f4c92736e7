//! Plaid's scheme: `Plaid-Verification` is an ES256 JWT (PLAID.md §5).
//!
//! 1. decode the header unverified; reject any `alg` but ES256; take `kid`;
//! 2. get the key for `kid` (cached; see [`super::keys`]); reject expired keys;
//! 3. verify the signature;
//! 4. reject an `iat` more than the tolerance away from now;
//! 5. compare `request_body_sha256` with SHA-256 of the raw body in constant time.

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{keys::KeyCache, verify::Rejection};

/// The header name.
pub const HEADER: &str = "plaid-verification";

#[derive(Debug, Deserialize)]
struct Claims {
    iat: i64,
    request_body_sha256: String,
}

/// Verifies a `Plaid-Verification` token for `body` at unix time `now`.
pub async fn verify(
    token: &str,
    body: &[u8],
    keys: &KeyCache,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Rejection> {
    let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
    if header.alg != Algorithm::ES256 {
        return Err(Rejection::BadAlgorithm);
    }
    let kid = header.kid.ok_or(Rejection::Malformed)?;
    let key = keys.get(&kid).await?;

    let mut validation = Validation::new(Algorithm::ES256);
    // Plaid's token has only iat and the body hash: no exp, aud or iss.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = decode::<Claims>(token, &key, &validation)
        .map_err(|_| Rejection::BadSignature)?
        .claims;

    if (now - claims.iat).abs() > tolerance_secs {
        return Err(Rejection::Stale);
    }
    let actual = hex::encode(Sha256::digest(body));
    let claimed = claims.request_body_sha256.to_ascii_lowercase();
    if actual.as_bytes().ct_eq(claimed.as_bytes()).into() {
        Ok(())
    } else {
        Err(Rejection::BodyMismatch)
    }
}

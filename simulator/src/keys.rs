//! The ES256 keys webhooks are signed with, and their JWK form for
//! `/webhook_verification_key/get`.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jwt_ring::Es256KeyPair;
use serde::{Deserialize, Serialize};

use crate::ids::IdGen;

/// A verification key as Plaid serves it (`JWKPublicKey`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `ES256`.
    pub alg: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Always `P-256`.
    pub crv: String,
    /// Unix seconds when the key was rotated out; `null` while current.
    pub expired_at: Option<i64>,
    /// Key id, as in the JWT header.
    pub kid: String,
    /// Always `EC`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// Base64url big-endian x coordinate.
    pub x: String,
    /// Base64url big-endian y coordinate.
    pub y: String,
}

struct SigningKey {
    jwk: Jwk,
    encoding: EncodingKey,
}

/// All keys ever issued; the last one signs. Old keys stay servable (with `expired_at`) so a
/// verifier can look them up, as Plaid allows.
pub(crate) struct KeyStore {
    keys: Vec<SigningKey>,
}

/// Errors creating a key. Only possible if the system's random source fails.
#[derive(Debug, thiserror::Error)]
#[error("could not create a webhook signing key: {0}")]
pub struct KeyError(String);

impl KeyStore {
    pub(crate) fn new(ids: &mut IdGen, now: i64) -> Result<Self, KeyError> {
        // jsonwebtoken has no backend of its own here (see `jwt_ring`).
        jwt_ring::install();
        Ok(KeyStore {
            keys: vec![generate(ids, now)?],
        })
    }

    fn current(&self) -> &SigningKey {
        self.keys.last().expect("a key store always holds a key")
    }

    pub(crate) fn current_kid(&self) -> &str {
        &self.current().jwk.kid
    }

    /// Expires the current key and makes a new one current; returns the new kid.
    pub(crate) fn rotate(&mut self, ids: &mut IdGen, now: i64) -> Result<String, KeyError> {
        let fresh = generate(ids, now)?;
        if let Some(last) = self.keys.last_mut() {
            last.jwk.expired_at = Some(now);
        }
        let kid = fresh.jwk.kid.clone();
        self.keys.push(fresh);
        Ok(kid)
    }

    pub(crate) fn jwk(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().map(|k| &k.jwk).find(|j| j.kid == kid)
    }

    pub(crate) fn all(&self) -> Vec<Jwk> {
        self.keys.iter().map(|k| k.jwk.clone()).collect()
    }

    /// Signs `claims` as an ES256 JWT with header `{"alg":"ES256","kid":..,"typ":"JWT"}`.
    pub(crate) fn sign(&self, claims: &serde_json::Value) -> String {
        let key = self.current();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.jwk.kid.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .expect("ES256 signing with a freshly generated P-256 key cannot fail")
    }
}

fn generate(ids: &mut IdGen, now: i64) -> Result<SigningKey, KeyError> {
    let pair = Es256KeyPair::generate().map_err(|e| KeyError(e.to_string()))?;
    let encoding = pair.encoding_key();
    let (x, y) = pair.jwk_coordinates();
    let jwk = Jwk {
        alg: "ES256".to_owned(),
        created_at: now,
        crv: "P-256".to_owned(),
        expired_at: None,
        kid: ids.uuid().to_string(),
        kty: "EC".to_owned(),
        key_use: "sig".to_owned(),
        x,
        y,
    };
    Ok(SigningKey { jwk, encoding })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn signatures_verify_with_the_served_jwk_and_rotation_expires_the_old_key() {
        let mut ids = IdGen::new(Some(1));
        let mut store = KeyStore::new(&mut ids, 100).unwrap();
        let old = store.current_kid().to_owned();
        let token = store.sign(&serde_json::json!({"iat": 1, "request_body_sha256": "ab"}));
        let jwk = store.jwk(&old).unwrap();
        let key = DecodingKey::from_ec_components(&jwk.x, &jwk.y).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some(old.as_str()));

        let new = store.rotate(&mut ids, 200).unwrap();
        assert_ne!(new, old);
        assert_eq!(store.jwk(&old).unwrap().expired_at, Some(200));
        assert_eq!(store.jwk(&new).unwrap().expired_at, None);
        assert_eq!(store.current_kid(), new);
    }
}

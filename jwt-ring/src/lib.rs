//! `jsonwebtoken`'s cryptography through `ring`, for the two algorithms
//! plaid-sync meets: ES256 (Plaid's webhook JWTs: verified by the service,
//! signed by the simulator) and HS256 (only so tests can forge a token of the
//! wrong family and see it refused).
//!
//! Why not `jsonwebtoken`'s own backends: its RustCrypto one verifies ES256 in
//! 300–470 µs on our 2-core machines where `ring` (already linked for TLS)
//! takes 70–80 µs (BENCHMARKS.md, W3), and it links `rsa` (RUSTSEC-2023-0071),
//! `ed25519-dalek`, `p384` and a second generation of the RustCrypto hashes.
//! Its aws-lc backend builds a C library. Every other algorithm is refused with
//! `InvalidAlgorithm`.
//!
//! Call [`install`] once per process before any `jsonwebtoken` call (the
//! service and the simulator both do; the second call is a no-op).

mod ecdsa;
mod hmac;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier},
    errors::{ErrorKind, Result},
    jwk::{EllipticCurve, ThumbprintHash},
};

pub use ecdsa::Es256KeyPair;

/// The provider: ES256 and HS256 signing and verification, JWK helpers for
/// P-256 keys.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: |_| Err(ErrorKind::InvalidAlgorithm.into()),
        extract_ec_public_key_coordinates: ec_public_key_coordinates,
        compute_digest: digest,
    },
};

/// Makes this crate's provider the process default. Idempotent; a provider
/// someone else installed first stays in place.
pub fn install() {
    let _ = PROVIDER.install_default();
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::ES256 => Ok(Box::new(ecdsa::Es256Signer::new(key)?)),
        Algorithm::HS256 => Ok(Box::new(hmac::Hs256::for_signing(key)?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::ES256 => Ok(Box::new(ecdsa::Es256Verifier::new(key)?)),
        Algorithm::HS256 => Ok(Box::new(hmac::Hs256::for_verifying(key)?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn ec_public_key_coordinates(
    pkcs8: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    if algorithm != Algorithm::ES256 {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    let pair = Es256KeyPair::from_pkcs8(pkcs8).map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    let (x, y) = pair.coordinates();
    Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
}

fn digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
    };
    ring::digest::digest(algorithm, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Header, Validation, decode, encode};
    use serde_json::{Value, json};

    use super::*;

    fn es256_validation() -> Validation {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation
    }

    #[test]
    fn es256_tokens_round_trip_and_a_foreign_key_is_refused() {
        install();
        let pair = Es256KeyPair::generate().unwrap();
        let claims = json!({"iat": 1, "request_body_sha256": "ab"});
        let token = encode(&Header::new(Algorithm::ES256), &claims, &pair.encoding_key()).unwrap();

        let decoded = decode::<Value>(&token, &pair.decoding_key().unwrap(), &es256_validation()).unwrap();
        assert_eq!(decoded.claims, claims);

        let other = Es256KeyPair::generate().unwrap();
        let err = decode::<Value>(&token, &other.decoding_key().unwrap(), &es256_validation()).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidSignature);
    }

    #[test]
    fn hs256_round_trips_and_other_algorithms_are_refused() {
        install();
        let key = EncodingKey::from_secret(b"guess");
        let token = encode(&Header::new(Algorithm::HS256), &json!({"a": 1}), &key).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        assert!(decode::<Value>(&token, &DecodingKey::from_secret(b"guess"), &validation).is_ok());
        assert!(decode::<Value>(&token, &DecodingKey::from_secret(b"other"), &validation).is_err());

        let err = encode(&Header::new(Algorithm::RS256), &json!({}), &key).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidAlgorithm);
    }

    #[test]
    fn jwk_helpers_give_the_key_pairs_coordinates() {
        install();
        let pair = Es256KeyPair::generate().unwrap();
        let (curve, x, y) = ec_public_key_coordinates(pair.pkcs8(), Algorithm::ES256).unwrap();
        assert_eq!(curve, EllipticCurve::P256);
        assert_eq!((x.as_slice(), y.as_slice()), pair.coordinates());
        assert_eq!(digest(b"abc", ThumbprintHash::SHA256).len(), 32);
    }
}

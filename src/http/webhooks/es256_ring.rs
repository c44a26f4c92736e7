//! ES256 verification through `ring` for `jsonwebtoken`.
//!
//! `jsonwebtoken` is built with its RustCrypto backend (the `p256` crate),
//! which verifies an ES256 signature in 300–470 µs on our 2-core machines;
//! `ring` (already linked for TLS) does the same check in 70–80 µs
//! (BENCHMARKS.md, W3). Every webhook is one verification, so this provider
//! routes ES256 verification to `ring` and leaves everything else (signing,
//! other algorithms, JWK helpers) to the RustCrypto backend.

use jsonwebtoken::{
    Algorithm, DecodingKey,
    crypto::{CryptoProvider, JwtVerifier, rust_crypto},
    errors::{ErrorKind, Result},
};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

/// Installs the provider for this process; later calls (and a provider
/// installed by someone else first) leave the existing one in place.
pub fn install() {
    static PROVIDER: std::sync::OnceLock<CryptoProvider> = std::sync::OnceLock::new();
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        verifier_factory: new_verifier,
        ..rust_crypto::DEFAULT_PROVIDER.clone()
    });
    let _ = provider.install_default();
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::ES256 => Ok(Box::new(RingEs256::new(key)?)),
        other => (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(other, key),
    }
}

/// An ES256 verifier over an uncompressed SEC1 point (`0x04 || x || y`), the
/// form `DecodingKey::from_ec_components` / `from_jwk` store.
struct RingEs256(UnparsedPublicKey<Vec<u8>>);

impl RingEs256 {
    fn new(key: &DecodingKey) -> Result<Self> {
        if key.family() != jsonwebtoken::AlgorithmFamily::Ec {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Self(UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            key.as_bytes().to_vec(),
        )))
    }
}

impl signature::Verifier<Vec<u8>> for RingEs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.0.verify(msg, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingEs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

//! ES256: ECDSA over P-256 with SHA-256, signatures in the fixed 64-byte form
//! JWS uses (`r || s`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, EncodingKey,
    crypto::{JwtSigner, JwtVerifier},
    errors::{ErrorKind, Result},
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};

/// A P-256 key pair with its PKCS#8 form, for whoever signs ES256 tokens (the
/// simulator, tests).
pub struct Es256KeyPair {
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
}

/// `ring` could not make or read a key (a broken system RNG, or bytes that are
/// not a P-256 PKCS#8 document).
#[derive(Debug)]
pub struct KeyRejected(String);

impl std::fmt::Display for KeyRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P-256 key: {}", self.0)
    }
}

impl std::error::Error for KeyRejected {}

impl Es256KeyPair {
    /// A fresh random key.
    pub fn generate() -> std::result::Result<Self, KeyRejected> {
        let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| KeyRejected("the system RNG failed".into()))?;
        Self::from_pkcs8(document.as_ref())
    }

    /// Reads a PKCS#8 (DER) P-256 private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> std::result::Result<Self, KeyRejected> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &SystemRandom::new())
            .map_err(|e| KeyRejected(e.to_string()))?;
        Ok(Self {
            pkcs8: pkcs8.to_vec(),
            pair,
        })
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public point's big-endian x and y coordinates (32 bytes each).
    pub fn coordinates(&self) -> (&[u8], &[u8]) {
        // ring gives the uncompressed SEC1 point: 0x04 || x || y.
        let point = self.pair.public_key().as_ref();
        (&point[1..33], &point[33..65])
    }

    /// The coordinates base64url-encoded, as a JWK's `x` and `y`.
    pub fn jwk_coordinates(&self) -> (String, String) {
        let (x, y) = self.coordinates();
        (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
    }

    /// A `jsonwebtoken` key that signs with this pair.
    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_ec_der(&self.pkcs8)
    }

    /// A `jsonwebtoken` key that verifies this pair's signatures, built the
    /// way a verifier builds one from a served JWK.
    pub fn decoding_key(&self) -> Result<DecodingKey> {
        let (x, y) = self.jwk_coordinates();
        DecodingKey::from_ec_components(&x, &y)
    }
}

/// Signs with a key from [`EncodingKey::from_ec_der`] / `from_ec_pem`.
pub(crate) struct Es256Signer(EcdsaKeyPair);

impl Es256Signer {
    pub(crate) fn new(key: &EncodingKey) -> Result<Self> {
        if key.family() != AlgorithmFamily::Ec {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key.inner(),
            &SystemRandom::new(),
        )
        .map(Self)
        .map_err(|_| ErrorKind::InvalidEcdsaKey.into())
    }
}

impl signature::Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        self.0
            .sign(&SystemRandom::new(), msg)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// Verifies against an uncompressed SEC1 point (`0x04 || x || y`), the form
/// `DecodingKey::from_ec_components` / `from_jwk` store.
pub(crate) struct Es256Verifier(UnparsedPublicKey<Vec<u8>>);

impl Es256Verifier {
    pub(crate) fn new(key: &DecodingKey) -> Result<Self> {
        if key.family() != AlgorithmFamily::Ec {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Self(UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            key.as_bytes().to_vec(),
        )))
    }
}

impl signature::Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.0.verify(msg, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

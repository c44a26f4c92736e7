//! HS256 through `ring::hmac`. plaid-sync never accepts it from Plaid (the
//! webhook verifier admits ES256 only); it exists so a test can build the
//! "wrong algorithm" token an attacker would send.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    crypto::{JwtSigner, JwtVerifier},
    errors::Result,
};
use ring::hmac;

/// An HS256 key, for signing or verifying.
pub(crate) struct Hs256(hmac::Key);

impl Hs256 {
    pub(crate) fn for_signing(key: &EncodingKey) -> Result<Self> {
        Ok(Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            key.try_get_hmac_secret()?,
        )))
    }

    pub(crate) fn for_verifying(key: &DecodingKey) -> Result<Self> {
        Ok(Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            key.try_get_hmac_secret()?,
        )))
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, msg).as_ref().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // ring compares in constant time.
        hmac::verify(&self.0, msg, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

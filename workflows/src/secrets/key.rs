//! The encryption key: 32 bytes from `SECRETS_KEY` (base64), with a key id.

use std::fmt;

use aes_gcm::{Aes256Gcm, Key};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

/// Why a key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64.
    #[error("is not valid base64")]
    NotBase64,
    /// Decoded to the wrong length.
    #[error("must decode to exactly 32 bytes, got {0}")]
    WrongLength(usize),
}

/// An AES-256 key and its id.
///
/// The id is the first 16 hex digits of SHA-256 over the key: stable, derived
/// (nothing to configure), and it reveals nothing useful about the key.
#[derive(Clone)]
pub struct SecretsKey {
    key: Key<Aes256Gcm>,
    id: String,
}

impl SecretsKey {
    /// Parses base64 (standard alphabet, padding optional) of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyError::NotBase64)?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..8]);
        Self {
            key: bytes.into(),
            id,
        }
    }

    /// A new random key.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// The key as base64, for writing a generated key to disk.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.key[..])
    }

    /// The key id stored beside each ciphertext.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn key(&self) -> &Key<Aes256Gcm> {
        &self.key
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

//! put / get / replace / delete over the `secrets` table.

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::RngCore;
use sqlx::PgConnection;

use super::SecretsKey;
use crate::redact::Secret;

/// Failures of the secret store. None of them carries plaintext.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No row for this reference.
    #[error("secret {0} not found")]
    NotFound(String),
    /// The row was sealed with a key we do not have.
    #[error("secret {secret_ref} was sealed with key {key_id}, which is not configured")]
    UnknownKey {
        /// The reference.
        secret_ref: String,
        /// The key id stored with it.
        key_id: String,
    },
    /// Authentication failed: tampered ciphertext, nonce, reference or wrong key.
    #[error("secret {0} failed to decrypt (tampered or sealed with another key)")]
    Decrypt(String),
    /// The database failed.
    #[error("secret store database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Encrypts and decrypts secrets with the configured key.
#[derive(Debug, Clone)]
pub struct SecretStore {
    current: SecretsKey,
    /// Older keys still accepted for reading, so a key can be rotated: new writes
    /// use `current`, and `replace` re-seals a secret under it.
    previous: Vec<SecretsKey>,
}

#[derive(sqlx::FromRow)]
struct Row {
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl SecretStore {
    /// A store sealing with `current` and still opening secrets sealed by `previous`.
    pub fn new(current: SecretsKey, previous: Vec<SecretsKey>) -> Self {
        Self { current, previous }
    }

    /// The id of the key new secrets are sealed with.
    pub fn current_key_id(&self) -> &str {
        self.current.id()
    }

    /// Stores a new secret; returns its reference.
    pub async fn put(&self, conn: &mut PgConnection, plaintext: &Secret) -> Result<String, SecretError> {
        let secret_ref = format!("sec_{}", ulid::Ulid::generate().to_string().to_lowercase());
        let (nonce, ciphertext) = self.seal(&secret_ref, plaintext)?;
        sqlx::query("insert into secrets (secret_ref, key_id, nonce, ciphertext) values ($1, $2, $3, $4)")
            .bind(&secret_ref)
            .bind(self.current.id())
            .bind(nonce)
            .bind(ciphertext)
            .execute(conn)
            .await?;
        Ok(secret_ref)
    }

    /// Reads and decrypts a secret.
    pub async fn get(&self, conn: &mut PgConnection, secret_ref: &str) -> Result<Secret, SecretError> {
        let row: Row = sqlx::query_as("select key_id, nonce, ciphertext from secrets where secret_ref = $1")
            .bind(secret_ref)
            .fetch_optional(conn)
            .await?
            .ok_or_else(|| SecretError::NotFound(secret_ref.to_owned()))?;
        self.open(secret_ref, &row)
    }

    /// Replaces the value behind an existing reference (sealed with the current key).
    pub async fn replace(
        &self,
        conn: &mut PgConnection,
        secret_ref: &str,
        plaintext: &Secret,
    ) -> Result<(), SecretError> {
        let (nonce, ciphertext) = self.seal(secret_ref, plaintext)?;
        let done =
            sqlx::query("update secrets set key_id = $2, nonce = $3, ciphertext = $4 where secret_ref = $1")
                .bind(secret_ref)
                .bind(self.current.id())
                .bind(nonce)
                .bind(ciphertext)
                .execute(conn)
                .await?;
        if done.rows_affected() == 0 {
            return Err(SecretError::NotFound(secret_ref.to_owned()));
        }
        Ok(())
    }

    /// Deletes a secret; true when it existed.
    pub async fn delete(&self, conn: &mut PgConnection, secret_ref: &str) -> Result<bool, SecretError> {
        let done = sqlx::query("delete from secrets where secret_ref = $1")
            .bind(secret_ref)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    fn seal(&self, secret_ref: &str, plaintext: &Secret) -> Result<(Vec<u8>, Vec<u8>), SecretError> {
        let cipher = Aes256Gcm::new(self.current.key());
        // 96-bit random nonces: NIST's bound (2^32 seals per key) is far
        // above the tokens one key seals before rotation.
        let mut nonce_bytes = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce_bytes);
        let nonce = Nonce::from(nonce_bytes);
        let payload = Payload {
            msg: plaintext.expose().as_bytes(),
            aad: secret_ref.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(&nonce, payload)
            .map_err(|_| SecretError::Decrypt(secret_ref.to_owned()))?;
        Ok((nonce.to_vec(), ciphertext))
    }

    fn open(&self, secret_ref: &str, row: &Row) -> Result<Secret, SecretError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == row.key_id)
            .ok_or_else(|| SecretError::UnknownKey {
                secret_ref: secret_ref.to_owned(),
                key_id: row.key_id.clone(),
            })?;
        let nonce: [u8; 12] = row
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::Decrypt(secret_ref.to_owned()))?;
        let cipher = Aes256Gcm::new(key.key());
        let plaintext = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &row.ciphertext,
                    aad: secret_ref.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt(secret_ref.to_owned()))?;
        let text = String::from_utf8(plaintext).map_err(|_| SecretError::Decrypt(secret_ref.to_owned()))?;
        Ok(Secret::new(text))
    }
}

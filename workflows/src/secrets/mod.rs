//! The secret store: Plaid access tokens encrypted at rest.
//!
//! A `secret_ref` (`sec_<ulid>`) points at a row of `secrets` holding an
//! AES-256-GCM ciphertext, its 96-bit random nonce and the id of the key that
//! sealed it. The `secret_ref` is bound in as associated data, so copying a
//! ciphertext onto another row makes it fail to open rather than silently
//! decrypting someone else's token.

mod key;
mod store;

pub use key::{KeyError, SecretsKey};
pub use store::{SecretError, SecretStore};

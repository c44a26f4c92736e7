//! Tokens that must never reach a log line or an error string.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Plaid access token (`access-<env>-<id>`, PLAID.md §1).
///
/// It never expires and grants read access to a user's bank data, so it is
/// kept in a [`SecretString`] (zeroed on drop) and prints as `access-***` in
/// both `Debug` and `Display`. The only ways to read it are
/// [`expose_secret`](Self::expose_secret) (for encrypting it at rest) and
/// serializing a request body.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps a token string, e.g. one decrypted from the database.
    pub fn new(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }

    /// The token itself. Call only to encrypt it for storage or to compare
    /// it in a test; never format it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("access-***")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("access-***")
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

impl Serialize for AccessToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// A Link `public_token` (`public-<env>-<id>`).
///
/// It lives 30 minutes and is worth an access token to anyone holding our
/// client secret (PLAID.md §6), so it is redacted like [`AccessToken`]:
/// `Debug`/`Display` print `public-***`.
#[derive(Clone)]
pub struct PublicToken(SecretString);

impl PublicToken {
    /// Wraps a token string, e.g. one posted by the Link front end.
    pub fn new(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }

    /// The token itself; never format it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PublicToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("public-***")
    }
}

impl fmt::Display for PublicToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("public-***")
    }
}

impl From<String> for PublicToken {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

impl Serialize for PublicToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

impl<'de> Deserialize<'de> for PublicToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

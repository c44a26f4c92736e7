//! Settings for [`PlaidClient`](super::PlaidClient).

use std::time::Duration;

use secrecy::SecretString;

/// Plaid's Sandbox host (PLAID.md §1).
pub const SANDBOX_BASE_URL: &str = "https://sandbox.plaid.com";

/// Plaid's Production host (PLAID.md §1).
pub const PRODUCTION_BASE_URL: &str = "https://production.plaid.com";

/// The request timeout used by [`PlaidConfig::new`].
///
/// Plaid documents no server-side deadline. The slowest call we make is a
/// first `/transactions/sync` page, which can be several times slower than
/// `/transactions/get` (PLAID.md §2.5 "Timing"), so the default is generous;
/// a hung connection still ends and is retried as a [`PlaidError::Timeout`].
///
/// [`PlaidError::Timeout`]: super::PlaidError::Timeout
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach Plaid and who we are.
///
/// `Debug` prints the secret as `[REDACTED]` (that is `secrecy`'s own
/// `Debug`), so the config can be logged at startup.
#[derive(Debug, Clone)]
pub struct PlaidConfig {
    /// Scheme, host and optional port, without a trailing path, e.g.
    /// [`SANDBOX_BASE_URL`] or the simulator's `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The `PLAID-CLIENT-ID` header. Not secret, but never logged either.
    pub client_id: String,
    /// The `PLAID-SECRET` header.
    pub secret: SecretString,
    /// Deadline for a whole call: connect, send, and read the response body.
    pub timeout: Duration,
}

impl PlaidConfig {
    /// A config with [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>, client_id: impl Into<String>, secret: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            secret,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same config with another request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

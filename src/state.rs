//! Shared state of the HTTP handlers.

use std::sync::Arc;

use sqlx::PgPool;
use workflows::{ingest::IngestQueue, plaid::PlaidClient, secrets::SecretStore};

use crate::{config::Config, http::webhooks::keys::KeyCache};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The configuration, read once at start.
    pub config: Arc<Config>,
    /// The secret store (access tokens at rest).
    pub secrets: SecretStore,
    /// The Plaid client.
    pub plaid: Arc<PlaidClient>,
    /// Cached webhook verification keys.
    pub webhook_keys: KeyCache,
    /// Group commit of verified webhooks (see `workflows::ingest`).
    pub ingest: IngestQueue,
}

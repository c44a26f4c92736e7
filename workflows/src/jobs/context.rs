//! What every job handler receives.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;

use crate::{
    lifecycle::cleanup::CleanupSettings, plaid::PlaidClient, secrets::SecretStore, sync::SyncSettings,
};

/// Shared state handed to handlers through apalis' `Data`.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The database.
    pub pool: PgPool,
    /// The Plaid client.
    pub plaid: Arc<PlaidClient>,
    /// The secret store (access tokens).
    pub secrets: SecretStore,
    /// How long finished job rows and dead worker rows are kept.
    pub job_retention: Duration,
    /// Sync engine tuning.
    pub sync: SyncSettings,
    /// The safety net syncs active items not synced for this long.
    pub safety_net_stale_after: Duration,
    /// Dormant-item cleanup (`DORMANT_AFTER`, `CLEANUP_GRACE`).
    pub cleanup: CleanupSettings,
}

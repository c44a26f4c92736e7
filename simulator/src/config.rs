//! Simulator configuration.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What using a removed item's access token answers with. Plaid's docs describe both
/// (`INVALID_ACCESS_TOKEN` "...or it was removed via /item/remove", and `ITEM_NOT_FOUND` "has
/// been previously removed via /item/remove"), so clients should handle both; tests pick one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemovedItemError {
    /// 400 `INVALID_INPUT`/`INVALID_ACCESS_TOKEN` (default).
    #[default]
    InvalidAccessToken,
    /// 400 `ITEM_ERROR`/`ITEM_NOT_FOUND`.
    ItemNotFound,
}

/// What items created through Link (`/sandbox/public_token/create` or
/// `POST /simulator/link/complete`) start with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewItemDefaults {
    /// Number of generated transactions (seeded by `seed` and the item's position).
    pub generated_transactions: usize,
    /// Seed for the generated history.
    pub seed: u64,
    /// If set, the item becomes `HISTORICAL_UPDATE_COMPLETE` this long after creation (and the
    /// matching webhooks fire); if `None` it stays `NOT_READY` until told otherwise.
    pub ready_after: Option<Duration>,
}

impl Default for NewItemDefaults {
    fn default() -> Self {
        NewItemDefaults {
            generated_transactions: 0,
            seed: 1,
            ready_after: None,
        }
    }
}

/// Everything the simulator needs to start.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Address to bind (tests use `127.0.0.1:0`).
    pub bind_addr: SocketAddr,
    /// The only accepted `client_id`.
    pub client_id: String,
    /// The only accepted `secret`.
    pub secret: String,
    /// Webhook URL for items that were not given one.
    pub default_webhook_url: Option<String>,
    /// Seed for ids and tokens; `None` draws from entropy.
    pub seed: Option<u64>,
    /// Per-item `/transactions/sync` calls allowed per window (Plaid: 50/min); `None` disables.
    pub sync_rate_limit: Option<u32>,
    /// The rate-limit window.
    pub rate_limit_window: Duration,
    /// Fire `SYNC_UPDATES_AVAILABLE` automatically when an item's transactions change or become
    /// ready (only once sync has been called on the item, as Plaid does).
    pub auto_webhooks: bool,
    /// Also fire the legacy `INITIAL_UPDATE`/`HISTORICAL_UPDATE`/`DEFAULT_UPDATE`/
    /// `TRANSACTIONS_REMOVED` webhooks automatically.
    pub legacy_webhooks: bool,
    /// Report transactions added *and* removed after a cursor as `removed` (see
    /// `History::net_changes`); off by default.
    pub report_unseen_removals: bool,
    /// Error for removed items' tokens.
    pub removed_item_error: RemovedItemError,
    /// Defaults for items created through Link.
    pub new_items: NewItemDefaults,
    /// Timeout for webhook deliveries (Plaid: 10 s).
    pub webhook_timeout: Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            client_id: "sim-client-id".to_owned(),
            secret: "sim-secret".to_owned(),
            default_webhook_url: None,
            seed: None,
            sync_rate_limit: Some(50),
            rate_limit_window: Duration::from_secs(60),
            auto_webhooks: true,
            legacy_webhooks: false,
            report_unseen_removals: false,
            removed_item_error: RemovedItemError::default(),
            new_items: NewItemDefaults::default(),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

impl SimulatorConfig {
    /// A preset for the standalone `demo` process: linked items get 250 seeded transactions and
    /// become ready two seconds after creation, like Sandbox's `user_transactions_dynamic`.
    pub fn demo() -> Self {
        SimulatorConfig {
            new_items: NewItemDefaults {
                generated_transactions: 250,
                seed: 2024,
                ready_after: Some(Duration::from_secs(2)),
            },
            ..SimulatorConfig::default()
        }
    }
}

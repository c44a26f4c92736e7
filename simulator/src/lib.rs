//! A Plaid API simulator: a real HTTP server speaking Plaid's JSON, for tests, demos and chaos
//! drills of `plaid-sync`.
//!
//! It implements `/link/token/create`, `/item/public_token/exchange`, `/accounts/get`,
//! `/item/get`, `/item/remove`, `/item/webhook/update`, `/transactions/sync`,
//! `/webhook_verification_key/get`, `/sandbox/public_token/create`,
//! `/sandbox/item/fire_webhook` and `/sandbox/item/reset_login`, keeps per-item transaction
//! histories that change over time, signs the webhooks it sends exactly as Plaid does, injects
//! faults, and reports the ground truth so tests can compare a database against it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), plaid_simulator::SimError> {
//! use plaid_simulator::{ItemSpec, HistorySpec, Simulator, SimulatorConfig};
//! let sim = Simulator::start(SimulatorConfig::default()).await?;
//! let item = sim.create_item(ItemSpec::ready());
//! sim.generate_history(&item.item_id, HistorySpec::new(1_234, 7))?;
//! // ... point the client at sim.base_url() with item.access_token, run a sync ...
//! let truth = sim.truth(&item.item_id)?;
//! assert_eq!(truth.len(), 1_234);
//! sim.shutdown().await
//! # }
//! ```
//!
//! Design notes (cursor encoding, net-change semantics, the fault model) live in the module
//! docs of `history`, `cursor` and `faults`, and in `simulator/README.md`.

mod calls;
mod config;
mod control;
mod cursor;
mod error;
mod faults;
mod generate;
mod handle;
mod history;
mod ids;
mod keys;
mod model;
mod plaid_error;
mod ratelimit;
mod request;
mod routes;
mod server;
mod shared;
mod state;
mod webhooks;

use std::future::Future;
use std::net::SocketAddr;

pub use calls::CallRecord;
pub use config::{NewItemDefaults, RemovedItemError, SimulatorConfig};
pub use error::SimError;
pub use faults::{Chaos, Fault, FaultError, FaultsView, Latency, MutationChaos, MutationFault};
pub use generate::HistorySpec;
pub use handle::{Simulator, SimulatorControl, SimulatorHandle};
pub use keys::{Jwk, KeyError};
pub use model::{
    Account, AccountSpec, Balances, Counterparty, CreatedItem, ItemSpec, ItemSummary, LinkCompletion,
    Location, NewTransaction, PaymentMeta, PersonalFinanceCategory, PostPending, ReadyState, Transaction,
    TransactionPatch, Truth,
};
pub use plaid_error::PlaidError;
pub use webhooks::{SignedWebhook, VERIFICATION_HEADER, WebhookDelivery, WebhookEvent, body_sha256};

/// Runs the simulator as a standalone process until `shutdown` completes, then shuts down
/// gracefully. This is what `plaid-sync simulator --addr <addr>` calls; `addr` overrides
/// `config.bind_addr`. Drive it with the `/simulator/...` control API, e.g.
///
/// ```text
/// curl -XPOST localhost:4010/simulator/items -d '{"ready":"HISTORICAL_UPDATE_COMPLETE"}'
/// curl -XPOST localhost:4010/simulator/items/<item_id>/generate -d '{"count":500,"seed":1}'
/// curl localhost:4010/simulator/items/<item_id>/truth
/// ```
pub async fn run_standalone(
    addr: SocketAddr,
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SimError> {
    let config = SimulatorConfig {
        bind_addr: addr,
        ..config
    };
    let handle = Simulator::start(config).await?;
    tracing::info!(base_url = %handle.base_url(), "Plaid simulator ready; control API under /simulator");
    shutdown.await;
    handle.shutdown().await
}

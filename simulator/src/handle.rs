//! Starting the simulator and controlling it in-process.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::calls::CallRecord;
use crate::config::SimulatorConfig;
use crate::error::SimError;
use crate::faults::{Chaos, Fault, FaultsView, Latency, MutationChaos, MutationFault};
use crate::generate::HistorySpec;
use crate::keys::Jwk;
use crate::model::{
    CreatedItem, ItemSpec, ItemSummary, LinkCompletion, NewTransaction, PostPending, ReadyState,
    TransactionPatch, Truth,
};
use crate::plaid_error::PlaidError;
use crate::shared::Shared;
use crate::state::SimState;
use crate::webhooks::{self, SignedWebhook, WebhookDelivery, WebhookEvent};

/// Entry point: `Simulator::start(config)`.
pub struct Simulator;

impl Simulator {
    /// Binds `config.bind_addr`, starts serving the Plaid API and the `/simulator` control API
    /// in a background task, and returns a handle. Must be called inside a Tokio runtime.
    pub async fn start(config: SimulatorConfig) -> Result<SimulatorHandle, SimError> {
        let addr = config.bind_addr;
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .build()
            .map_err(|e| SimError::Invalid(format!("webhook HTTP client: {e}")))?;
        let shared = Shared::new(SimState::new(config)?, http);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;
        let app = crate::server::router(Arc::clone(&shared));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        tracing::info!(addr = %local, "Plaid simulator listening");
        Ok(SimulatorHandle {
            control: SimulatorControl::new(shared),
            addr: local,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A running simulator. Dereferences to [`SimulatorControl`] for the in-process controls.
/// Dropping it stops the server (without waiting); prefer [`SimulatorHandle::shutdown`].
pub struct SimulatorHandle {
    control: SimulatorControl,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: use as the Plaid base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A cloneable controller, e.g. to move into another task.
    pub fn control(&self) -> SimulatorControl {
        self.control.clone()
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the server.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(SimError::Serve),
                Err(join) => Err(SimError::Serve(std::io::Error::other(join))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Deref for SimulatorHandle {
    type Target = SimulatorControl;
    fn deref(&self) -> &SimulatorControl {
        &self.control
    }
}

/// In-process controls: everything the `/simulator` HTTP API can do. Changes are atomic with
/// respect to API calls. Webhooks they trigger are sent in the background (see
/// [`SimulatorControl::webhook_deliveries`]); [`SimulatorControl::fire_webhook`] is the one
/// that waits for the receiver's answer.
#[derive(Clone)]
pub struct SimulatorControl {
    shared: Arc<Shared>,
}

impl SimulatorControl {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SimulatorControl { shared }
    }

    fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        self.shared.with_state(f)
    }

    // ---- items ----

    /// Creates an item directly (no Link), returning its id, access token and account ids.
    pub fn create_item(&self, spec: ItemSpec) -> CreatedItem {
        self.with(|st| st.create_item(spec))
    }

    /// All items, including removed ones.
    pub fn items(&self) -> Vec<ItemSummary> {
        self.with(|st| st.summaries())
    }

    /// One item's summary.
    pub fn item(&self, item_id: &str) -> Result<ItemSummary, SimError> {
        self.with(|st| st.summary(item_id))
    }

    /// Sets (or clears) the item's webhook URL without any webhook.
    pub fn set_webhook_url(&self, item_id: &str, url: Option<&str>) -> Result<(), SimError> {
        self.with(|st| {
            st.live_item_mut(item_id)?.webhook = url.map(str::to_owned);
            Ok(())
        })
    }

    /// Simulated Link: completes the session for `link_token` (from `/link/token/create`).
    /// A new-item token creates an item and returns a public token for it; an update-mode
    /// token (created with `access_token`) clears that item's error and returns a public token
    /// that exchanges to the same access token.
    pub fn complete_link(&self, link_token: &str) -> Result<LinkCompletion, SimError> {
        self.with(|st| st.complete_link(link_token))
    }

    // ---- transactions ----

    /// Adds transactions (atomically: a bad entry adds none). Returns their ids in order.
    pub fn add_transactions(
        &self,
        item_id: &str,
        transactions: Vec<NewTransaction>,
    ) -> Result<Vec<String>, SimError> {
        self.with(|st| st.add_transactions(item_id, transactions))
    }

    /// Adds one transaction; returns its id.
    pub fn add_transaction(&self, item_id: &str, txn: NewTransaction) -> Result<String, SimError> {
        let mut ids = self.add_transactions(item_id, vec![txn])?;
        Ok(ids.remove(0))
    }

    /// Changes a live transaction in place (it will show up in `modified`).
    pub fn modify_transaction(
        &self,
        item_id: &str,
        transaction_id: &str,
        patch: TransactionPatch,
    ) -> Result<(), SimError> {
        self.with(|st| st.modify_transaction(item_id, transaction_id, &patch))
    }

    /// Removes live transactions (atomically).
    pub fn remove_transactions(&self, item_id: &str, ids: &[&str]) -> Result<(), SimError> {
        let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        self.with(|st| st.remove_transactions(item_id, &ids))
    }

    /// Posts a pending transaction: removes it and adds a posted one with a new id and
    /// `pending_transaction_id` set. Returns the new id.
    pub fn post_pending(
        &self,
        item_id: &str,
        pending_id: &str,
        post: PostPending,
    ) -> Result<String, SimError> {
        self.with(|st| st.post_pending(item_id, pending_id, &post))
    }

    /// Adds a deterministic generated history across the item's accounts.
    pub fn generate_history(&self, item_id: &str, spec: HistorySpec) -> Result<Vec<String>, SimError> {
        self.with(|st| st.generate_history(item_id, &spec))
    }

    /// Sets the item's readiness, ending `NOT_READY`. If sync has been called on the item,
    /// `SYNC_UPDATES_AVAILABLE` fires (with auto webhooks on).
    pub fn mark_ready(&self, item_id: &str, ready: ReadyState) -> Result<(), SimError> {
        self.with(|st| st.mark_ready(item_id, ready))
    }

    /// The ground truth for the item.
    pub fn truth(&self, item_id: &str) -> Result<Truth, SimError> {
        self.with(|st| st.truth(item_id))
    }

    // ---- item state ----

    /// Like `/sandbox/item/reset_login`: `ITEM_LOGIN_REQUIRED` until update-mode Link
    /// completes, plus the ITEM `ERROR` webhook.
    pub fn reset_login(&self, item_id: &str) -> Result<(), SimError> {
        self.with(|st| st.reset_login(item_id))
    }

    /// Puts the item into a lasting error with a catalogued code (e.g.
    /// `USER_PERMISSION_REVOKED`, `NO_ACCOUNTS`) and fires the matching webhook.
    pub fn set_item_error(&self, item_id: &str, code: &str) -> Result<(), SimError> {
        let (status, error) =
            PlaidError::from_code(code).ok_or_else(|| SimError::UnknownErrorCode(code.to_owned()))?;
        self.with(|st| st.set_item_error(item_id, status, error))
    }

    /// The item recovers on its own: error cleared, `LOGIN_REPAIRED` fired.
    pub fn repair_login(&self, item_id: &str) -> Result<(), SimError> {
        self.with(|st| st.repair_login(item_id))
    }

    // ---- webhooks ----

    /// Builds and signs a webhook for the item without sending it.
    pub fn build_webhook(&self, item_id: &str, event: &WebhookEvent) -> Result<SignedWebhook, SimError> {
        self.with(|st| st.build_webhook(item_id, event))
    }

    /// Signs arbitrary body bytes with the current key (for verifier tests with tampered or
    /// re-serialized bodies); returns the `Plaid-Verification` header value.
    pub fn sign_body(&self, body: &[u8], iat: i64) -> String {
        self.with(|st| webhooks::sign(&st.keys, body, iat))
    }

    /// Sends a webhook to the item's URL and waits for the answer.
    pub async fn fire_webhook(
        &self,
        item_id: &str,
        event: &WebhookEvent,
    ) -> Result<WebhookDelivery, SimError> {
        let hook = self.build_webhook(item_id, event)?;
        let url = hook
            .url
            .clone()
            .ok_or_else(|| SimError::NoWebhookUrl(item_id.to_owned()))?;
        Ok(self.shared.deliver(&url, &hook).await)
    }

    /// Webhooks that state changes (control calls, `/ready`, new transactions) queued and
    /// that have not been answered yet. Zero means every such webhook's answer, and so its
    /// effect on the receiver, is in.
    pub fn webhooks_in_flight(&self) -> usize {
        self.shared.webhooks_in_flight()
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.with(|st| st.deliveries.clone())
    }

    /// Rotates the signing key: the old key gets `expired_at`, a new kid signs from now on.
    pub fn rotate_webhook_key(&self) -> Result<String, SimError> {
        self.with(|st| {
            let now = chrono::Utc::now().timestamp();
            Ok(st.keys.rotate(&mut st.ids, now)?)
        })
    }

    /// The kid currently used for signing.
    pub fn current_webhook_key_id(&self) -> String {
        self.with(|st| st.keys.current_kid().to_owned())
    }

    /// All keys ever issued.
    pub fn webhook_keys(&self) -> Vec<Jwk> {
        self.with(|st| st.keys.all())
    }

    // ---- faults ----

    /// Queues a failure for the next matching calls.
    pub fn inject_fault(&self, fault: Fault) -> Result<(), SimError> {
        if !fault.error.is_valid() {
            return Err(SimError::UnknownErrorCode(format!("{:?}", fault.error)));
        }
        self.with(|st| st.faults.push(fault));
        Ok(())
    }

    /// Arms a `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` at page K of a run.
    pub fn inject_mutation_during_pagination(&self, fault: MutationFault) -> Result<(), SimError> {
        if fault.page == 0 {
            return Err(SimError::Invalid("page numbers start at 1".into()));
        }
        self.with(|st| st.faults.push_mutation(fault));
        Ok(())
    }

    /// Sets (or clears) response latency.
    pub fn set_latency(&self, latency: Option<Latency>) {
        self.with(|st| st.faults.set_latency(latency));
    }

    /// Sets (or clears) random failures.
    pub fn set_chaos(&self, chaos: Option<Chaos>) -> Result<(), SimError> {
        if let Some(c) = &chaos {
            if !(0.0..=1.0).contains(&c.failure_rate) {
                return Err(SimError::Invalid("failure_rate must be in [0, 1]".into()));
            }
            if let Some(bad) = c.errors.iter().find(|e| !e.is_valid()) {
                return Err(SimError::UnknownErrorCode(format!("{bad:?}")));
            }
        }
        self.with(|st| st.faults.set_chaos(chaos));
        Ok(())
    }

    /// Sets (or clears) random mutation during pagination (see [`MutationChaos`]).
    pub fn set_mutation_chaos(&self, chaos: Option<MutationChaos>) -> Result<(), SimError> {
        if let Some(c) = &chaos
            && !(0.0..=1.0).contains(&c.rate)
        {
            return Err(SimError::Invalid("rate must be in [0, 1]".into()));
        }
        self.with(|st| st.faults.set_mutation_chaos(chaos));
        Ok(())
    }

    /// Removes every fault, the latency and chaos.
    pub fn clear_faults(&self) {
        self.with(|st| st.faults.clear());
    }

    /// The configured faults.
    pub fn faults(&self) -> FaultsView {
        self.with(|st| st.faults.view())
    }

    /// Sets the per-item `/transactions/sync` limit per window (`None` disables) and resets
    /// the counters.
    pub fn set_sync_rate_limit(&self, limit: Option<u32>) {
        self.with(|st| st.rate.set_limit(limit));
    }

    /// The current per-item sync limit.
    pub fn sync_rate_limit(&self) -> Option<u32> {
        self.with(|st| st.rate.limit())
    }

    // ---- call log ----

    /// Every API call so far, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.with(|st| st.calls.clone())
    }

    /// Number of calls to `endpoint` (optionally for one item).
    pub fn call_count(&self, endpoint: &str, item_id: Option<&str>) -> usize {
        self.with(|st| {
            st.calls
                .iter()
                .filter(|c| c.endpoint == endpoint)
                .filter(|c| item_id.is_none_or(|i| c.item_id.as_deref() == Some(i)))
                .count()
        })
    }

    /// Forgets the call log.
    pub fn clear_calls(&self) {
        self.with(|st| st.calls.clear());
    }
}

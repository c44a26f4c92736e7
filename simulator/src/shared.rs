//! State shared by the HTTP server, the control API and the in-process handle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::model::ReadyState;
use crate::state::SimState;
use crate::webhooks::{self, SignedWebhook, WebhookDelivery};

pub(crate) struct Shared {
    state: Mutex<SimState>,
    pub(crate) http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    /// Webhooks queued by a state change and not yet answered: counted before the change's
    /// caller gets its answer, so a test can wait for their effects.
    in_flight: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(state: SimState, http: reqwest::Client) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(state),
            http,
            runtime: tokio::runtime::Handle::current(),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Locks the state. A panic while holding the lock cannot leave it half-updated in a way
    /// that matters more than losing the simulator, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the lock, then sends the webhooks and starts the timers it queued.
    pub(crate) fn with_state<R>(self: &Arc<Self>, f: impl FnOnce(&mut SimState) -> R) -> R {
        let (result, outbox, timers) = {
            let mut state = self.lock();
            let result = f(&mut state);
            (
                result,
                std::mem::take(&mut state.outbox),
                std::mem::take(&mut state.timers),
            )
        };
        self.spawn_side_effects(outbox, timers);
        result
    }

    /// Not generic on purpose: the timer task calls back into `with_state`, and a generic
    /// caller would instantiate itself forever.
    fn spawn_side_effects(
        self: &Arc<Self>,
        outbox: Vec<(String, SignedWebhook)>,
        timers: Vec<(String, Duration)>,
    ) {
        for (url, hook) in outbox {
            let shared = Arc::clone(self);
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            self.runtime.spawn(async move {
                shared.deliver(&url, &hook).await;
                shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
        for (item_id, delay) in timers {
            let shared = Arc::clone(self);
            self.runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                shared.with_state(|st| {
                    let _ = st.mark_ready(&item_id, ReadyState::HistoricalUpdateComplete);
                });
            });
        }
    }

    /// Webhooks a state change queued that have not been answered yet.
    pub(crate) fn webhooks_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Sends one webhook and records the attempt.
    pub(crate) async fn deliver(&self, url: &str, hook: &SignedWebhook) -> WebhookDelivery {
        let delivery = webhooks::deliver(&self.http, url, hook).await;
        self.lock().deliveries.push(delivery.clone());
        delivery
    }
}

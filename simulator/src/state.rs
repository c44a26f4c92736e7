//! The simulator's whole world: items, tokens, keys, faults and logs, behind one mutex.
//!
//! Every operation here is synchronous and runs under the lock, so each API call and control
//! action is atomic with respect to the others (a sync page is cut from one consistent
//! snapshot). Anything that must happen outside the lock — sending webhooks, timers — is queued
//! in `outbox`/`timers` and drained by `Shared::with_state` after the lock is released.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::calls::CallRecord;
use crate::config::{RemovedItemError, SimulatorConfig};
use crate::error::SimError;
use crate::faults::FaultBook;
use crate::generate::{HistorySpec, generate};
use crate::history::{History, HistoryError};
use crate::ids::IdGen;
use crate::keys::KeyStore;
use crate::model::{
    Account, CreatedItem, ItemSpec, ItemSummary, LinkCompletion, NewTransaction, PostPending, ReadyState,
    Transaction, TransactionPatch, Truth,
};
use crate::plaid_error::{ApiError, PlaidError};
use crate::ratelimit::RateLimiter;
use crate::webhooks::{self, ItemFacts, SignedWebhook, WebhookDelivery, WebhookEvent};

/// Public tokens live 30 minutes (PLAID.md §6).
const PUBLIC_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(30);

pub(crate) struct Item {
    pub(crate) item_id: String,
    pub(crate) access_token: String,
    pub(crate) institution_id: String,
    pub(crate) institution_name: String,
    pub(crate) products: Vec<String>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) history: History,
    pub(crate) webhook: Option<String>,
    /// The item's lasting error and its HTTP status (e.g. after `reset_login`).
    pub(crate) error: Option<(u16, PlaidError)>,
    pub(crate) removed: bool,
    pub(crate) ready: ReadyState,
    pub(crate) sync_called: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_webhook: Option<(DateTime<Utc>, String)>,
    pub(crate) last_successful_update: Option<DateTime<Utc>>,
}

impl Item {
    fn facts(&self) -> ItemFacts<'_> {
        ItemFacts {
            item_id: &self.item_id,
            initial_complete: self.ready >= ReadyState::InitialUpdateComplete,
            historical_complete: self.ready == ReadyState::HistoricalUpdateComplete,
            live_transactions: self.history.live().count() as u64,
            error: self.error.as_ref().map(|(status, err)| (*status, err)),
            first_account_id: self.accounts.first().map(|a| a.account_id.as_str()),
        }
    }

    pub(crate) fn has_account(&self, account_id: &str) -> bool {
        self.accounts.iter().any(|a| a.account_id == account_id)
    }
}

pub(crate) struct LinkToken {
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) webhook: Option<String>,
    pub(crate) products: Vec<String>,
    /// Set for update-mode tokens.
    pub(crate) update_item: Option<String>,
}

struct PublicToken {
    item_id: String,
    expires_at: DateTime<Utc>,
}

pub(crate) struct SimState {
    pub(crate) config: SimulatorConfig,
    pub(crate) ids: IdGen,
    pub(crate) items: BTreeMap<String, Item>,
    access_tokens: HashMap<String, String>,
    public_tokens: HashMap<String, PublicToken>,
    pub(crate) link_tokens: HashMap<String, LinkToken>,
    pub(crate) keys: KeyStore,
    pub(crate) faults: FaultBook,
    pub(crate) rate: RateLimiter,
    pub(crate) calls: Vec<CallRecord>,
    pub(crate) deliveries: Vec<WebhookDelivery>,
    /// Webhooks to send once the lock is released.
    pub(crate) outbox: Vec<(String, SignedWebhook)>,
    /// Items to mark ready after a delay, once the lock is released.
    pub(crate) timers: Vec<(String, Duration)>,
    /// How many items were created through Link (varies the generated histories).
    linked_items: u64,
}

impl SimState {
    pub(crate) fn new(config: SimulatorConfig) -> Result<Self, SimError> {
        let mut ids = IdGen::new(config.seed);
        let keys = KeyStore::new(&mut ids, Utc::now().timestamp())?;
        let rate = RateLimiter::new(config.sync_rate_limit, config.rate_limit_window);
        Ok(SimState {
            config,
            ids,
            items: BTreeMap::new(),
            access_tokens: HashMap::new(),
            public_tokens: HashMap::new(),
            link_tokens: HashMap::new(),
            keys,
            faults: FaultBook::default(),
            rate,
            calls: Vec::new(),
            deliveries: Vec::new(),
            outbox: Vec::new(),
            timers: Vec::new(),
            linked_items: 0,
        })
    }

    // ---- items -------------------------------------------------------------------------

    pub(crate) fn create_item(&mut self, spec: ItemSpec) -> CreatedItem {
        let item_id = self.ids.opaque();
        let access_token = self.ids.token("access");
        let accounts: Vec<Account> = spec
            .accounts
            .into_iter()
            .map(|a| Account {
                account_id: self.ids.opaque(),
                balances: a.balances,
                mask: a.mask,
                name: a.name,
                official_name: a.official_name,
                account_type: a.account_type,
                subtype: a.subtype,
            })
            .collect();
        let account_ids = accounts.iter().map(|a| a.account_id.clone()).collect();
        let now = Utc::now();
        let item = Item {
            item_id: item_id.clone(),
            access_token: access_token.clone(),
            institution_id: spec.institution_id,
            institution_name: spec.institution_name,
            products: spec.products,
            accounts,
            history: History::default(),
            webhook: spec.webhook.or_else(|| self.config.default_webhook_url.clone()),
            error: None,
            removed: false,
            ready: spec.ready,
            sync_called: false,
            created_at: now,
            last_webhook: None,
            last_successful_update: (spec.ready != ReadyState::NotReady).then_some(now),
        };
        self.items.insert(item_id.clone(), item);
        self.access_tokens.insert(access_token.clone(), item_id.clone());
        CreatedItem {
            item_id,
            access_token,
            account_ids,
        }
    }

    /// An item created by Link: gets the configured generated history and ready timer.
    pub(crate) fn create_linked_item(
        &mut self,
        institution_id: Option<String>,
        products: Vec<String>,
        webhook: Option<String>,
    ) -> CreatedItem {
        let mut spec = ItemSpec {
            webhook,
            products,
            ..ItemSpec::default()
        };
        if let Some(id) = institution_id {
            spec.institution_id = id;
        }
        let created = self.create_item(spec);
        self.linked_items += 1;
        let defaults = self.config.new_items.clone();
        if defaults.generated_transactions > 0 {
            let spec = HistorySpec::new(
                defaults.generated_transactions,
                defaults.seed.wrapping_add(self.linked_items),
            );
            self.generate_history(&created.item_id, &spec)
                .expect("a fresh item accepts a generated history");
        }
        if let Some(delay) = defaults.ready_after {
            self.timers.push((created.item_id.clone(), delay));
        }
        created
    }

    pub(crate) fn item(&self, item_id: &str) -> Result<&Item, SimError> {
        self.items
            .get(item_id)
            .ok_or_else(|| SimError::UnknownItem(item_id.to_owned()))
    }

    /// A live (not removed) item, for changes.
    pub(crate) fn live_item_mut(&mut self, item_id: &str) -> Result<&mut Item, SimError> {
        let item = self
            .items
            .get_mut(item_id)
            .ok_or_else(|| SimError::UnknownItem(item_id.to_owned()))?;
        if item.removed {
            return Err(SimError::ItemRemoved(item_id.to_owned()));
        }
        Ok(item)
    }

    pub(crate) fn summaries(&self) -> Vec<ItemSummary> {
        self.items.values().map(summary).collect()
    }

    pub(crate) fn summary(&self, item_id: &str) -> Result<ItemSummary, SimError> {
        self.item(item_id).map(summary)
    }

    /// The item an access token belongs to, or the API error Plaid gives for it.
    pub(crate) fn resolve_access_token(&self, token: &str) -> Result<String, ApiError> {
        let item_id = self
            .access_tokens
            .get(token)
            .ok_or_else(|| ApiError::code("INVALID_ACCESS_TOKEN"))?;
        let item = &self.items[item_id];
        if item.removed {
            return Err(match self.config.removed_item_error {
                RemovedItemError::InvalidAccessToken => ApiError::code("INVALID_ACCESS_TOKEN"),
                RemovedItemError::ItemNotFound => ApiError::code("ITEM_NOT_FOUND"),
            });
        }
        Ok(item_id.clone())
    }

    pub(crate) fn remove_item(&mut self, item_id: &str) -> Result<(), SimError> {
        self.live_item_mut(item_id)?.removed = true;
        self.public_tokens.retain(|_, p| p.item_id != item_id);
        Ok(())
    }

    // ---- tokens ------------------------------------------------------------------------

    pub(crate) fn issue_public_token(&mut self, item_id: &str) -> String {
        let token = self.ids.token("public");
        self.public_tokens.insert(
            token.clone(),
            PublicToken {
                item_id: item_id.to_owned(),
                expires_at: Utc::now() + PUBLIC_TOKEN_TTL,
            },
        );
        token
    }

    /// Public tokens are single-use, like Plaid's.
    pub(crate) fn exchange_public_token(&mut self, token: &str) -> Option<(String, String)> {
        let public = self.public_tokens.remove(token)?;
        if public.expires_at < Utc::now() {
            return None;
        }
        let item = self.items.get(&public.item_id).filter(|i| !i.removed)?;
        Some((item.item_id.clone(), item.access_token.clone()))
    }

    /// Simulated Link: a new-item token creates an item; an update-mode token clears the
    /// item's error (update mode repairs the login, so no `LOGIN_REPAIRED` webhook: Plaid only
    /// sends that when the item was repaired outside your app).
    pub(crate) fn complete_link(&mut self, link_token: &str) -> Result<LinkCompletion, SimError> {
        let token = self
            .link_tokens
            .get(link_token)
            .filter(|t| t.expires_at > Utc::now())
            .ok_or(SimError::InvalidLinkToken)?;
        let (update_item, webhook, products) = (
            token.update_item.clone(),
            token.webhook.clone(),
            token.products.clone(),
        );
        self.link_tokens.remove(link_token);
        let (item_id, update_mode) = match update_item {
            Some(item_id) => {
                self.live_item_mut(&item_id)?.error = None;
                (item_id, true)
            }
            None => {
                let products = if products.is_empty() {
                    vec!["transactions".to_owned()]
                } else {
                    products
                };
                (self.create_linked_item(None, products, webhook).item_id, false)
            }
        };
        Ok(LinkCompletion {
            public_token: self.issue_public_token(&item_id),
            item_id,
            update_mode,
        })
    }

    // ---- transactions ------------------------------------------------------------------

    pub(crate) fn add_transactions(
        &mut self,
        item_id: &str,
        new: Vec<NewTransaction>,
    ) -> Result<Vec<String>, SimError> {
        // Validate everything first so a bad batch changes nothing.
        let item = self.live_item_mut(item_id)?;
        let mut batch_ids = BTreeSet::new();
        for txn in &new {
            if !item.has_account(&txn.account_id) {
                return Err(SimError::UnknownAccount(txn.account_id.clone()));
            }
            if let Some(id) = &txn.transaction_id
                && (item.history.knows(id) || !batch_ids.insert(id.clone()))
            {
                return Err(SimError::DuplicateTransaction(id.clone()));
            }
        }
        let mut added = Vec::with_capacity(new.len());
        for txn in new {
            let id = match &txn.transaction_id {
                Some(id) => id.clone(),
                None => self.fresh_transaction_id(),
            };
            let item = self.live_item_mut(item_id)?;
            item.history
                .add(txn.into_transaction(id.clone()))
                .map_err(history_error)?;
            added.push(id);
        }
        self.after_change(item_id, added.len() as u64, &[]);
        Ok(added)
    }

    fn fresh_transaction_id(&mut self) -> String {
        // Ids are unique across items, as Plaid's are; collisions are astronomically unlikely
        // but a seeded generator shared with explicit ids makes the check cheap insurance.
        loop {
            let id = self.ids.opaque();
            if !self.items.values().any(|i| i.history.knows(&id)) {
                return id;
            }
        }
    }

    pub(crate) fn modify_transaction(
        &mut self,
        item_id: &str,
        transaction_id: &str,
        patch: &TransactionPatch,
    ) -> Result<(), SimError> {
        self.live_item_mut(item_id)?
            .history
            .modify(transaction_id, patch)
            .map_err(history_error)?;
        self.after_change(item_id, 0, &[]);
        Ok(())
    }

    pub(crate) fn remove_transactions(
        &mut self,
        item_id: &str,
        transaction_ids: &[String],
    ) -> Result<(), SimError> {
        let item = self.live_item_mut(item_id)?;
        if let Some(missing) = transaction_ids.iter().find(|id| item.history.get(id).is_none()) {
            return Err(SimError::UnknownTransaction(missing.clone()));
        }
        for id in transaction_ids {
            item.history.remove(id).map_err(history_error)?;
        }
        self.after_change(item_id, 0, transaction_ids);
        Ok(())
    }

    /// Pending → posted the way Plaid does it: the pending id is removed and a new posted
    /// transaction (new id, `pending_transaction_id` = the pending id) is added.
    pub(crate) fn post_pending(
        &mut self,
        item_id: &str,
        pending_id: &str,
        post: &PostPending,
    ) -> Result<String, SimError> {
        let pending = self
            .live_item_mut(item_id)?
            .history
            .get(pending_id)
            .cloned()
            .ok_or_else(|| SimError::UnknownTransaction(pending_id.to_owned()))?;
        if !pending.pending {
            return Err(SimError::NotPending(pending_id.to_owned()));
        }
        let posted_id = self.fresh_transaction_id();
        let posted = Transaction {
            transaction_id: posted_id.clone(),
            amount: post.amount.unwrap_or(pending.amount),
            name: post.name.clone().unwrap_or_else(|| pending.name.clone()),
            date: post.date.unwrap_or(pending.date),
            authorized_date: pending.authorized_date.or(Some(pending.date)),
            pending: false,
            pending_transaction_id: Some(pending_id.to_owned()),
            ..pending
        };
        let item = self.live_item_mut(item_id)?;
        item.history.remove(pending_id).map_err(history_error)?;
        item.history.add(posted).map_err(history_error)?;
        self.after_change(item_id, 1, &[pending_id.to_owned()]);
        Ok(posted_id)
    }

    pub(crate) fn generate_history(
        &mut self,
        item_id: &str,
        spec: &HistorySpec,
    ) -> Result<Vec<String>, SimError> {
        let account_ids: Vec<String> = self
            .live_item_mut(item_id)?
            .accounts
            .iter()
            .map(|a| a.account_id.clone())
            .collect();
        let new = generate(spec, &account_ids, Utc::now().date_naive());
        self.add_transactions(item_id, new)
    }

    /// The real change a `mutate: true` pagination fault makes: +1.00 on one live transaction.
    pub(crate) fn mutate_for_fault(&mut self, item_id: &str) {
        let Ok(item) = self.live_item_mut(item_id) else {
            return;
        };
        let Some(txn) = item.history.live().next().cloned() else {
            return;
        };
        let patch = TransactionPatch {
            amount: Some(((txn.amount + 1.0) * 100.0).round() / 100.0),
            ..TransactionPatch::default()
        };
        let _ = self.modify_transaction(item_id, &txn.transaction_id, &patch);
    }

    /// Bookkeeping after the item's transactions changed: timestamps and automatic webhooks.
    fn after_change(&mut self, item_id: &str, added: u64, removed: &[String]) {
        let Some(item) = self.items.get_mut(item_id) else {
            return;
        };
        item.last_successful_update = Some(Utc::now());
        if item.ready == ReadyState::NotReady {
            return;
        }
        if self.config.auto_webhooks && item.sync_called {
            self.queue_webhook(item_id, &WebhookEvent::sync_updates_available());
        }
        if self.config.legacy_webhooks {
            if added > 0 {
                self.queue_webhook(
                    item_id,
                    &WebhookEvent::DefaultUpdate {
                        new_transactions: added,
                    },
                );
            }
            if !removed.is_empty() {
                let event = WebhookEvent::TransactionsRemoved {
                    removed_transactions: removed.to_vec(),
                };
                self.queue_webhook(item_id, &event);
            }
        }
    }

    pub(crate) fn mark_ready(&mut self, item_id: &str, ready: ReadyState) -> Result<(), SimError> {
        let item = self.live_item_mut(item_id)?;
        let before = item.ready;
        item.ready = ready;
        if ready == before || ready == ReadyState::NotReady {
            return Ok(());
        }
        item.last_successful_update = Some(Utc::now());
        let armed = item.sync_called;
        if self.config.auto_webhooks && armed {
            self.queue_webhook(item_id, &WebhookEvent::sync_updates_available());
        }
        if self.config.legacy_webhooks {
            if before < ReadyState::InitialUpdateComplete {
                let event = WebhookEvent::InitialUpdate {
                    new_transactions: None,
                };
                self.queue_webhook(item_id, &event);
            }
            if ready == ReadyState::HistoricalUpdateComplete {
                let event = WebhookEvent::HistoricalUpdate {
                    new_transactions: None,
                };
                self.queue_webhook(item_id, &event);
            }
        }
        Ok(())
    }

    pub(crate) fn truth(&self, item_id: &str) -> Result<Truth, SimError> {
        let item = self.item(item_id)?;
        let mut accounts: BTreeMap<String, Vec<Transaction>> = item
            .accounts
            .iter()
            .map(|a| (a.account_id.clone(), Vec::new()))
            .collect();
        for txn in item.history.live() {
            accounts
                .entry(txn.account_id.clone())
                .or_default()
                .push(txn.clone());
        }
        Ok(Truth {
            item_id: item_id.to_owned(),
            accounts,
            removed_transaction_ids: item.history.removed_ids().cloned().collect(),
            version: item.history.version(),
        })
    }

    // ---- item errors -------------------------------------------------------------------

    /// Puts the item into a lasting error (API calls that read data fail with it) and fires
    /// the matching webhook: `USER_PERMISSION_REVOKED` for that code, ITEM `ERROR` otherwise.
    pub(crate) fn set_item_error(
        &mut self,
        item_id: &str,
        status: u16,
        error: PlaidError,
    ) -> Result<(), SimError> {
        let code = error.error_code.clone();
        self.live_item_mut(item_id)?.error = Some((status, error));
        let event = if code == "USER_PERMISSION_REVOKED" {
            WebhookEvent::UserPermissionRevoked
        } else {
            WebhookEvent::ItemError { error: None }
        };
        self.queue_webhook(item_id, &event);
        Ok(())
    }

    pub(crate) fn reset_login(&mut self, item_id: &str) -> Result<(), SimError> {
        let (status, error) = PlaidError::from_code("ITEM_LOGIN_REQUIRED").expect("catalogued code");
        self.set_item_error(item_id, status, error)
    }

    /// The item recovers without going through your app's update mode: clears the error and
    /// fires `LOGIN_REPAIRED`.
    pub(crate) fn repair_login(&mut self, item_id: &str) -> Result<(), SimError> {
        self.live_item_mut(item_id)?.error = None;
        self.queue_webhook(item_id, &WebhookEvent::LoginRepaired);
        Ok(())
    }

    // ---- webhooks ----------------------------------------------------------------------

    /// Builds and signs a webhook for the item, recording it as the item's last webhook.
    pub(crate) fn build_webhook(
        &mut self,
        item_id: &str,
        event: &WebhookEvent,
    ) -> Result<SignedWebhook, SimError> {
        let now = Utc::now();
        let item = self.item(item_id)?;
        let body = webhooks::body(event, &item.facts(), now);
        let verification = webhooks::sign(&self.keys, &body, now.timestamp());
        let (webhook_type, webhook_code) = event.type_and_code();
        let url = item.webhook.clone();
        if let Some(item) = self.items.get_mut(item_id) {
            item.last_webhook = Some((now, webhook_code.to_owned()));
        }
        Ok(SignedWebhook {
            url,
            item_id: item_id.to_owned(),
            webhook_type: webhook_type.to_owned(),
            webhook_code: webhook_code.to_owned(),
            body,
            verification,
        })
    }

    /// Queues a webhook for delivery after the lock is released. Silently skipped when the
    /// item has no webhook URL, as Plaid does.
    pub(crate) fn queue_webhook(&mut self, item_id: &str, event: &WebhookEvent) {
        let has_url = self.items.get(item_id).is_some_and(|i| i.webhook.is_some());
        if !has_url {
            return;
        }
        if let Ok(hook) = self.build_webhook(item_id, event)
            && let Some(url) = hook.url.clone()
        {
            self.outbox.push((url, hook));
        }
    }

    /// Queues a webhook to an explicit URL (for `WEBHOOK_UPDATE_ACKNOWLEDGED`).
    pub(crate) fn queue_webhook_to(&mut self, url: &str, item_id: &str, event: &WebhookEvent) {
        if let Ok(hook) = self.build_webhook(item_id, event) {
            self.outbox.push((url.to_owned(), hook));
        }
    }
}

fn summary(item: &Item) -> ItemSummary {
    ItemSummary {
        item_id: item.item_id.clone(),
        access_token: item.access_token.clone(),
        removed: item.removed,
        ready: item.ready,
        sync_called: item.sync_called,
        webhook: item.webhook.clone(),
        error_code: item.error.as_ref().map(|(_, e)| e.error_code.clone()),
        account_ids: item.accounts.iter().map(|a| a.account_id.clone()).collect(),
        version: item.history.version(),
        transactions: item.history.live().count(),
    }
}

fn history_error(err: HistoryError) -> SimError {
    match err {
        HistoryError::DuplicateId(id) => SimError::DuplicateTransaction(id),
        HistoryError::UnknownId(id) => SimError::UnknownTransaction(id),
    }
}

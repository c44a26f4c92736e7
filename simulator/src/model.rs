//! The data the simulator serves: accounts and transactions in Plaid's JSON shapes, plus the
//! inputs used to create and change them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// `AccountBalance`: all fields are nullable in Plaid's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balances {
    /// Funds available to spend.
    pub available: Option<f64>,
    /// Current balance; for credit accounts, the amount owed.
    pub current: Option<f64>,
    /// Credit limit, for credit accounts.
    pub limit: Option<f64>,
    /// ISO currency code (null when `unofficial_currency_code` is set).
    pub iso_currency_code: Option<String>,
    /// Non-ISO currency code, e.g. crypto.
    pub unofficial_currency_code: Option<String>,
}

/// An account as Plaid returns it (`AccountBase`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Opaque account id.
    pub account_id: String,
    /// Balances as of the last update.
    pub balances: Balances,
    /// Last 2–4 digits of the account number.
    pub mask: Option<String>,
    /// User- or institution-given name.
    pub name: String,
    /// Official product name.
    pub official_name: Option<String>,
    /// `depository`, `credit`, `loan`, `investment`, ...
    #[serde(rename = "type")]
    pub account_type: String,
    /// e.g. `checking`, `credit card`.
    pub subtype: Option<String>,
}

/// What to create an account from; the id is assigned by the simulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSpec {
    /// Account name.
    pub name: String,
    /// Official product name.
    #[serde(default)]
    pub official_name: Option<String>,
    /// Account number mask.
    #[serde(default)]
    pub mask: Option<String>,
    /// Plaid account type.
    #[serde(rename = "type")]
    pub account_type: String,
    /// Plaid account subtype.
    #[serde(default)]
    pub subtype: Option<String>,
    /// Starting balances.
    pub balances: Balances,
}

impl AccountSpec {
    fn usd(available: Option<f64>, current: f64, limit: Option<f64>) -> Balances {
        Balances {
            available,
            current: Some(current),
            limit,
            iso_currency_code: Some("USD".to_owned()),
            unofficial_currency_code: None,
        }
    }

    /// Sandbox's "Plaid Checking" account.
    pub fn checking() -> Self {
        AccountSpec {
            name: "Plaid Checking".to_owned(),
            official_name: Some("Plaid Gold Standard 0% Interest Checking".to_owned()),
            mask: Some("0000".to_owned()),
            account_type: "depository".to_owned(),
            subtype: Some("checking".to_owned()),
            balances: Self::usd(Some(100.0), 110.0, None),
        }
    }

    /// Sandbox's "Plaid Saving" account.
    pub fn savings() -> Self {
        AccountSpec {
            name: "Plaid Saving".to_owned(),
            official_name: Some("Plaid Silver Standard 0.1% Interest Saving".to_owned()),
            mask: Some("1111".to_owned()),
            account_type: "depository".to_owned(),
            subtype: Some("savings".to_owned()),
            balances: Self::usd(Some(200.0), 210.0, None),
        }
    }

    /// Sandbox's "Plaid Credit Card" account.
    pub fn credit_card() -> Self {
        AccountSpec {
            name: "Plaid Credit Card".to_owned(),
            official_name: Some("Plaid Diamond 12.5% APR Interest Credit Card".to_owned()),
            mask: Some("3333".to_owned()),
            account_type: "credit".to_owned(),
            subtype: Some("credit card".to_owned()),
            balances: Self::usd(None, 410.0, Some(2000.0)),
        }
    }

    /// The three accounts a Sandbox `user_good` Item has that carry transactions.
    pub fn sandbox_defaults() -> Vec<AccountSpec> {
        vec![Self::checking(), Self::savings(), Self::credit_card()]
    }
}

/// `PersonalFinanceCategory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalFinanceCategory {
    /// High-level category, e.g. `FOOD_AND_DRINK`.
    pub primary: String,
    /// Detailed category, e.g. `FOOD_AND_DRINK_COFFEE`.
    pub detailed: String,
    /// `VERY_HIGH` ... `UNKNOWN`.
    #[serde(default)]
    pub confidence_level: Option<String>,
}

/// `Location`: every field nullable but always present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Street address.
    pub address: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or region.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Merchant store number.
    pub store_number: Option<String>,
}

/// `PaymentMeta`: every field nullable but always present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaymentMeta {
    /// Reference number.
    pub reference_number: Option<String>,
    /// ACH PPD id.
    pub ppd_id: Option<String>,
    /// Receiving party.
    pub payee: Option<String>,
    /// Wire originator.
    pub by_order_of: Option<String>,
    /// Paying party.
    pub payer: Option<String>,
    /// e.g. `ACH`.
    pub payment_method: Option<String>,
    /// Payment processor.
    pub payment_processor: Option<String>,
    /// Payer-supplied reason.
    pub reason: Option<String>,
}

/// A counterparty (`TransactionCounterparty`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterparty {
    /// Counterparty name.
    pub name: String,
    /// `merchant`, `financial_institution`, ...
    #[serde(rename = "type")]
    pub counterparty_type: String,
    /// Logo URL.
    pub logo_url: Option<String>,
    /// Website.
    pub website: Option<String>,
    /// Plaid entity id.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Match confidence.
    #[serde(default)]
    pub confidence_level: Option<String>,
}

/// A transaction in Plaid's `Transaction` shape (API version 2020-09-14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Unique, case-sensitive id. A posted transaction gets a new id; the pending one is removed.
    pub transaction_id: String,
    /// Owning account.
    pub account_id: String,
    /// Positive = money out, negative = money in.
    pub amount: f64,
    /// ISO currency code.
    pub iso_currency_code: Option<String>,
    /// Non-ISO currency code.
    pub unofficial_currency_code: Option<String>,
    /// Transaction date (pending) or posted date (posted).
    pub date: NaiveDate,
    /// Date the transaction was authorised.
    pub authorized_date: Option<NaiveDate>,
    /// Posted time, when the institution provides one.
    pub datetime: Option<DateTime<Utc>>,
    /// Authorisation time, when the institution provides one.
    pub authorized_datetime: Option<DateTime<Utc>>,
    /// Lightly cleaned description.
    pub name: String,
    /// Enriched merchant name.
    pub merchant_name: Option<String>,
    /// Raw description; only returned when `include_original_description` is requested.
    pub original_description: Option<String>,
    /// Whether the transaction is still pending.
    pub pending: bool,
    /// On a posted transaction: the id of the pending transaction it replaced.
    pub pending_transaction_id: Option<String>,
    /// `online`, `in store` or `other`.
    pub payment_channel: String,
    /// Personal finance category.
    pub personal_finance_category: Option<PersonalFinanceCategory>,
    /// Category icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_finance_category_icon_url: Option<String>,
    /// Counterparties.
    #[serde(default)]
    pub counterparties: Vec<Counterparty>,
    /// Merchant entity id.
    pub merchant_entity_id: Option<String>,
    /// Merchant logo.
    pub logo_url: Option<String>,
    /// Merchant website.
    pub website: Option<String>,
    /// Where it happened.
    pub location: Location,
    /// Transfer details.
    pub payment_meta: PaymentMeta,
    /// Account owner, for multi-owner accounts.
    pub account_owner: Option<String>,
    /// Check number.
    pub check_number: Option<String>,
    /// Transaction code (mostly non-US institutions).
    pub transaction_code: Option<String>,
    /// Deprecated `digital|place|special|unresolved`.
    pub transaction_type: String,
}

/// Input for adding a transaction. Only account, amount, date and name are required; the rest
/// gets Sandbox-like defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTransaction {
    /// Account to add it to (must belong to the item).
    pub account_id: String,
    /// Positive = money out.
    pub amount: f64,
    /// Date (transaction date if pending, posted date otherwise).
    pub date: NaiveDate,
    /// Description.
    pub name: String,
    /// Pending or posted.
    #[serde(default)]
    pub pending: bool,
    /// Merchant name.
    #[serde(default)]
    pub merchant_name: Option<String>,
    /// Authorisation date (defaults to `date`).
    #[serde(default)]
    pub authorized_date: Option<NaiveDate>,
    /// `online`, `in store` or `other` (defaults from whether there is a merchant).
    #[serde(default)]
    pub payment_channel: Option<String>,
    /// Category.
    #[serde(default)]
    pub personal_finance_category: Option<PersonalFinanceCategory>,
    /// Currency (defaults to USD).
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    /// A fixed id; by default one is generated. Must be unique across the simulator.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// Links a posted transaction to a pending one (normally set by `post_pending`).
    #[serde(default)]
    pub pending_transaction_id: Option<String>,
}

impl NewTransaction {
    /// A posted transaction with defaults for everything else.
    pub fn new(account_id: &str, amount: f64, date: NaiveDate, name: &str) -> Self {
        NewTransaction {
            account_id: account_id.to_owned(),
            amount,
            date,
            name: name.to_owned(),
            pending: false,
            merchant_name: None,
            authorized_date: None,
            payment_channel: None,
            personal_finance_category: None,
            iso_currency_code: None,
            transaction_id: None,
            pending_transaction_id: None,
        }
    }

    /// Marks it pending.
    pub fn pending(mut self) -> Self {
        self.pending = true;
        self
    }

    /// Sets the merchant.
    pub fn merchant(mut self, merchant: &str) -> Self {
        self.merchant_name = Some(merchant.to_owned());
        self
    }

    pub(crate) fn into_transaction(self, transaction_id: String) -> Transaction {
        let payment_channel = self.payment_channel.unwrap_or_else(|| {
            if self.merchant_name.is_some() {
                "in store".to_owned()
            } else {
                "other".to_owned()
            }
        });
        let transaction_type = match payment_channel.as_str() {
            "online" => "digital",
            "in store" => "place",
            _ => "special",
        }
        .to_owned();
        let counterparties = self
            .merchant_name
            .iter()
            .map(|name| Counterparty {
                name: name.clone(),
                counterparty_type: "merchant".to_owned(),
                logo_url: None,
                website: None,
                entity_id: None,
                confidence_level: Some("HIGH".to_owned()),
            })
            .collect();
        Transaction {
            transaction_id,
            account_id: self.account_id,
            amount: self.amount,
            iso_currency_code: Some(self.iso_currency_code.unwrap_or_else(|| "USD".to_owned())),
            unofficial_currency_code: None,
            date: self.date,
            authorized_date: Some(self.authorized_date.unwrap_or(self.date)),
            datetime: None,
            authorized_datetime: None,
            original_description: Some(self.name.to_uppercase()),
            name: self.name,
            merchant_name: self.merchant_name,
            pending: self.pending,
            pending_transaction_id: self.pending_transaction_id,
            payment_channel,
            personal_finance_category: self.personal_finance_category,
            personal_finance_category_icon_url: None,
            counterparties,
            merchant_entity_id: None,
            logo_url: None,
            website: None,
            location: Location::default(),
            payment_meta: PaymentMeta::default(),
            account_owner: None,
            check_number: None,
            transaction_code: None,
            transaction_type,
        }
    }
}

/// A change to an existing transaction; `None` fields are left alone. The account, id and
/// pending flag cannot change in place (Plaid removes and re-adds instead).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransactionPatch {
    /// New amount.
    #[serde(default)]
    pub amount: Option<f64>,
    /// New description.
    #[serde(default)]
    pub name: Option<String>,
    /// New merchant name.
    #[serde(default)]
    pub merchant_name: Option<String>,
    /// New date.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// New authorisation date.
    #[serde(default)]
    pub authorized_date: Option<NaiveDate>,
    /// New category.
    #[serde(default)]
    pub personal_finance_category: Option<PersonalFinanceCategory>,
}

impl TransactionPatch {
    pub(crate) fn apply(&self, txn: &mut Transaction) {
        if let Some(amount) = self.amount {
            txn.amount = amount;
        }
        if let Some(name) = &self.name {
            txn.name.clone_from(name);
        }
        if let Some(merchant) = &self.merchant_name {
            txn.merchant_name = Some(merchant.clone());
        }
        if let Some(date) = self.date {
            txn.date = date;
        }
        if let Some(date) = self.authorized_date {
            txn.authorized_date = Some(date);
        }
        if let Some(pfc) = &self.personal_finance_category {
            txn.personal_finance_category = Some(pfc.clone());
        }
    }
}

/// How to post a pending transaction; `None` keeps the pending transaction's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PostPending {
    /// Final amount (e.g. with a tip added).
    #[serde(default)]
    pub amount: Option<f64>,
    /// Final description.
    #[serde(default)]
    pub name: Option<String>,
    /// Posted date (defaults to the pending date).
    #[serde(default)]
    pub date: Option<NaiveDate>,
}

/// How far the item's initial transaction pull has got (`transactions_update_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReadyState {
    /// Fresh item: `/transactions/sync` returns nothing and an empty cursor.
    NotReady,
    /// The last 30 days are available.
    InitialUpdateComplete,
    /// The full history is available.
    HistoricalUpdateComplete,
}

impl ReadyState {
    /// The `transactions_update_status` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyState::NotReady => "NOT_READY",
            ReadyState::InitialUpdateComplete => "INITIAL_UPDATE_COMPLETE",
            ReadyState::HistoricalUpdateComplete => "HISTORICAL_UPDATE_COMPLETE",
        }
    }
}

/// How to create an item directly (bypassing Link).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSpec {
    /// Institution id (default First Platypus Bank, `ins_109508`).
    #[serde(default = "default_institution_id")]
    pub institution_id: String,
    /// Institution name.
    #[serde(default = "default_institution_name")]
    pub institution_name: String,
    /// Accounts to create (default: checking, savings, credit card).
    #[serde(default = "AccountSpec::sandbox_defaults")]
    pub accounts: Vec<AccountSpec>,
    /// Webhook URL (default: the configured default, if any).
    #[serde(default)]
    pub webhook: Option<String>,
    /// Initial readiness (default `NOT_READY`, like a freshly linked item).
    #[serde(default = "default_ready")]
    pub ready: ReadyState,
    /// Products (default `["transactions"]`).
    #[serde(default = "default_products")]
    pub products: Vec<String>,
}

fn default_institution_id() -> String {
    "ins_109508".to_owned()
}
fn default_institution_name() -> String {
    "First Platypus Bank".to_owned()
}
fn default_ready() -> ReadyState {
    ReadyState::NotReady
}
fn default_products() -> Vec<String> {
    vec!["transactions".to_owned()]
}

impl Default for ItemSpec {
    fn default() -> Self {
        ItemSpec {
            institution_id: default_institution_id(),
            institution_name: default_institution_name(),
            accounts: AccountSpec::sandbox_defaults(),
            webhook: None,
            ready: ReadyState::NotReady,
            products: default_products(),
        }
    }
}

impl ItemSpec {
    /// An item whose transactions are already fully available.
    pub fn ready() -> Self {
        ItemSpec {
            ready: ReadyState::HistoricalUpdateComplete,
            ..ItemSpec::default()
        }
    }

    /// Sets the webhook URL.
    pub fn with_webhook(mut self, url: &str) -> Self {
        self.webhook = Some(url.to_owned());
        self
    }
}

/// What creating an item hands back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedItem {
    /// The new item id.
    pub item_id: String,
    /// Its access token.
    pub access_token: String,
    /// Account ids, in the order of [`ItemSpec::accounts`].
    pub account_ids: Vec<String>,
}

/// The ground truth for one item: what a correct sync client's database must contain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// The item.
    pub item_id: String,
    /// Live transactions per account id (every account present, possibly empty), sorted by
    /// transaction id.
    pub accounts: BTreeMap<String, Vec<Transaction>>,
    /// Every transaction id that existed and has since been removed (including pending ids
    /// replaced by posted transactions). None of these may remain in the client's database.
    pub removed_transaction_ids: BTreeSet<String>,
    /// The item's change-log version (number of changes so far).
    pub version: u64,
}

impl Truth {
    /// All live transactions, across accounts.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.accounts.values().flatten()
    }

    /// The number of live transactions.
    pub fn len(&self) -> usize {
        self.accounts.values().map(Vec::len).sum()
    }

    /// Whether there are no live transactions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A summary of one item's state, for listings and debugging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSummary {
    /// Item id.
    pub item_id: String,
    /// Its access token (also for removed items, for debugging).
    pub access_token: String,
    /// Whether `/item/remove` was called.
    pub removed: bool,
    /// Transactions readiness.
    pub ready: ReadyState,
    /// Whether `/transactions/sync` has been called (which arms `SYNC_UPDATES_AVAILABLE`).
    pub sync_called: bool,
    /// Registered webhook URL.
    pub webhook: Option<String>,
    /// `error_code` of the item's current error (e.g. `ITEM_LOGIN_REQUIRED`).
    pub error_code: Option<String>,
    /// Account ids.
    pub account_ids: Vec<String>,
    /// Change-log version.
    pub version: u64,
    /// Number of live transactions.
    pub transactions: usize,
}

/// The result of completing a (simulated) Link session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkCompletion {
    /// Public token to exchange.
    pub public_token: String,
    /// The item created (or repaired, in update mode).
    pub item_id: String,
    /// Whether the link token was an update-mode token.
    pub update_mode: bool,
}

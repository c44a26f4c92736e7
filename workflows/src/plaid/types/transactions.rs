//! `/transactions/sync` (SPEC `TransactionsSyncRequest`/`Response`,
//! PLAID.md §2).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, value::RawValue};

use super::{
    AccessToken, Account, Amount,
    common::{lenient_datetime, null_as_empty},
};

/// Body of `/transactions/sync`.
///
/// A page loop starts with `cursor: None` (the whole history) or the last
/// stored cursor, and continues with each response's `next_cursor` while
/// `has_more` (PLAID.md §2.5).
#[derive(Debug, Clone, Serialize)]
pub struct TransactionsSyncRequest {
    /// The Item's access token.
    pub access_token: AccessToken,
    /// Where to continue from; `None` is left out of the body, which Plaid
    /// treats like `""`: from the beginning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1–500 (Plaid's default 100). Bigger pages make
    /// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` less likely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Extra options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<TransactionsSyncOptions>,
}

impl TransactionsSyncRequest {
    /// A first-page request: no cursor, Plaid's default count, no options.
    pub fn new(access_token: AccessToken) -> Self {
        Self {
            access_token,
            cursor: None,
            count: None,
            options: None,
        }
    }

    /// The same request from `cursor`. An empty cursor means "from the
    /// beginning", so it is sent as no cursor.
    #[must_use]
    pub fn with_cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor.filter(|cursor| !cursor.is_empty());
        self
    }
}

/// `options` of `/transactions/sync` (SPEC `TransactionsSyncRequestOptions`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransactionsSyncOptions {
    /// Fill in `original_description` (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_original_description: Option<bool>,
    /// History to pull, 1–730 (default 90); only honoured the first time
    /// Transactions is initialised on the Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
    /// Sync one account only: a separate stream with its own cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `v1` or `v2` of the personal finance category taxonomy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_finance_category_version: Option<String>,
}

/// Response of `/transactions/sync`.
#[derive(Debug, Clone, Deserialize)]
pub struct TransactionsSyncResponse {
    /// How far Plaid's own pull of the Item has got.
    #[serde(default)]
    pub transactions_update_status: TransactionsUpdateStatus,
    /// Accounts that have transactions in this page.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub accounts: Vec<Account>,
    /// New since the cursor, oldest change first.
    #[serde(default, deserialize_with = "transactions_with_raw")]
    pub added: Vec<Transaction>,
    /// Changed since the cursor.
    #[serde(default, deserialize_with = "transactions_with_raw")]
    pub modified: Vec<Transaction>,
    /// Removed since the cursor (including pending ones that posted).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub removed: Vec<RemovedTransaction>,
    /// The cursor for the next call. `""` while transactions are not ready;
    /// the docs also describe a `null` cursor then, which parses as `""` too
    /// (PLAID.md §9).
    #[serde(default, deserialize_with = "null_as_empty_string")]
    pub next_cursor: String,
    /// More pages follow; keep calling with `next_cursor`.
    #[serde(default)]
    pub has_more: bool,
    /// Plaid's request id.
    pub request_id: String,
}

open_enum! {
    /// `transactions_update_status` (SPEC `TransactionsUpdateStatus`).
    #[derive(Default)]
    pub enum TransactionsUpdateStatus {
        /// `TRANSACTIONS_UPDATE_STATUS_UNKNOWN`, also used when the field is missing.
        #[default]
        StatusUnknown = "TRANSACTIONS_UPDATE_STATUS_UNKNOWN",
        /// `NOT_READY`: the first pull is still pending.
        NotReady = "NOT_READY",
        /// `INITIAL_UPDATE_COMPLETE`: the last 30 days are in.
        InitialUpdateComplete = "INITIAL_UPDATE_COMPLETE",
        /// `HISTORICAL_UPDATE_COMPLETE`: all requested history is in.
        HistoricalUpdateComplete = "HISTORICAL_UPDATE_COMPLETE",
    }
}

/// A removed transaction (SPEC `RemovedTransaction`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemovedTransaction {
    /// The removed transaction.
    pub transaction_id: String,
    /// Its account.
    pub account_id: String,
}

/// A transaction (SPEC `Transaction`, PLAID.md §2.3): the fields the sync
/// engine uses, typed, plus the whole object's text ([`raw`](Self::raw)).
#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    /// Unique and case-sensitive. A pending transaction that posts gets a
    /// new id.
    pub transaction_id: String,
    /// Its account.
    pub account_id: String,
    /// Positive means money left the account; negative means it came in.
    pub amount: Amount,
    /// ISO-4217 code; null when `unofficial_currency_code` is set.
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    /// e.g. a crypto currency.
    #[serde(default)]
    pub unofficial_currency_code: Option<String>,
    /// Posted date, or the transaction date while pending.
    pub date: NaiveDate,
    /// When the user made the purchase; better for display.
    #[serde(default)]
    pub authorized_date: Option<NaiveDate>,
    /// Posted time, for some institutions; `None` if unparseable.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub datetime: Option<DateTime<Utc>>,
    /// Authorised time, for some institutions; `None` if unparseable.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub authorized_datetime: Option<DateTime<Utc>>,
    /// Lightly cleaned bank description (deprecated by Plaid, still sent).
    #[serde(default)]
    pub name: String,
    /// Enriched merchant name.
    #[serde(default)]
    pub merchant_name: Option<String>,
    /// Plaid's merchant entity id.
    #[serde(default)]
    pub merchant_entity_id: Option<String>,
    /// The raw bank description, if requested.
    #[serde(default)]
    pub original_description: Option<String>,
    /// Not yet posted.
    #[serde(default)]
    pub pending: bool,
    /// On a posted transaction, the pending one it replaced.
    #[serde(default)]
    pub pending_transaction_id: Option<String>,
    /// `online`, `in store` or `other`.
    #[serde(default)]
    pub payment_channel: Option<PaymentChannel>,
    /// Plaid's category.
    #[serde(default)]
    pub personal_finance_category: Option<PersonalFinanceCategory>,
    /// Merchant logo.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Merchant website.
    #[serde(default)]
    pub website: Option<String>,
    /// Check number, for checks.
    #[serde(default)]
    pub check_number: Option<String>,
    /// Only for some institutions.
    #[serde(default)]
    pub account_owner: Option<String>,
    /// Transaction code (EU/UK), e.g. `purchase`.
    #[serde(default)]
    pub transaction_code: Option<String>,
    /// The whole transaction object's JSON text exactly as received, unknown
    /// fields included (see [`Transaction::raw`]). Kept as text, not as a
    /// `Value`: building a `Value` tree for every transaction of a page cost
    /// more than the rest of the page's parse. Filled in by
    /// [`Transaction::from_value`] and by [`TransactionsSyncResponse`];
    /// `None` if the struct was deserialized on its own.
    #[serde(skip)]
    raw_text: Option<Box<RawValue>>,
}

impl Transaction {
    /// Parses a transaction object and keeps it as [`raw`](Self::raw).
    pub fn from_value(raw: Value) -> Result<Self, serde_json::Error> {
        let mut transaction = Self::deserialize(&raw)?;
        transaction.raw_text = Some(serde_json::value::to_raw_value(&raw)?);
        Ok(transaction)
    }

    /// Parses a transaction object from its JSON text and keeps the text.
    pub fn from_raw(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let mut transaction: Self = serde_json::from_str(raw.get())?;
        transaction.raw_text = Some(raw);
        Ok(transaction)
    }

    /// The whole object as a `Value` (parsed on each call; `Null` if the
    /// struct was deserialized on its own).
    pub fn raw(&self) -> Value {
        self.raw_json()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null)
    }

    /// The whole object's JSON text, as received.
    pub fn raw_json(&self) -> Option<&str> {
        self.raw_text.as_deref().map(RawValue::get)
    }
}

open_enum! {
    /// `payment_channel`.
    pub enum PaymentChannel {
        /// `online`
        Online = "online",
        /// `in store` (with a space)
        InStore = "in store",
        /// `other`: fees, deposits, transfers.
        Other = "other",
    }
}

/// `personal_finance_category`.
#[derive(Debug, Clone, Deserialize)]
pub struct PersonalFinanceCategory {
    /// e.g. `GENERAL_MERCHANDISE`.
    pub primary: String,
    /// e.g. `GENERAL_MERCHANDISE_SUPERSTORES`.
    pub detailed: String,
    /// `VERY_HIGH` … `LOW`, `UNKNOWN`.
    #[serde(default)]
    pub confidence_level: Option<String>,
    /// Taxonomy version, `v1` or `v2`.
    #[serde(default)]
    pub version: Option<String>,
}

fn transactions_with_raw<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Transaction>, D::Error> {
    null_as_empty::<D, Box<RawValue>>(deserializer)?
        .into_iter()
        .map(|raw| Transaction::from_raw(raw).map_err(serde::de::Error::custom))
        .collect()
}

fn null_as_empty_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

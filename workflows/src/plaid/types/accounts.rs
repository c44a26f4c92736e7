//! `/accounts/get` and the account object (SPEC `AccountBase`, PLAID.md §2.3).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    AccessToken, AccountType, Amount, Item,
    common::{lenient_datetime, null_as_empty},
};

/// Body of `/accounts/get`. Free, and serves cached balances (PLAID.md §6).
#[derive(Debug, Clone, Serialize)]
pub struct AccountsGetRequest {
    /// The Item's access token.
    pub access_token: AccessToken,
    /// Filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<AccountsGetOptions>,
}

impl AccountsGetRequest {
    /// All of the Item's active accounts.
    pub fn new(access_token: AccessToken) -> Self {
        Self {
            access_token,
            options: None,
        }
    }
}

/// `options` of `/accounts/get`.
#[derive(Debug, Clone, Serialize)]
pub struct AccountsGetOptions {
    /// Only these accounts.
    pub account_ids: Vec<String>,
}

/// Response of `/accounts/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountsGetResponse {
    /// The Item's active accounts.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub accounts: Vec<Account>,
    /// The Item they belong to.
    pub item: Item,
    /// Plaid's request id.
    pub request_id: String,
}

/// One bank account.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// Plaid's id; can change if Plaid cannot reconcile the account.
    pub account_id: String,
    /// Cached balances.
    pub balances: AccountBalances,
    /// Last 2–4 characters of the account number.
    #[serde(default)]
    pub mask: Option<String>,
    /// The name the user or bank gave the account.
    #[serde(default)]
    pub name: String,
    /// The bank's official product name.
    #[serde(default)]
    pub official_name: Option<String>,
    /// `depository`, `credit`, ….
    #[serde(rename = "type")]
    pub account_type: AccountType,
    /// e.g. `checking`, `credit card`, `401k` (a long, growing list, so a
    /// string).
    #[serde(default)]
    pub subtype: Option<String>,
    /// Stable across re-links at some institutions.
    #[serde(default)]
    pub persistent_account_id: Option<String>,
}

/// `balances` of an account (SPEC `AccountBalance`). All nullable.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountBalances {
    /// Spendable funds.
    #[serde(default)]
    pub available: Option<Amount>,
    /// Total; for credit accounts, a positive value is money owed.
    #[serde(default)]
    pub current: Option<Amount>,
    /// Credit limit or overdraft limit.
    #[serde(default)]
    pub limit: Option<Amount>,
    /// ISO-4217 code; null when `unofficial_currency_code` is set.
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    /// e.g. a crypto currency.
    #[serde(default)]
    pub unofficial_currency_code: Option<String>,
    /// Only for some institutions.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub last_updated_datetime: Option<DateTime<Utc>>,
}

//! Enums shared by several endpoints, plus lenient parsing helpers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

open_enum! {
    /// A Plaid product (SPEC `Products`; only the ones we are likely to see
    /// are named, the rest arrive as `Unknown`).
    pub enum Product {
        /// `transactions`
        Transactions = "transactions",
        /// `auth`
        Auth = "auth",
        /// `balance`
        Balance = "balance",
        /// `identity`
        Identity = "identity",
        /// `investments`
        Investments = "investments",
        /// `liabilities`
        Liabilities = "liabilities",
        /// `assets`
        Assets = "assets",
        /// `recurring_transactions`
        RecurringTransactions = "recurring_transactions",
        /// `transactions_refresh`
        TransactionsRefresh = "transactions_refresh",
    }
}

open_enum! {
    /// An account's `type` (SPEC `AccountType`, PLAID.md §2.3).
    pub enum AccountType {
        /// `depository`: checking, savings, …
        Depository = "depository",
        /// `credit`: a positive `current` balance is money owed.
        Credit = "credit",
        /// `loan`
        Loan = "loan",
        /// `investment`
        Investment = "investment",
        /// `brokerage`
        Brokerage = "brokerage",
        /// `other`
        Other = "other",
    }
}

open_enum! {
    /// A webhook's `webhook_type` (SPEC `WebhookType`).
    pub enum WebhookType {
        /// `TRANSACTIONS`
        Transactions = "TRANSACTIONS",
        /// `ITEM`
        Item = "ITEM",
        /// `AUTH`
        Auth = "AUTH",
        /// `HOLDINGS`
        Holdings = "HOLDINGS",
        /// `INVESTMENTS_TRANSACTIONS`
        InvestmentsTransactions = "INVESTMENTS_TRANSACTIONS",
        /// `LIABILITIES`
        Liabilities = "LIABILITIES",
        /// `ASSETS`
        Assets = "ASSETS",
    }
}

/// Reads a nullable date-time, turning text that isn't RFC 3339 into `None`
/// instead of failing the whole response.
///
/// Plaid says these come "as provided by the institution" (PLAID.md §2.3),
/// and a transaction's raw JSON keeps the original text anyway.
pub(crate) fn lenient_datetime<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.and_then(|text| {
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|parsed| parsed.with_timezone(&Utc))
    }))
}

/// Reads a list that may be missing or `null` as empty.
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

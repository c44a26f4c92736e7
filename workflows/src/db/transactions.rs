//! `transactions`: reads for the user API (the sync engine writes them, see
//! [`crate::sync`]).

use chrono::NaiveDate;
use sqlx::PgConnection;

/// A transaction as the user API shows it: every contract column except
/// `raw_json` (Plaid's payload stays internal).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransactionView {
    /// Internal id; the second half of the page order.
    pub id: i64,
    /// Plaid's `transaction_id`.
    pub external_id: String,
    /// `numeric` rendered by PostgreSQL as text, so no precision is lost on the way.
    pub amount: String,
    /// ISO 4217 code, when Plaid gave one.
    pub iso_currency_code: Option<String>,
    /// Posting (or, while pending, expected) date; the first half of the page order.
    pub date: NaiveDate,
    /// When the purchase was authorized.
    pub authorized_date: Option<NaiveDate>,
    /// Description.
    pub name: Option<String>,
    /// Merchant, when Plaid recognised one.
    pub merchant_name: Option<String>,
    /// Not yet posted.
    pub pending: bool,
    /// For a posted transaction, the `external_id` of the pending one it replaced.
    pub pending_external_id: Option<String>,
    /// Tombstone: Plaid removed it (`raw_json.source_removed`), the row is kept.
    pub archived: bool,
}

/// Where a page starts: strictly after this `(date, id)` in the page order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey {
    /// `date` of the last row of the previous page.
    pub date: NaiveDate,
    /// `id` of the last row of the previous page.
    pub id: i64,
}

impl From<&TransactionView> for PageKey {
    fn from(row: &TransactionView) -> Self {
        Self {
            date: row.date,
            id: row.id,
        }
    }
}

/// Up to `limit` transactions of one account, newest first: ordered by
/// (`date` desc, `id` desc), `id` breaking ties between rows of the same date
/// so the order is total and stable while rows are added.
///
/// Keyset pagination, no `OFFSET`: with `after`, only rows strictly below that
/// `(date, id)` are returned, so a page costs the same however deep it is, and
/// rows inserted or archived between two requests neither shift nor repeat
/// rows across pages. The row comparison is an index condition of
/// `transactions_account_date (account_id, date desc, id desc)`
/// (`migrations/20261128000001_foundation.sql`); without `after` it compares
/// against `('infinity', i64::MAX)`, which every row is below, so both cases
/// are the same statement and plan.
///
/// Tombstones (`archived`) are left out unless `include_archived`; that is a
/// filter on the index scan, not a condition of the index (they are few).
///
/// The caller checks that the account is the user's: this reads by account.
pub async fn page_for_account(
    conn: &mut PgConnection,
    account_id: i64,
    after: Option<PageKey>,
    include_archived: bool,
    limit: i64,
) -> Result<Vec<TransactionView>, sqlx::Error> {
    sqlx::query_as(
        "select id, external_id, amount::text as amount, iso_currency_code, date, authorized_date,
                name, merchant_name, pending, pending_external_id, archived
         from transactions
         where account_id = $1
           and (date, id) < (coalesce($2, 'infinity'::date), coalesce($3, 9223372036854775807::bigint))
           and ($4 or not archived)
         order by date desc, id desc
         limit $5",
    )
    .bind(account_id)
    .bind(after.map(|k| k.date))
    .bind(after.map(|k| k.id))
    .bind(include_archived)
    .bind(limit)
    .fetch_all(conn)
    .await
}

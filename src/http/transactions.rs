//! `GET /api/accounts/{id}/transactions`: one page of an account's
//! transactions, newest first, with a cursor for the next page.
//!
//! - Order: (`date` desc, `id` desc); `id` breaks ties within a date, so the
//!   order is total and a row is never lost or repeated across pages.
//! - `limit`: 1 to 500 rows, default 50; anything else is a 400 `invalid_limit`.
//! - `after`: the `next_cursor` of the previous page, opaque to clients
//!   (base64url, unpadded, of `<date>|<id>` of that page's last row). One we did
//!   not issue is a 400 `invalid_cursor`. Pages are keyset pages
//!   ([`transactions::page_for_account`]), not offsets: rows added between two
//!   requests do not shift later pages.
//! - `include_archived`: `true` or `false` (default); tombstones (transactions
//!   Plaid removed) are hidden unless `true`, then shown with `archived: true`.
//!   Anything else is a 400 `invalid_include_archived`.
//! - An empty parameter (`after=`) counts as absent, so a client may always send
//!   all three; a query string that does not parse (a repeated parameter) is a
//!   400 `invalid_query`.
//! - Another user's account is a 404, exactly like one that does not exist.
//!   Archived (unlinked) accounts keep their transactions and still list them.
//! - `raw_json` is never returned: `amount` is a string (PostgreSQL's rendering
//!   of the `numeric`), so no precision is lost in a JSON number.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::db::{
    accounts,
    transactions::{self, PageKey, TransactionView},
};

use super::{
    auth::AuthUser,
    error::{AppError, AppResult},
};
use crate::state::AppState;

/// Rows per page when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit`.
pub const MAX_LIMIT: i64 = 500;

/// The query string; every value is parsed here, so each mistake has its own code.
#[derive(Debug, Deserialize)]
pub struct TransactionsQuery {
    /// Rows per page.
    pub limit: Option<String>,
    /// Cursor from the previous page.
    pub after: Option<String>,
    /// Include tombstones.
    pub include_archived: Option<String>,
}

/// One transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionJson {
    /// Internal id.
    pub id: i64,
    /// Plaid's `transaction_id`.
    pub external_id: String,
    /// Decimal amount as a string (exact), positive for money out, as Plaid reports it.
    #[schema(example = "12.50")]
    pub amount: String,
    /// ISO 4217 currency code.
    pub iso_currency_code: Option<String>,
    /// Posting date (expected date while pending).
    pub date: NaiveDate,
    /// Authorization date.
    pub authorized_date: Option<NaiveDate>,
    /// Description.
    pub name: Option<String>,
    /// Merchant.
    pub merchant_name: Option<String>,
    /// Not yet posted.
    pub pending: bool,
    /// For a posted transaction, the `external_id` of the pending one it replaced.
    pub pending_external_id: Option<String>,
    /// Removed by Plaid (only listed with `include_archived=true`).
    pub archived: bool,
}

impl From<TransactionView> for TransactionJson {
    fn from(t: TransactionView) -> Self {
        Self {
            id: t.id,
            external_id: t.external_id,
            amount: t.amount,
            iso_currency_code: t.iso_currency_code,
            date: t.date,
            authorized_date: t.authorized_date,
            name: t.name,
            merchant_name: t.merchant_name,
            pending: t.pending,
            pending_external_id: t.pending_external_id,
            archived: t.archived,
        }
    }
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionPage {
    /// Newest first: by date, then by id, descending.
    pub transactions: Vec<TransactionJson>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn bad_request(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::status(StatusCode::BAD_REQUEST, code, message)
}

/// `None` for an absent or empty parameter.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn parse_limit(raw: Option<String>) -> AppResult<i64> {
    let Some(raw) = present(raw) else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            bad_request(
                "invalid_limit",
                format!("limit must be an integer from 1 to {MAX_LIMIT}"),
            )
        })
}

fn parse_include_archived(raw: Option<String>) -> AppResult<bool> {
    match present(raw).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_request(
            "invalid_include_archived",
            "include_archived must be true or false",
        )),
    }
}

/// The cursor after `key`.
pub fn encode_cursor(key: PageKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", key.date.format("%Y-%m-%d"), key.id))
}

/// The key a cursor from [`encode_cursor`] carries; `None` for anything else,
/// including dates PostgreSQL cannot hold (which would otherwise fail the query).
pub fn decode_cursor(cursor: &str) -> Option<PageKey> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (date, id) = text.split_once('|')?;
    let key = PageKey {
        date: NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?,
        id: id.parse().ok()?,
    };
    // PostgreSQL's earliest date (4714-11-24 BC); chrono's latest is below its latest.
    let earliest = NaiveDate::from_ymd_opt(-4713, 11, 24)?;
    // Only the canonical spelling: one row, one cursor.
    (key.date >= earliest && encode_cursor(key) == cursor).then_some(key)
}

fn parse_after(raw: Option<String>) -> AppResult<Option<PageKey>> {
    present(raw)
        .map(|cursor| {
            decode_cursor(&cursor).ok_or_else(|| {
                bad_request(
                    "invalid_cursor",
                    "after must be the next_cursor of a previous page",
                )
            })
        })
        .transpose()
}

/// One page of the caller's account's transactions, newest first.
#[utoipa::path(get, path = "/api/accounts/{id}/transactions", tag = "accounts", security(("api_token" = [])),
    params(
        ("id" = i64, Path, description = "Account id"),
        ("limit" = Option<i64>, Query, description = "Rows per page, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("after" = Option<String>, Query, description = "`next_cursor` of the previous page (opaque)"),
        ("include_archived" = Option<bool>, Query, description = "Also list transactions Plaid removed, with `archived: true` (default false)")),
    responses(
        (status = 200, description = "One page, newest first; `next_cursor` is null on the last page", body = TransactionPage),
        (status = 400, description = "invalid_limit, invalid_cursor, invalid_include_archived or invalid_query; invalid_text for a NUL in the URI", body = super::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody),
        (status = 404, description = "Not the caller's account", body = super::error::ErrorBody),
        (status = 413, description = "A declared body over 64 KiB (the route takes none)", body = super::error::ErrorBody),
        (status = 503, description = "database_unavailable: retry later", body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    query: Result<Query<TransactionsQuery>, QueryRejection>,
) -> AppResult<Json<TransactionPage>> {
    // An id that is not a number names no account: 404 like any other (as DELETE does).
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("account"))?;
    let Query(query) = query.map_err(|e| bad_request("invalid_query", e.body_text()))?;
    let limit = parse_limit(query.limit)?;
    let after = parse_after(query.after)?;
    let include_archived = parse_include_archived(query.include_archived)?;

    let mut conn = state.pool.acquire().await?;
    if accounts::provider_of(&mut conn, user.id, id).await?.is_none() {
        return Err(AppError::NotFound("account"));
    }
    // One row more than asked tells whether a next page exists, so the last
    // page says so itself (no empty page to fetch).
    let mut rows = transactions::page_for_account(&mut conn, id, after, include_archived, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|last| encode_cursor(last.into()))
    } else {
        None
    };
    Ok(Json(TransactionPage {
        transactions: rows.into_iter().map(TransactionJson::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_only_canonical_ones_decode() {
        let key = PageKey {
            date: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            id: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(key)), Some(key));
        for bad in [
            "",
            "!!!",
            "MjAyNi0xMS0yOHw0Mg==",                    // padded
            &URL_SAFE_NO_PAD.encode("2026-11-28"),     // no id
            &URL_SAFE_NO_PAD.encode("2026-11-28|x"),   // id not a number
            &URL_SAFE_NO_PAD.encode("2026-13-01|1"),   // no such date
            &URL_SAFE_NO_PAD.encode("2026-11-28|+42"), // not canonical
            &URL_SAFE_NO_PAD.encode("-5000-01-01|1"),  // before PostgreSQL's dates
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }
}

//! Fetching an update: `/transactions/sync` from the stored cursor, every
//! page, each page applied on the run's transaction as it arrives (see
//! [`super::apply`]) so memory stays bounded by one page whatever the history
//! size. Nothing is visible until the run commits.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::{SyncError, SyncSettings, apply::apply_page, lease::Lease};
use crate::plaid::{
    AccessToken, PlaidClient,
    types::{Account, TransactionsSyncRequest, TransactionsUpdateStatus},
};

/// Plaid's largest page (fewer pages: fewer calls, fewer mutation restarts).
pub const PAGE_SIZE: u32 = 500;

/// A fully fetched update, applied on the run's (uncommitted) transaction.
#[derive(Debug)]
pub struct Fetched {
    /// The cursor to store once applied.
    pub next_cursor: String,
    /// Latest balances per Plaid account id.
    pub balances: HashMap<String, Account>,
    /// Pages fetched.
    pub pages: u32,
    /// Entries received (added + modified + removed).
    pub staged: u64,
    /// Plaid's `added` entries over all pages (for metrics).
    pub added: u64,
    /// Plaid's `modified` entries over all pages.
    pub modified: u64,
    /// Plaid's `removed` entries over all pages.
    pub removed: u64,
    /// Rows inserted or updated by the pages.
    pub upserted: u64,
    /// Rows tombstoned by the pages.
    pub tombstoned: u64,
    /// Plaid said the item's transactions are not ready yet.
    pub not_ready: bool,
}

/// A page fetched but not yet applied: Plaid's exact JSON text.
struct Unapplied {
    body: bytes::Bytes,
}

/// Fetches every page of one update from `lease.cursor`, applying each on
/// `conn` (the run's transaction). On
/// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` the caller rolls back and
/// restarts.
///
/// Page *k* is applied while page *k + 1* is fetched: the two use different
/// resources (PostgreSQL; Plaid and this process's parser), so a page costs
/// the slower of the two rather than their sum. Both finish before the loop
/// goes on or returns, so no write of this run is in flight when it returns.
pub async fn fetch_update(
    conn: &mut PgConnection,
    plaid: &PlaidClient,
    settings: &SyncSettings,
    lease: &Lease,
    access_token: &AccessToken,
) -> Result<Fetched, SyncError> {
    let mut cursor = lease.cursor.clone();
    let mut fetched = Fetched {
        next_cursor: String::new(),
        balances: HashMap::new(),
        pages: 0,
        staged: 0,
        added: 0,
        modified: 0,
        removed: 0,
        upserted: 0,
        tombstoned: 0,
        not_ready: false,
    };
    let mut unapplied: Option<Unapplied> = None;
    loop {
        let request = TransactionsSyncRequest {
            count: Some(PAGE_SIZE),
            ..TransactionsSyncRequest::new(access_token.clone()).with_cursor(cursor.clone())
        };
        let fetch = async {
            settings.limits.wait_for_sync_call(lease.plaid_item_id).await;
            plaid.transactions_sync_page(&request).await
        };
        let previous = unapplied.take();
        let conn_for_apply = &mut *conn;
        let apply = async move {
            match previous {
                Some(page) => apply_unapplied(conn_for_apply, lease, page).await,
                None => Ok((0, 0)),
            }
        };
        let (fetched_page, applied) = tokio::join!(fetch, apply);
        let (upserted, tombstoned) = applied?;
        fetched.upserted += upserted;
        fetched.tombstoned += tombstoned;
        let (page, body) = fetched_page?;
        fetched.pages += 1;
        if page.transactions_update_status == TransactionsUpdateStatus::NotReady
            && page.next_cursor.is_empty()
        {
            fetched.not_ready = true;
            return Ok(fetched);
        }
        let entries = page.added.len() + page.modified.len() + page.removed.len();
        fetched.added += page.added.len() as u64;
        fetched.modified += page.modified.len() as u64;
        fetched.removed += page.removed.len() as u64;
        fetched.staged += entries as u64;
        if entries > 0 {
            unapplied = Some(Unapplied { body });
        }
        for account in page.accounts {
            fetched.balances.insert(account.account_id.clone(), account);
        }
        fetched.next_cursor = page.next_cursor;
        if !page.has_more {
            if let Some(last) = unapplied.take() {
                let (upserted, tombstoned) = apply_unapplied(conn, lease, last).await?;
                fetched.upserted += upserted;
                fetched.tombstoned += tombstoned;
            }
            return Ok(fetched);
        }
        cursor = Some(fetched.next_cursor.clone());
    }
}

async fn apply_unapplied(
    conn: &mut PgConnection,
    lease: &Lease,
    page: Unapplied,
) -> Result<(u64, u64), sqlx::Error> {
    // serde_json accepted these bytes a moment ago, so they are UTF-8.
    let text = std::str::from_utf8(&page.body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    apply_page(conn, lease.plaid_item_id, text).await
}

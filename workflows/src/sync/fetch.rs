//! Fetching an update: `/transactions/sync` from the stored cursor, every
//! page, each page applied on the run's transaction as it arrives (see
//! [`super::apply`]) so memory stays bounded by one page whatever the history
//! size. Nothing is visible until the run commits. An item's first update
//! into empty accounts is streamed into one `COPY` ([`super::initial_load`]).

use std::collections::HashMap;

use bytes::Bytes;
use sqlx::PgConnection;

use super::{
    SyncError, SyncSettings,
    apply::apply_page,
    initial_load::{CopyRows, InitialLoad},
    lease::Lease,
};
use crate::plaid::{
    AccessToken, PlaidClient,
    types::{Account, TransactionsSyncRequest, TransactionsUpdateStatus},
};

/// Plaid's largest page (fewer pages: fewer calls, fewer mutation restarts).
pub const PAGE_SIZE: u32 = 500;

/// A fully fetched update, applied on the run's (uncommitted) transaction.
#[derive(Debug, Default)]
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
    /// Rows of `upserted` written by `COPY` (an initial load).
    pub copied: u64,
    /// Plaid said the item's transactions are not ready yet.
    pub not_ready: bool,
}

/// Fetches every page of one update from `lease.cursor`, applying each on
/// `conn` (the run's transaction). On
/// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` the caller rolls back and
/// restarts. With `copy_allowed`, the pages of an initial load go into `COPY`
/// (see [`super::initial_load`]); the caller turns it off to redo an update
/// whose `COPY` met a repeated transaction.
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
    copy_allowed: bool,
) -> Result<Fetched, SyncError> {
    let initial_load = if copy_allowed {
        InitialLoad::plan(conn, lease.plaid_item_id, lease.cursor.as_deref()).await?
    } else {
        None
    };
    let mut pager = Pager {
        plaid,
        settings,
        lease,
        access_token,
        cursor: lease.cursor.clone(),
        fetched: Fetched::default(),
        done: false,
    };
    let mut page = pager.next().await?;
    loop {
        let Some(body) = page.take() else {
            if pager.done {
                return Ok(pager.fetched);
            }
            page = pager.next().await?;
            continue;
        };
        let text = page_text(&body)?;
        if let Some(load) = &initial_load
            && let Some(rows) = load.rows(text)
        {
            page = copy_segment(conn, load, &mut pager, rows).await?;
            continue;
        }
        let (applied, next) = if pager.done {
            (apply_page(conn, lease.plaid_item_id, text).await, Ok(None))
        } else {
            tokio::join!(apply_page(conn, lease.plaid_item_id, text), pager.next())
        };
        let (upserted, tombstoned) = applied?;
        pager.fetched.upserted += upserted;
        pager.fetched.tombstoned += tombstoned;
        page = next?;
    }
}

/// Loads `first` and every following page that qualifies into one `COPY`
/// (one statement costs PostgreSQL far less than a statement per page),
/// fetching each next page while the previous one streams in. Returns the
/// page that ended the segment (it goes through the upsert), if any.
async fn copy_segment(
    conn: &mut PgConnection,
    initial_load: &InitialLoad,
    pager: &mut Pager<'_>,
    first: CopyRows,
) -> Result<Option<Bytes>, SyncError> {
    let mut segment = initial_load.begin_copy(conn).await?;
    let mut rows = Some(first);
    let leftover = loop {
        let send = async {
            match rows.take() {
                Some(rows) => segment.send(rows).await,
                None => Ok(()),
            }
        };
        if pager.done {
            if let Err(e) = send.await {
                segment.abort().await;
                return Err(e.into());
            }
            break None;
        }
        let (sent, next) = tokio::join!(send, pager.next());
        let next = match (sent, next) {
            (Ok(()), Ok(next)) => next,
            (Err(e), _) => {
                segment.abort().await;
                return Err(e.into());
            }
            (Ok(()), Err(e)) => {
                segment.abort().await;
                return Err(e);
            }
        };
        // A page without entries leaves the segment open.
        let Some(body) = next else { continue };
        match page_text(&body).ok().and_then(|text| initial_load.rows(text)) {
            Some(more) => rows = Some(more),
            None => break Some(body),
        }
    };
    let (written, tombstoned) = segment.finish().await?.tombstone_replaced_pending(conn).await?;
    pager.fetched.upserted += written;
    pager.fetched.copied += written;
    pager.fetched.tombstoned += tombstoned;
    Ok(leftover)
}

/// The page's text (serde_json accepted these bytes a moment ago, so they
/// are UTF-8).
fn page_text(body: &Bytes) -> Result<&str, sqlx::Error> {
    std::str::from_utf8(body).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Walks the update's pages from its first cursor, keeping the counts, the
/// balances and the next cursor.
struct Pager<'a> {
    plaid: &'a PlaidClient,
    settings: &'a SyncSettings,
    lease: &'a Lease,
    access_token: &'a AccessToken,
    cursor: Option<String>,
    fetched: Fetched,
    /// The last page has been fetched (or Plaid said "not ready").
    done: bool,
}

impl Pager<'_> {
    /// Fetches the next page: its JSON text when it has entries to apply.
    async fn next(&mut self) -> Result<Option<Bytes>, SyncError> {
        let request = TransactionsSyncRequest {
            count: Some(PAGE_SIZE),
            ..TransactionsSyncRequest::new(self.access_token.clone()).with_cursor(self.cursor.clone())
        };
        self.settings
            .limits
            .wait_for_sync_call(self.lease.plaid_item_id)
            .await;
        let (page, body) = self.plaid.transactions_sync_page(&request).await?;
        let fetched = &mut self.fetched;
        fetched.pages += 1;
        if page.transactions_update_status == TransactionsUpdateStatus::NotReady
            && page.next_cursor.is_empty()
        {
            fetched.not_ready = true;
            self.done = true;
            return Ok(None);
        }
        let entries = page.added.len() + page.modified.len() + page.removed.len();
        fetched.added += page.added.len() as u64;
        fetched.modified += page.modified.len() as u64;
        fetched.removed += page.removed.len() as u64;
        fetched.staged += entries as u64;
        for account in page.accounts {
            fetched.balances.insert(account.account_id.clone(), account);
        }
        fetched.next_cursor = page.next_cursor;
        self.done = !page.has_more;
        self.cursor = Some(fetched.next_cursor.clone());
        Ok((entries > 0).then_some(body))
    }
}

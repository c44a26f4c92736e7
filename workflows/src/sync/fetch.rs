//! Fetching an update: `/transactions/sync` from the stored cursor, every page,
//! each page staged in `sync_staging` as it arrives so memory stays bounded by
//! one page whatever the history size. Nothing is applied here.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::PgPool;

use super::{SyncError, SyncSettings, lease::Lease};
use crate::plaid::{
    AccessToken, PlaidClient,
    types::{Account, TransactionsSyncRequest, TransactionsUpdateStatus},
};

/// Plaid's largest page (fewer pages: fewer calls, fewer mutation restarts).
pub const PAGE_SIZE: u32 = 500;

/// A fully fetched update, staged and ready to apply.
#[derive(Debug)]
pub struct Fetched {
    /// The cursor to store once applied.
    pub next_cursor: String,
    /// Latest balances per Plaid account id.
    pub balances: HashMap<String, Account>,
    /// Pages fetched.
    pub pages: u32,
    /// Entries staged (added + modified + removed).
    pub staged: u64,
    /// Plaid's `added` entries over all pages (for metrics).
    pub added: u64,
    /// Plaid's `modified` entries over all pages.
    pub modified: u64,
    /// Plaid's `removed` entries over all pages.
    pub removed: u64,
    /// Plaid said the item's transactions are not ready yet.
    pub not_ready: bool,
}

/// Deletes every staged row of the item: leftovers of runs that crashed or
/// lost their lease. Only called right after taking the lease, when no other
/// run can be staging for this item.
pub async fn clear_item_staging(pool: &PgPool, plaid_item_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("delete from sync_staging where plaid_item_id = $1")
        .bind(plaid_item_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes this run's staged rows (a restarted or failed update). Never the
/// item's other rows: a run that lost its lease must not touch the staging
/// of the run that took it over.
pub async fn clear_run_staging(pool: &PgPool, run_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from sync_staging where run_id = $1")
        .bind(run_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Fetches every page of one update from `lease.cursor`. On
/// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` the caller restarts.
pub async fn fetch_update(
    pool: &PgPool,
    plaid: &PlaidClient,
    settings: &SyncSettings,
    lease: &Lease,
    access_token: &AccessToken,
) -> Result<Fetched, SyncError> {
    clear_run_staging(pool, &lease.run_id).await?;
    let mut cursor = lease.cursor.clone();
    let mut fetched = Fetched {
        next_cursor: String::new(),
        balances: HashMap::new(),
        pages: 0,
        staged: 0,
        added: 0,
        modified: 0,
        removed: 0,
        not_ready: false,
    };
    loop {
        settings.limits.wait_for_sync_call(lease.plaid_item_id).await;
        let request = TransactionsSyncRequest {
            count: Some(PAGE_SIZE),
            ..TransactionsSyncRequest::new(access_token.clone()).with_cursor(cursor.clone())
        };
        let page = plaid.transactions_sync(&request).await?;
        fetched.pages += 1;
        if page.transactions_update_status == TransactionsUpdateStatus::NotReady
            && page.next_cursor.is_empty()
        {
            fetched.not_ready = true;
            return Ok(fetched);
        }
        fetched.added += page.added.len() as u64;
        fetched.modified += page.modified.len() as u64;
        fetched.removed += page.removed.len() as u64;
        fetched.staged += stage_page(
            pool,
            lease,
            fetched.pages,
            &page.added,
            &page.modified,
            &page.removed,
        )
        .await?;
        for account in page.accounts {
            fetched.balances.insert(account.account_id.clone(), account);
        }
        fetched.next_cursor = page.next_cursor;
        if !page.has_more {
            return Ok(fetched);
        }
        cursor = Some(fetched.next_cursor.clone());
    }
}

/// Stages one page with a single statement: the page travels as one JSON
/// document and PostgreSQL unpacks it. `seq` orders entries by arrival
/// (page, then added < modified < removed, then position), so the latest entry
/// of a transaction wins at apply time.
async fn stage_page(
    pool: &PgPool,
    lease: &Lease,
    page: u32,
    added: &[crate::plaid::types::Transaction],
    modified: &[crate::plaid::types::Transaction],
    removed: &[crate::plaid::types::RemovedTransaction],
) -> Result<u64, sqlx::Error> {
    if added.is_empty() && modified.is_empty() && removed.is_empty() {
        return Ok(0);
    }
    let document = json!({
        "a": added.iter().map(|t| &t.raw).collect::<Vec<&Value>>(),
        "m": modified.iter().map(|t| &t.raw).collect::<Vec<&Value>>(),
        "r": removed.iter().map(|r| json!({"transaction_id": r.transaction_id, "account_id": r.account_id})).collect::<Vec<_>>(),
    });
    let staged = sqlx::query(
        "insert into sync_staging (plaid_item_id, run_id, seq, kind, plaid_account_id, transaction_id, payload)
         select $1, $2, $3::bigint * 3000000 + k.ord * 1000000 + e.ord, k.kind,
                e.value ->> 'account_id', e.value ->> 'transaction_id',
                case when k.kind = 'r' then null else e.value end
         from (values ('a', 0), ('m', 1), ('r', 2)) as k(kind, ord)
         cross join lateral jsonb_array_elements($4::jsonb -> k.kind) with ordinality as e(value, ord)",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .bind(i64::from(page))
    .bind(&document)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(staged)
}

//! Items needing an operator's attention: failed, waiting for reauth, or in
//! their cleanup grace window (in that order); oldest first, at most `limit` of each kind,
//! each list read in order from its partial index.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// One item to look at.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AttentionItem {
    /// Why it is listed: `needs_reauth`, `failed` or `pending_cleanup`.
    pub reason: String,
    /// Since when (`reauth_needed_at`, the status change to `failed`, or
    /// `cleanup_due_at` for `pending_cleanup`: when it will be removed).
    pub since: Option<DateTime<Utc>>,
    /// `plaid_items.id`.
    pub id: i64,
    /// Plaid's item id (what the repair action takes).
    pub item_id: String,
    /// The owner.
    pub user_id: i64,
    /// The institution, when known.
    pub institution_id: Option<String>,
    /// `plaid_items.sync_status`.
    pub sync_status: String,
    /// `plaid_items.lifecycle`.
    pub lifecycle: String,
    /// Plaid's (or our) code of the last failure.
    pub last_error_code: Option<String>,
    /// The last failure, as a sentence.
    pub last_sync_error: Option<String>,
    /// The last successful sync.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When a failed item's retry is due.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The item's sync job that has not started yet, if any.
    pub pending_job_id: Option<String>,
}

macro_rules! columns {
    () => {
        "i.id, i.item_id, i.user_id, i.institution_id, i.sync_status, i.lifecycle,
         i.last_error_code, i.last_sync_error, i.last_synced_at, i.next_retry_at"
    };
}

/// [`list`] (`$1`: items per reason): three ordered probes of
/// `plaid_items_failed_since`, `plaid_items_reauth_queue` and `plaid_items_cleanup_due`.
pub const LIST_SQL: &str = concat!(
    "select a.*, p.task_id as pending_job_id from (
         (select 'needs_reauth' as reason, i.reauth_needed_at as since, ",
    columns!(),
    " from plaid_items i where i.sync_status = 'needs_reauth' and i.lifecycle = 'active'
          order by i.reauth_needed_at limit $1)
         union all
         (select 'failed', i.sync_status_changed_at, ",
    columns!(),
    " from plaid_items i where i.sync_status = 'failed' and i.lifecycle = 'active'
          order by i.sync_status_changed_at limit $1)
         union all
         (select 'pending_cleanup', i.cleanup_due_at, ",
    columns!(),
    " from plaid_items i where i.lifecycle = 'pending_cleanup'
          order by i.cleanup_due_at limit $1)
     ) a left join sync_pending p on p.plaid_item_id = a.id
     order by case a.reason when 'failed' then 0 when 'needs_reauth' then 1 else 2 end,
              a.since nulls first, a.id"
);

/// Up to `limit` items of each reason.
pub async fn list(conn: &mut PgConnection, limit: i64) -> Result<Vec<AttentionItem>, sqlx::Error> {
    sqlx::query_as(LIST_SQL).bind(limit).fetch_all(conn).await
}

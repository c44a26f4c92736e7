//! Ingesting a verified webhook: one transaction stores the event and acts on it.

use serde_json::Value;
use sqlx::PgPool;

use crate::{
    db::webhook_events,
    jobs::{
        EnqueueError,
        sync_item::{ItemRef, SyncRequest, request_sync},
    },
    monitoring::rollup,
};

/// What happened to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// The event row.
    pub event_id: i64,
    /// True when the body matched a stored event (counted, not inserted).
    pub duplicate: bool,
    /// What the sync request did, for transactions webhooks.
    pub sync: Option<SyncRequest>,
}

/// Errors while ingesting.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No connection could be had: the database is down or refusing us.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database failed (503 to Plaid: it retries).
    #[error("database error while ingesting a webhook: {0}")]
    Database(#[from] sqlx::Error),
    /// The sync job could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

/// Transactions webhook codes that mean "new data may be available": the
/// current one and the legacy ones Plaid still sends (PLAID.md §4.1).
pub const SYNC_CODES: &[&str] = &[
    "SYNC_UPDATES_AVAILABLE",
    "DEFAULT_UPDATE",
    "INITIAL_UPDATE",
    "HISTORICAL_UPDATE",
    "TRANSACTIONS_REMOVED",
];

/// Stores `body` (a JSON object) and, for transactions webhooks of a known
/// item, requests its sync, all in one transaction.
pub async fn ingest(pool: &PgPool, body: &Value) -> Result<Ingested, IngestError> {
    let key = webhook_events::dedupe_key(body);
    let mut tx = pool.begin().await.map_err(IngestError::Unavailable)?;
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    // Act first, then store the event already marked processed (or not): one
    // write of the event row instead of an insert and an update. Both steps
    // lock the item row before the event row, so concurrent webhooks of one
    // item queue on the item in the same order.
    let mut sync = None;
    let mut processed = false;
    if let (Some("TRANSACTIONS"), Some(code), Some(item_id)) =
        (field("webhook_type"), field("webhook_code"), field("item_id"))
        && SYNC_CODES.contains(&code)
    {
        let request = request_sync(&mut tx, ItemRef::PlaidId(item_id)).await?;
        // Unknown items keep processed_at null: replayed when the item appears.
        processed = request != SyncRequest::UnknownItem;
        sync = Some(request);
    } else if field("webhook_type") == Some("ITEM") {
        processed = crate::lifecycle::item_webhooks::act(&mut tx, body).await?;
    }
    let stored = webhook_events::insert_or_count_duplicate(&mut tx, &key, body, processed).await?;
    // Last, so the rollup row is locked only for the commit.
    let kind = if stored.inserted {
        rollup::WEBHOOK
    } else {
        rollup::WEBHOOK_DUPLICATE
    };
    rollup::bump(&mut tx, kind).await?;
    tx.commit().await?;
    Ok(Ingested {
        event_id: stored.id,
        duplicate: !stored.inserted,
        sync,
    })
}

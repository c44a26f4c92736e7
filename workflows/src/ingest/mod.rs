//! Ingesting verified webhooks: one transaction stores the events and acts on them.
//!
//! [`ingest_batch`] is the whole database side: for a batch of bodies it
//! requests the syncs of the transactions webhooks' items, acts on ITEM
//! webhooks, writes the events (deduplicated) and counts them in the rollup,
//! then commits. [`ingest`] is a batch of one. [`IngestQueue`] is what the
//! HTTP edge uses: concurrent deliveries are grouped into batches (group
//! commit), so one commit makes many webhooks durable and a flood costs a
//! fraction of a transaction per webhook. Every caller still gets its answer
//! only after its batch committed: a 200 always means "stored".

mod batch;
mod queue;
pub mod statement;

use serde_json::Value;
use sqlx::PgPool;

pub use batch::ingest_batch;
pub use queue::{IngestQueue, QueueSettings};

use crate::jobs::{EnqueueError, sync_item::SyncRequest};

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
    /// No connection could be had, or it broke: the database is down or
    /// refusing us (503 to Plaid: it retries). A message only, because one
    /// outage fails a whole batch and each caller gets its own copy.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database failed otherwise.
    #[error("database error while ingesting a webhook: {0}")]
    Database(#[from] sqlx::Error),
    /// A sync job could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// The ingest queue is shut down (the process is stopping).
    #[error("the ingest queue is closed")]
    Closed,
}

impl IngestError {
    /// True when the database (not this webhook) is the problem: answer 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            IngestError::Unavailable(_) | IngestError::Closed => true,
            IngestError::Database(e) => crate::db::is_unavailable(e),
            IngestError::Enqueue(EnqueueError::Push(apalis_postgres::Error::Database(e))) => {
                crate::db::is_unavailable(e)
            }
            IngestError::Enqueue(_) => false,
        }
    }

    /// A copy for another caller of the same failed batch.
    fn shared(&self) -> IngestError {
        if self.is_unavailable() {
            IngestError::Unavailable(self.to_string())
        } else {
            IngestError::Database(sqlx::Error::Protocol(self.to_string()))
        }
    }
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
    let mut done = ingest_batch(pool, std::slice::from_ref(body)).await?;
    Ok(done.remove(0))
}

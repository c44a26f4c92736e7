//! The sync engine: make the database equal to Plaid's truth for one item.
//!
//! One run ([`run`]): take the item's lease ([`lease`]), fetch every page of
//! the update from the stored cursor ([`fetch`]) and apply each page as it
//! arrives, set-based, on one transaction ([`apply`]; an item's first update
//! by `COPY`, [`initial_load`]); on mutation during
//! pagination roll back and restart from the update's first cursor; commit
//! with the new cursor once the last page is in, or record why not
//! ([`outcome`]).

pub mod apply;
pub mod fetch;
pub mod initial_load;
pub mod lease;
pub mod limits;
pub mod outcome;
mod run;

use std::{sync::Arc, time::Duration};

pub use limits::SyncLimits;
pub use run::{SyncOutcome, run};

use crate::{jobs::EnqueueError, plaid::PlaidError, secrets::SecretError};

/// Tuning of the sync engine.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Lease duration; renewed every third of it while fetching.
    pub lease: Duration,
    /// A lease held by a worker silent this long is void (the worker crashed).
    pub worker_stale_after: Duration,
    /// Restarts of an update after mutation during pagination, before a durable retry.
    pub max_restarts: u32,
    /// Bound on one run (all pages and the apply).
    pub run_timeout: Duration,
    /// Pacing of sync calls.
    pub limits: Arc<SyncLimits>,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// Shortest wait after a 429 (Plaid's limits are per minute).
    pub rate_limit_floor: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            worker_stale_after: Duration::from_secs(10),
            max_restarts: 3,
            run_timeout: Duration::from_secs(15 * 60),
            limits: Arc::new(SyncLimits::plaid_production()),
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(3600),
            rate_limit_floor: Duration::from_secs(60),
        }
    }
}

/// Failures of a sync run that are not Plaid's verdict on the item.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Plaid failed (classified by the caller).
    #[error(transparent)]
    Plaid(#[from] PlaidError),
    /// The database failed.
    #[error("database error during sync: {0}")]
    Database(#[from] sqlx::Error),
    /// The access token could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A follow-up job could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// Another run took the item (this one was too slow); it applies nothing.
    #[error("the item's sync lease was lost")]
    LeaseLost,
}

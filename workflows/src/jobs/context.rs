//! What every job handler receives.

use std::time::Duration;

use sqlx::PgPool;

/// Shared state handed to handlers through apalis' `Data`.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The database.
    pub pool: PgPool,
    /// How long finished job rows and dead worker rows are kept.
    pub job_retention: Duration,
}

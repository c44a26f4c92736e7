//! Samples the sync lag (max and p95) into the rollup once a minute, for the
//! dashboard's lag chart. Every worker process runs it; the first to reach a
//! minute samples it, the others see the row and skip (a primary-key probe).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{rollup, status};

/// How often a process checks whether the current minute is sampled. Under a
/// minute, so no minute is skipped whatever the phase.
pub const PERIOD: Duration = Duration::from_secs(20);

/// Samples the current minute unless a process already did; true when it sampled.
pub async fn sample_once(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if rollup::sampled_this_minute(&mut conn, rollup::LAG_P95).await? {
        return Ok(false);
    }
    // The threshold part of the figure is not used here.
    let items = status::lag_population(&mut conn).await?;
    let lag = status::sync_lag(&mut conn, items, Duration::ZERO).await?;
    let (Some(max), Some(p95)) = (lag.max_seconds, lag.p95_seconds) else {
        return Ok(false);
    };
    let mut tx = pool.begin().await?;
    rollup::set_gauge(&mut tx, rollup::LAG_MAX, max.round() as i64).await?;
    rollup::set_gauge(&mut tx, rollup::LAG_P95, p95.round() as i64).await?;
    tx.commit().await?;
    Ok(true)
}

/// Runs [`sample_once`] every [`PERIOD`] until `shutdown`.
pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                if let Err(e) = sample_once(&pool).await {
                    tracing::warn!(error = %e, "could not sample the sync lag");
                }
            }
        }
    }
}

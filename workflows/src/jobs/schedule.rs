//! Cron schedules that fire exactly once per tick across any number of processes.
//!
//! Every process runs the same timer; at each tick each one tries to insert
//! `(schedule, tick)` into `cron_runs` and only the insert that lands enqueues
//! the job, in the same transaction. (apalis-cron piped into Postgres fires once
//! per process, so the claim is needed whichever timer drives it; the timer here
//! is the `cron` crate, the same one apalis-cron uses.)
//!
//! Missed ticks: on start a process claims the latest tick that has already
//! passed. If it was claimed when it happened, that insert conflicts and nothing
//! runs; if everything was down, it runs once, however many ticks were missed.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{EnqueueError, JobSpec, enqueue};

/// A named schedule for a job.
pub struct Scheduled<J> {
    /// The name stored in `cron_runs.schedule`.
    pub name: &'static str,
    /// When it fires.
    pub schedule: cron::Schedule,
    /// Builds the job for a tick.
    pub make_job: fn(DateTime<Utc>) -> J,
}

/// Claims `tick` for `name` and, if this call won it, enqueues `job` in the
/// same transaction. Returns whether this call won.
pub async fn claim_tick<J: JobSpec>(
    pool: &PgPool,
    name: &str,
    tick: DateTime<Utc>,
    claimed_by: &str,
    job: &J,
) -> Result<bool, EnqueueError> {
    let mut tx = pool.begin().await.map_err(apalis_postgres::Error::from)?;
    let won = sqlx::query(
        "insert into cron_runs (schedule, tick, claimed_by) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(name)
    .bind(tick)
    .bind(claimed_by)
    .execute(&mut *tx)
    .await
    .map_err(apalis_postgres::Error::from)?
    .rows_affected()
        == 1;
    if won {
        enqueue(&mut tx, job, None).await?;
    }
    tx.commit().await.map_err(apalis_postgres::Error::from)?;
    Ok(won)
}

/// Runs a schedule until `shutdown`: catch-up claim first, then one claim per tick.
pub async fn run<J: JobSpec>(
    pool: PgPool,
    scheduled: Scheduled<J>,
    claimed_by: String,
    shutdown: CancellationToken,
) {
    let Scheduled {
        name,
        schedule,
        make_job,
    } = scheduled;
    if let Some(missed) = schedule.after(&Utc::now()).next_back() {
        claim_logged(&pool, name, missed, &claimed_by, &make_job(missed)).await;
    }
    loop {
        let Some(next) = schedule.after(&Utc::now()).next() else {
            tracing::warn!(schedule = name, "schedule has no future ticks; stopping it");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        claim_logged(&pool, name, next, &claimed_by, &make_job(next)).await;
    }
}

async fn claim_logged<J: JobSpec>(pool: &PgPool, name: &str, tick: DateTime<Utc>, by: &str, job: &J) {
    match claim_tick(pool, name, tick, by, job).await {
        Ok(true) => tracing::info!(schedule = name, %tick, "claimed tick; job enqueued"),
        Ok(false) => tracing::debug!(schedule = name, %tick, "tick already claimed elsewhere"),
        // The next tick (or the safety net) will cover it; a failed claim left nothing behind.
        Err(e) => tracing::error!(schedule = name, %tick, error = %e, "could not claim tick"),
    }
}

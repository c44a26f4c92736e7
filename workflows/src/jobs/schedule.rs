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
//! A running process counts from the last tick it claimed, not from the clock:
//! when a claim ends after the next tick (a slow start, a busy database), that
//! tick is claimed late rather than skipped; when several passed, they are
//! coalesced into the latest, as at start ([`next_due`]).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{EnqueueError, JobSpec, enqueue};

/// A named schedule for a job.
pub struct Scheduled<J> {
    /// The name stored in `cron_runs.schedule`.
    pub name: &'static str,
    /// When it fires.
    pub schedule: crate::jobs::cron_schedule::CronSchedule,
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
    let mut last = Utc::now();
    if let Some(missed) = schedule.latest_at_or_before(last) {
        claim_logged(&pool, name, missed, &claimed_by, &make_job(missed)).await;
        last = missed;
    }
    loop {
        let Some(due) = next_due(&schedule, last, Utc::now()) else {
            tracing::warn!(schedule = name, "schedule has no future ticks; stopping it");
            return;
        };
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        claim_logged(&pool, name, due, &claimed_by, &make_job(due)).await;
        last = due;
    }
}

/// The tick to claim after `last`: the next one, even if it has already
/// passed (a late claim, not a skipped tick); but when more than one has
/// passed, only the latest (missed ticks coalesce, as at start).
pub fn next_due(
    schedule: &crate::jobs::cron_schedule::CronSchedule,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let next = schedule.next_after(last)?;
    match schedule.latest_at_or_before(now) {
        Some(latest_passed) if latest_passed > next => Some(latest_passed),
        _ => Some(next),
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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;

    use super::*;

    fn at(secs: u32, millis: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 4, 56, secs).unwrap()
            + chrono::Duration::milliseconds(millis.into())
    }

    #[test]
    fn next_due_claims_a_passed_tick_late_and_coalesces_several() {
        let every_two = crate::jobs::cron_schedule::CronSchedule::from_str("*/2 * * * * *").unwrap();
        // On time: the tick after the last claim, still ahead.
        assert_eq!(next_due(&every_two, at(48, 0), at(48, 300)), Some(at(50, 0)));
        // The claim of :48 ended after :50: :50 is claimed late, not skipped.
        assert_eq!(next_due(&every_two, at(48, 0), at(50, 300)), Some(at(50, 0)));
        // Exactly on the tick.
        assert_eq!(next_due(&every_two, at(48, 0), at(50, 0)), Some(at(50, 0)));
        // Three ticks passed (:50, :52, :54): one run, for the latest.
        assert_eq!(next_due(&every_two, at(48, 0), at(55, 0)), Some(at(54, 0)));
        // A process that claimed nothing yet counts from its start.
        assert_eq!(next_due(&every_two, at(49, 100), at(49, 200)), Some(at(50, 0)));
    }
}

//! The measured system: the app's job runtime (`workflows::jobs::runtime::spawn`,
//! exactly what `serve --role worker` starts: one supervised apalis worker per
//! queue on `PostgresStorage` with pubsub, the app's `WorkerSettings`, the lag
//! sampler, the schedules) draining a backlog of canary jobs.
//!
//! The canary (`workflows::jobs::canary`) is the app's trivial job: with
//! `hold_ms = 0` its handler inserts one row into `job_canary_runs` and stamps
//! it finished, so each job costs the queue's round trips plus two small writes.

use std::{str::FromStr, sync::Arc, time::Duration};

use apalis::prelude::TaskBuilder;
use sqlx::PgPool;
use tokio::{task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;
use workflows::{
    jobs::{JobContext, JobSpec, WorkerSettings, canary::Canary, runtime::Schedules},
    lifecycle::cleanup::CleanupSettings,
    plaid::{PlaidClient, PlaidConfig},
    secrets::{SecretStore, SecretsKey},
    sync::SyncSettings,
};

use super::raw_queue::PUSH_CHUNK;

/// Longest a drain may take before the bench gives up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the bench counts the canary rows still open (a probe of the
/// partial index `plaid_sync_jobs_open`, which holds only rows not `Done`).
const POLL: Duration = Duration::from_millis(25);

/// Canary rows not finished yet.
const OPEN_CANARIES: &str = "select count(*) from apalis.jobs
     where job_type = $1 and status in ('Pending', 'Queued', 'Running')";

/// A tick that never comes during a run: no schedule enqueues anything on its
/// own (nor catches up a missed tick at start), so the pruner runs exactly
/// when the bench enqueues the job its hourly schedule would.
fn never() -> workflows::jobs::cron_schedule::CronSchedule {
    workflows::jobs::cron_schedule::CronSchedule::from_str("0 0 0 1 1 * 2099").expect("valid cron")
}

/// The context `Application::build` gives the workers. No job of this bench
/// calls Plaid, so the client points at a closed port.
pub fn context(pool: &PgPool) -> anyhow::Result<JobContext> {
    let plaid = PlaidClient::new(&PlaidConfig::new(
        "http://127.0.0.1:9",
        "bench",
        String::from("bench").into(),
    ))?;
    Ok(JobContext {
        pool: pool.clone(),
        plaid: Arc::new(plaid),
        secrets: SecretStore::new(SecretsKey::generate(), Vec::new()),
        job_retention: Duration::from_secs(7 * 86_400),
        sync: SyncSettings::default(),
        safety_net_stale_after: Duration::from_secs(86_400),
        cleanup: CleanupSettings::default(),
    })
}

/// Pushes `n` canary jobs with the app's insert and the app's arguments
/// (`max_attempts` of the job type), in one transaction; the runtime is not
/// running, so the backlog is complete before the clock starts.
pub async fn push_canaries(pool: &PgPool, n: usize, token: &str) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&Canary {
        token: token.to_owned(),
        hold_ms: 0,
    })?;
    let mut tx = pool.begin().await?;
    for start in (0..n).step_by(PUSH_CHUNK) {
        let tasks = (start..n.min(start + PUSH_CHUNK))
            .map(|_| {
                TaskBuilder::new(body.clone())
                    .max_attempts(Canary::MAX_ATTEMPTS as usize)
                    .build()
            })
            .collect();
        apalis_postgres::queries::push_tasks(&mut *tx, Canary::QUEUE, tasks).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One drain, as measured.
pub struct Drain {
    /// From starting the runtime to the last canary row `Done`.
    pub elapsed: Duration,
    /// Jobs per second.
    pub rate: f64,
}

/// Starts the runtime, waits until no canary row is open, stops it (a
/// graceful stop: running jobs, such as a prune, finish first).
pub async fn drain(pool: &PgPool, settings: WorkerSettings, n: usize) -> anyhow::Result<Drain> {
    let ctx = context(pool)?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let schedules = Schedules {
        prune: never(),
        safety_net: never(),
        cleanup: never(),
    };
    let started = Instant::now();
    workflows::jobs::runtime::spawn(&mut tasks, &ctx, settings, schedules, &shutdown);
    let elapsed = loop {
        tokio::time::sleep(POLL).await;
        let open: i64 = sqlx::query_scalar(OPEN_CANARIES)
            .bind(Canary::QUEUE)
            .fetch_one(pool)
            .await?;
        if open == 0 {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < DRAIN_TIMEOUT,
            "{open} canary jobs still open after {DRAIN_TIMEOUT:?}"
        );
    };
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(Drain {
        elapsed,
        rate: n as f64 / elapsed.as_secs_f64(),
    })
}

/// What became of a drain's jobs.
pub struct Outcome {
    /// Canary runs recorded for the token (one per job when nothing ran twice).
    pub runs: i64,
    /// Rows of the token that ended `Done`.
    pub done: i64,
    /// Rows of the token that took more than one attempt.
    pub retried: i64,
}

/// Counts the token's rows by outcome (reads every row: run it untimed).
pub async fn outcome(pool: &PgPool, token: &str) -> anyhow::Result<Outcome> {
    let (done, retried): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'Done'), count(*) filter (where attempts > 1)
         from apalis.jobs
         where job_type = $1 and convert_from(job, 'UTF8')::jsonb ->> 'token' = $2",
    )
    .bind(Canary::QUEUE)
    .bind(token)
    .fetch_one(pool)
    .await?;
    let runs: i64 = sqlx::query_scalar("select count(*) from job_canary_runs where token = $1")
        .bind(token)
        .fetch_one(pool)
        .await?;
    Ok(Outcome { runs, done, retried })
}

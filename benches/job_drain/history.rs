//! The history a busy job table carries: finished rows past `JOB_RETENTION`
//! and the dead workers that ran them, generated in SQL; and the pruner run
//! the way production runs it (its job, on the runtime's prune worker).

use std::time::Duration;

use sqlx::PgPool;
use workflows::jobs::{JobSpec, prune::PruneJobs};

/// Dead workers the old rows point at (`jobs.lock_by` references `workers.id`).
const OLD_WORKERS: i64 = 100;

/// Inserts `rows` finished jobs (2 % `Killed`, the rest `Done`) spread over
/// the app's queues (70 % syncs), finished 8 to 38 days ago (all older than
/// the 7-day retention), locked by [`OLD_WORKERS`] workers last seen 39 days
/// ago. Rows and ids have the shape apalis writes (26-character ids that sort
/// by time, like ULIDs). The insert trigger is off while seeding: the rows
/// are history, not new work, and 1,000,000 `pg_notify` calls would only
/// measure the notification queue. Returns the time taken.
pub async fn seed(pool: &PgPool, rows: i64) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into apalis.workers (id, worker_type, storage_name, layers, last_seen)
         select 'old-worker-' || w, 'plaid-sync.sync-item', 'PostgresStorage', '', now() - interval '39 days'
         from generate_series(0, $1 - 1) w",
    )
    .bind(OLD_WORKERS)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at, lock_at, lock_by,
                                  done_at, last_result)
         select '\\x7b7d'::bytea, '00OLD' || lpad(g::text, 21, '0'),
                case when g % 10 < 7 then 'plaid-sync.sync-item'
                     else (array['plaid-sync.canary', 'plaid-sync.prune-jobs', 'plaid-sync.safety-net',
                                 'plaid-sync.cleanup-due', 'plaid-sync.remove-item', 'plaid-sync.cleanup-run',
                                 'plaid-sync.legacy-backfill'])[g % 7 + 1] end,
                case when g % 50 = 0 then 'Killed' else 'Done' end,
                1, 5, d - interval '2 seconds', d - interval '1 second', 'old-worker-' || (g % $2), d,
                '{\"Ok\":null}'
         from generate_series(1, $1) g,
              lateral (select now() - interval '38 days' + make_interval(secs => g * 2592000.0 / $1) as d) t",
    )
    .bind(rows)
    .bind(OLD_WORKERS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(started.elapsed())
}

/// What autovacuum does long before a table reaches this size (it is off on
/// the bench server): fresh statistics and a visibility map.
pub async fn vacuum_analyze(pool: &PgPool) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    sqlx::query("vacuum analyze apalis.jobs, apalis.workers")
        .execute(pool)
        .await?;
    Ok(started.elapsed())
}

/// Rows past the 7-day retention (what the pruner must delete).
pub async fn prunable(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "select (select count(*) from apalis.jobs
                 where status in ('Done', 'Killed') and done_at < now() - interval '7 days'),
                (select count(*) from apalis.workers where last_seen < now() - interval '7 days')",
    )
    .fetch_one(pool)
    .await?)
}

/// Enqueues the pruner's job exactly as its hourly schedule does (`enqueue`
/// on a transaction); the runtime's prune worker runs it.
pub async fn enqueue_prune(pool: &PgPool) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    let id = workflows::jobs::enqueue(&mut tx, &PruneJobs {}, None).await?;
    tx.commit().await?;
    Ok(id.to_string())
}

/// A finished prune job: its status and how long it ran (`done_at - lock_at`).
pub async fn prune_outcome(pool: &PgPool, id: &str) -> anyhow::Result<(String, Option<f64>)> {
    Ok(sqlx::query_as(
        "select status, extract(epoch from done_at - lock_at)::float8 from apalis.jobs
         where id = $1 and job_type = $2",
    )
    .bind(id)
    .bind(PruneJobs::QUEUE)
    .fetch_one(pool)
    .await?)
}

/// Rows of `apalis.jobs` and its size on disk (heap and indexes).
pub async fn table_size(pool: &PgPool) -> anyhow::Result<(i64, String)> {
    Ok(sqlx::query_as(
        "select (select count(*) from apalis.jobs),
                pg_size_pretty(pg_total_relation_size('apalis.jobs'))",
    )
    .fetch_one(pool)
    .await?)
}

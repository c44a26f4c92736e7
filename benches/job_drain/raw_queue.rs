//! The same-run baseline: a hand-written `FOR UPDATE SKIP LOCKED` queue loop
//! over rows of `apalis.jobs` itself (same table, same indexes, same bloat),
//! with as many connections as the worker runs jobs at once.
//!
//! Per job it makes the two round trips any durable queue needs: claim
//! (`Pending` → `Running`) and acknowledge (`Running` → `Done`), each an
//! autocommit statement. No decoding, no handler, no heartbeat: the floor a
//! job layer on this table can approach.

use std::time::{Duration, Instant};

use apalis::prelude::TaskBuilder;
use sqlx::PgPool;

/// The queue the baseline's rows live in (no worker of the app listens to it).
pub const QUEUE: &str = "bench.raw-queue";

/// Rows per `push_tasks` call when filling a queue (one `UNNEST` insert each).
pub const PUSH_CHUNK: usize = 5_000;

/// Pushes `n` rows into [`QUEUE`] with the app's insert (`push_tasks`), in one transaction.
pub async fn push(pool: &PgPool, n: usize) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for start in (0..n).step_by(PUSH_CHUNK) {
        let tasks = (start..n.min(start + PUSH_CHUNK))
            .map(|i| {
                TaskBuilder::new(format!("{{\"n\":{i}}}").into_bytes())
                    .max_attempts(3)
                    .build()
            })
            .collect();
        apalis_postgres::queries::push_tasks(&mut *tx, QUEUE, tasks).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Claims the oldest `Pending` row of the queue (served by apalis' own
/// `idx_apalis_jobs_fetch_partial`), skipping rows other loops hold.
const CLAIM: &str = "update apalis.jobs set status = 'Running', lock_at = now(), attempts = attempts + 1
     where id = (select id from apalis.jobs
                 where job_type = $1 and status = 'Pending' and run_at <= now()
                 order by priority desc, run_at
                 limit 1 for update skip locked)
     returning id";

/// Acknowledges a claimed row.
const ACK: &str = "update apalis.jobs set status = 'Done', done_at = now() where id = $1";

/// Drains [`QUEUE`] with `concurrency` loops; returns the jobs done and the wall time.
pub async fn drain(pool: &PgPool, concurrency: usize) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let pool = pool.clone();
        loops.spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut done = 0u64;
            while let Some(id) = sqlx::query_scalar::<_, String>(CLAIM)
                .bind(QUEUE)
                .fetch_optional(&mut *conn)
                .await?
            {
                sqlx::query(ACK).bind(&id).execute(&mut *conn).await?;
                done += 1;
            }
            Ok::<u64, sqlx::Error>(done)
        });
    }
    let mut done = 0;
    while let Some(result) = loops.join_next().await {
        done += result??;
    }
    Ok((done, started.elapsed()))
}

//! `check jobs`: a canary through the job queue.

use std::{process::ExitCode, time::Duration};

use workflows::jobs::{canary::Canary, enqueue};

use crate::{app::prepare_database, config::Config, telemetry};

/// Enqueues a canary and waits until a worker has finished it.
pub async fn jobs(timeout_secs: u64) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    let pool = prepare_database(&config, false).await?;
    let token = format!("check-{}", ulid_like());
    let mut conn = pool.acquire().await?;
    enqueue(
        &mut conn,
        &Canary {
            token: token.clone(),
            hold_ms: 0,
        },
        None,
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
    // Polls the run row: this is a check against a separate worker process, so
    // there is no in-process signal to wait on.
    loop {
        let worker: Option<String> = sqlx::query_scalar(
            "select worker from job_canary_runs where token = $1 and finished_at is not null limit 1",
        )
        .bind(&token)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(worker) = worker {
            println!("ok: canary job ran on worker {worker}");
            return Ok(ExitCode::SUCCESS);
        }
        if tokio::time::Instant::now() >= deadline {
            println!(
                "failed: no worker ran the canary job within {timeout_secs}s (is a `serve` process with role all or worker running?)"
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ulid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

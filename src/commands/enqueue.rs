//! `enqueue sync --item ID` and `enqueue process`: the jobs API from a shell.

use std::process::ExitCode;

use workflows::ops::{self, OpsError};

use crate::{app::prepare_database, config::Config, telemetry};

async fn pool() -> anyhow::Result<sqlx::PgPool> {
    Ok(setup().await?.0)
}

async fn setup() -> anyhow::Result<(sqlx::PgPool, Config)> {
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    Ok((prepare_database(&config, false).await?, config))
}

/// Marks one item for sync and enqueues its job.
pub async fn sync(item_id: &str) -> anyhow::Result<ExitCode> {
    let pool = pool().await?;
    match ops::sync_item(&pool, item_id).await {
        Ok(n) => {
            println!(
                "enqueued: {n}{}",
                if n == 0 {
                    " (a sync was already pending, or the item awaits reauth)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(OpsError::UnknownItem(id)) => {
            eprintln!("error: no item with item_id {id}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

/// Enqueues syncs of every `sync_needed` item, printing progress per batch.
pub async fn process() -> anyhow::Result<ExitCode> {
    let pool = pool().await?;
    let enqueued = ops::process_sync_needed(&pool, |seen, enqueued| {
        eprintln!("progress: {seen} sync_needed items seen, {enqueued} jobs enqueued");
    })
    .await?;
    println!("enqueued: {enqueued}");
    Ok(ExitCode::SUCCESS)
}

/// Runs the safety net now.
pub async fn safety_net() -> anyhow::Result<ExitCode> {
    let (pool, config) = setup().await?;
    let enqueued = ops::safety_net(&pool, config.safety_net_stale_after).await?;
    println!("enqueued: {enqueued}");
    Ok(ExitCode::SUCCESS)
}

/// Runs dormant-item cleanup now (as `POST /api/jobs/plaid/cleanup` does).
pub async fn cleanup() -> anyhow::Result<ExitCode> {
    let (pool, config) = setup().await?;
    let enqueued = ops::cleanup(&pool, &config.cleanup_settings()).await?;
    println!("enqueued: {enqueued}");
    Ok(ExitCode::SUCCESS)
}

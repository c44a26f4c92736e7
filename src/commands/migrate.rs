//! `migrate`: apply the app's and the job queue's migrations and exit.

use std::process::ExitCode;

use crate::{app::prepare_database, config::Config, telemetry};

/// Runs both migrators.
pub async fn run() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    let pool = prepare_database(&config, true).await?;
    pool.close().await;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

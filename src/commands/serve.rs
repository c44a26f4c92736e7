//! `serve` and `simulator`.

use std::{net::SocketAddr, process::ExitCode};

use crate::{
    app::{Application, RunOptions},
    cli::Role,
    config::Config,
    telemetry,
};

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(role: Role, migrate: bool) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    let app = Application::build(
        config,
        RunOptions {
            role,
            migrate,
            ..RunOptions::default()
        },
    )
    .await?;
    if let Some(addr) = app.public_addr() {
        tracing::info!(%addr, "public listener up");
    }
    if let Some(addr) = app.admin_addr() {
        tracing::info!(%addr, "operator listener up");
    }
    tracing::info!(?role, "plaid-sync running");
    let stop = app.shutdown_token();
    tokio::spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("shutdown requested: finishing in-flight work");
        stop.cancel();
    });
    app.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}

/// Runs the Plaid simulator alone.
pub async fn simulator(addr: SocketAddr) -> anyhow::Result<ExitCode> {
    let _ = addr;
    anyhow::bail!("the simulator command is wired once the simulator crate lands")
}

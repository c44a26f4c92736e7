//! `serve` and `simulator`.

use std::{net::SocketAddr, process::ExitCode};

use plaid_simulator::SimulatorConfig;

use crate::{
    app::{Application, RunOptions},
    cli::Role,
    config::{Config, LogFormat},
    telemetry,
};

/// Runs the service until SIGINT/SIGTERM.
pub async fn run(role: Role, migrate: bool) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    for warning in config.startup_warnings() {
        tracing::warn!("{warning}");
    }
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

/// Runs the Plaid simulator alone (credentials `PLAID_CLIENT_ID`/`PLAID_SECRET`
/// when set, else the simulator's defaults; webhooks to `PLAID_WEBHOOK_URL`).
pub async fn simulator(addr: SocketAddr) -> anyhow::Result<ExitCode> {
    let _ = dotenvy::dotenv();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let format = match var("LOG_FORMAT").as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    };
    telemetry::init(format);
    let defaults = SimulatorConfig::default();
    let config = SimulatorConfig {
        client_id: var("PLAID_CLIENT_ID").unwrap_or(defaults.client_id.clone()),
        secret: var("PLAID_SECRET").unwrap_or(defaults.secret.clone()),
        default_webhook_url: var("PLAID_WEBHOOK_URL"),
        ..defaults
    };
    println!("Plaid simulator on http://{addr} (control API under /simulator)");
    plaid_simulator::run_standalone(addr, config, super::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

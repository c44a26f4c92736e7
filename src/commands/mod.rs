//! One module per subcommand.

mod backfill;
mod check;
mod demo;
mod enqueue;
mod migrate;
mod serve;
mod users;

use std::process::ExitCode;

use crate::cli::{CheckCommand, Cli, Command, EnqueueCommand, UsersCommand};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { role, no_migrate } => serve::run(role, !no_migrate).await,
        Command::Migrate => migrate::run().await,
        Command::Demo => demo::run().await,
        Command::Enqueue { command } => match command {
            EnqueueCommand::Sync { item } | EnqueueCommand::Process { item: Some(item) } => {
                enqueue::sync(&item).await
            }
            EnqueueCommand::Process { item: None } => enqueue::process().await,
            EnqueueCommand::SafetyNet => enqueue::safety_net().await,
            EnqueueCommand::Cleanup => enqueue::cleanup().await,
        },
        Command::Simulator { addr } => serve::simulator(addr).await,
        Command::Users {
            command: UsersCommand::Create { email },
        } => users::create(&email).await,
        Command::Check {
            command: CheckCommand::Jobs { timeout_secs },
        } => check::jobs(timeout_secs).await,
        Command::Check {
            command: CheckCommand::Backfill,
        } => backfill::check().await,
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

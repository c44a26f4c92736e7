//! The command line (clap). See the contract's command table.

use std::net::SocketAddr;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::env_vars;

/// plaid-sync: keeps a personal-finance database in sync with Plaid.
#[derive(Debug, Parser)]
#[command(name = "plaid-sync", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The clap command, with each subcommand's `--help` listing the
    /// environment variables it reads ([`env_vars`]).
    pub fn command_with_env_help() -> clap::Command {
        let mut command = Cli::command().after_help(env_vars::help_section(env_vars::SERVICE));
        let names: Vec<String> = command
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        for name in names {
            let vars = if name == "simulator" {
                env_vars::SIMULATOR
            } else {
                env_vars::SERVICE
            };
            command = command.mut_subcommand(&name, |sub| {
                let section = env_vars::help_section(vars);
                let names: Vec<String> = sub.get_subcommands().map(|c| c.get_name().to_owned()).collect();
                let mut sub = sub.after_help(section.clone());
                for nested in names {
                    sub = sub.mut_subcommand(&nested, |n| n.after_help(section.clone()));
                }
                sub
            });
        }
        command
    }

    /// Parses `std::env::args` (exits with clap's message on bad input or `--help`).
    pub fn parse_with_env_help() -> Self {
        let matches = Self::command_with_env_help().get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP API, webhook receiver, workers and schedulers.
    Serve {
        /// Which parts this process runs.
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
        /// Skip migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply all migrations (the app's and the job queue's) and exit.
    Migrate,
    /// `serve` plus the built-in Plaid simulator, a demo user and a linked item
    /// whose transactions keep arriving by webhook. Needs only PostgreSQL.
    Demo,
    /// The built-in Plaid simulator alone.
    Simulator {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: SocketAddr,
    },
    /// Manage users.
    Users {
        /// What to do with users.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manual repair: mark and enqueue exactly as the jobs API does.
    Enqueue {
        /// What to enqueue.
        #[command(subcommand)]
        command: EnqueueCommand,
    },
    /// Operational checks.
    Check {
        /// Which check.
        #[command(subcommand)]
        command: CheckCommand,
    },
}

/// Which parts of the service a `serve` process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// HTTP listeners, workers and schedulers.
    All,
    /// HTTP listeners only.
    Api,
    /// Workers and schedulers only.
    Worker,
}

impl Role {
    /// Whether this role serves HTTP.
    pub fn serves_http(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    /// Whether this role runs workers and schedules.
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints its id and a new API token (shown once, stored hashed).
    Create {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
}

/// `enqueue` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnqueueCommand {
    /// Sync one item now (by Plaid item id).
    Sync {
        /// Plaid's item id.
        #[arg(long)]
        item: String,
    },
    /// Sync every `sync_needed` item (or, with --item, that one).
    Process {
        /// Only this item (Plaid's item id).
        #[arg(long)]
        item: Option<String>,
    },
    /// Run the safety net now (stale, stuck and due-for-retry items).
    SafetyNet,
    /// Run dormant-item cleanup now (start workflows of dormant items, retry failed removals).
    Cleanup,
}

/// `check` subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Enqueue a canary job and wait until a worker has run it (exit 1 on timeout).
    Jobs {
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// Legacy-migration completeness: counts of legacy Plaid accounts with and
    /// without an item and a mapping (exit 1 while any is unmapped).
    Backfill,
}

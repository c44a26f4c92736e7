//! The environment variables plaid-sync reads, once: `--help` of every
//! command lists the ones it reads (from this table), and a test holds
//! `.env.example` to the same names. Parsing and validation are in
//! [`crate::config`].

/// One variable: its name, its default, and what it sets.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// The value used when it is unset or empty.
    pub default: &'static str,
    /// What it sets.
    pub about: &'static str,
}

const fn var(name: &'static str, default: &'static str, about: &'static str) -> EnvVar {
    EnvVar { name, default, about }
}

/// Every variable the service's commands read (through [`crate::config::Config`]).
pub const SERVICE: &[EnvVar] = &[
    var(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/plaid_sync",
        "PostgreSQL URL; the database is created if missing",
    ),
    var("DATABASE_MAX_CONNECTIONS", "30", "pool size, at least 5"),
    var(
        "BIND_ADDR",
        "127.0.0.1:8080",
        "public listener: webhook, user and jobs API, health",
    ),
    var(
        "ADMIN_BIND_ADDR",
        "127.0.0.1:8081",
        "operator listener: dashboard, /metrics, admin API",
    ),
    var(
        "PLAID_ENV",
        "simulator without PLAID_CLIENT_ID, else sandbox",
        "sandbox, production or simulator",
    ),
    var("PLAID_BASE_URL", "from PLAID_ENV", "overrides the Plaid host"),
    var(
        "PLAID_CLIENT_ID",
        "none (simulator: sim-client-id)",
        "Plaid client id",
    ),
    var("PLAID_SECRET", "none (simulator: sim-secret)", "Plaid secret"),
    var(
        "PLAID_WEBHOOK_URL",
        "none (simulator: this process's /webhook/plaid)",
        "webhook URL given to Link; set it for sandbox/production",
    ),
    var(
        "PLAID_WEBHOOK_SECRET",
        "none",
        "accept HMAC-signed webhooks with this secret",
    ),
    var(
        "JOBS_SECRET",
        "none: /api/jobs/* answer 503",
        "bearer secret of the jobs API",
    ),
    var(
        "ADMIN_TOKEN",
        "none: the operator listener answers 503",
        "operator secret (bearer, or basic-auth password)",
    ),
    var(
        "SECRETS_KEY",
        "required (simulator: generated into .plaid-sync/secrets.key)",
        "base64 of 32 bytes: AES-256-GCM key of access tokens",
    ),
    var(
        "SECRETS_KEY_PREVIOUS",
        "none",
        "comma-separated older keys, still read (rotation)",
    ),
    var(
        "SAFETY_NET_CRON",
        "0 */30 * * * *",
        "safety-net schedule (5-field crontab or 6 with seconds, UTC)",
    ),
    var(
        "SAFETY_NET_STALE_AFTER",
        "24h",
        "an item unsynced this long is synced by the safety net",
    ),
    var(
        "CLEANUP_CRON",
        "0 0 3 * * *",
        "dormant-item cleanup schedule (5 or 6 fields, UTC)",
    ),
    var(
        "DORMANT_AFTER",
        "30d",
        "an item failing or unused this long is dormant",
    ),
    var(
        "CLEANUP_GRACE",
        "7d",
        "days between the dormancy notice and /item/remove",
    ),
    var("JOB_RETENTION", "7d", "how long finished job rows are kept"),
    var("LOG_FORMAT", "pretty on a terminal, else json", "pretty or json"),
    var(
        "RUST_LOG",
        "info,sqlx=warn",
        "log filter (tracing-subscriber syntax)",
    ),
    var(
        "HOSTNAME",
        "/etc/hostname",
        "prefix of this process's worker names",
    ),
];

/// What `plaid-sync simulator` reads.
pub const SIMULATOR: &[EnvVar] = &[
    var(
        "PLAID_CLIENT_ID",
        "sim-client-id",
        "client id the simulator accepts",
    ),
    var("PLAID_SECRET", "sim-secret", "secret the simulator accepts"),
    var("PLAID_WEBHOOK_URL", "none", "where the simulator sends webhooks"),
    var("LOG_FORMAT", "pretty", "pretty or json"),
];

/// The `--help` section listing `vars`.
pub fn help_section(vars: &[EnvVar]) -> String {
    let width = vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut text = String::from("Environment (also read from ./.env; see .env.example):\n");
    for v in vars {
        text.push_str(&format!(
            "  {:width$}  {} [default: {}]\n",
            v.name, v.about, v.default
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_example_lists_exactly_the_variables_the_service_reads() {
        let example = include_str!("../.env.example");
        let listed: Vec<&str> = example
            .lines()
            .filter_map(|line| line.strip_prefix('#')?.split_once('=').map(|(name, _)| name))
            .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let known: Vec<&str> = SERVICE.iter().map(|v| v.name).collect();
        assert_eq!(listed, known, ".env.example and env_vars::SERVICE disagree");
    }

    #[test]
    fn the_help_section_names_each_variable_with_its_default() {
        let text = help_section(SERVICE);
        for v in SERVICE {
            assert!(text.contains(v.name) && text.contains(v.default), "{}", v.name);
        }
    }

    #[test]
    fn every_command_lists_its_variables_in_help() {
        let mut command = crate::cli::Cli::command_with_env_help();
        for path in [
            vec!["serve"],
            vec!["demo"],
            vec!["migrate"],
            vec!["enqueue", "sync"],
            vec!["check", "jobs"],
        ] {
            let mut sub = &mut command;
            for name in &path {
                sub = sub.find_subcommand_mut(name).unwrap();
            }
            let help = sub.render_long_help().to_string();
            for v in SERVICE {
                assert!(help.contains(v.name), "{path:?} --help lacks {}", v.name);
            }
        }
        let help = command
            .find_subcommand_mut("simulator")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("PLAID_WEBHOOK_URL") && !help.contains("DATABASE_URL"),
            "{help}"
        );
    }
}

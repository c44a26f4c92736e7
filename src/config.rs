//! Typed configuration, read once at start from the environment (and `.env`).
//!
//! Every variable of the contract (README, "Configuration") is parsed and
//! validated here; a bad value is an error naming the variable. Secrets are
//! held in [`Secret`], whose `Debug`/`Display` redact them, so `{:?}` of the
//! whole config is safe to log.

use std::{collections::HashMap, net::SocketAddr, path::Path, str::FromStr, time::Duration};

use workflows::{jobs::cron_schedule::CronSchedule, redact::Secret, secrets::SecretsKey};

/// A configuration error, naming the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it (never its value when it is a secret).
    pub reason: String,
}

fn err(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

/// Which Plaid the service talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaidEnv {
    /// `https://sandbox.plaid.com`.
    Sandbox,
    /// `https://production.plaid.com`.
    Production,
    /// The built-in simulator, started in-process unless `PLAID_BASE_URL` points elsewhere.
    Simulator,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Credentials and address of the Plaid API in use.
#[derive(Debug, Clone)]
pub struct PlaidSettings {
    /// The environment.
    pub env: PlaidEnv,
    /// Base URL; `None` in simulator mode until the in-process simulator is up.
    pub base_url: Option<String>,
    /// `PLAID-CLIENT-ID`.
    pub client_id: String,
    /// `PLAID-SECRET`.
    pub secret: Secret,
    /// The webhook URL given to `/link/token/create`.
    pub webhook_url: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL URL (may carry a password: treated as a secret).
    pub database_url: Secret,
    /// Pool size.
    pub database_max_connections: u32,
    /// Public listener.
    pub bind_addr: SocketAddr,
    /// Operator listener.
    pub admin_bind_addr: SocketAddr,
    /// Plaid.
    pub plaid: PlaidSettings,
    /// Enables HMAC-signed webhooks.
    pub plaid_webhook_secret: Option<Secret>,
    /// Bearer secret of `/api/jobs/*`; those routes answer 503 when unset.
    pub jobs_secret: Option<Secret>,
    /// Secret of the operator listener; it answers 503 when unset.
    pub admin_token: Option<Secret>,
    /// Encrypts access tokens at rest.
    pub secrets_key: SecretsKey,
    /// Older keys still accepted for reading (`SECRETS_KEY_PREVIOUS`, comma-separated).
    pub secrets_key_previous: Vec<SecretsKey>,
    /// When the safety net runs.
    pub safety_net_cron: CronSchedule,
    /// An active item not synced for this long is synced by the safety net.
    pub safety_net_stale_after: Duration,
    /// When dormant-item cleanup runs.
    pub cleanup_cron: CronSchedule,
    /// When an item counts as dormant.
    pub dormant_after: Duration,
    /// Time between the pre-removal notification and removal.
    pub cleanup_grace: Duration,
    /// How long finished job rows are kept (`JOB_RETENTION`).
    pub job_retention: Duration,
    /// Log format.
    pub log_format: LogFormat,
}

/// The default database URL of the contract.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/plaid_sync";
/// Where simulator mode keeps its generated key.
pub const SIMULATOR_KEY_FILE: &str = ".plaid-sync/secrets.key";

impl Config {
    /// Reads `.env` (when present) and the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_vars(&vars, Path::new(SIMULATOR_KEY_FILE))
    }

    /// Parses a set of variables. `key_file` is where simulator mode keeps a
    /// generated `SECRETS_KEY` (created once, reused after).
    pub fn from_vars(vars: &HashMap<String, String>, key_file: &Path) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let secret = |name: &str| get(name).map(Secret::new);

        let database_url = get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL);
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(err(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        let database_max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            None => 30,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 5)
                .ok_or_else(|| err("DATABASE_MAX_CONNECTIONS", "must be an integer of at least 5"))?,
        };

        let client_id = get("PLAID_CLIENT_ID");
        let env = match get("PLAID_ENV") {
            None if client_id.is_none() => PlaidEnv::Simulator,
            None => PlaidEnv::Sandbox,
            Some("sandbox") => PlaidEnv::Sandbox,
            Some("production") => PlaidEnv::Production,
            Some("simulator") => PlaidEnv::Simulator,
            Some(other) => {
                return Err(err(
                    "PLAID_ENV",
                    format!("must be sandbox, production or simulator, not {other:?}"),
                ));
            }
        };
        let base_url = match get("PLAID_BASE_URL") {
            Some(url) => Some(
                parse_http_url("PLAID_BASE_URL", url)?
                    .trim_end_matches('/')
                    .to_owned(),
            ),
            None => match env {
                PlaidEnv::Sandbox => Some("https://sandbox.plaid.com".to_owned()),
                PlaidEnv::Production => Some("https://production.plaid.com".to_owned()),
                PlaidEnv::Simulator => None,
            },
        };
        let (client_id, plaid_secret) = match env {
            PlaidEnv::Simulator => (
                client_id
                    .unwrap_or(plaid_simulator_defaults::CLIENT_ID)
                    .to_owned(),
                secret("PLAID_SECRET").unwrap_or_else(|| Secret::new(plaid_simulator_defaults::SECRET)),
            ),
            _ => (
                client_id
                    .ok_or_else(|| {
                        err(
                            "PLAID_CLIENT_ID",
                            "is required when PLAID_ENV is sandbox or production",
                        )
                    })?
                    .to_owned(),
                secret("PLAID_SECRET").ok_or_else(|| {
                    err(
                        "PLAID_SECRET",
                        "is required when PLAID_ENV is sandbox or production",
                    )
                })?,
            ),
        };
        let webhook_url = get("PLAID_WEBHOOK_URL")
            .map(|u| parse_http_url("PLAID_WEBHOOK_URL", u).map(str::to_owned))
            .transpose()?;

        let secrets_key = match get("SECRETS_KEY") {
            Some(text) => SecretsKey::from_base64(text).map_err(|e| err("SECRETS_KEY", e.to_string()))?,
            None if env == PlaidEnv::Simulator => simulator_key(key_file)?,
            None => {
                return Err(err(
                    "SECRETS_KEY",
                    "is required (base64 of 32 bytes) unless PLAID_ENV=simulator",
                ));
            }
        };
        let secrets_key_previous = get("SECRETS_KEY_PREVIOUS")
            .map(|list| {
                list.split(',')
                    .map(|k| {
                        SecretsKey::from_base64(k).map_err(|e| err("SECRETS_KEY_PREVIOUS", e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let log_format = match get("LOG_FORMAT") {
            None => {
                use std::io::IsTerminal;
                if std::io::stderr().is_terminal() {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                }
            }
            Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "LOG_FORMAT",
                    format!("must be pretty or json, not {other:?}"),
                ));
            }
        };

        Ok(Self {
            database_url: Secret::new(database_url),
            database_max_connections,
            bind_addr: addr(get("BIND_ADDR"), "BIND_ADDR", "127.0.0.1:8080")?,
            admin_bind_addr: addr(get("ADMIN_BIND_ADDR"), "ADMIN_BIND_ADDR", "127.0.0.1:8081")?,
            plaid: PlaidSettings {
                env,
                base_url,
                client_id,
                secret: plaid_secret,
                webhook_url,
            },
            plaid_webhook_secret: secret("PLAID_WEBHOOK_SECRET"),
            jobs_secret: secret("JOBS_SECRET"),
            admin_token: secret("ADMIN_TOKEN"),
            secrets_key,
            secrets_key_previous,
            safety_net_cron: schedule(get("SAFETY_NET_CRON"), "SAFETY_NET_CRON", "0 */30 * * * *")?,
            safety_net_stale_after: duration(get("SAFETY_NET_STALE_AFTER"), "SAFETY_NET_STALE_AFTER", "24h")?,
            cleanup_cron: schedule(get("CLEANUP_CRON"), "CLEANUP_CRON", "0 0 3 * * *")?,
            dormant_after: duration(get("DORMANT_AFTER"), "DORMANT_AFTER", "30d")?,
            cleanup_grace: duration(get("CLEANUP_GRACE"), "CLEANUP_GRACE", "7d")?,
            job_retention: duration(get("JOB_RETENTION"), "JOB_RETENTION", "7d")?,
            log_format,
        })
    }
}

impl Config {
    /// Settings that start but are likely a mistake, one sentence each; the
    /// service logs them at `WARN` when it starts.
    pub fn startup_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.plaid.env != PlaidEnv::Simulator && self.plaid.webhook_url.is_none() {
            warnings.push(format!(
                "PLAID_ENV is {:?} but PLAID_WEBHOOK_URL is unset: Plaid will send this webhook-driven \
                 service no webhooks, so items sync only when the safety net finds them stale \
                 (SAFETY_NET_STALE_AFTER). Set PLAID_WEBHOOK_URL to this service's public /webhook/plaid.",
                self.plaid.env
            ));
        }
        warnings
    }

    /// What dormant-item cleanup needs (`DORMANT_AFTER`, `CLEANUP_GRACE`).
    pub fn cleanup_settings(&self) -> workflows::lifecycle::cleanup::CleanupSettings {
        workflows::lifecycle::cleanup::CleanupSettings {
            dormant_after: self.dormant_after,
            grace: self.cleanup_grace,
        }
    }
}

/// Credentials the built-in simulator accepts by default.
pub mod plaid_simulator_defaults {
    /// `PLAID-CLIENT-ID` in simulator mode.
    pub const CLIENT_ID: &str = "sim-client-id";
    /// `PLAID-SECRET` in simulator mode.
    pub const SECRET: &str = "sim-secret";
}

fn parse_http_url<'a>(variable: &'static str, url: &'a str) -> Result<&'a str, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| err(variable, "must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(err(variable, "has no host"));
    }
    Ok(url)
}

fn addr(value: Option<&str>, variable: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
    value.unwrap_or(default).parse().map_err(|_| {
        err(
            variable,
            "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8080",
        )
    })
}

fn duration(value: Option<&str>, variable: &'static str, default: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(value.unwrap_or(default))
        .map_err(|e| err(variable, format!("must be a duration like 90s, 24h or 30d: {e}")))?;
    if d.is_zero() {
        return Err(err(variable, "must be greater than zero"));
    }
    Ok(d)
}

fn schedule(value: Option<&str>, variable: &'static str, default: &str) -> Result<CronSchedule, ConfigError> {
    CronSchedule::from_str(value.unwrap_or(default)).map_err(|e| {
        err(
            variable,
            format!(
                "must be a cron expression: 5 fields (minute hour day month weekday, Sunday 0, \
                 e.g. \"0 3 * * 1\" for Mondays 03:00 UTC) or 6 with seconds first \
                 (\"0 */30 * * * *\"): {e}"
            ),
        )
    })
}

/// Simulator mode: read the generated key, or generate it once.
fn simulator_key(path: &Path) -> Result<SecretsKey, ConfigError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return SecretsKey::from_base64(&text).map_err(|e| {
            err(
                "SECRETS_KEY",
                format!("the generated key in {} {e}", path.display()),
            )
        });
    }
    let key = SecretsKey::generate();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write;
        options.open(path)?.write_all(key.to_base64().as_bytes())
    };
    match write() {
        Ok(()) => Ok(key),
        // Another process generated it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => simulator_key(path),
        Err(e) => Err(err(
            "SECRETS_KEY",
            format!("is unset and {} could not be written: {e}", path.display()),
        )),
    }
}

//! Configuration: defaults, validation errors that name the variable, redaction.

use std::{collections::HashMap, path::Path};

use plaid_sync::config::{Config, PlaidEnv};

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn error_variable(pairs: &[(&str, &str)]) -> &'static str {
    let dir = tempdir();
    Config::from_vars(&vars(pairs), &dir.join("k"))
        .expect_err("config must be rejected")
        .variable
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plaid-sync-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn defaults_follow_the_contract() {
    let dir = tempdir();
    let config = Config::from_vars(&vars(&[("SECRETS_KEY", KEY)]), &dir.join("k")).unwrap();
    assert_eq!(
        config.database_url.expose(),
        "postgres://postgres@127.0.0.1:5432/plaid_sync"
    );
    assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.admin_bind_addr.to_string(), "127.0.0.1:8081");
    assert_eq!(
        config.plaid.env,
        PlaidEnv::Simulator,
        "no PLAID_CLIENT_ID means simulator"
    );
    assert_eq!(config.safety_net_stale_after.as_secs(), 24 * 3600);
    assert_eq!(config.dormant_after.as_secs(), 30 * 86400);
    assert_eq!(config.cleanup_grace.as_secs(), 7 * 86400);
    assert!(config.jobs_secret.is_none() && config.admin_token.is_none());
}

#[test]
fn a_client_id_switches_the_default_environment_to_sandbox() {
    let dir = tempdir();
    let config = Config::from_vars(
        &vars(&[
            ("SECRETS_KEY", KEY),
            ("PLAID_CLIENT_ID", "cid"),
            ("PLAID_SECRET", "sec"),
        ]),
        &dir.join("k"),
    )
    .unwrap();
    assert_eq!(config.plaid.env, PlaidEnv::Sandbox);
    assert_eq!(
        config.plaid.base_url.as_deref(),
        Some("https://sandbox.plaid.com")
    );
}

#[test]
fn each_bad_value_is_an_error_naming_its_variable() {
    let base = [("SECRETS_KEY", KEY)];
    let case = |extra: (&str, &str)| {
        let mut all = base.to_vec();
        all.push(extra);
        error_variable(&all)
    };
    assert_eq!(case(("DATABASE_URL", "mysql://x")), "DATABASE_URL");
    assert_eq!(case(("BIND_ADDR", "localhost")), "BIND_ADDR");
    assert_eq!(case(("ADMIN_BIND_ADDR", "1.2.3.4")), "ADMIN_BIND_ADDR");
    assert_eq!(case(("PLAID_ENV", "development")), "PLAID_ENV");
    assert_eq!(case(("PLAID_BASE_URL", "ftp://x")), "PLAID_BASE_URL");
    assert_eq!(case(("PLAID_WEBHOOK_URL", "not a url")), "PLAID_WEBHOOK_URL");
    assert_eq!(case(("SAFETY_NET_CRON", "every half hour")), "SAFETY_NET_CRON");
    assert_eq!(case(("CLEANUP_CRON", "* *")), "CLEANUP_CRON");
    assert_eq!(case(("SAFETY_NET_STALE_AFTER", "soon")), "SAFETY_NET_STALE_AFTER");
    assert_eq!(case(("DORMANT_AFTER", "0s")), "DORMANT_AFTER");
    assert_eq!(case(("CLEANUP_GRACE", "7 fortnights")), "CLEANUP_GRACE");
    assert_eq!(case(("LOG_FORMAT", "xml")), "LOG_FORMAT");
    assert_eq!(
        case(("DATABASE_MAX_CONNECTIONS", "1")),
        "DATABASE_MAX_CONNECTIONS"
    );
    assert_eq!(error_variable(&[("SECRETS_KEY", "c2hvcnQ=")]), "SECRETS_KEY");
    assert_eq!(error_variable(&[("SECRETS_KEY", "!!!")]), "SECRETS_KEY");
    // Sandbox needs credentials and a key.
    assert_eq!(
        error_variable(&[("SECRETS_KEY", KEY), ("PLAID_ENV", "sandbox")]),
        "PLAID_CLIENT_ID"
    );
    assert_eq!(
        error_variable(&[
            ("SECRETS_KEY", KEY),
            ("PLAID_ENV", "production"),
            ("PLAID_CLIENT_ID", "c")
        ]),
        "PLAID_SECRET"
    );
    assert_eq!(
        error_variable(&[("PLAID_CLIENT_ID", "c"), ("PLAID_SECRET", "s")]),
        "SECRETS_KEY"
    );
}

#[test]
fn the_error_message_names_the_variable_but_never_a_secret_value() {
    let dir = tempdir();
    let err = Config::from_vars(
        &vars(&[("SECRETS_KEY", "dG9vLXNob3J0LXNlY3JldA==")]),
        &dir.join("k"),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("SECRETS_KEY"), "{text}");
    assert!(!text.contains("dG9vLXNob3J0LXNlY3JldA"), "{text}");
}

#[test]
fn simulator_mode_generates_a_key_once_and_reuses_it() {
    let dir = tempdir();
    let path = dir.join("nested/secrets.key");
    let first = Config::from_vars(&HashMap::new(), &path).unwrap();
    let second = Config::from_vars(&HashMap::new(), &path).unwrap();
    assert!(path.exists());
    assert_eq!(first.secrets_key.id(), second.secrets_key.id());
}

#[test]
fn debug_output_of_the_config_redacts_every_secret() {
    let dir = tempdir();
    let config = Config::from_vars(
        &vars(&[
            ("SECRETS_KEY", KEY),
            ("DATABASE_URL", "postgres://u:db-password-1@127.0.0.1/x"),
            ("PLAID_CLIENT_ID", "cid"),
            ("PLAID_SECRET", "plaid-secret-2"),
            ("PLAID_WEBHOOK_SECRET", "webhook-secret-3"),
            ("JOBS_SECRET", "jobs-secret-4"),
            ("ADMIN_TOKEN", "admin-token-5"),
        ]),
        &dir.join("k"),
    )
    .unwrap();
    let debug = format!("{config:?}");
    for secret in [
        "db-password-1",
        "plaid-secret-2",
        "webhook-secret-3",
        "jobs-secret-4",
        "admin-token-5",
        KEY,
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }
    assert!(debug.contains("[redacted]"));
}

#[test]
fn an_unreadable_key_path_in_simulator_mode_names_secrets_key() {
    let err = Config::from_vars(&HashMap::new(), Path::new("/proc/forbidden/secrets.key")).unwrap_err();
    assert_eq!(err.variable, "SECRETS_KEY");
}

#[test]
fn schedules_take_standard_five_field_crontab_and_the_six_field_form() {
    use chrono::{Datelike, TimeZone, Timelike, Utc, Weekday};

    let dir = tempdir();
    let config = Config::from_vars(
        &vars(&[
            ("SECRETS_KEY", KEY),
            ("CLEANUP_CRON", "0 3 * * 1"),
            ("SAFETY_NET_CRON", "0 */30 * * * *"),
        ]),
        &dir.join("k"),
    )
    .unwrap();
    // 2026-12-08 is a Tuesday: the next "0 3 * * 1" is Monday the 14th, 03:00 UTC.
    let tuesday = Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap();
    let cleanup = config.cleanup_cron.next_after(tuesday).unwrap();
    assert_eq!(
        (cleanup.weekday(), cleanup.day(), cleanup.hour(), cleanup.minute()),
        (Weekday::Mon, 14, 3, 0)
    );
    let safety = config.safety_net_cron.next_after(tuesday).unwrap();
    assert_eq!((safety.hour(), safety.minute(), safety.second()), (12, 30, 0));

    for bad in ["0 3 * * 8", "0 3 * *", "61 * * * *", "@sometimes"] {
        let err = Config::from_vars(
            &vars(&[("SECRETS_KEY", KEY), ("CLEANUP_CRON", bad)]),
            &dir.join("k"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CLEANUP_CRON") && text.contains("5 fields"),
            "{bad:?}: {text}"
        );
    }
}

#[test]
fn sandbox_or_production_without_a_webhook_url_warns_at_start() {
    let dir = tempdir();
    let base = [
        ("SECRETS_KEY", KEY),
        ("PLAID_CLIENT_ID", "cid"),
        ("PLAID_SECRET", "sec"),
    ];
    for env in ["sandbox", "production"] {
        let mut pairs = base.to_vec();
        pairs.push(("PLAID_ENV", env));
        let warnings = Config::from_vars(&vars(&pairs), &dir.join("k"))
            .unwrap()
            .startup_warnings();
        assert_eq!(warnings.len(), 1, "{env}: {warnings:?}");
        assert!(warnings[0].contains("PLAID_WEBHOOK_URL"), "{}", warnings[0]);
        pairs.push(("PLAID_WEBHOOK_URL", "https://sync.example.com/webhook/plaid"));
        let with_url = Config::from_vars(&vars(&pairs), &dir.join("k")).unwrap();
        assert!(with_url.startup_warnings().is_empty(), "{env} with a URL");
    }
    let simulator = Config::from_vars(&vars(&[("SECRETS_KEY", KEY)]), &dir.join("k")).unwrap();
    assert!(simulator.startup_warnings().is_empty());
}

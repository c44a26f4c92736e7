//! `check backfill`: is every legacy Plaid account mapped?
//!
//! Prints one `key: value` line per figure (stable, for scripts and humans),
//! then the secrets that did not resolve and the accounts still unmapped.
//! Exits 1 while any legacy Plaid account is unmapped, whatever the reason:
//! not discovered yet, pending, failed, or no unique Plaid partner. Read-only:
//! it neither migrates nor enqueues.

use std::process::ExitCode;

use workflows::db::legacy_backfill as db;

use crate::{app::prepare_database, config::Config, telemetry};

/// At most this many unmapped accounts are listed one by one.
const LIST_LIMIT: i64 = 100;

/// Prints the legacy backfill's completeness; exit 1 while anything is unmapped.
pub async fn check() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    let pool = prepare_database(&config, false).await?;
    let mut conn = pool.acquire().await?;
    let counts = db::account_counts(&mut conn).await?;
    let secrets = db::secret_counts(&mut conn).await?;
    let problems = db::secret_problems(&mut conn).await?;
    let unmapped = db::unmapped_accounts(&mut conn, LIST_LIMIT).await?;
    // `close` waits for every connection to come back.
    drop(conn);
    pool.close().await;
    let secrets_with = |status: &str| secrets.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);

    let missing = counts.legacy_accounts - counts.with_mapping;
    let verdict = if missing == 0 { "complete" } else { "incomplete" };
    println!("legacy backfill: {verdict}");
    println!("legacy_plaid_accounts: {}", counts.legacy_accounts);
    println!("with_item: {}", counts.with_item);
    println!("without_item: {}", counts.legacy_accounts - counts.with_item);
    println!("with_mapping: {}", counts.with_mapping);
    println!("unmapped: {missing}");
    println!("secrets_pending: {}", secrets_with("pending"));
    println!("secrets_resolved: {}", secrets_with("resolved"));
    println!("secrets_failed: {}", secrets_with("failed"));
    for p in &problems {
        println!(
            "{} secret {}: {} ({} accounts, {} attempts): {}",
            p.status,
            p.secret_ref,
            p.error_code.as_deref().unwrap_or("-"),
            p.accounts,
            p.attempts,
            p.last_error.as_deref().unwrap_or("-"),
        );
    }
    for a in &unmapped {
        let why = match (a.status.as_deref(), a.error_code.as_deref()) {
            (None, _) => "not discovered yet (run `plaid-sync migrate`)".to_owned(),
            (Some("resolved"), _) => "no unique Plaid account matches it".to_owned(),
            (Some(status), Some(code)) => format!("{status} ({code})"),
            (Some(status), None) => status.to_owned(),
        };
        println!(
            "unmapped account {} (user {}, {:?}, mask {}): secret {}: {why}",
            a.id,
            a.user_id,
            a.name,
            a.mask.as_deref().unwrap_or("-"),
            a.secret_ref,
        );
    }
    if missing > unmapped.len() as i64 {
        println!(
            "... and {} more unmapped accounts",
            missing - unmapped.len() as i64
        );
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

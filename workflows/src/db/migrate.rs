//! Connecting, creating the database when missing, and running both migrators:
//! the app's (`migrations/`, history in `public._sqlx_migrations`) and apalis'
//! (history in `apalis._sqlx_migrations`). They track history separately, so
//! their order does not matter; apalis runs first because its `apalis.jobs`
//! table is what the app's guard tables point job ids at.

use std::{str::FromStr, time::Duration};

use apalis_postgres::PostgresStorage;
use sqlx::{
    ConnectOptions, Connection, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};

/// The app's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Errors while preparing the database.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The URL could not be parsed.
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(String),
    /// The server could not be reached or refused us.
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(String),
}

/// Creates the database named in `url` if it does not exist yet, by connecting
/// to the server's `postgres` maintenance database.
pub async fn ensure_database(url: &str) -> Result<(), MigrateError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| MigrateError::BadUrl(e.to_string()))?;
    let name = options.get_database().unwrap_or("postgres").to_string();
    let admin = options.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .map_err(MigrateError::Connect)?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .map_err(MigrateError::Connect)?;
    if !exists {
        // Identifiers cannot be bound; quote it. A concurrent creator wins the race
        // and we accept "already exists" (42P04).
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("create database {quoted}")))
            .execute(&mut conn)
            .await
        {
            let raced = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42P04" || c == "23505");
            if !raced {
                return Err(MigrateError::Connect(e));
            }
        }
    }
    conn.close().await.ok();
    Ok(())
}

/// Opens a pool. `max_connections` must cover one LISTEN connection per worker
/// (apalis `with_pubsub` holds one for good) plus fetch, ack and request traffic.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, MigrateError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| MigrateError::BadUrl(e.to_string()))?
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(MigrateError::Connect)
}

/// Runs apalis' migrations, then the app's, then the legacy backfill's
/// discovery step ([`crate::backfill::discover`]).
pub async fn migrate_all(pool: &PgPool) -> Result<(), MigrateError> {
    PostgresStorage::setup(pool)
        .await
        .map_err(|e| MigrateError::Migrate(format!("job queue: {e}")))?;
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| MigrateError::Migrate(e.to_string()))?;
    // The data step of the legacy backfill (SQL migrations run once, before legacy rows may exist).
    crate::backfill::discover(pool)
        .await
        .map_err(|e| MigrateError::Migrate(format!("legacy backfill: {e}")))?;
    Ok(())
}

/// True when every embedded app migration has been applied (for `/readyz`).
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("select max(version) from public._sqlx_migrations where success")
            .fetch_one(pool)
            .await
            .or_else(|e| match e.as_database_error().and_then(|d| d.code()) {
                // No history table yet: nothing applied.
                Some(c) if c == "42P01" => Ok(None),
                _ => Err(e),
            })?;
    Ok(applied.unwrap_or(0) >= latest)
}

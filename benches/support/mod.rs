//! What both benches share: a fresh database per run, and how figures are printed.
//!
//! Databases are named `bench_<pid>_<n>`, so one left behind by a crashed run
//! (whose pid is gone) is dropped the next time a bench creates one, as the
//! integration suite does with `it_<pid>_<n>`.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

/// The server benches run against (`TEST_DATABASE_SERVER` overrides it, as for the tests).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that exists for one bench run.
pub struct BenchDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

async fn admin() -> anyhow::Result<PgConnection> {
    Ok(PgConnection::connect(&format!("{}/postgres", server_url())).await?)
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    let sql = format!("drop database if exists \"{name}\" with (force)");
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// Drops `bench_<pid>_*` databases whose process is gone.
async fn sweep_stale(conn: &mut PgConnection) -> anyhow::Result<()> {
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 'bench\\_%'")
            .fetch_all(&mut *conn)
            .await?;
    for name in names {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !pid_alive(p)) {
            drop_database(conn, &name).await?;
        }
    }
    Ok(())
}

impl BenchDb {
    /// Creates an empty database (after sweeping stale ones).
    pub async fn create() -> anyhow::Result<Self> {
        let mut conn = admin().await?;
        sweep_stale(&mut conn).await?;
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("bench_{}_{n}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
            .execute(&mut conn)
            .await?;
        let url = format!("{}/{name}", server_url());
        Ok(Self { name, url })
    }

    /// Drops the database (its connections are terminated).
    pub async fn drop_now(&self) -> anyhow::Result<()> {
        drop_database(&mut admin().await?, &self.name).await
    }
}

/// `a / b` as a ratio and a percentage, e.g. `0.62 (62 %)`.
pub fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{:.2} ({:.0} %)", a / b, 100.0 * a / b)
}

/// The PostgreSQL server's version string.
pub async fn postgres_version() -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("show server_version")
        .fetch_one(&mut admin().await?)
        .await?)
}

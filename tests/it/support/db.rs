//! One fresh database per test, on the local PostgreSQL.
//!
//! Names carry the test process id (`it_<pid>_<n>`), so databases left by a
//! crashed earlier run (whose pid is gone) are dropped the first time this
//! process creates one, and the machine does not fill up with them.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

/// The server tests run against (`TEST_DATABASE_SERVER` overrides it).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEPT: OnceCell<()> = OnceCell::const_new();

/// A database that exists for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .expect("PostgreSQL must be reachable at 127.0.0.1:5432 (see README: .ci/run starts it)")
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn sweep_stale() {
    let mut conn = admin().await;
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 'it\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for name in names {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !pid_alive(p)) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists \"{name}\" with (force)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

impl TestDb {
    /// Creates an empty database (the app migrates it when it starts).
    pub async fn create() -> Self {
        SWEPT.get_or_init(sweep_stale).await;
        let name = format!(
            "it_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = admin().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    /// Creates a database and runs both migrators on it.
    pub async fn migrated() -> (Self, PgPool) {
        let db = Self::create().await;
        let pool = workflows::db::connect(&db.url, 10).await.unwrap();
        workflows::db::migrate_all(&pool).await.unwrap();
        (db, pool)
    }

    /// Drops the database (connections are terminated).
    pub async fn drop_now(&self) {
        let mut conn = admin().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists \"{}\" with (force)",
            self.name
        )))
        .execute(&mut conn)
        .await;
    }
}

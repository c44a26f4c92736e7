//! Persistence: the migrators and one function per statement, grouped by table.

pub mod accounts;
pub mod items;
pub mod legacy_backfill;
pub mod migrate;
pub mod notifications;
pub mod transactions;
pub mod users;
pub mod webhook_events;

pub use migrate::{connect, ensure_database, migrate_all};

/// True for errors that mean "the database is not there" rather than "this
/// query is wrong": callers answer 503 / retry later instead of failing.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            true
        }
        sqlx::Error::Database(d) => d
            .code()
            // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
            // 08xxx connection exceptions, 53xxx insufficient resources (too many connections).
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08") || c.starts_with("53")),
        _ => false,
    }
}

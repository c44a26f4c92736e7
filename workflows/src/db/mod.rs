//! Persistence: the migrators and one function per statement, grouped by table.

pub mod accounts;
pub mod migrate;
pub mod users;

pub use migrate::{connect, ensure_database, migrate_all};

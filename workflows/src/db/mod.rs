//! Persistence: the migrators and one function per statement, grouped by table.

pub mod accounts;
pub mod items;
pub mod migrate;
pub mod users;
pub mod webhook_events;

pub use migrate::{connect, ensure_database, migrate_all};

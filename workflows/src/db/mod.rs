//! Persistence: the migrators and one function per statement, grouped by table.

pub mod accounts;
pub mod items;
pub mod legacy_backfill;
pub mod migrate;
pub mod notifications;
pub mod users;
pub mod webhook_events;

pub use migrate::{connect, ensure_database, migrate_all};

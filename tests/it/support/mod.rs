//! Test harness: real PostgreSQL databases, the app on port 0, helpers.

pub mod app;
pub mod browser;
pub mod db;
pub mod fixtures;
pub mod lifecycle;
pub mod oracle;
pub mod pg_proxy;
pub mod plaid;
pub mod process;
pub mod wait;

pub use app::TestApp;
pub use db::TestDb;
pub use wait::wait_until;

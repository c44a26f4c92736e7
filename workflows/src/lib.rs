//! The engine of plaid-sync: everything a worker needs.
//!
//! - [`db`]: persistence, one function per statement, and the migrators;
//! - [`secrets`]: the encrypted secret store for Plaid access tokens;
//! - [`auth`]: API tokens (issue, hash, look up) and constant-time secret checks;
//! - [`jobs`]: typed job arguments, enqueueing inside the caller's transaction,
//!   worker runtime settings and the job handlers;
//! - [`plaid`]: the Plaid HTTP client and its typed errors.
//!
//! This crate never depends on the root `plaid-sync` crate: the HTTP edge and the
//! binary wire it up and hand it its configuration.

pub mod auth;
pub mod backfill;
pub mod db;
pub mod ingest;
pub mod jobs;
pub mod lifecycle;
pub mod link;
pub mod metrics;
pub mod monitoring;
pub mod ops;
pub mod plaid;
pub mod redact;
pub mod safety_net;
pub mod secrets;
pub mod sync;

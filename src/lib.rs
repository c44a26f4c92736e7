//! plaid-sync: the HTTP edge, configuration, CLI and wiring.
//!
//! The engine (jobs, persistence, the Plaid client) lives in the `workflows`
//! crate; the Plaid simulator in `plaid-simulator`. This crate turns
//! configuration into a running [`app::Application`].

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod env_vars;
pub mod http;
pub mod metrics;
pub mod state;
pub mod telemetry;

//! Integration tests: one binary, one module per capability.
//!
//! Every test runs against real PostgreSQL (a fresh database each) and, where
//! Plaid is involved, the Plaid simulator over real HTTP.

mod support;

mod auth;
mod config;
mod health;
mod jobs;
mod plaid_client_types;
mod secrets;

//! Integration tests: one binary, one module per capability.
//!
//! Every test runs against real PostgreSQL (a fresh database each) and, where
//! Plaid is involved, the Plaid simulator over real HTTP.

mod support;

mod auth;
mod backfill;
mod cleanup;
mod config;
mod dashboard_browser;
mod db_connections;
mod drills;
mod health;
mod jobs;
mod jobs_api;
mod link;
mod openapi;
mod operator;
mod plaid_client;
mod plaid_client_errors;
mod plaid_client_schema;
mod plaid_client_types;
mod safety_net;
mod secrets;
mod security;
mod simulator_api;
mod simulator_faults;
mod simulator_support;
mod simulator_sync;
mod simulator_webhooks;
mod sync;
mod sync_crash;
mod sync_initial_load;
mod sync_property;
mod transactions_api;
mod unlink;
mod webhook_batches;
mod webhooks;

//! Prometheus metrics recorded where things happen, one named function per
//! event so call sites stay one line (the `metrics` facade: a no-op until the
//! binary installs a recorder; the root crate's `metrics` module does).
//!
//! Gauges that describe database state (items by status, sync lag, queue
//! depth) are not kept here: `/metrics` computes them at scrape time
//! ([`crate::monitoring::gauges`]), so every process reports the same truth.

use std::time::Duration;

use crate::sync::SyncOutcome;

/// Webhooks verified and durably stored (new events and duplicates).
pub const WEBHOOKS_RECEIVED: &str = "plaid_sync_webhooks_received_total";
/// Of those, deliveries of an already stored event.
pub const WEBHOOKS_DUPLICATE: &str = "plaid_sync_webhooks_duplicate_total";
/// Webhooks not stored, by `reason`.
pub const WEBHOOKS_REJECTED: &str = "plaid_sync_webhooks_rejected_total";
/// Time from request to answer, by `outcome` (`accepted`, `duplicate`, `rejected`).
pub const WEBHOOK_DURATION: &str = "plaid_sync_webhook_duration_seconds";
/// Sync runs by `outcome`.
pub const SYNC_RUNS: &str = "plaid_sync_sync_runs_total";
/// Sync run duration by `outcome`.
pub const SYNC_DURATION: &str = "plaid_sync_sync_duration_seconds";
/// Transactions Plaid reported in applied updates, by `change` (`added`, `modified`, `removed`).
pub const TRANSACTIONS: &str = "plaid_sync_transactions_total";
/// Plaid API calls by `endpoint` and `error_code` (`ok` on success).
pub const PLAID_REQUESTS: &str = "plaid_sync_plaid_requests_total";
/// Plaid API call duration by `endpoint`.
pub const PLAID_DURATION: &str = "plaid_sync_plaid_request_duration_seconds";

/// A webhook was stored (`duplicate`: it matched a stored event).
pub fn webhook_stored(duplicate: bool, elapsed: Duration) {
    metrics::counter!(WEBHOOKS_RECEIVED).increment(1);
    if duplicate {
        metrics::counter!(WEBHOOKS_DUPLICATE).increment(1);
    }
    let outcome = if duplicate { "duplicate" } else { "accepted" };
    metrics::histogram!(WEBHOOK_DURATION, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// A webhook was refused (bad signature, not JSON, too large, database down, ...).
pub fn webhook_rejected(reason: &'static str, elapsed: Duration) {
    metrics::counter!(WEBHOOKS_REJECTED, "reason" => reason).increment(1);
    metrics::histogram!(WEBHOOK_DURATION, "outcome" => "rejected").record(elapsed.as_secs_f64());
}

/// The `outcome` label of a sync run (also the rollup kind `sync_<label>`).
pub fn sync_outcome_label(outcome: &Result<SyncOutcome, impl std::fmt::Display>) -> &'static str {
    match outcome {
        Ok(SyncOutcome::Synced { .. }) => "synced",
        Ok(SyncOutcome::NotReady) => "not_ready",
        Ok(SyncOutcome::Deferred) => "deferred",
        Ok(SyncOutcome::Skipped(_)) => "skipped",
        Ok(SyncOutcome::RetryScheduled { .. }) => "retry",
        Ok(SyncOutcome::NeedsReauth(_)) => "needs_reauth",
        Ok(SyncOutcome::Failed(_)) => "failed",
        // Infrastructure (the database): apalis retries the job.
        Err(_) => "error",
    }
}

/// A sync run ended.
pub fn sync_finished(outcome: &Result<SyncOutcome, impl std::fmt::Display>, elapsed: Duration) {
    let label = sync_outcome_label(outcome);
    metrics::counter!(SYNC_RUNS, "outcome" => label).increment(1);
    metrics::histogram!(SYNC_DURATION, "outcome" => label).record(elapsed.as_secs_f64());
    if let Ok(SyncOutcome::Synced {
        added,
        modified,
        removed,
        ..
    }) = outcome
    {
        metrics::counter!(TRANSACTIONS, "change" => "added").increment(*added);
        metrics::counter!(TRANSACTIONS, "change" => "modified").increment(*modified);
        metrics::counter!(TRANSACTIONS, "change" => "removed").increment(*removed);
    }
}

/// A Plaid API call ended; `error_code` is Plaid's, ours for failures without
/// one (`timeout`, `transport_error`, `bad_response`), or `ok`.
pub fn plaid_call(endpoint: &'static str, error_code: &str, elapsed: Duration) {
    metrics::counter!(PLAID_REQUESTS, "endpoint" => endpoint, "error_code" => error_code.to_owned())
        .increment(1);
    metrics::histogram!(PLAID_DURATION, "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

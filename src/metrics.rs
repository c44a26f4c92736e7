//! The process's Prometheus recorder (`GET /metrics` on the operator listener).
//!
//! The `metrics` facade has one global recorder per process; [`prometheus`]
//! installs it on first use and every later caller (another `Application` in
//! the same process, as in tests) shares it. Counters and histograms are
//! recorded where things happen (`workflows::metrics`); gauges of database
//! state are rendered per scrape (`workflows::monitoring::gauges`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use workflows::metrics as names;

/// Histogram buckets (seconds): webhooks answer in milliseconds, an initial
/// sync of a long history takes minutes.
pub const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// `plaid_sync_build_info{version, rustc}`: always 1; tells which build a
/// process runs (join on it in queries, alert on mixed versions).
pub const BUILD_INFO: &str = "plaid_sync_build_info";

/// The process collector (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, ...), read per scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Refreshes the process metrics; called before each render.
pub fn collect_process() {
    process_collector().collect();
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .expect("the bucket list is not empty")
}

/// The process-wide handle, installing the recorder on first use. Should
/// another recorder already be installed, metrics render empty rather than
/// failing the process.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| match builder().install_recorder() {
        Ok(handle) => {
            describe();
            handle
        }
        Err(e) => {
            tracing::warn!(error = %e, "a metrics recorder was already installed; /metrics shows database gauges only");
            builder().build_recorder().handle()
        }
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        BUILD_INFO,
        "Always 1; labels name the build (version, minimum Rust version)."
    );
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "rust_version" => env!("CARGO_PKG_RUST_VERSION"),
    )
    .set(1.0);
    process_collector().describe();
    describe_counter!(
        names::WEBHOOKS_RECEIVED,
        "Webhooks verified and durably stored (new events and duplicates)."
    );
    describe_counter!(
        names::WEBHOOKS_DUPLICATE,
        "Stored webhooks that matched an already stored event."
    );
    describe_counter!(names::WEBHOOKS_REJECTED, "Webhooks not stored, by reason.");
    describe_histogram!(
        names::WEBHOOK_DURATION,
        "Webhook handling time, request to answer, by outcome."
    );
    describe_counter!(names::SYNC_RUNS, "Sync runs by outcome.");
    describe_histogram!(names::SYNC_DURATION, "Sync run duration by outcome.");
    describe_counter!(
        names::TRANSACTIONS,
        "Transactions in applied sync updates, by change (added, modified, removed)."
    );
    describe_counter!(
        names::PLAID_REQUESTS,
        "Plaid API calls by endpoint and error_code (ok on success)."
    );
    describe_histogram!(names::PLAID_DURATION, "Plaid API call duration by endpoint.");
}

//! Reading the simulator's call log and the sync job rows after a drill: how
//! many `/transactions/sync` calls an item got within a minute, and whether
//! each failed call's retry waited its backoff.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use chrono::{DateTime, Utc};
use plaid_simulator::CallRecord;

use crate::support::TestApp;

/// The endpoint whose calls are counted.
pub const SYNC: &str = "/transactions/sync";
/// Plaid's answer when an item changed while a client paged through an update.
pub const MUTATION: &str = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION";

/// The most of `times` (sorted) inside any window of length `window`.
pub fn max_in_window(times: &[DateTime<Utc>], window: Duration) -> usize {
    let window = chrono::Duration::from_std(window).unwrap();
    let mut start = 0;
    let mut most = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

/// Sync calls per Plaid item id, in order of arrival.
pub fn sync_calls_by_item(calls: &[CallRecord]) -> BTreeMap<String, Vec<&CallRecord>> {
    let mut by_item: BTreeMap<String, Vec<&CallRecord>> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.endpoint == SYNC) {
        if let Some(item) = &call.item_id {
            by_item.entry(item.clone()).or_default().push(call);
        }
    }
    by_item
}

/// A call that ends its sync run with a durable retry: any failure but the
/// mutation error (after which the run restarts at once, up to three times).
pub fn ends_run_with_retry(call: &CallRecord) -> bool {
    call.status != 200 && call.error_code.as_deref() != Some(MUTATION)
}

/// A failed sync call whose retry was missing, or whose item was called again too soon.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Plaid's item id.
    pub item: String,
    /// The failed call's sequence number in the call log.
    pub failed_call: u64,
    /// How long after the failure the item's retry was due (`None`: no job was due late enough).
    pub retry_due_after: Option<Duration>,
    /// How long after the failure the item's next sync call came (`None`: none did).
    pub next_call_after: Option<Duration>,
}

/// What the backoff check found.
#[derive(Debug, Default)]
pub struct BackoffReport {
    /// Failed calls that end a run with a retry.
    pub failures: usize,
    /// Delay from each failure to its retry (the item's first job due no sooner
    /// than the backoff), shortest first.
    pub retry_delays: Vec<Duration>,
    /// Failures without a retry, or followed by a call inside the backoff.
    pub violations: Vec<Violation>,
    /// Of those: the next call came inside the backoff.
    pub calls_early: usize,
    /// Of those: no job was due after the backoff.
    pub no_retry: usize,
    /// Other jobs of a failed item that were due inside its backoff (not-ready
    /// re-checks, jobs a worker had already fetched): they must not call Plaid
    /// before the backoff ends, which `calls_early` checks.
    pub jobs_inside: usize,
}

/// `run_at` of every sync job, per `plaid_items.id`.
async fn sync_job_due_times(app: &TestApp) -> HashMap<i64, Vec<DateTime<Utc>>> {
    let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "select (convert_from(job, 'UTF8')::jsonb ->> 'plaid_item_id')::bigint, run_at
         from apalis.jobs where job_type = 'plaid-sync.sync-item'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut due: HashMap<i64, Vec<DateTime<Utc>>> = HashMap::new();
    for (item, run_at) in rows {
        due.entry(item).or_default().push(run_at);
    }
    due
}

/// For every failed call: a sync job of the item must be due at least
/// `earliest` later (its durable retry, visible in `apalis.jobs`), and the
/// item's next call must not come sooner. `ids` maps Plaid item ids to
/// `plaid_items.id`.
pub async fn check_backoff(
    app: &TestApp,
    ids: &HashMap<String, i64>,
    by_item: &BTreeMap<String, Vec<&CallRecord>>,
    earliest: Duration,
) -> BackoffReport {
    let due = sync_job_due_times(app).await;
    let mut report = BackoffReport::default();
    for (item, calls) in by_item {
        let item_due = due.get(&ids[item]).map(Vec::as_slice).unwrap_or(&[]);
        for (n, call) in calls.iter().enumerate().filter(|(_, c)| ends_run_with_retry(c)) {
            report.failures += 1;
            let after: Vec<Duration> = item_due
                .iter()
                .filter(|run_at| **run_at > call.at)
                .map(|run_at| (*run_at - call.at).to_std().unwrap())
                .collect();
            let retry = after.iter().copied().filter(|d| *d >= earliest).min();
            report.jobs_inside += after.iter().filter(|d| **d < earliest).count();
            let next_call = calls.get(n + 1).map(|next| (next.at - call.at).to_std().unwrap());
            let early_call = next_call.is_some_and(|gap| gap < earliest);
            report.retry_delays.extend(retry);
            if retry.is_none() || early_call {
                report.calls_early += usize::from(early_call);
                report.no_retry += usize::from(retry.is_none());
                report.violations.push(Violation {
                    item: item.clone(),
                    failed_call: call.seq,
                    retry_due_after: retry,
                    next_call_after: next_call,
                });
            }
        }
    }
    report.retry_delays.sort();
    report
}

/// A sync job row as printed for a diagnosis.
type JobRow = (
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i32,
);

/// Prints the item's calls around call `seq` and its sync jobs (id, status,
/// run_at, lock_at, done_at, attempts): the evidence behind a failed verdict.
pub async fn explain(app: &TestApp, plaid_item_id: i64, calls: &[&CallRecord], seq: u64) {
    for c in calls.iter().filter(|c| c.seq + 30 >= seq && c.seq <= seq + 30) {
        eprintln!("  call #{} at {} -> {} {:?}", c.seq, c.at, c.status, c.error_code);
    }
    let jobs: Vec<JobRow> = sqlx::query_as(
        "select id, status, run_at, lock_at, done_at, attempts from apalis.jobs
         where job_type = 'plaid-sync.sync-item'
           and convert_from(job, 'UTF8')::jsonb ->> 'plaid_item_id' = $1::text order by run_at",
    )
    .bind(plaid_item_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for job in jobs {
        eprintln!("  job {job:?}");
    }
}

/// The longest a sync job waited past its `run_at` before a worker took it.
pub async fn max_pickup_lag(app: &TestApp) -> f64 {
    sqlx::query_scalar(
        "select coalesce(max(extract(epoch from lock_at - run_at)), 0)::float8
         from apalis.jobs where job_type = 'plaid-sync.sync-item' and lock_at is not null",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

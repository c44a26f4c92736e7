//! Gauges of database state, computed when `/metrics` is scraped (three
//! index-backed queries) and rendered as Prometheus text. Computing them per
//! scrape, rather than keeping them in a process, means every process reports
//! the same truth and a series that drops to zero is reported as zero.

use std::{collections::BTreeMap, fmt::Write};

use sqlx::PgConnection;

use super::status::lag_predicate;

/// Every `plaid_items.lifecycle` value (zero-filled in the output).
pub const LIFECYCLES: &[&str] = &["active", "pending_cleanup", "removed"];
/// Every `plaid_items.sync_status` value (zero-filled in the output).
pub const SYNC_STATUSES: &[&str] = &["sync_needed", "syncing", "active", "needs_reauth", "failed"];

/// Job figures of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueFigures {
    /// `Pending`/`Queued` jobs due now.
    pub depth: i64,
    /// `Pending`/`Queued` jobs due later (durable retries, grace timers).
    pub scheduled: i64,
    /// `Running` jobs.
    pub running: i64,
    /// `Failed` jobs.
    pub failed: i64,
    /// `Killed` jobs (kept until `JOB_RETENTION`).
    pub killed: i64,
    /// How long the oldest due job has waited past its `run_at` (seconds; 0 when none).
    pub oldest_pending_seconds: f64,
}

/// [`queue_figures`]: one scan of the partial index `plaid_sync_jobs_open`.
pub const QUEUES_SQL: &str = "select job_type,
        count(*) filter (where status in ('Pending', 'Queued') and run_at <= now()) as depth,
        count(*) filter (where status in ('Pending', 'Queued') and run_at > now()) as scheduled,
        count(*) filter (where status = 'Running') as running,
        count(*) filter (where status = 'Failed') as failed,
        count(*) filter (where status = 'Killed') as killed,
        extract(epoch from now() - min(run_at) filter (
            where status in ('Pending', 'Queued') and run_at <= now()))::float8 as oldest
     from apalis.jobs where status <> 'Done'
     group by job_type";

/// [`lag_max_seconds`]: one probe of `plaid_items_sync_lag`.
pub const LAG_MAX_SQL: &str = concat!(
    "select extract(epoch from now() - min(coalesce(last_synced_at, created_at)))::float8 from plaid_items where ",
    lag_predicate!()
);

/// Figures per queue: `queues` are always present (zero-filled); other job
/// types found in `apalis.jobs` are added. One scan of the partial index
/// `plaid_sync_jobs_open` (rows not `Done`).
pub async fn queue_figures(
    conn: &mut PgConnection,
    queues: &[&str],
) -> Result<BTreeMap<String, QueueFigures>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        job_type: String,
        depth: i64,
        scheduled: i64,
        running: i64,
        failed: i64,
        killed: i64,
        oldest: Option<f64>,
    }
    let rows: Vec<Row> = sqlx::query_as(QUEUES_SQL).fetch_all(conn).await?;
    let mut figures: BTreeMap<String, QueueFigures> = queues
        .iter()
        .map(|q| (q.to_string(), QueueFigures::default()))
        .collect();
    for row in rows {
        figures.insert(
            row.job_type,
            QueueFigures {
                depth: row.depth,
                scheduled: row.scheduled,
                running: row.running,
                failed: row.failed,
                killed: row.killed,
                oldest_pending_seconds: row.oldest.unwrap_or(0.0).max(0.0),
            },
        );
    }
    Ok(figures)
}

/// The largest sync lag of fresh-expected items (one probe of `plaid_items_sync_lag`), 0 without items.
pub async fn lag_max_seconds(conn: &mut PgConnection) -> Result<f64, sqlx::Error> {
    let lag: Option<f64> = sqlx::query_scalar(LAG_MAX_SQL).fetch_one(conn).await?;
    Ok(lag.unwrap_or(0.0).max(0.0))
}

/// Renders every database gauge as Prometheus text.
pub async fn render(conn: &mut PgConnection, queues: &[&str]) -> Result<String, sqlx::Error> {
    let items = super::status::item_counts(conn).await?;
    let lag = lag_max_seconds(conn).await?;
    let queues = queue_figures(conn, queues).await?;
    let mut out = String::new();

    header(
        &mut out,
        "plaid_sync_items",
        "Items by lifecycle and sync_status.",
    );
    let mut lifecycles: Vec<String> = LIFECYCLES.iter().map(|s| s.to_string()).collect();
    lifecycles.extend(
        items
            .keys()
            .filter(|l| !LIFECYCLES.contains(&l.as_str()))
            .cloned(),
    );
    for lifecycle in &lifecycles {
        let by_status = items.get(lifecycle);
        let mut statuses: Vec<String> = SYNC_STATUSES.iter().map(|s| s.to_string()).collect();
        if let Some(by_status) = by_status {
            statuses.extend(
                by_status
                    .keys()
                    .filter(|s| !SYNC_STATUSES.contains(&s.as_str()))
                    .cloned(),
            );
        }
        for status in statuses {
            let n = by_status.and_then(|m| m.get(&status)).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "plaid_sync_items{{lifecycle=\"{}\",sync_status=\"{}\"}} {n}",
                escape(lifecycle),
                escape(&status)
            );
        }
    }

    header(
        &mut out,
        "plaid_sync_sync_lag_max_seconds",
        "Oldest last_synced_at (or created_at, never synced) of active items expected to be fresh, as seconds before now.",
    );
    let _ = writeln!(out, "plaid_sync_sync_lag_max_seconds {lag}");

    /// A per-queue gauge: name, help, value.
    type Column = (&'static str, &'static str, fn(&QueueFigures) -> f64);
    let per_queue: [Column; 6] = [
        (
            "plaid_sync_queue_depth",
            "Jobs due now and not started (Pending or Queued), per queue.",
            |f| f.depth as f64,
        ),
        (
            "plaid_sync_queue_oldest_pending_seconds",
            "How long the oldest due, not started job has waited past its run_at, per queue.",
            |f| f.oldest_pending_seconds,
        ),
        (
            "plaid_sync_queue_scheduled",
            "Jobs due later (delayed retries, timers), per queue.",
            |f| f.scheduled as f64,
        ),
        ("plaid_sync_queue_running", "Running jobs, per queue.", |f| {
            f.running as f64
        }),
        (
            "plaid_sync_jobs_failed",
            "Job rows in status Failed, per queue.",
            |f| f.failed as f64,
        ),
        (
            "plaid_sync_jobs_killed",
            "Job rows in status Killed (kept until JOB_RETENTION), per queue.",
            |f| f.killed as f64,
        ),
    ];
    for (name, help, value) in per_queue {
        header(&mut out, name, help);
        for (queue, figures) in &queues {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", escape(queue), value(figures));
        }
    }
    Ok(out)
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

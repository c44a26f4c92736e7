//! The per-minute rollup (`metrics_minutely`) behind the dashboard's charts.
//!
//! Counters are bumped by one upsert in the transaction that records the
//! event: a sync run finished ([`bump`]), or a batch of webhooks (counted by
//! the statement that stores it, `ingest::statement`, on its writer's shard).
//! Gauges (sync lag) are set once a minute by [`super::sampler`]. A chart of the last 24 h reads at most
//! 1,440 minutes per kind through the primary key, never the event tables.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// A new webhook event was stored.
pub const WEBHOOK: &str = "webhook";
/// A delivery matched a stored event (counted on it).
pub const WEBHOOK_DUPLICATE: &str = "webhook_duplicate";
/// Sampled: the largest sync lag of fresh-expected items, in seconds.
pub const LAG_MAX: &str = "lag_max_seconds";
/// Sampled: the p95 sync lag of fresh-expected items, in seconds.
pub const LAG_P95: &str = "lag_p95_seconds";
/// Counter kinds always present in a [`Series`] (zero-filled): webhooks and
/// sync runs by outcome (`sync_` + [`crate::metrics::sync_outcome_label`]).
pub const COUNTERS: &[&str] = &[
    WEBHOOK,
    WEBHOOK_DUPLICATE,
    "sync_synced",
    "sync_retry",
    "sync_failed",
    "sync_needs_reauth",
    "sync_error",
    "sync_not_ready",
    "sync_deferred",
    "sync_skipped",
];
/// Gauge kinds (max per bucket, `null` where nothing was sampled).
pub const GAUGES: &[&str] = &[LAG_MAX, LAG_P95];
/// Rows older than this are deleted by the pruner.
pub const RETENTION_DAYS: i32 = 7;

/// Adds one to `kind` for the current minute. Call it on the transaction that
/// records the event, as its last statement (the row lock is then held only
/// for the commit; the shard spreads concurrent writers over 8 rows).
pub async fn bump(conn: &mut PgConnection, kind: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value)
         values (date_trunc('minute', now()), $1, (pg_backend_pid() % 8)::smallint, 1)
         on conflict (minute, kind, shard) do update set value = metrics_minutely.value + 1",
    )
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets gauge `kind` of the current minute to `value`.
pub async fn set_gauge(conn: &mut PgConnection, kind: &str, value: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value)
         values (date_trunc('minute', now()), $1, 0, $2)
         on conflict (minute, kind, shard) do update set value = excluded.value",
    )
    .bind(kind)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether gauge `kind` was already sampled this minute (by any process).
pub async fn sampled_this_minute(conn: &mut PgConnection, kind: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from metrics_minutely
                        where minute = date_trunc('minute', now()) and kind = $1 and shard = 0)",
    )
    .bind(kind)
    .fetch_one(conn)
    .await
}

/// Deletes rows older than [`RETENTION_DAYS`]; returns how many.
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("delete from metrics_minutely where minute < now() - make_interval(days => $1)")
            .bind(RETENTION_DAYS)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Charts of the last `minutes`, in buckets of `step_minutes`.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Start of the first bucket.
    pub start: DateTime<Utc>,
    /// Minutes per bucket.
    pub step_minutes: i64,
    /// Number of buckets (every array has this length).
    pub buckets: usize,
    /// Counter kinds: events per bucket (divide by `step_minutes` for a rate per minute).
    pub counters: BTreeMap<String, Vec<i64>>,
    /// Gauge kinds: the largest sample in each bucket, or `null`.
    pub gauges: BTreeMap<String, Vec<Option<i64>>>,
}

/// Reads the rollup of the last `minutes` (the current minute included) in
/// buckets of `step_minutes`; counters are summed, gauges take their maximum.
pub async fn series(conn: &mut PgConnection, minutes: i64, step_minutes: i64) -> Result<Series, sqlx::Error> {
    let step = step_minutes.max(1);
    let buckets = ((minutes.max(1) + step - 1) / step) as usize;
    let (now_minute,): (DateTime<Utc>,) = sqlx::query_as("select date_trunc('minute', now())")
        .fetch_one(&mut *conn)
        .await?;
    // The last bucket ends with the current minute.
    let start = now_minute - ChronoDuration::minutes(buckets as i64 * step - 1);
    // Bucketed in the database: at most buckets x kinds rows come back.
    let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "select (extract(epoch from minute - $1)::bigint / 60) / $3 as bucket, kind,
                sum(value)::bigint, max(value)
         from metrics_minutely
         where minute >= $1 and minute <= $2
         group by 1, 2",
    )
    .bind(start)
    .bind(now_minute)
    .bind(step)
    .fetch_all(conn)
    .await?;
    let mut counters: BTreeMap<String, Vec<i64>> = COUNTERS
        .iter()
        .map(|k| (k.to_string(), vec![0; buckets]))
        .collect();
    let mut gauges: BTreeMap<String, Vec<Option<i64>>> = GAUGES
        .iter()
        .map(|k| (k.to_string(), vec![None; buckets]))
        .collect();
    for (bucket, kind, total, top) in rows {
        let Some(index) = usize::try_from(bucket).ok().filter(|i| *i < buckets) else {
            continue;
        };
        if GAUGES.contains(&kind.as_str()) {
            gauges.entry(kind).or_insert_with(|| vec![None; buckets])[index] = Some(top);
        } else {
            counters.entry(kind).or_insert_with(|| vec![0; buckets])[index] = total;
        }
    }
    Ok(Series {
        start,
        step_minutes: step,
        buckets,
        counters,
        gauges,
    })
}

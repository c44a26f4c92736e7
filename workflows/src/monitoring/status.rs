//! The monitoring checklist (`GET /api/admin/status`): five figures, each from
//! one index-backed query, each with a state colour. The thresholds are
//! constants here and documented in the README ("Operator surface").
//!
//! Populations: "items" are items not `removed`; "fresh-expected" items (the
//! sync-lag population) are `lifecycle = active` items that are `active`,
//! `sync_needed` or `syncing` — not waiting for the user, not failed (those
//! have their own figures). A never-synced item's lag counts from its creation.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{State, rollup};
use crate::lifecycle::removal::{self, RemovalHealth};

/// Failure rate at or above which the figure is amber (1 %).
pub const FAILURE_AMBER: f64 = 0.01;
/// Failure rate at or above which the figure is red (5 %).
pub const FAILURE_RED: f64 = 0.05;
/// Webhooks are amber when none came in the last hour although the last 24 h
/// brought more than this many (over one an hour on average): traffic stopped.
/// The duplicate ratio is reported but not judged: Plaid's repeated
/// `SYNC_UPDATES_AVAILABLE` for an item are byte-identical, so a busy item's
/// deliveries are mostly duplicates by design (README "Design notes").
pub const WEBHOOK_SILENT_HOUR_AFTER: i64 = 24;
/// A reauth waiting longer than this makes the reauth figure amber.
pub const REAUTH_AMBER_AGE: Duration = Duration::from_secs(7 * 86_400);
/// Share of items needing reauth above which the figure is red (10 %)...
pub const REAUTH_RED_SHARE: f64 = 0.10;
/// ...when at least this many need it (an institution-wide problem).
pub const REAUTH_RED_MIN: i64 = 5;
/// A cleanup overdue by more than this makes billing amber (its timer was lost).
pub const CLEANUP_OVERDUE: Duration = Duration::from_secs(3_600);
/// Slack over `SAFETY_NET_STALE_AFTER` before the lag is amber (the safety
/// net runs every 30 min by default).
pub const LAG_SLACK: Duration = Duration::from_secs(3_600);

/// The whole checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Checklist {
    /// When it was computed (database time).
    pub generated_at: DateTime<Utc>,
    /// The worst state of the five figures.
    pub state: State,
    /// Sync lag of fresh-expected items.
    pub sync_lag: SyncLag,
    /// Webhooks persisted and their duplicate ratio.
    pub webhooks: WebhookHealth,
    /// `failed` items among all items.
    pub failures: FailureRate,
    /// Items waiting for their user to re-authenticate.
    pub reauth: ReauthQueue,
    /// Dormant-item cleanup and removals (what Plaid bills).
    pub billing: Billing,
    /// Item counts by lifecycle, then sync status (removed items included).
    pub items: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Sync lag: `now - coalesce(last_synced_at, created_at)`.
#[derive(Debug, Clone, Serialize)]
pub struct SyncLag {
    /// Green, or amber above `amber_above_seconds`, red above `red_above_seconds` (max lag).
    pub state: State,
    /// Fresh-expected items.
    pub items: i64,
    /// The largest lag (seconds), if any item.
    pub max_seconds: Option<f64>,
    /// The p95 lag (nearest rank), if any item.
    pub p95_seconds: Option<f64>,
    /// The timestamp behind `max_seconds`.
    pub oldest_at: Option<DateTime<Utc>>,
    /// The timestamp behind `p95_seconds`.
    pub p95_at: Option<DateTime<Utc>>,
    /// `SAFETY_NET_STALE_AFTER` + 1 h.
    pub amber_above_seconds: f64,
    /// 2 × `SAFETY_NET_STALE_AFTER`.
    pub red_above_seconds: f64,
}

/// Webhook health, from the rollup (to the minute).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookHealth {
    /// Red when items expect webhooks and none came in 24 h; amber when none
    /// came in the last hour although more than 24 came in 24 h.
    pub state: State,
    /// New events stored in the last hour.
    pub last_hour: i64,
    /// Duplicate deliveries in the last hour.
    pub duplicates_last_hour: i64,
    /// New events stored in the last 24 h.
    pub last_24h: i64,
    /// Duplicate deliveries in the last 24 h.
    pub duplicates_24h: i64,
    /// `duplicates_24h / (last_24h + duplicates_24h)`, 0 without deliveries.
    pub duplicate_ratio_24h: f64,
    /// The newest event's `received_at`.
    pub last_received_at: Option<DateTime<Utc>>,
}

/// Failure rate.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRate {
    /// Amber at 1 %, red at 5 %.
    pub state: State,
    /// `failed` items.
    pub failed: i64,
    /// All items (not removed).
    pub items: i64,
    /// `failed / items` (0 without items).
    pub ratio: f64,
}

/// The reauth queue.
#[derive(Debug, Clone, Serialize)]
pub struct ReauthQueue {
    /// Amber when one waits over 7 days; red when over 10 % of items (and at least 5) wait.
    pub state: State,
    /// Items in `needs_reauth` (not removed).
    pub count: i64,
    /// The oldest `reauth_needed_at`.
    pub oldest_reauth_needed_at: Option<DateTime<Utc>>,
    /// Its age in seconds.
    pub oldest_age_seconds: Option<f64>,
}

/// The billing lifecycle.
#[derive(Debug, Clone, Serialize)]
pub struct Billing {
    /// Red when a removal gave up (the item is still billed); amber while
    /// removals are retried or a cleanup is overdue by over an hour.
    pub state: State,
    /// Items in their grace window.
    pub pending_cleanup: i64,
    /// Items removed at Plaid.
    pub removed: i64,
    /// The next `cleanup_due_at`.
    pub next_cleanup_due_at: Option<DateTime<Utc>>,
    /// Open removals whose last Plaid attempt failed.
    pub removals_retrying: i64,
    /// Items whose latest removal ended `failed`.
    pub removals_failed: i64,
}

/// Computes the checklist. `stale_after` is `SAFETY_NET_STALE_AFTER`.
pub async fn checklist(conn: &mut PgConnection, stale_after: Duration) -> Result<Checklist, sqlx::Error> {
    let generated_at: DateTime<Utc> = sqlx::query_scalar("select now()").fetch_one(&mut *conn).await?;
    let items = item_counts(conn).await?;
    let count = |lifecycle: Option<&str>, status: Option<&str>| -> i64 {
        items
            .iter()
            .filter(|(l, _)| lifecycle.is_none_or(|want| want == l.as_str()))
            .flat_map(|(_, by_status)| by_status.iter())
            .filter(|(s, _)| status.is_none_or(|want| want == s.as_str()))
            .map(|(_, n)| *n)
            .sum()
    };
    let removed = count(Some("removed"), None);
    let not_removed = count(None, None) - removed;
    let not_removed_with = |status| count(None, Some(status)) - count(Some("removed"), Some(status));

    let fresh_expected = ["active", "sync_needed", "syncing"]
        .into_iter()
        .map(|status| count(Some("active"), Some(status)))
        .sum();
    let sync_lag = sync_lag(conn, fresh_expected, stale_after).await?;
    let webhooks = webhook_health(conn, sync_lag.items).await?;
    let failed = not_removed_with("failed");
    let failures = failure_rate(failed, not_removed);
    let reauth = reauth_queue(conn, not_removed_with("needs_reauth"), not_removed, generated_at).await?;
    let health = removal::health(conn).await?;
    let billing = billing(conn, &health, removed, generated_at).await?;
    let state = [
        sync_lag.state,
        webhooks.state,
        failures.state,
        reauth.state,
        billing.state,
    ]
    .into_iter()
    .max()
    .unwrap_or(State::Green);
    Ok(Checklist {
        generated_at,
        state,
        sync_lag,
        webhooks,
        failures,
        reauth,
        billing,
        items,
    })
}

/// Item counts by lifecycle and sync status: one index-only scan of
/// `plaid_items_status_lifecycle`.
pub async fn item_counts(
    conn: &mut PgConnection,
) -> Result<BTreeMap<String, BTreeMap<String, i64>>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(ITEM_COUNTS_SQL).fetch_all(conn).await?;
    let mut counts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (lifecycle, status, n) in rows {
        counts.entry(lifecycle).or_default().insert(status, n);
    }
    Ok(counts)
}

/// The fresh-expected predicate (matches the partial index `plaid_items_sync_lag`).
macro_rules! lag_predicate {
    () => {
        "lifecycle = 'active' and sync_status in ('active', 'sync_needed', 'syncing')"
    };
}
pub(crate) use lag_predicate;

/// The fresh-expected predicate, as a string.
pub const LAG_POPULATION: &str = lag_predicate!();

/// [`item_counts`]: an index-only scan of `plaid_items_status_lifecycle`.
pub const ITEM_COUNTS_SQL: &str =
    "select lifecycle, sync_status, count(*) from plaid_items group by lifecycle, sync_status";

/// [`lag_population`].
pub const LAG_POPULATION_SQL: &str = concat!("select count(*) from plaid_items where ", lag_predicate!());

/// [`sync_lag`] (`$1`: the population's size).
pub const SYNC_LAG_SQL: &str = concat!(
    "with oldest as (select min(coalesce(last_synced_at, created_at)) as at from plaid_items where ",
    lag_predicate!(),
    "), p95 as (select coalesce(last_synced_at, created_at) as at from plaid_items where ",
    lag_predicate!(),
    " order by coalesce(last_synced_at, created_at)
      offset greatest($1 - ceil($1 * 0.95)::bigint, 0) limit 1)
     select oldest.at as oldest_at, p95.at as p95_at,
            extract(epoch from now() - oldest.at)::float8 as max_seconds,
            extract(epoch from now() - p95.at)::float8 as p95_seconds
     from oldest left join p95 on true"
);

/// [`webhook_health`] (`$1`, `$2`: the rollup kinds of new and duplicate deliveries).
pub const WEBHOOKS_SQL: &str = "select
        coalesce(sum(value) filter (where kind = $1 and minute > now() - interval '1 hour'), 0)::bigint,
        coalesce(sum(value) filter (where kind = $2 and minute > now() - interval '1 hour'), 0)::bigint,
        coalesce(sum(value) filter (where kind = $1), 0)::bigint,
        coalesce(sum(value) filter (where kind = $2), 0)::bigint,
        (select max(received_at) from plaid_webhook_events)
     from metrics_minutely
     where minute > now() - interval '24 hours' and kind in ($1, $2)";

/// [`reauth_queue`]: one probe of `plaid_items_reauth_queue`.
pub const REAUTH_OLDEST_SQL: &str = "select min(reauth_needed_at) from plaid_items
     where sync_status = 'needs_reauth' and lifecycle <> 'removed'";

/// [`billing`]: one probe of `plaid_items_cleanup_due`.
pub const NEXT_CLEANUP_SQL: &str =
    "select min(cleanup_due_at) from plaid_items where lifecycle = 'pending_cleanup'";

/// How many items the lag figures cover (an index-only count; the checklist
/// takes it from [`item_counts`] instead).
pub async fn lag_population(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(LAG_POPULATION_SQL).fetch_one(conn).await
}

/// The lag figures over `items` fresh-expected items: two ordered probes of
/// `plaid_items_sync_lag` (index-only; the p95 probe walks 5 % of the index).
/// p95 is the nearest rank: the timestamp at position `n - ceil(0.95 n)` from
/// the oldest.
pub async fn sync_lag(
    conn: &mut PgConnection,
    items: i64,
    stale_after: Duration,
) -> Result<SyncLag, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        oldest_at: Option<DateTime<Utc>>,
        p95_at: Option<DateTime<Utc>>,
        max_seconds: Option<f64>,
        p95_seconds: Option<f64>,
    }
    let Row {
        oldest_at,
        p95_at,
        max_seconds,
        p95_seconds,
    } = sqlx::query_as(SYNC_LAG_SQL).bind(items).fetch_one(conn).await?;
    let amber = (stale_after + LAG_SLACK).as_secs_f64();
    let red = (stale_after * 2).as_secs_f64();
    let state = match max_seconds {
        Some(max) if max > red => State::Red,
        Some(max) if max > amber => State::Amber,
        _ => State::Green,
    };
    Ok(SyncLag {
        state,
        items,
        max_seconds,
        p95_seconds,
        oldest_at,
        p95_at,
        amber_above_seconds: amber,
        red_above_seconds: red,
    })
}

/// Webhook figures from the rollup (to the minute: "the last hour" is the
/// current minute and the 59 before it) (at most 1,440 minutes × 2 kinds × 8 shards
/// through its primary key) and the newest event (an index probe).
pub async fn webhook_health(
    conn: &mut PgConnection,
    expecting_items: i64,
) -> Result<WebhookHealth, sqlx::Error> {
    let (last_hour, duplicates_last_hour, last_24h, duplicates_24h, last_received_at): (
        i64,
        i64,
        i64,
        i64,
        Option<DateTime<Utc>>,
    ) = sqlx::query_as(WEBHOOKS_SQL)
        .bind(rollup::WEBHOOK)
        .bind(rollup::WEBHOOK_DUPLICATE)
        .fetch_one(conn)
        .await?;
    let deliveries = last_24h + duplicates_24h;
    let duplicate_ratio_24h = if deliveries == 0 {
        0.0
    } else {
        duplicates_24h as f64 / deliveries as f64
    };
    let state = if expecting_items > 0 && deliveries == 0 {
        State::Red
    } else if last_hour + duplicates_last_hour == 0 && deliveries > WEBHOOK_SILENT_HOUR_AFTER {
        State::Amber
    } else {
        State::Green
    };
    Ok(WebhookHealth {
        state,
        last_hour,
        duplicates_last_hour,
        last_24h,
        duplicates_24h,
        duplicate_ratio_24h,
        last_received_at,
    })
}

/// The failure figure (from the counts).
pub fn failure_rate(failed: i64, items: i64) -> FailureRate {
    let ratio = if items == 0 {
        0.0
    } else {
        failed as f64 / items as f64
    };
    let state = if ratio >= FAILURE_RED {
        State::Red
    } else if ratio >= FAILURE_AMBER {
        State::Amber
    } else {
        State::Green
    };
    FailureRate {
        state,
        failed,
        items,
        ratio,
    }
}

/// The reauth figure: the count comes from the counts; the oldest is one
/// probe of `plaid_items_reauth_queue`.
pub async fn reauth_queue(
    conn: &mut PgConnection,
    count: i64,
    items: i64,
    now: DateTime<Utc>,
) -> Result<ReauthQueue, sqlx::Error> {
    let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(REAUTH_OLDEST_SQL).fetch_one(conn).await?;
    let age = oldest.map(|at| (now - at).num_milliseconds() as f64 / 1000.0);
    let share = if items == 0 {
        0.0
    } else {
        count as f64 / items as f64
    };
    let state = if count >= REAUTH_RED_MIN && share > REAUTH_RED_SHARE {
        State::Red
    } else if age.is_some_and(|a| a > REAUTH_AMBER_AGE.as_secs_f64()) {
        State::Amber
    } else {
        State::Green
    };
    Ok(ReauthQueue {
        state,
        count,
        oldest_reauth_needed_at: oldest,
        oldest_age_seconds: age,
    })
}

/// The billing figure: counts from the counts and [`removal::health`]; the
/// next due date is one probe of `plaid_items_cleanup_due`.
pub async fn billing(
    conn: &mut PgConnection,
    health: &RemovalHealth,
    removed: i64,
    now: DateTime<Utc>,
) -> Result<Billing, sqlx::Error> {
    let next: Option<DateTime<Utc>> = sqlx::query_scalar(NEXT_CLEANUP_SQL).fetch_one(conn).await?;
    let overdue = next.is_some_and(|due| (now - due).to_std().is_ok_and(|late| late > CLEANUP_OVERDUE));
    let state = if health.failed > 0 {
        State::Red
    } else if health.retrying > 0 || overdue {
        State::Amber
    } else {
        State::Green
    };
    Ok(Billing {
        state,
        pending_cleanup: health.pending_cleanup,
        removed,
        next_cleanup_due_at: next,
        removals_retrying: health.retrying,
        removals_failed: health.failed,
    })
}

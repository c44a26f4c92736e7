//! What is timed: the app's own functions behind the safety net, the operator
//! routes (status, `/metrics`, attention list, charts), the user API and the
//! operator actions of `workflows::ops`, each called as the route or command
//! calls it. Cases that change state run in order: a "first run" does the
//! work the seeded data leaves (and is timed once), the "steady state" that
//! follows finds nothing left to do (the common case: the cost of looking).

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use sqlx::PgPool;
use workflows::{
    db::{accounts, items},
    jobs::runtime::QUEUES,
    lifecycle::{cleanup::CleanupSettings, removal},
    monitoring::{attention, gauges, rollup, status},
    ops, safety_net,
};

/// `SAFETY_NET_STALE_AFTER`'s default.
const STALE_AFTER: Duration = Duration::from_secs(86_400);

/// Facts about the seeded data the cases need.
#[derive(Debug)]
pub struct Inputs {
    /// Items in the database.
    pub items: i64,
    /// Users in the database.
    pub users: i64,
    /// The sync-lag population (what the checklist passes to `sync_lag`).
    pub fresh: i64,
}

/// Set once, after seeding.
pub static INPUTS: OnceLock<Inputs> = OnceLock::new();

fn inputs() -> &'static Inputs {
    INPUTS.get().expect("inputs set after seeding")
}

/// A deterministic pseudo-random id in `1..=n` (a different one per call).
pub fn pick(n: i64) -> i64 {
    static STATE: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);
    let x = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    1 + ((x >> 17) % n as u64) as i64
}

/// A random item's Plaid item id (an untimed primary-key read first).
async fn random_item_id(pool: &PgPool) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("select item_id from plaid_items where id = $1")
            .bind(pick(inputs().items))
            .fetch_one(pool)
            .await?,
    )
}

/// How a case is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Once, cold, not explained (it changes what the next run finds).
    First,
    /// A warm-up, then this many timed runs (median), then one explained run.
    Steady(usize),
}

/// One timed call of an app function.
pub struct Case {
    /// The function.
    pub name: &'static str,
    /// Who calls it.
    pub caller: &'static str,
    /// How it is run.
    pub runs: Runs,
    /// Calls it once on the pool given; describes what it returned.
    pub call: fn(PgPool) -> BoxFuture<'static, anyhow::Result<String>>,
}

/// Every case, in the order they run.
pub fn all() -> Vec<Case> {
    vec![
        Case {
            name: "safety_net::run_once, first run",
            caller: "safety-net schedule, POST /api/jobs/plaid/safety-net",
            runs: Runs::First,
            call: |pool| Box::pin(async move { safety_net_run(&pool).await }),
        },
        Case {
            name: "safety_net::run_once, steady state",
            caller: "safety-net schedule (every 30 min)",
            runs: Runs::Steady(5),
            call: |pool| Box::pin(async move { safety_net_run(&pool).await }),
        },
        Case {
            name: "status::checklist",
            caller: "GET /api/admin/status",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let c = status::checklist(&mut conn, STALE_AFTER).await?;
                    Ok(format!("state {:?}, failed {}", c.state, c.failures.failed))
                })
            },
        },
        Case {
            name: "  status::item_counts",
            caller: "checklist, /metrics",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let counts = status::item_counts(&mut *pool.acquire().await?).await?;
                    Ok(format!("{} lifecycles", counts.len()))
                })
            },
        },
        Case {
            name: "  status::lag_population",
            caller: "lag sampler",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let n = status::lag_population(&mut *pool.acquire().await?).await?;
                    Ok(format!("{n} items"))
                })
            },
        },
        Case {
            name: "  status::sync_lag",
            caller: "checklist, lag sampler",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let lag = status::sync_lag(&mut conn, inputs().fresh, STALE_AFTER).await?;
                    Ok(format!(
                        "max {:.0} s, p95 {:.0} s",
                        lag.max_seconds.unwrap_or(0.0),
                        lag.p95_seconds.unwrap_or(0.0)
                    ))
                })
            },
        },
        Case {
            name: "  status::webhook_health",
            caller: "checklist",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let w = status::webhook_health(&mut *pool.acquire().await?, 1).await?;
                    Ok(format!("{} in 24 h", w.last_24h))
                })
            },
        },
        Case {
            name: "  status::reauth_queue",
            caller: "checklist",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let r = status::reauth_queue(&mut conn, 0, 1, chrono::Utc::now()).await?;
                    Ok(format!(
                        "oldest {:.0} days",
                        r.oldest_age_seconds.unwrap_or(0.0) / 86_400.0
                    ))
                })
            },
        },
        Case {
            name: "  removal::health",
            caller: "checklist",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let h = removal::health(&mut *pool.acquire().await?).await?;
                    Ok(format!("{} pending cleanup", h.pending_cleanup))
                })
            },
        },
        Case {
            name: "  status::billing",
            caller: "checklist",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let health = removal::RemovalHealth::default();
                    let b = status::billing(&mut conn, &health, 0, chrono::Utc::now()).await?;
                    Ok(format!(
                        "next due {:?}",
                        b.next_cleanup_due_at.map(|d| d.date_naive())
                    ))
                })
            },
        },
        Case {
            name: "gauges::render",
            caller: "GET /metrics",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let text = gauges::render(&mut *pool.acquire().await?, QUEUES).await?;
                    Ok(format!("{} lines", text.lines().count()))
                })
            },
        },
        Case {
            name: "  gauges::queue_figures",
            caller: "/metrics",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let q = gauges::queue_figures(&mut *pool.acquire().await?, QUEUES).await?;
                    Ok(format!("{} queues", q.len()))
                })
            },
        },
        Case {
            name: "  gauges::lag_max_seconds",
            caller: "/metrics",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let lag = gauges::lag_max_seconds(&mut *pool.acquire().await?).await?;
                    Ok(format!("{lag:.0} s"))
                })
            },
        },
        Case {
            name: "attention::list(50)",
            caller: "GET /api/admin/attention (dashboard)",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let list = attention::list(&mut *pool.acquire().await?, 50).await?;
                    Ok(format!("{} items", list.len()))
                })
            },
        },
        Case {
            name: "rollup::series(24 h, 5 min)",
            caller: "GET /api/admin/dashboard/series (dashboard)",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let s = rollup::series(&mut *pool.acquire().await?, 24 * 60, 5).await?;
                    Ok(format!("{} buckets", s.buckets))
                })
            },
        },
        Case {
            name: "items::list_for_user (random user)",
            caller: "GET /api/plaid/items",
            runs: Runs::Steady(21),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let rows = items::list_for_user(&mut conn, pick(inputs().users)).await?;
                    Ok(format!("{} items", rows.len()))
                })
            },
        },
        Case {
            name: "accounts::list_for_user (random user)",
            caller: "GET /api/accounts",
            runs: Runs::Steady(21),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let rows = accounts::list_for_user(&mut conn, pick(inputs().users)).await?;
                    Ok(format!("{} accounts", rows.len()))
                })
            },
        },
        Case {
            name: "ops::sync_item_now (random item)",
            caller: "POST /api/admin/items/{item_id}/sync",
            runs: Runs::Steady(21),
            call: |pool| {
                Box::pin(async move {
                    let item_id = random_item_id(&pool).await?;
                    match ops::sync_item_now(&pool, &item_id).await {
                        Ok((request, _)) => Ok(format!("{request:?}")),
                        Err(ops::OpsError::UnknownItem(_)) => Ok("unknown (removed)".to_owned()),
                        Err(e) => Err(e.into()),
                    }
                })
            },
        },
        Case {
            name: "items::sync_needed_ids(after 0, 1000)",
            caller: "first page of ops::process_sync_needed",
            runs: Runs::Steady(5),
            call: |pool| {
                Box::pin(async move {
                    let mut conn = pool.acquire().await?;
                    let ids = items::sync_needed_ids(&mut conn, 0, ops::BATCH).await?;
                    Ok(format!("{} ids", ids.len()))
                })
            },
        },
        Case {
            name: "ops::process_sync_needed",
            caller: "POST /api/jobs/plaid/process, `enqueue process`",
            runs: Runs::Steady(2),
            call: |pool| {
                Box::pin(async move {
                    let enqueued = ops::process_sync_needed(&pool, |_, _| {}).await?;
                    Ok(format!("enqueued {enqueued}"))
                })
            },
        },
        Case {
            name: "ops::cleanup, first run",
            caller: "cleanup schedule, POST /api/jobs/plaid/cleanup",
            runs: Runs::First,
            call: |pool| Box::pin(async move { cleanup_run(&pool).await }),
        },
        Case {
            name: "ops::cleanup, steady state",
            caller: "cleanup schedule (daily)",
            runs: Runs::Steady(3),
            call: |pool| Box::pin(async move { cleanup_run(&pool).await }),
        },
    ]
}

async fn safety_net_run(pool: &PgPool) -> anyhow::Result<String> {
    let report = safety_net::run_once(pool, STALE_AFTER).await?;
    Ok(format!("found {}, enqueued {}", report.found, report.enqueued))
}

async fn cleanup_run(pool: &PgPool) -> anyhow::Result<String> {
    let enqueued = ops::cleanup(pool, &CleanupSettings::default()).await?;
    Ok(format!("enqueued {enqueued}"))
}

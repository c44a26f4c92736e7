//! Item queries at scale: the safety net, the operator's status and metrics
//! queries, the user API's lists and the operator actions, on 1,000,000
//! items, each beside two baselines measured just before it on the same table.
//!
//! Target (issue #7): the safety-net query and the status queries stay fast
//! on 1,000,000 items (index-backed, no scan of the table).
//!
//! Method, on a fresh database (migrated):
//! - **Data:** 1,000,000 items with their users, secrets, accounts, mappings,
//!   removals, pending jobs and a day of the metrics rollup, generated in SQL
//!   with constraints enforced; then `vacuum analyze` (autovacuum is off on
//!   the bench server). The mix is in `item_queries/seed.rs`.
//! - **Measured:** the app's own functions (`workflows::safety_net`,
//!   `monitoring::{status, gauges, attention, rollup}`, `db::{items, accounts}`,
//!   `ops`), called as their routes call them, on a pool like the app's; the
//!   median of N runs after a warm-up, or a single run for a "first run"
//!   that changes what the next one finds (`item_queries/cases.rs`).
//! - **Baselines, same run, just before each case:** a primary-key lookup
//!   (`select * from plaid_items where id = $1`, median of 21: the floor of a
//!   round trip) and `select count(*) from plaid_items` (median of 3: the
//!   cost of touching every item). A query at "1.0 of count(*)" reads the
//!   whole table.
//! - **Plans:** each steady-state case runs once more on a pool whose sessions
//!   load `auto_explain` with `log_analyze` and `log_buffers`, so every
//!   statement the function ran is printed with its actual plan shape
//!   (nodes, index, rows, rows removed by filter, buffers), without copying
//!   its SQL (`item_queries/plans.rs`). A scan reading over 50,000 rows to
//!   return fewer, or any large sequential scan, is flagged with `!!`.
//!
//! Run: `cargo bench --bench item_queries` (about 5 minutes, most of it
//! generating the data).

#[path = "item_queries/cases.rs"]
mod cases;
#[path = "item_queries/plans.rs"]
mod plans;
#[path = "item_queries/seed.rs"]
mod seed;
mod support;

use std::time::{Duration, Instant};

use sqlx::PgPool;
use support::{BenchDb, ratio};
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

use cases::{Case, Runs};

/// Items generated.
const ITEMS: i64 = 1_000_000;
/// The app's default pool size (`DATABASE_MAX_CONNECTIONS`).
const POOL_SIZE: u32 = 30;

fn main() -> anyhow::Result<()> {
    let console = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(
            plans::NoticeCapture
                .with_filter(Targets::new().with_target(plans::NOTICE_TARGET, tracing::Level::INFO)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(console),
        )
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench_main())
}

async fn bench_main() -> anyhow::Result<()> {
    println!(
        "item_queries: {} cores, PostgreSQL {}, {ITEMS} items",
        std::thread::available_parallelism()?,
        support::postgres_version().await?
    );
    let db = BenchDb::create().await?;
    let result = async {
        let pool = workflows::db::connect(&db.url, POOL_SIZE).await?;
        let explaining = plans::explaining_pool(&db.url).await?;
        let result = run(&pool, &explaining).await;
        explaining.close().await;
        pool.close().await;
        result
    }
    .await;
    db.drop_now().await?;
    result
}

/// One case's figures, for the summary.
struct Timed {
    name: &'static str,
    ms: f64,
    full_ms: f64,
    warnings: Vec<String>,
}

async fn run(pool: &PgPool, explaining: &PgPool) -> anyhow::Result<()> {
    workflows::db::migrate_all(pool).await?;
    println!("\n== generating data ==");
    let took = seed::seed(pool, ITEMS).await?;
    let (items, users, size): (i64, i64, String) = sqlx::query_as(
        "select (select count(*) from plaid_items), (select count(*) from users),
                pg_size_pretty(pg_total_relation_size('plaid_items'))",
    )
    .fetch_one(pool)
    .await?;
    let fresh = workflows::monitoring::status::lag_population(&mut *pool.acquire().await?).await?;
    println!(
        "  total {:.0} s: {items} items ({size} with indexes), {users} users, {fresh} in the sync-lag population",
        took.as_secs_f64()
    );
    cases::INPUTS
        .set(cases::Inputs { items, users, fresh })
        .expect("set once");

    println!("\n== cases (median; baselines measured just before each) ==");
    let mut timed = Vec::new();
    for case in cases::all() {
        timed.push(run_case(pool, explaining, &case).await?);
    }

    println!("\n== summary: each function against count(*) over plaid_items, same moment ==");
    for t in &timed {
        println!(
            "  {:<44} {:>9.2} ms  = {} of count(*) ({:.0} ms)",
            t.name.trim(),
            t.ms,
            ratio(t.ms, t.full_ms),
            t.full_ms
        );
    }
    let findings: Vec<String> = timed
        .iter()
        .flat_map(|t| t.warnings.iter().map(move |w| format!("{}: {w}", t.name.trim())))
        .collect();
    if findings.is_empty() {
        println!("  -> no statement scans the table or filters more than 50,000 rows");
    } else {
        for finding in findings {
            println!("  !! {finding}");
        }
    }
    Ok(())
}

/// Baselines, then the case, then (steady state) its plans.
async fn run_case(pool: &PgPool, explaining: &PgPool, case: &Case) -> anyhow::Result<Timed> {
    let pk_ms = median_ms(21, || pk_probe(pool)).await?;
    let full_ms = median_ms(3, || count_all(pool)).await?;
    let (n, mut outcome) = match case.runs {
        Runs::First => (1, String::new()),
        Runs::Steady(n) => (n, (case.call)(pool.clone()).await?),
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        outcome = (case.call)(pool.clone()).await?;
        times.push(started.elapsed());
    }
    let ms = median(times);
    println!("  {} ({}): {outcome}", case.name, case.caller);
    println!(
        "      {ms:>9.2} ms {}  = {:.0}x a PK probe ({pk_ms:.3} ms)  = {} of count(*) ({full_ms:.0} ms)",
        match case.runs {
            Runs::First => "once, cold".to_owned(),
            Runs::Steady(n) => format!("median of {n}"),
        },
        ms / pk_ms,
        ratio(ms, full_ms),
    );
    let mut warnings = Vec::new();
    if case.runs != Runs::First {
        plans::clear();
        (case.call)(explaining.clone()).await?;
        for plan in plans::take() {
            let times = if plan.times > 1 {
                format!(" (x{}, slowest)", plan.times)
            } else {
                String::new()
            };
            println!(
                "        plan {:>8.2} ms{times}  hit {} read {}  {}",
                plan.ms, plan.hit, plan.read, plan.shape
            );
            println!("             {}", truncate(&plan.query, 150));
            for warning in plan.warnings {
                println!("        !! {warning}");
                warnings.push(warning);
            }
        }
    }
    Ok(Timed {
        name: case.name,
        ms,
        full_ms,
        warnings,
    })
}

/// A primary-key lookup of a random item (the whole row).
async fn pk_probe(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("select * from plaid_items where id = $1")
        .bind(cases::pick(ITEMS))
        .fetch_optional(pool)
        .await?;
    Ok(())
}

/// Every item counted.
async fn count_all(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query_scalar::<_, i64>("select count(*) from plaid_items")
        .fetch_one(pool)
        .await?;
    Ok(())
}

async fn median_ms<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    f().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        times.push(started.elapsed());
    }
    Ok(median(times))
}

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

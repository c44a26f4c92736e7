//! Webhook ingest: how many signed webhooks `POST /webhook/plaid` durably
//! accepts per second, and how fast it answers, beside what the same database
//! does with a bare one-row `INSERT` commit loop at the same concurrency.
//!
//! Targets (issue): ingest ≥ 50 % of the bare commit rate; p99 < 20 ms at a
//! steady 1,000 webhooks/s.
//!
//! Method. One fresh database (`bench_<pid>_<n>`, migrated), one in-process
//! simulator (it only signs: Plaid's ES256 JWT over the exact body bytes), 300
//! seeded items, and the app built in-process with `Application::build` in role
//! `api`: listeners only, so no worker competes for the 2 cores and no sync job
//! runs against the simulator (in production the webhook receiver is the API
//! role; workers may run elsewhere). Every body is distinct (a legacy
//! `DEFAULT_UPDATE` with its own `new_transactions`), so none is a duplicate,
//! and every body and JWT is built before the clock starts. Per concurrency C:
//!
//! 1. baseline: C tasks on a pool of C connections, each
//!    `INSERT INTO bench_baseline (body) VALUES ($1)` in autocommit (one row,
//!    one commit), for `BENCH_SECS` (default 5) → commits/s;
//! 2. diagnostic, `workflows::ingest::IngestQueue` (what the handler calls:
//!    group commit over its writer tasks) fed directly by C tasks on a pool of
//!    C connections (no HTTP, no JWT) → the database's share of the gap;
//!    then the same with every webhook for an item of its own that has no sync
//!    pending (marks it, claims its guard, enqueues its job: a real flood's
//!    case; the 300 items are covered after their first webhook);
//! 3. ingest over HTTP: C closed-loop clients (hyper, one keep-alive connection
//!    each; see `webhook_ingest/client.rs`) → accepted/s, p50/p99/max from
//!    send to the end of the 200's body; then the same with every webhook for a
//!    fresh item (as in 2, signed with the simulator's key);
//! 4. the baseline again (the machine is noisy: the ratio uses the mean of 1
//!    and 4, and both are printed).
//!
//! Each phase also prints how busy the machine's CPUs were (`/proc/stat`),
//! split into this process (app + load generator, `/proc/self/stat`), the
//! PostgreSQL backends connected to the bench database (`/proc/<pid>/stat` of
//! the pids `pg_stat_activity` lists), and the rest: PostgreSQL's WAL writer and
//! checkpointer, and whatever else runs on the machine (a large "other" marks
//! a disturbed phase). The cost of one JWT verification is timed alone on one
//! thread. The ingest phases also print how many events each transaction
//! committed (the events of one batch share `received_at`, the transaction's
//! start).
//!
//! Then open loops at 500/s (6 s) and at the target's 1,000/s (10 s): a
//! `tokio::time::interval` pacer, latency counted from each request's
//! scheduled time, so a stall is not hidden by the pacer waiting for it; each
//! rate is run first with the bare `INSERT` (on a pool the size of the app's),
//! whose p99 is what the machine itself gives. At the end, a check that every
//! 200 is a stored row, and the row writes per table. The tables are vacuumed
//! before each level (the server runs with `autovacuum = off`, and every
//! webhook leaves a dead row version in `plaid_items`).
//! The app is started for each HTTP phase and stopped before the next baseline,
//! so at most one pool (≤ 64 connections) is open at a time: the server allows
//! 100. Logging is not initialised in this process, so the app's per-webhook
//! `info` line costs nothing here (in production it does). The load generator
//! shares the 2 cores with the app and PostgreSQL, as the baseline's client does.
//!
//! Run: `cargo bench --bench webhook_ingest` (about 4 minutes).

#[path = "webhook_ingest/client.rs"]
mod client;
#[path = "support/cpu.rs"]
mod cpu;
mod support;

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use client::{Connection, ConnectionPool, Webhook};
use plaid_simulator::{ItemSpec, Simulator, SimulatorConfig, SimulatorHandle, WebhookEvent};
use plaid_sync::{
    app::{Application, RunOptions},
    cli::Role,
    config::Config,
    http::webhooks::{jwt, keys::KeyCache, verify::TOLERANCE_SECS},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{BenchDb, ratio};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workflows::{
    ingest::{IngestQueue, QueueSettings},
    plaid::{PlaidClient, PlaidConfig},
    secrets::SecretsKey,
};

/// Items the webhooks are spread over (round robin).
const ITEMS: usize = 300;
/// Closed-loop concurrencies.
const CONCURRENCY: [usize; 2] = [16, 64];
/// Open-loop phases: (webhooks per second, seconds). The target is
/// at 1,000/s; 500/s shows where the machine stands below that.
const OPEN_LOOPS: [(u64, u64); 2] = [(500, 6), (1_000, 10)];
/// Webhooks whose JWT verification is timed alone, on one thread.
const VERIFY_SAMPLE: usize = 300;
/// Webhooks sent before each timed HTTP phase, by as many clients as the
/// phase has (or the app's pool size, for open loops): the app's pool and the
/// client's connections are then open, and the verification key cached.
const WARMUP: usize = 300;
/// The app's pool: `DATABASE_MAX_CONNECTIONS`' default.
const APP_POOL: &str = "30";

/// Attributes CPU time: the machine, this process (app + load generator),
/// and the PostgreSQL backends connected to the bench database.
#[derive(Clone)]
struct CpuMeter {
    pool: PgPool,
    db: String,
}

impl CpuMeter {
    /// The counters now (see `support/cpu.rs`).
    async fn sample(&self) -> cpu::Sample {
        cpu::sample(&self.pool, &self.db).await
    }
}

/// The outcome of one closed- or open-loop phase.
struct Run {
    ok: u64,
    failed: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    exhausted: bool,
    cpu: String,
}

impl Run {
    fn new() -> Self {
        Self {
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            exhausted: false,
            cpu: String::new(),
        }
    }

    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-quantile latency in milliseconds (nearest rank).
    fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * self.latencies_us.len() as f64).ceil() as usize).clamp(1, self.latencies_us.len());
        self.latencies_us[rank - 1] as f64 / 1000.0
    }

    fn summary(&self) -> String {
        format!(
            "{:>6.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} ok, {} failed{}; {})",
            self.rate(),
            self.pct_ms(0.50),
            self.pct_ms(0.99),
            self.pct_ms(1.0),
            self.ok,
            self.failed,
            if self.exhausted {
                ", pre-built webhooks used up"
            } else {
                ""
            },
            self.cpu
        )
    }
}

/// Everything the phases share.
struct Fixture {
    db: BenchDb,
    pool: PgPool,
    sim: SimulatorHandle,
    items: Vec<String>,
    /// Next `new_transactions` value: makes every body distinct.
    next_body: AtomicU64,
    secrets_key: String,
    meter: CpuMeter,
}

/// The app running in this process.
struct RunningApp {
    addr: SocketAddr,
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
}

fn phase_duration() -> Duration {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

async fn setup() -> anyhow::Result<Fixture> {
    let db = BenchDb::create().await?;
    let pool = workflows::db::connect(&db.url, 4).await?;
    workflows::db::migrate_all(&pool).await?;
    sqlx::query(
        "create table bench_baseline (id bigint generated always as identity primary key,
                                      body jsonb not null, received_at timestamptz not null default now())",
    )
    .execute(&pool)
    .await?;
    let sim = Simulator::start(SimulatorConfig {
        auto_webhooks: false,
        ..SimulatorConfig::default()
    })
    .await?;
    let items: Vec<String> = (0..ITEMS)
        .map(|_| sim.create_item(ItemSpec::default()).item_id)
        .collect();
    seed_items(&pool, &items).await?;
    let meter = CpuMeter {
        pool: pool.clone(),
        db: db.name.clone(),
    };
    Ok(Fixture {
        db,
        pool,
        sim,
        items,
        next_body: AtomicU64::new(0),
        secrets_key: SecretsKey::generate().to_base64(),
        meter,
    })
}

/// One user owning every item, as `tests/it/support/plaid.rs::seed_item` does.
async fn seed_items(pool: &PgPool, items: &[String]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let user = workflows::db::users::insert_user(&mut tx, "bench@example.com")
        .await?
        .ok_or_else(|| anyhow::anyhow!("user exists"))?;
    sqlx::query(
        "insert into plaid_items (user_id, item_id, sync_status)
         select $1, i, 'active' from unnest($2::text[]) as i",
    )
    .bind(user.id)
    .bind(items)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `count` signed webhooks with fresh bodies, round robin over the items.
fn build_webhooks(fx: &Fixture, count: usize) -> anyhow::Result<Vec<Webhook>> {
    let first = fx.next_body.fetch_add(count as u64, Ordering::SeqCst);
    (first..first + count as u64)
        .map(|n| {
            let item = &fx.items[n as usize % fx.items.len()];
            let hook = fx
                .sim
                .build_webhook(item, &WebhookEvent::DefaultUpdate { new_transactions: n })?;
            Ok(Webhook {
                body: hook.body.into(),
                jwt: hook.verification,
            })
        })
        .collect()
}

/// `count` fresh parsed bodies for the direct `ingest` calls: the simulator's
/// body shape, unsigned (signing is slow and they are not verified).
fn build_bodies(fx: &Fixture, count: usize) -> anyhow::Result<Vec<Value>> {
    let template: Value = serde_json::from_slice(&build_webhooks(fx, 1)?[0].body)?;
    let first = fx.next_body.fetch_add(count as u64, Ordering::SeqCst);
    Ok((first..first + count as u64)
        .map(|n| {
            let mut body = template.clone();
            body["item_id"] = json!(fx.items[n as usize % fx.items.len()]);
            body["new_transactions"] = json!(n);
            body
        })
        .collect())
}

/// Pre-builds signed webhooks, saying how long it took (untimed).
fn prebuild(fx: &Fixture, count: usize) -> anyhow::Result<Vec<Webhook>> {
    let started = Instant::now();
    let hooks = build_webhooks(fx, count)?;
    println!(
        "    (pre-built {count} signed webhooks in {:.1} s, untimed)",
        started.elapsed().as_secs_f64()
    );
    Ok(hooks)
}

async fn start_app(fx: &Fixture) -> anyhow::Result<RunningApp> {
    let defaults = SimulatorConfig::default();
    let vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), fx.db.url.clone()),
        ("DATABASE_MAX_CONNECTIONS".into(), APP_POOL.into()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("ADMIN_BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("PLAID_ENV".into(), "simulator".into()),
        ("PLAID_BASE_URL".into(), fx.sim.base_url()),
        ("PLAID_CLIENT_ID".into(), defaults.client_id),
        ("PLAID_SECRET".into(), defaults.secret),
        ("SECRETS_KEY".into(), fx.secrets_key.clone()),
        ("LOG_FORMAT".into(), "json".into()),
    ]);
    let config = Config::from_vars(&vars, Path::new("/nonexistent/key"))?;
    let options = RunOptions {
        role: Role::Api,
        migrate: false,
        ..RunOptions::default()
    };
    let app = Application::build(config, options).await?;
    let addr = app
        .public_addr()
        .ok_or_else(|| anyhow::anyhow!("no public listener"))?;
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(app.run_until_stopped());
    Ok(RunningApp {
        addr,
        shutdown,
        handle,
    })
}

impl RunningApp {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
    }
}

/// C tasks calling `op(task, i)` back to back for `duration` or until `limit`
/// calls, each call timed. `op` returns whether the call succeeded.
async fn closed_loop<F, Fut>(
    meter: &CpuMeter,
    concurrency: usize,
    duration: Duration,
    limit: usize,
    op: F,
) -> Run
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let cpu = meter.sample().await;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let (op, next, exhausted) = (op.clone(), next.clone(), exhausted.clone());
        tasks.spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::with_capacity(8192));
            while start.elapsed() < duration {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                }
                let sent = Instant::now();
                if op(task, i).await {
                    ok += 1;
                    latencies.push(sent.elapsed().as_micros() as u64);
                } else {
                    failed += 1;
                }
            }
            (ok, failed, latencies)
        });
    }
    let mut run = Run::new();
    while let Some(Ok((ok, failed, latencies))) = tasks.join_next().await {
        run.ok += ok;
        run.failed += failed;
        run.latencies_us.extend(latencies);
    }
    run.elapsed = start.elapsed();
    run.cpu = meter.sample().await.since(&cpu);
    run.exhausted = exhausted.load(Ordering::Relaxed);
    run.latencies_us.sort_unstable();
    run
}

/// C clients, each on its own keep-alive connection (opened before the clock
/// starts), posting `hooks` back to back.
async fn http_closed_loop(
    fx: &Fixture,
    addr: SocketAddr,
    hooks: Vec<Webhook>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let connections = Connection::open_many(addr, concurrency).await?;
    let connections: Arc<Vec<tokio::sync::Mutex<Connection>>> =
        Arc::new(connections.into_iter().map(tokio::sync::Mutex::new).collect());
    let (limit, hooks) = (hooks.len(), Arc::new(hooks));
    Ok(
        closed_loop(&fx.meter, concurrency, duration, limit, move |task, i| {
            let (connections, hooks) = (connections.clone(), hooks.clone());
            // Each task only ever locks its own connection: the lock is never contended.
            async move { connections[task].lock().await.post(&hooks[i]).await }
        })
        .await,
    )
}

/// A pool of `size` connections, all open: no timed call pays for a
/// connection's setup (opening dozens at once takes ~100 ms here).
async fn open_pool(fx: &Fixture, size: usize) -> anyhow::Result<PgPool> {
    let pool = workflows::db::connect(&fx.db.url, size as u32).await?;
    let held = futures_util::future::try_join_all((0..size).map(|_| pool.acquire())).await?;
    drop(held);
    Ok(pool)
}

/// The bare commit loop: one row, one autocommit `INSERT`, per call.
async fn baseline(fx: &Fixture, concurrency: usize, duration: Duration) -> anyhow::Result<Run> {
    let body = Arc::new(build_bodies(fx, 1)?.remove(0));
    let pool = open_pool(fx, concurrency).await?;
    let task_pool = pool.clone();
    let run = closed_loop(&fx.meter, concurrency, duration, usize::MAX, move |_, _| {
        let (pool, body) = (task_pool.clone(), body.clone());
        async move {
            sqlx::query("insert into bench_baseline (body) values ($1)")
                .bind(&*body)
                .execute(&pool)
                .await
                .is_ok()
        }
    })
    .await;
    pool.close().await;
    Ok(run)
}

/// `workflows::ingest::IngestQueue` (the app's group commit) without HTTP or
/// JWT: the database's part of a webhook. `count` bodies are built (more than the phase can use).
async fn ingest_direct(
    fx: &Fixture,
    concurrency: usize,
    duration: Duration,
    bodies: Vec<Value>,
) -> anyhow::Result<Run> {
    let bodies = Arc::new(bodies);
    let pool = open_pool(fx, concurrency).await?;
    let task_queue = IngestQueue::start(pool.clone(), QueueSettings::default());
    let queue_for_tasks = task_queue.clone();
    let run = closed_loop(&fx.meter, concurrency, duration, bodies.len(), move |_, i| {
        let (queue, bodies) = (queue_for_tasks.clone(), bodies.clone());
        async move {
            queue
                .ingest(bodies[i].clone())
                .await
                .is_ok_and(|done| !done.duplicate)
        }
    })
    .await;
    drop(task_queue);
    pool.close().await;
    Ok(run)
}

/// `count` bodies, each for an item of its own with no sync pending (seeded
/// here, `active`): every webhook marks its item, claims its guard and
/// enqueues a sync job, which is what a flood of real webhooks does (Plaid
/// sends one per item when it has new data); the 300 bench items are covered
/// after their first webhook (no worker runs), so the other phases measure
/// the cheaper "already queued" path.
async fn bodies_for_fresh_items(fx: &Fixture, count: usize, prefix: &str) -> anyhow::Result<Vec<Value>> {
    let user: i64 = sqlx::query_scalar("select user_id from plaid_items limit 1")
        .fetch_one(&fx.pool)
        .await?;
    sqlx::query(
        "insert into plaid_items (user_id, item_id, sync_status)
         select $1, $2 || n, 'active' from generate_series(0, $3::int - 1) as n",
    )
    .bind(user)
    .bind(prefix)
    .bind(count as i32)
    .execute(&fx.pool)
    .await?;
    let mut bodies = build_bodies(fx, count)?;
    for (n, body) in bodies.iter_mut().enumerate() {
        body["item_id"] = json!(format!("{prefix}{n}"));
    }
    Ok(bodies)
}

/// [`bodies_for_fresh_items`], signed as Plaid does (2-space JSON, the
/// simulator's key), before the clock starts.
async fn fresh_webhooks(fx: &Fixture, count: usize, prefix: &str) -> anyhow::Result<Vec<Webhook>> {
    let bodies = bodies_for_fresh_items(fx, count, prefix).await?;
    let started = Instant::now();
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let hooks = bodies
        .iter()
        .map(|body| {
            let bytes = serde_json::to_vec_pretty(body)?;
            Ok(Webhook {
                jwt: fx.sim.sign_body(&bytes, iat),
                body: bytes.into(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    println!(
        "    (pre-built {count} signed webhooks for fresh items in {:.1} s, untimed)",
        started.elapsed().as_secs_f64()
    );
    Ok(hooks)
}

/// A fresh-items phase's batching, and whether it enqueued one sync job per
/// accepted webhook (`jobs_before`: [`sync_jobs`] before the phase).
async fn jobs_per_webhook(
    fx: &Fixture,
    batching: &str,
    jobs_before: i64,
    run: &Run,
) -> anyhow::Result<String> {
    let enqueued = sync_jobs(fx).await? - jobs_before;
    let verdict = if enqueued == run.ok as i64 { "yes" } else { "NO" };
    Ok(format!(
        "{batching}; {enqueued} sync jobs enqueued (one per webhook: {verdict})"
    ))
}

/// Sync jobs in the queue table.
async fn sync_jobs(fx: &Fixture) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from apalis.jobs where job_type = $1")
            .bind(<workflows::jobs::sync_item::SyncItem as workflows::jobs::JobSpec>::QUEUE)
            .fetch_one(&fx.pool)
            .await?,
    )
}

/// Starts the app, warms it up (key cache, pool), floods it, stops it.
/// Returns the run, the warm-up's stored events and the run's batching.
async fn http_phase(
    fx: &Fixture,
    concurrency: usize,
    duration: Duration,
    hooks: Vec<Webhook>,
) -> anyhow::Result<(Run, u64, String)> {
    let warmup = build_webhooks(fx, WARMUP)?;
    let app = start_app(fx).await?;
    let warm = http_closed_loop(fx, app.addr, warmup, concurrency, Duration::from_secs(30)).await?;
    let since = last_event_id(fx).await?;
    let run = http_closed_loop(fx, app.addr, hooks, concurrency, duration).await?;
    app.stop().await;
    Ok((run, warm.ok, batching_since(fx, since).await?))
}

/// The newest event's id (0 when there is none).
async fn last_event_id(fx: &Fixture) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select coalesce(max(id), 0) from plaid_webhook_events")
            .fetch_one(&fx.pool)
            .await?,
    )
}

/// How the events after `since` were grouped into transactions: the events
/// of one batch share their `received_at` (`now()`, the transaction's start).
async fn batching_since(fx: &Fixture, since: i64) -> anyhow::Result<String> {
    let (events, commits): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct received_at) from plaid_webhook_events where id > $1",
    )
    .bind(since)
    .fetch_one(&fx.pool)
    .await?;
    Ok(format!(
        "{events} events in {commits} transactions: {:.1} per commit",
        events as f64 / commits.max(1) as f64
    ))
}

/// Calls `op(i)` for i in 0..count at `rate`/s on schedule, whatever the
/// answers do; latency is counted from each call's scheduled time. Returns
/// the run and the most calls in flight at once.
async fn open_loop<F, Fut>(meter: &CpuMeter, count: usize, rate: u64, op: F) -> (Run, usize)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut max_in_flight = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let cpu = meter.sample().await;
    // The pacer's ticks are the schedule: tick i is due at `start + i × period`.
    let start = tokio::time::Instant::now();
    let mut pacer = tokio::time::interval_at(start, period);
    for i in 0..count {
        pacer.tick().await;
        let scheduled = start + period * i as u32;
        let call = op(i);
        let in_flight = in_flight.clone();
        max_in_flight = max_in_flight.max(in_flight.fetch_add(1, Ordering::Relaxed) + 1);
        tasks.spawn(async move {
            let ok = call.await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            (ok, scheduled.elapsed().as_micros() as u64)
        });
    }
    let mut run = Run::new();
    while let Some(Ok((ok, latency))) = tasks.join_next().await {
        if ok {
            run.ok += 1;
            run.latencies_us.push(latency);
        } else {
            run.failed += 1;
        }
    }
    run.elapsed = start.elapsed();
    run.cpu = meter.sample().await.since(&cpu);
    run.latencies_us.sort_unstable();
    (run, max_in_flight)
}

/// Vacuums the tables the phases write. The server runs with autovacuum
/// off, and every webhook leaves a dead `plaid_items` row version (300 rows
/// take all the updates): each level starts as autovacuum would leave it.
async fn vacuum(fx: &Fixture) -> anyhow::Result<()> {
    sqlx::raw_sql("vacuum (analyze) plaid_items, plaid_webhook_events, sync_pending, bench_baseline")
        .execute(&fx.pool)
        .await?;
    Ok(())
}

/// One concurrency level: baseline, direct ingest, HTTP, baseline. Pools of
/// pre-built requests are sized from the phase before (each is an upper bound
/// of the next). Returns the number of events the phases stored.
async fn closed_loop_level(fx: &Fixture, concurrency: usize, duration: Duration) -> anyhow::Result<u64> {
    println!(
        "\n== C = {concurrency} concurrent clients, {} s per phase ==",
        duration.as_secs()
    );
    let secs = duration.as_secs_f64();
    let before = baseline(fx, concurrency, duration).await?;
    println!("  baseline INSERT commit loop (before)  {}", before.summary());
    let direct_count = (before.rate() * secs * 1.5) as usize + 1_000;
    let since = last_event_id(fx).await?;
    let direct = ingest_direct(fx, concurrency, duration, build_bodies(fx, direct_count)?).await?;
    println!("  ingest queue direct, no HTTP/JWT      {}", direct.summary());
    println!("      {}", batching_since(fx, since).await?);
    let fresh = bodies_for_fresh_items(fx, direct_count, &format!("fresh-direct-{concurrency}-")).await?;
    vacuum(fx).await?;
    let (since, jobs_before) = (last_event_id(fx).await?, sync_jobs(fx).await?);
    let uncovered = ingest_direct(fx, concurrency, duration, fresh).await?;
    println!("  same, each webhook for a fresh item   {}", uncovered.summary());
    let batching = batching_since(fx, since).await?;
    println!(
        "      {}",
        jobs_per_webhook(fx, &batching, jobs_before, &uncovered).await?
    );
    let http_count = (direct.rate() * secs * 1.3) as usize + 500;
    let (http, warm, batching) = http_phase(fx, concurrency, duration, prebuild(fx, http_count)?).await?;
    println!("  POST /webhook/plaid (app, role api)   {}", http.summary());
    println!("      {batching}");
    let fresh = fresh_webhooks(fx, http_count, &format!("fresh-http-{concurrency}-")).await?;
    vacuum(fx).await?;
    let jobs_before = sync_jobs(fx).await?;
    let (http_fresh, warm_fresh, batching) = http_phase(fx, concurrency, duration, fresh).await?;
    println!("  same, each webhook for a fresh item   {}", http_fresh.summary());
    println!(
        "      {}",
        jobs_per_webhook(fx, &batching, jobs_before, &http_fresh).await?
    );
    let after = baseline(fx, concurrency, duration).await?;
    println!("  baseline INSERT commit loop (after)   {}", after.summary());
    let base = (before.rate() + after.rate()) / 2.0;
    println!(
        "  -> ingest/baseline = {}   [target >= 0.50]   direct queue/baseline = {}   HTTP/direct = {}   \
         fresh items: ingest/baseline = {}, direct/baseline = {}",
        ratio(http.rate(), base),
        ratio(direct.rate(), base),
        ratio(http.rate(), direct.rate()),
        ratio(http_fresh.rate(), base),
        ratio(uncovered.rate(), base),
    );
    Ok(http.ok + warm + direct.ok + uncovered.ok + http_fresh.ok + warm_fresh)
}

/// An open loop at `rate`/s for `secs` s: the bare `INSERT` on a pool the
/// size of the app's, then the app. Returns the number of events stored.
async fn open_loop_level(fx: &Fixture, rate: u64, secs: u64) -> anyhow::Result<u64> {
    println!("\n== open loop: {rate} webhooks/s for {secs} s ==");
    let count = (rate * secs) as usize;
    let body = Arc::new(build_bodies(fx, 1)?.remove(0));
    let pool = open_pool(fx, APP_POOL.parse()?).await?;
    let (base, base_in_flight) = open_loop(&fx.meter, count, rate, |_| {
        let (pool, body) = (pool.clone(), body.clone());
        async move {
            sqlx::query("insert into bench_baseline (body) values ($1)")
                .bind(&*body)
                .execute(&pool)
                .await
                .is_ok()
        }
    })
    .await;
    pool.close().await;
    print_open("baseline INSERT", rate, secs, &base, base_in_flight);

    let hooks = Arc::new(prebuild(fx, count)?);
    let app = start_app(fx).await?;
    let warm = http_closed_loop(
        fx,
        app.addr,
        build_webhooks(fx, WARMUP)?,
        APP_POOL.parse()?,
        Duration::from_secs(30),
    )
    .await?;
    let connections = ConnectionPool::open(app.addr, APP_POOL.parse()?).await?;
    let since = last_event_id(fx).await?;
    let (run, max_in_flight) = open_loop(&fx.meter, count, rate, |i| {
        let (connections, hooks) = (connections.clone(), hooks.clone());
        async move { connections.post(&hooks[i]).await }
    })
    .await;
    app.stop().await;
    print_open("POST /webhook/plaid", rate, secs, &run, max_in_flight);
    println!("      {}", batching_since(fx, since).await?);
    println!(
        "  -> p99 webhook/baseline = {:.1}x   [target at 1000/s: webhook p99 < 20 ms]",
        run.pct_ms(0.99) / base.pct_ms(0.99)
    );
    Ok(run.ok + warm.ok)
}

fn print_open(label: &str, rate: u64, secs: u64, run: &Run, max_in_flight: usize) {
    // Kept up: never more than 100 ms of work queued, all answered in time.
    let kept_up =
        run.failed == 0 && max_in_flight as u64 <= rate / 10 && run.elapsed.as_secs_f64() < secs as f64 + 1.0;
    println!(
        "  {label:<20} at {rate}/s  p50 {:>6.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} ok, {} failed; \
         last answer at {:.2} s; max in flight {max_in_flight}; kept up: {}; {})",
        run.pct_ms(0.50),
        run.pct_ms(0.99),
        run.pct_ms(1.0),
        run.ok,
        run.failed,
        run.elapsed.as_secs_f64(),
        if kept_up { "yes" } else { "NO" },
        run.cpu
    );
}

/// CPU time of one JWT verification (ES256 + body SHA-256), alone on one thread.
async fn time_verification(fx: &Fixture) -> anyhow::Result<()> {
    let defaults = SimulatorConfig::default();
    let plaid = PlaidClient::new(&PlaidConfig::new(
        fx.sim.base_url(),
        defaults.client_id,
        defaults.secret.into(),
    ))?;
    let keys = KeyCache::new(Arc::new(plaid));
    let hooks = build_webhooks(fx, VERIFY_SAMPLE + 1)?;
    let now = chrono::Utc::now().timestamp();
    verify_one(&keys, &hooks[0], now).await?; // fetches the key
    let started = Instant::now();
    for hook in &hooks[1..] {
        verify_one(&keys, hook, now).await?;
    }
    let per = started.elapsed().as_secs_f64() / VERIFY_SAMPLE as f64;
    println!(
        "\n== JWT verification alone: {:.0} µs per webhook on one thread (at most {:.0}/s per core) ==",
        per * 1e6,
        1.0 / per
    );
    Ok(())
}

async fn verify_one(keys: &KeyCache, hook: &Webhook, now: i64) -> anyhow::Result<()> {
    jwt::verify(&hook.jwt, &hook.body, keys, now, TOLERANCE_SECS)
        .await
        .map_err(|r| anyhow::anyhow!("verification failed: {}", r.reason()))
}

/// Every 200 is a stored row; and what one webhook costs in row writes.
async fn verify_and_explain(fx: &Fixture, accepted: u64) -> anyhow::Result<()> {
    let stored: i64 = sqlx::query_scalar("select count(*) from plaid_webhook_events")
        .fetch_one(&fx.pool)
        .await?;
    println!(
        "\n== check: {accepted} webhooks answered 200 accepted (HTTP + direct), {stored} rows in plaid_webhook_events: {} ==",
        if stored as u64 == accepted {
            "OK"
        } else {
            "MISMATCH"
        }
    );
    // Statistics reach pg_stat a moment after the transactions that made them.
    let mut settle = tokio::time::interval(Duration::from_millis(600));
    settle.tick().await;
    settle.tick().await;
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select s.relname::text, s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd, s.n_dead_tup,
                (select count(*) from pg_index i where i.indrelid = s.relid)
         from pg_stat_user_tables s
         where s.relname in ('plaid_webhook_events', 'plaid_items', 'sync_pending', 'bench_baseline')
         order by 1",
    )
    .fetch_all(&fx.pool)
    .await?;
    println!("  row writes over the whole run (pg_stat_user_tables; vacuumed before each level):");
    for (table, ins, upd, hot, dead, indexes) in rows {
        println!(
            "    {table:<22} {indexes:>2} indexes  inserts {ins:>7}  updates {upd:>7} (HOT {hot:>5})  dead tuples now {dead:>6}"
        );
    }
    Ok(())
}

/// Every phase, then the check; the caller cleans up whatever happened.
async fn phases(fx: &Fixture, duration: Duration) -> anyhow::Result<()> {
    time_verification(fx).await?;
    let mut accepted = 0;
    for concurrency in CONCURRENCY {
        vacuum(fx).await?;
        accepted += closed_loop_level(fx, concurrency, duration).await?;
    }
    for (rate, secs) in OPEN_LOOPS {
        vacuum(fx).await?;
        accepted += open_loop_level(fx, rate, secs).await?;
    }
    verify_and_explain(fx, accepted).await
}

async fn run() -> anyhow::Result<()> {
    // The app's JWT backend, installed before the simulator signs anything
    // (the first use of jsonwebtoken otherwise fixes its default).
    jwt_ring::install();
    let duration = phase_duration();
    println!(
        "webhook_ingest: {} cores, PostgreSQL {}, {ITEMS} items, app pool {APP_POOL}",
        std::thread::available_parallelism()?,
        support::postgres_version().await?
    );
    let fx = setup().await?;
    let result = phases(&fx, duration).await;
    fx.pool.close().await;
    fx.db.drop_now().await?;
    fx.sim.shutdown().await?;
    result
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run().await
}

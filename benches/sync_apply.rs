//! Initial sync: transactions applied per second by a worker process, beside
//! `COPY` of the same rows into the same indexed table, and the worker's peak
//! memory.
//!
//! Targets (issue): a 100,000-transaction initial sync at ≥ 50 % of the `COPY`
//! rate; worker peak RSS < 200 MB, not growing with history size (so 20,000 is
//! run too).
//!
//! Method, per case: a fresh database (migrated), the simulator in this
//! process (its memory is not the worker's) with per-item rate limiting off,
//! and a worker in a *separate process* started with `DATABASE_URL`,
//! `PLAID_BASE_URL`, the simulator's credentials, `SECRETS_KEY`,
//! `LOG_FORMAT=json`, `RUST_LOG=warn,workflows::jobs::sync_item=info` (so the
//! `sync run finished` line, with `elapsed_ms`, comes through). Once the worker
//! runs jobs (a canary job came back), an item with N generated transactions
//! (seed 7), ready, is linked through `workflows::link::exchange_public_token`
//! against the simulator: that stores the encrypted access token, the item and
//! its accounts, and enqueues the first sync in one transaction. The clock runs
//! from just before the exchange to the item being `active` with its cursor
//! stored (polled every 20 ms); all N rows are then counted. Peak RSS is the
//! worker's `VmHWM` from `/proc/<pid>/status` (the kernel's high-water mark, so
//! no sampling is needed), shown beside its value when idle. The split comes
//! from the item's own timestamps: queue pickup (enqueue → `sync_started_at`,
//! the lease), then fetching and applying the pages on the run's transaction
//! (the rest: page *k* is applied while page *k + 1* is fetched, so the two
//! are not separable).
//!
//! Baseline, same run, same database: the N rows are exported with
//! `COPY (SELECT … FROM transactions) TO STDOUT` into memory, the table is
//! truncated (its three indexes stay), and the rows are loaded back with
//! `COPY transactions (…) FROM STDIN` (sqlx `copy_in_raw`, one transaction).
//!
//! The simulator runs on the same 2 cores. So each case also records every page the
//! simulator serves for this history (timed: "simulator alone"), and syncs the
//! same item again from an empty table and a null cursor through a second,
//! fresh worker pointed at a replay server in this process that answers
//! `/transactions/sync` with the recorded bytes: that is the engine's own rate
//! (fetch over HTTP, parse, apply), Plaid's time excluded.
//!
//! Two workers are measured:
//! - `plaid-sync serve --role worker` (the shipped binary, built by cargo for
//!   this bench: `CARGO_BIN_EXE_plaid-sync`). Its client-side pacing is
//!   Plaid's production limit, 50 `/transactions/sync` calls per item per
//!   minute (`SyncLimits::plaid_production`, not configurable), i.e. a burst
//!   of 50 pages of 500 then one page per 1.2 s: 20,000 transactions (40
//!   pages) fit in the burst, 100,000 (200 pages) would take ≥ 180 s of
//!   waiting alone. So it runs at 20,000.
//! - the same `Application` in role `worker`, started as a separate process
//!   from this bench binary (`sync_apply --sync-worker`), with that pacing
//!   lifted (`SyncLimits::new(1_000_000, 1_000_000)`): the engine's own speed,
//!   at 20,000 and 100,000.
//!
//! Run: `cargo bench --bench sync_apply` (about 2 minutes; cargo builds the
//! release `plaid-sync` binary for it).

mod support;

use std::{
    collections::HashMap,
    path::Path,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use plaid_simulator::{HistorySpec, ReadyState, Simulator, SimulatorConfig, SimulatorHandle};
use plaid_sync::{
    app::{Application, RunOptions},
    cli::Role,
    config::Config,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{BenchDb, ratio};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::oneshot,
};
use workflows::{
    jobs::{
        canary::Canary,
        enqueue,
        sync_item::{ItemRef, request_sync},
    },
    plaid::{
        PlaidClient, PlaidConfig,
        types::{SandboxPublicTokenCreateRequest, TransactionsSyncResponse},
    },
    secrets::{SecretStore, SecretsKey},
    sync::{SyncLimits, SyncSettings, fetch::PAGE_SIZE},
};

/// The argument that makes this binary the worker process.
const WORKER_ARG: &str = "--sync-worker";
/// The shipped binary, built by cargo for benches.
const SHIPPED: &str = env!("CARGO_BIN_EXE_plaid-sync");
/// Bound on one sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// Columns exported and re-loaded by the `COPY` baseline (all of them).
const COLUMNS: &str = "id, account_id, external_id, amount, iso_currency_code, unofficial_currency_code, \
     date, authorized_date, name, merchant_name, pending, pending_external_id, archived, raw_json, \
     created_at, updated_at";

/// Which worker process runs the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worker {
    /// `plaid-sync serve --role worker`, production pacing.
    Shipped,
    /// This binary with `--sync-worker`: the same app, pacing lifted.
    Unpaced,
}

impl Worker {
    fn label(self) -> &'static str {
        match self {
            Worker::Shipped => "plaid-sync serve --role worker",
            Worker::Unpaced => "app worker process, pacing lifted",
        }
    }
}

/// One sync, as measured.
struct SyncFigures {
    wall: Duration,
    pickup: f64,
    fetch: f64,
    logged_ms: Option<u64>,
    rss_idle_kb: u64,
    rss_peak_kb: u64,
    stored: i64,
}

impl SyncFigures {
    fn print(&self, label: &str, n: usize, copy_rate: f64) {
        let rate = n as f64 / self.wall.as_secs_f64();
        println!(
            "  {label:<34} {:>6.2} s {:>7.0} transactions/s  sync/COPY = {}   [target >= 0.50]",
            self.wall.as_secs_f64(),
            rate,
            ratio(rate, copy_rate),
        );
        println!(
            "    {} rows stored ({}); pickup {:.2} s, fetch + apply (one transaction) {:.2} s; logged elapsed_ms {}",
            self.stored,
            if self.stored == n as i64 {
                "all"
            } else {
                "MISSING ROWS"
            },
            self.pickup,
            self.fetch,
            self.logged_ms.map_or("-".to_owned(), |ms| ms.to_string())
        );
        println!(
            "    worker RSS idle {:.1} MB, peak (VmHWM) {:.1} MB   [target < 200 MB]",
            mb(self.rss_idle_kb),
            mb(self.rss_peak_kb)
        );
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The simulator's pages for the whole history, keyed by the request's cursor.
struct Recorded {
    pages: HashMap<String, Bytes>,
    total: Duration,
    first_ms: f64,
    last_ms: f64,
}

/// What one case measured.
struct CaseResult {
    n: usize,
    worker: Worker,
    through_simulator: SyncFigures,
    replayed: SyncFigures,
    copy: Duration,
    copy_bytes: usize,
    simulator_alone: (Duration, usize, f64, f64),
    client_cpu: ClientCpu,
}

/// CPU the worker spends per page outside PostgreSQL, timed alone in this
/// process on the recorded pages: parsing a page into
/// `TransactionsSyncResponse` (an initial load then turns the page's text
/// into `COPY` rows; later updates bind it as it came).
struct ClientCpu {
    parse_ms: f64,
}

impl CaseResult {
    fn print(&self) {
        let copy_rate = self.n as f64 / self.copy.as_secs_f64();
        println!("\n== N = {} transactions, {} ==", self.n, self.worker.label());
        println!(
            "  COPY FROM STDIN baseline           {:>6.2} s {:>7.0} rows/s  ({:.1} MB of COPY text)",
            self.copy.as_secs_f64(),
            copy_rate,
            self.copy_bytes as f64 / 1e6
        );
        self.through_simulator
            .print("sync through the simulator", self.n, copy_rate);
        let (total, pages, first, last) = self.simulator_alone;
        println!(
            "    simulator alone (bare HTTP client, no database): {:.2} s for {pages} pages, \
             first pages {first:.0} ms each, last {last:.0} ms = {:.0} % of fetch + apply",
            total.as_secs_f64(),
            100.0 * total.as_secs_f64() / self.through_simulator.fetch
        );
        self.replayed
            .print("sync of recorded pages (replay)", self.n, copy_rate);
        let pages = self.simulator_alone.1 as f64;
        println!(
            "    per page: fetch + apply {:.1} ms = max(HTTP + parse (timed alone: {:.1} ms), the page's share of the COPY)",
            1000.0 * self.replayed.fetch / pages,
            self.client_cpu.parse_ms,
        );
    }
}

/// A worker process and the line it logs when a sync finishes.
struct WorkerProcess {
    child: Child,
    finished: Option<oneshot::Receiver<Value>>,
}

/// The replay server: its URL and how to stop it.
struct Replay {
    url: String,
    stop: oneshot::Sender<()>,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if std::env::args().any(|a| a == WORKER_ARG) {
        runtime.block_on(worker_main())
    } else {
        runtime.block_on(bench_main())
    }
}

/// The `--sync-worker` process: `serve --role worker` with pacing lifted.
async fn worker_main() -> anyhow::Result<()> {
    let vars = std::env::vars().collect();
    let config = Config::from_vars(&vars, Path::new("/nonexistent/key"))?;
    plaid_sync::telemetry::init(config.log_format);
    let options = RunOptions {
        role: Role::Worker,
        migrate: false,
        sync_settings: SyncSettings {
            limits: Arc::new(SyncLimits::new(1_000_000, 1_000_000)),
            ..SyncSettings::default()
        },
        ..RunOptions::default()
    };
    let app = Application::build(config, options).await?;
    let stop = app.shutdown_token();
    tokio::spawn(async move {
        plaid_sync::commands::shutdown_signal().await;
        stop.cancel();
    });
    app.run_until_stopped().await;
    Ok(())
}

async fn bench_main() -> anyhow::Result<()> {
    println!(
        "sync_apply: {} cores, PostgreSQL {}, worker binary {SHIPPED}",
        std::thread::available_parallelism()?,
        support::postgres_version().await?
    );
    let cases = [
        (20_000, Worker::Shipped),
        (20_000, Worker::Unpaced),
        (100_000, Worker::Unpaced),
    ];
    let mut results = Vec::new();
    for (n, worker) in cases {
        let result = run_case(n, worker).await?;
        result.print();
        results.push(result);
    }
    print_growth(&results);
    Ok(())
}

/// RSS growth between the smallest and largest history of the unpaced worker.
fn print_growth(results: &[CaseResult]) {
    let unpaced: Vec<&CaseResult> = results.iter().filter(|r| r.worker == Worker::Unpaced).collect();
    if let (Some(small), Some(large)) = (unpaced.first(), unpaced.last()) {
        let peak = |r: &CaseResult| mb(r.through_simulator.rss_peak_kb.max(r.replayed.rss_peak_kb));
        println!(
            "\n== worker peak RSS vs history size (same worker): {} -> {} transactions: {:.1} MB -> {:.1} MB \
             (x{:.2} for x{:.0} history) ==",
            small.n,
            large.n,
            peak(small),
            peak(large),
            peak(large) / peak(small),
            large.n as f64 / small.n as f64
        );
    }
}

/// One case on its own database, always dropped afterwards.
async fn run_case(n: usize, worker: Worker) -> anyhow::Result<CaseResult> {
    let db = BenchDb::create().await?;
    let pool = workflows::db::connect(&db.url, 5).await?;
    let sim = Simulator::start(SimulatorConfig {
        sync_rate_limit: None,
        auto_webhooks: false,
        ..SimulatorConfig::default()
    })
    .await?;
    let key = SecretsKey::generate();
    let result = async {
        workflows::db::migrate_all(&pool).await?;
        measure_case(&db, &pool, &sim, &key, n, worker).await
    }
    .await;
    pool.close().await;
    sim.shutdown().await?;
    db.drop_now().await?;
    result
}

async fn measure_case(
    db: &BenchDb,
    pool: &PgPool,
    sim: &SimulatorHandle,
    key: &SecretsKey,
    n: usize,
    worker: Worker,
) -> anyhow::Result<CaseResult> {
    // Through the simulator.
    let mut process = spawn_worker(worker, db, &sim.base_url(), key)?;
    let synced = async {
        let rss_idle_kb = worker_ready(pool, &process).await?;
        let (plaid_item_id, start) = link_item(pool, sim, key, n).await?;
        let figures = finish_sync(pool, &mut process, plaid_item_id, start, rss_idle_kb).await?;
        Ok::<_, anyhow::Error>((plaid_item_id, figures))
    }
    .await;
    stop_worker(process).await;
    let (plaid_item_id, through_simulator) = synced?;

    let (copy, copy_bytes) = copy_baseline(pool, through_simulator.stored).await?;
    let recorded = record_pages(sim).await?;
    let simulator_alone = (
        recorded.total,
        recorded.pages.len(),
        recorded.first_ms,
        recorded.last_ms,
    );
    let client_cpu = time_client_cpu(&recorded.pages)?;

    // The same history again, replayed.
    let replay = start_replay(recorded.pages).await?;
    let mut process = spawn_worker(worker, db, &replay.url, key)?;
    let replayed = async {
        let rss_idle_kb = worker_ready(pool, &process).await?;
        let start = restart_sync(pool, plaid_item_id).await?;
        finish_sync(pool, &mut process, plaid_item_id, start, rss_idle_kb).await
    }
    .await;
    stop_worker(process).await;
    let _ = replay.stop.send(());

    Ok(CaseResult {
        n,
        worker,
        through_simulator,
        replayed: replayed?,
        copy,
        copy_bytes,
        simulator_alone,
        client_cpu,
    })
}

/// Times, per page, what `sync::fetch` does with a page besides I/O: parse it
/// (which validates every transaction before the page's text is applied).
fn time_client_cpu(pages: &HashMap<String, Bytes>) -> anyhow::Result<ClientCpu> {
    let mut parse = Duration::ZERO;
    for body in pages.values() {
        let started = Instant::now();
        let page: TransactionsSyncResponse = serde_json::from_slice(body)?;
        parse += started.elapsed();
        anyhow::ensure!(!page.request_id.is_empty(), "a page without a request id");
    }
    let per_page = |d: Duration| 1000.0 * d.as_secs_f64() / pages.len().max(1) as f64;
    Ok(ClientCpu {
        parse_ms: per_page(parse),
    })
}

/// Starts the worker process against `plaid_url`, its stderr scanned for
/// `sync run finished`.
fn spawn_worker(
    worker: Worker,
    db: &BenchDb,
    plaid_url: &str,
    key: &SecretsKey,
) -> anyhow::Result<WorkerProcess> {
    let defaults = SimulatorConfig::default();
    let mut command = match worker {
        Worker::Shipped => {
            let mut c = Command::new(SHIPPED);
            c.args(["serve", "--role", "worker", "--no-migrate"]);
            c
        }
        Worker::Unpaced => {
            let mut c = Command::new(std::env::current_exe()?);
            c.arg(WORKER_ARG);
            c
        }
    };
    command
        .current_dir(std::env::temp_dir()) // no stray `.env` or key file
        .env("DATABASE_URL", &db.url)
        .env("PLAID_ENV", "simulator")
        .env("PLAID_BASE_URL", plaid_url)
        .env("PLAID_CLIENT_ID", &defaults.client_id)
        .env("PLAID_SECRET", &defaults.secret)
        .env("SECRETS_KEY", key.to_base64())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,workflows::jobs::sync_item=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(scan_log(BufReader::new(stderr), tx));
    Ok(WorkerProcess {
        child,
        finished: Some(rx),
    })
}

/// Hands over the first `sync run finished` line; echoes the others (warnings
/// and errors), shortened.
async fn scan_log(stderr: BufReader<tokio::process::ChildStderr>, finished: oneshot::Sender<Value>) {
    let mut finished = Some(finished);
    let mut lines = stderr.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if parsed["fields"]["message"] == "sync run finished" {
            if let Some(tx) = finished.take() {
                let _ = tx.send(parsed["fields"].clone());
            }
        } else {
            let short: String = line.chars().take(300).collect();
            eprintln!("    worker log: {short}");
        }
    }
}

/// SIGTERM (graceful), then SIGKILL if it is still up after 10 s.
async fn stop_worker(mut process: WorkerProcess) {
    if let Some(pid) = process.child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), process.child.wait())
        .await
        .is_err()
    {
        let _ = process.child.kill().await;
    }
}

/// The worker's peak resident set so far, in kB.
fn vm_hwm_kb(process: &WorkerProcess) -> anyhow::Result<u64> {
    let pid = process
        .child
        .id()
        .ok_or_else(|| anyhow::anyhow!("the worker exited"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// Polls `query` (a scalar boolean of `$1`) every 20 ms until true, or fails after `timeout`.
async fn poll_until(
    pool: &PgPool,
    query: &str,
    bind: &str,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let ready: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
            .bind(bind)
            .fetch_one(pool)
            .await?;
        if ready {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

/// Waits until the worker runs jobs (its sync worker is registered and a
/// canary came back); returns its RSS high-water mark then, in kB.
async fn worker_ready(pool: &PgPool, process: &WorkerProcess) -> anyhow::Result<u64> {
    let registered = "select exists (select 1 from apalis.workers
                      where worker_type = $1 and last_seen > now() - interval '5 seconds')";
    poll_until(
        pool,
        registered,
        "plaid-sync.sync-item",
        Duration::from_secs(30),
        "the worker to register",
    )
    .await?;
    let token = format!("bench-{}-{}", std::process::id(), Utc::now().timestamp_micros());
    let canary = Canary {
        token: token.clone(),
        hold_ms: 0,
    };
    enqueue(&mut *pool.acquire().await?, &canary, None).await?;
    let ran = "select exists (select 1 from job_canary_runs where token = $1 and finished_at is not null)";
    poll_until(
        pool,
        ran,
        &token,
        Duration::from_secs(30),
        "the worker to run a canary job",
    )
    .await?;
    vm_hwm_kb(process)
}

/// When a sync was asked for: the bench's clock and the database's.
type Start = (Instant, DateTime<Utc>);

async fn start_clock(pool: &PgPool) -> anyhow::Result<Start> {
    let db_now: DateTime<Utc> = sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(pool)
        .await?;
    Ok((Instant::now(), db_now))
}

/// Creates an item with `n` transactions, ready, in the simulator, and links
/// it (which enqueues its first sync). Returns `plaid_items.id` and when the
/// link started.
async fn link_item(
    pool: &PgPool,
    sim: &SimulatorHandle,
    key: &SecretsKey,
    n: usize,
) -> anyhow::Result<(i64, Start)> {
    let defaults = SimulatorConfig::default();
    let plaid = PlaidClient::new(&PlaidConfig::new(
        sim.base_url(),
        defaults.client_id,
        defaults.secret.into(),
    ))?;
    let public = plaid
        .sandbox_public_token_create(&SandboxPublicTokenCreateRequest::transactions("ins_109508"))
        .await?;
    let item_id = sim
        .items()
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no item"))?
        .item_id;
    sim.generate_history(&item_id, HistorySpec::new(n, 7))?;
    sim.mark_ready(&item_id, ReadyState::HistoricalUpdateComplete)?;
    let user = workflows::db::users::insert_user(&mut *pool.acquire().await?, "bench@example.com")
        .await?
        .ok_or_else(|| anyhow::anyhow!("user exists"))?;
    let secrets = SecretStore::new(key.clone(), Vec::new());
    let start = start_clock(pool).await?;
    let token = public.public_token.expose_secret();
    let linked = workflows::link::exchange_public_token(pool, &plaid, &secrets, user.id, token).await?;
    Ok((linked.plaid_item_id, start))
}

/// Empties the table, forgets the cursor and requests a sync: an initial sync again.
async fn restart_sync(pool: &PgPool, plaid_item_id: i64) -> anyhow::Result<Start> {
    sqlx::query("truncate transactions").execute(pool).await?;
    sqlx::query("update plaid_items set cursor = null where id = $1")
        .bind(plaid_item_id)
        .execute(pool)
        .await?;
    let start = start_clock(pool).await?;
    request_sync(&mut *pool.acquire().await?, ItemRef::Id(plaid_item_id)).await?;
    Ok(start)
}

/// Waits for the sync that started after `start`, then gathers its figures.
async fn finish_sync(
    pool: &PgPool,
    process: &mut WorkerProcess,
    plaid_item_id: i64,
    start: Start,
    rss_idle_kb: u64,
) -> anyhow::Result<SyncFigures> {
    let done = wait_synced(pool, plaid_item_id, start.1).await?;
    let rss_peak_kb = vm_hwm_kb(process)?;
    let logged = match process.finished.take() {
        Some(rx) => tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let stored: i64 = sqlx::query_scalar("select count(*) from transactions")
        .fetch_one(pool)
        .await?;
    let seconds = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
    let wall = done.at - start.0;
    let pickup = seconds(done.started_at - start.1);
    Ok(SyncFigures {
        wall,
        pickup,
        fetch: wall.as_secs_f64() - pickup,
        logged_ms: logged.and_then(|f| f["elapsed_ms"].as_u64()),
        rss_idle_kb,
        rss_peak_kb,
        stored,
    })
}

/// When the sync was seen done, with the item's own timestamps.
struct Done {
    at: Instant,
    started_at: DateTime<Utc>,
}

type ItemRow = (
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// Polls the item until a sync that started after `after` has left it
/// `active`, failing on an error.
async fn wait_synced(pool: &PgPool, plaid_item_id: i64, after: DateTime<Utc>) -> anyhow::Result<Done> {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let (status, error, started, synced): ItemRow = sqlx::query_as(
            "select sync_status, last_error_code, sync_started_at, last_synced_at
             from plaid_items where id = $1",
        )
        .bind(plaid_item_id)
        .fetch_one(pool)
        .await?;
        if error.is_some() || status == "failed" || status == "needs_reauth" {
            anyhow::bail!("the sync failed: {error:?} (status {status})");
        }
        if let ("active", Some(started_at), Some(_)) = (status.as_str(), started, synced)
            && started_at > after
        {
            return Ok(Done {
                at: Instant::now(),
                started_at,
            });
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sync did not finish within {SYNC_TIMEOUT:?} (status {status})"
        );
    }
}

/// Exports the rows, truncates, and times `COPY … FROM STDIN` of them.
async fn copy_baseline(pool: &PgPool, expected: i64) -> anyhow::Result<(Duration, usize)> {
    let mut conn = pool.acquire().await?;
    let mut data = Vec::new();
    {
        use futures_util::TryStreamExt;
        let export = format!("copy (select {COLUMNS} from transactions) to stdout");
        let mut stream = conn.copy_out_raw(&export).await?;
        while let Some(chunk) = stream.try_next().await? {
            data.extend_from_slice(&chunk);
        }
    }
    sqlx::query("truncate transactions").execute(&mut *conn).await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("copy transactions ({COLUMNS}) from stdin"))
        .await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let rows = copy.finish().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        rows as i64 == expected,
        "COPY loaded {rows} rows, expected {expected}"
    );
    Ok((elapsed, data.len()))
}

/// Pages the item's whole history from the simulator with a bare HTTP
/// client, as the worker asks for it (count 500), timing each page and
/// keeping its exact bytes for the replay.
async fn record_pages(sim: &SimulatorHandle) -> anyhow::Result<Recorded> {
    let defaults = SimulatorConfig::default();
    let item = sim.items().pop().ok_or_else(|| anyhow::anyhow!("no item"))?;
    let http = reqwest::Client::new();
    let url = format!("{}/transactions/sync", sim.base_url());
    let (mut cursor, mut pages, mut times) = (String::new(), HashMap::new(), Vec::new());
    loop {
        let mut request = json!({
            "client_id": defaults.client_id, "secret": defaults.secret,
            "access_token": item.access_token, "count": PAGE_SIZE,
        });
        if !cursor.is_empty() {
            request["cursor"] = json!(cursor);
        }
        let started = Instant::now();
        let body = http.post(&url).json(&request).send().await?.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let page: Value = serde_json::from_slice(&body)?;
        let next = page["next_cursor"].as_str().unwrap_or_default().to_owned();
        pages.insert(std::mem::replace(&mut cursor, next), body);
        if page["has_more"] != true {
            break;
        }
    }
    let mean = |t: &[f64]| t.iter().sum::<f64>() / t.len().max(1) as f64;
    let edge = times.len().min(5);
    Ok(Recorded {
        pages,
        total: Duration::from_secs_f64(times.iter().sum::<f64>() / 1000.0),
        first_ms: mean(&times[..edge]),
        last_ms: mean(&times[times.len() - edge..]),
    })
}

/// Serves the recorded pages at `/transactions/sync`, by the request's cursor.
async fn start_replay(pages: HashMap<String, Bytes>) -> anyhow::Result<Replay> {
    let router = axum::Router::new()
        .route("/transactions/sync", axum::routing::post(replay_page))
        .with_state(Arc::new(pages));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Replay { url, stop })
}

async fn replay_page(State(pages): State<Arc<HashMap<String, Bytes>>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let cursor = request["cursor"].as_str().unwrap_or_default();
    match pages.get(cursor) {
        Some(page) => ([(header::CONTENT_TYPE, "application/json")], page.clone()).into_response(),
        None => (StatusCode::BAD_REQUEST, "the replay has no page for this cursor").into_response(),
    }
}

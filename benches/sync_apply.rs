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
//! `PLAID_BASE_URL` (the simulator), the simulator's credentials, `SECRETS_KEY`,
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
//! the lease), fetch and staging (lease → `last_synced_at`, which is `now()` of
//! the apply transaction, i.e. its start), apply (the rest).
//!
//! Baseline, same run, same database: the N rows are exported with
//! `COPY (SELECT … FROM transactions) TO STDOUT` into memory, the table is
//! truncated (its three indexes stay), and the rows are loaded back with
//! `COPY transactions (…) FROM STDIN` (sqlx `copy_in_raw`, one transaction).
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
//! Run: `cargo bench --bench sync_apply` (about 1.5 minutes; it builds the
//! release `plaid-sync` binary itself).

mod support;

use std::{
    path::Path,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use plaid_simulator::{HistorySpec, ReadyState, Simulator, SimulatorConfig, SimulatorHandle};
use plaid_sync::{
    app::{Application, RunOptions},
    cli::Role,
    config::Config,
};
use serde_json::Value;
use sqlx::PgPool;
use support::{BenchDb, ratio};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::oneshot,
};
use workflows::{
    jobs::{canary::Canary, enqueue},
    plaid::{PlaidClient, PlaidConfig, types::SandboxPublicTokenCreateRequest},
    secrets::{SecretStore, SecretsKey},
    sync::{SyncLimits, SyncSettings},
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
            Worker::Unpaced => "app worker, pacing lifted",
        }
    }
}

/// What one case measured.
struct CaseResult {
    n: usize,
    worker: Worker,
    stored: i64,
    sync: Duration,
    pickup: f64,
    fetch: f64,
    apply: f64,
    logged_ms: Option<u64>,
    rss_idle_kb: u64,
    rss_peak_kb: u64,
    copy: Duration,
    copy_bytes: usize,
}

impl CaseResult {
    fn print(&self) {
        let sync_rate = self.n as f64 / self.sync.as_secs_f64();
        let copy_rate = self.stored as f64 / self.copy.as_secs_f64();
        println!("\n== N = {} transactions, {} ==", self.n, self.worker.label());
        println!(
            "  sync (enqueue -> active)   {:>7.2} s  {:>8.0} transactions/s  ({} rows stored: {})",
            self.sync.as_secs_f64(),
            sync_rate,
            self.stored,
            if self.stored == self.n as i64 {
                "all"
            } else {
                "MISSING ROWS"
            }
        );
        println!(
            "    split: pickup {:.2} s, fetch + stage {:.2} s, apply {:.2} s; worker logged elapsed_ms = {}",
            self.pickup,
            self.fetch,
            self.apply,
            self.logged_ms.map_or("-".to_owned(), |ms| ms.to_string())
        );
        println!(
            "  COPY FROM STDIN baseline   {:>7.2} s  {:>8.0} rows/s  ({:.1} MB of COPY text)",
            self.copy.as_secs_f64(),
            copy_rate,
            self.copy_bytes as f64 / 1e6
        );
        println!(
            "  -> sync/COPY = {}   [target >= 0.50]",
            ratio(sync_rate, copy_rate)
        );
        println!(
            "  worker RSS: idle {:.1} MB, peak (VmHWM) {:.1} MB   [target < 200 MB]",
            self.rss_idle_kb as f64 / 1024.0,
            self.rss_peak_kb as f64 / 1024.0
        );
    }
}

/// A worker process and the line it logs when the sync finishes.
struct WorkerProcess {
    child: Child,
    finished: Option<oneshot::Receiver<Value>>,
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
        println!(
            "\n== peak RSS vs history size (same worker): {} -> {} transactions: {:.1} MB -> {:.1} MB (x{:.2} for x{:.0} history) ==",
            small.n,
            large.n,
            small.rss_peak_kb as f64 / 1024.0,
            large.rss_peak_kb as f64 / 1024.0,
            large.rss_peak_kb as f64 / small.rss_peak_kb as f64,
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
        let mut process = spawn_worker(worker, &db, &sim, &key)?;
        let measured = measure(&pool, &sim, &key, &mut process, n, worker).await;
        stop_worker(process).await;
        measured
    }
    .await;
    pool.close().await;
    sim.shutdown().await?;
    db.drop_now().await?;
    result
}

/// Starts the worker process, its stderr scanned for `sync run finished`.
fn spawn_worker(
    worker: Worker,
    db: &BenchDb,
    sim: &SimulatorHandle,
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
        .env("PLAID_BASE_URL", sim.base_url())
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

/// Hands over the first `sync run finished` line; echoes warnings and errors.
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
            eprintln!("  worker: {line}");
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

/// Everything timed in one case.
async fn measure(
    pool: &PgPool,
    sim: &SimulatorHandle,
    key: &SecretsKey,
    process: &mut WorkerProcess,
    n: usize,
    worker: Worker,
) -> anyhow::Result<CaseResult> {
    let pid = process
        .child
        .id()
        .ok_or_else(|| anyhow::anyhow!("worker exited"))?;
    wait_worker_ready(pool).await?;
    let rss_idle_kb = vm_hwm_kb(pid)?;
    let (plaid_item_id, enqueued) = link_item(pool, sim, key, n).await?;
    let done = wait_synced(pool, plaid_item_id).await?;
    let sync = done.at - enqueued.0;
    let rss_peak_kb = vm_hwm_kb(pid)?;
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
    let (copy, copy_bytes) = copy_baseline(pool, stored).await?;
    let seconds = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
    let fetch = seconds(done.synced_at - done.started_at);
    let pickup = seconds(done.started_at - enqueued.1);
    Ok(CaseResult {
        n,
        worker,
        stored,
        sync,
        pickup,
        fetch,
        apply: sync.as_secs_f64() - pickup - fetch,
        logged_ms: logged.and_then(|f| f["elapsed_ms"].as_u64()),
        rss_idle_kb,
        rss_peak_kb,
        copy,
        copy_bytes,
    })
}

/// The worker's peak resident set so far, in kB.
fn vm_hwm_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// Polls `query` (a scalar boolean) every 20 ms until true, or fails after `timeout`.
async fn poll_until(
    pool: &PgPool,
    query: &str,
    bind: String,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let ready: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
            .bind(&bind)
            .fetch_one(pool)
            .await?;
        if ready {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

/// The worker runs jobs: its sync worker is registered and a canary came back.
async fn wait_worker_ready(pool: &PgPool) -> anyhow::Result<()> {
    poll_until(
        pool,
        "select exists (select 1 from apalis.workers where worker_type = $1)",
        "plaid-sync.sync-item".to_owned(),
        Duration::from_secs(30),
        "the worker to register",
    )
    .await?;
    let token = ulid_like();
    let canary = Canary {
        token: token.clone(),
        hold_ms: 0,
    };
    enqueue(&mut *pool.acquire().await?, &canary, None).await?;
    poll_until(
        pool,
        "select exists (select 1 from job_canary_runs where token = $1 and finished_at is not null)",
        token,
        Duration::from_secs(30),
        "the worker to run a canary job",
    )
    .await
}

fn ulid_like() -> String {
    format!("bench-{}-{}", std::process::id(), Utc::now().timestamp_micros())
}

/// Creates an item with `n` transactions, ready, in the simulator, and links
/// it (which enqueues its first sync). Returns `plaid_items.id` and the time
/// just before the link (bench clock, database clock).
async fn link_item(
    pool: &PgPool,
    sim: &SimulatorHandle,
    key: &SecretsKey,
    n: usize,
) -> anyhow::Result<(i64, (Instant, DateTime<Utc>))> {
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
    let db_now: DateTime<Utc> = sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(pool)
        .await?;
    let now = Instant::now();
    let linked = workflows::link::exchange_public_token(
        pool,
        &plaid,
        &secrets,
        user.id,
        public.public_token.expose_secret(),
    )
    .await?;
    Ok((linked.plaid_item_id, (now, db_now)))
}

/// When the sync was seen done, with the item's own timestamps.
struct Done {
    at: Instant,
    started_at: DateTime<Utc>,
    synced_at: DateTime<Utc>,
}

type ItemRow = (
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// Polls the item until `active` with a stored cursor, failing on an error.
async fn wait_synced(pool: &PgPool, plaid_item_id: i64) -> anyhow::Result<Done> {
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
        if let ("active", Some(started_at), Some(synced_at)) = (status.as_str(), started, synced) {
            return Ok(Done {
                at: Instant::now(),
                started_at,
                synced_at,
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

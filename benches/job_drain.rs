//! Job layer throughput: the app's job runtime draining 20,000 trivial jobs
//! with 1,000,000 old rows in its job table (before, while and after the
//! pruner deletes them) against the same drain on an empty job table, the
//! two alternated in one run; each drain beside a hand-written queue loop on
//! the same table in the same state.
//!
//! Target (issue #7): throughput stays flat with a large job table, because
//! the pruner works (drain with 1,000,000 rows / drain on an empty table ≈ 1).
//!
//! Method, on two fresh databases (migrated: the app's schema and apalis'),
//! **E** (empty job table) and **L** (loaded: 1,000,000 rows `Done`/`Killed`
//! 8 to 38 days ago, past the 7-day retention, and 100 dead workers, inserted
//! with `generate_series`, then `vacuum analyze`: autovacuum is off on the
//! bench server, production's would have run long before):
//! - **Measured:** `workflows::jobs::runtime::spawn`, what `serve --role worker`
//!   starts (every queue's supervised worker on `PostgresStorage` with
//!   pubsub, `WorkerSettings::default()`, the lag sampler), in this process
//!   with the app's pool size (30). The backlog is pushed first with the
//!   app's insert (`push_tasks`, the canary job's `max_attempts`), the runtime
//!   is not running then; the clock runs from starting the runtime to the
//!   last canary row being `Done` (counted every 25 ms through the partial
//!   index of open rows). The job is the canary with `hold_ms = 0`: one insert
//!   into `job_canary_runs` and one update per job (see `job_drain/runtime.rs`).
//!   Afterwards every row of the drain must be `Done`, run once.
//! - **Baseline, same database, just before each drain:** 20,000 rows pushed
//!   the same way into another queue and drained by a `FOR UPDATE SKIP
//!   LOCKED` loop, claim + acknowledge per job, with as many connections as a
//!   worker runs jobs at once (`job_drain/raw_queue.rs`).
//! - **Order:** E, L (1,000,000 old rows), E, L with the pruner's job
//!   (`PruneJobs`, enqueued as its hourly schedule does) pushed with the
//!   backlog, so the runtime's prune worker deletes the old rows while the
//!   canaries drain, E, L after the prune (not vacuumed: its dead rows are
//!   still there), E. Each L drain is compared with the mean of the E drains
//!   just before and after it, so a machine that slows down or speeds up
//!   during the run (it is shared) moves both sides of the ratio.
//!
//! Schedules are set to a tick in 2099 so that nothing but the bench
//! enqueues work. Each phase opens its own pool and closes it, so at most one
//! database holds connections. Run: `cargo bench --bench job_drain` (about
//! 5 minutes on a quiet machine; `JOB_DRAIN_JOBS`, `JOB_DRAIN_OLD_ROWS`,
//! `JOB_DRAIN_BATCH_SIZE` and `JOB_DRAIN_CONCURRENCY` override the sizes and
//! the worker settings, for diagnosis only: the run says so).

#[path = "support/cpu.rs"]
mod cpu;
#[path = "job_drain/history.rs"]
mod history;
#[path = "job_drain/raw_queue.rs"]
mod raw_queue;
#[path = "job_drain/reads.rs"]
mod reads;
#[path = "job_drain/runtime.rs"]
mod runtime;
mod support;

use sqlx::PgPool;
use support::{BenchDb, ratio};
use workflows::jobs::WorkerSettings;

/// Jobs per drain (`JOB_DRAIN_JOBS` overrides it, for a quick look).
const JOBS: usize = 20_000;
/// Old rows in the job table of database L (`JOB_DRAIN_OLD_ROWS`).
const OLD_ROWS: i64 = 1_000_000;
/// The app's default pool size (`DATABASE_MAX_CONNECTIONS`).
const POOL_SIZE: u32 = 30;

/// One drain and its baseline.
struct Phase {
    label: String,
    jobs: usize,
    drain: runtime::Drain,
    outcome: runtime::Outcome,
    /// The raw loop's jobs/s on the same database just before.
    baseline: f64,
    /// CPU split of: the baseline, the drain.
    cpu: [String; 2],
    /// What the drain read from `apalis.jobs`, per job.
    reads: String,
}

impl Phase {
    fn print(&self) {
        let (d, o) = (&self.drain, &self.outcome);
        println!(
            "  raw SKIP LOCKED loop             {:>7.0} jobs/s  ({})",
            self.baseline, self.cpu[0]
        );
        println!(
            "  app runtime, canary jobs         {:>7.0} jobs/s  ({} in {:.2} s; {} Done, {} runs, {} retried; {})",
            d.rate,
            self.jobs,
            d.elapsed.as_secs_f64(),
            o.done,
            o.runs,
            o.retried,
            self.cpu[1]
        );
        println!("    apalis.jobs reads per job: {}", self.reads);
        println!("  -> runtime/raw loop = {}", ratio(d.rate, self.baseline));
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench_main())
}

/// The bench's knobs: the sizes and the app's worker settings,
/// unless overridden from the environment (diagnostics only).
struct Knobs {
    jobs: usize,
    old_rows: i64,
    settings: WorkerSettings,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: not a number: {v}")),
        Err(_) => Ok(default),
    }
}

async fn bench_main() -> anyhow::Result<()> {
    let app = WorkerSettings::default();
    let knobs = Knobs {
        jobs: env_or("JOB_DRAIN_JOBS", JOBS)?,
        old_rows: env_or("JOB_DRAIN_OLD_ROWS", OLD_ROWS)?,
        settings: WorkerSettings {
            batch_size: env_or("JOB_DRAIN_BATCH_SIZE", app.batch_size)?,
            concurrency: env_or("JOB_DRAIN_CONCURRENCY", app.concurrency)?,
            ..app
        },
    };
    let settings = knobs.settings;
    println!(
        "job_drain: {} cores, PostgreSQL {}, {} jobs per drain, {} old rows, pool {POOL_SIZE}, \
         worker batch_size {} concurrency {} heartbeat {:?}{}",
        std::thread::available_parallelism()?,
        support::postgres_version().await?,
        knobs.jobs,
        knobs.old_rows,
        settings.batch_size,
        settings.concurrency,
        settings.heartbeat,
        if settings.batch_size == app.batch_size && settings.concurrency == app.concurrency {
            " (the app's)"
        } else {
            " (OVERRIDDEN: not the app's settings)"
        }
    );
    run(&knobs).await
}

async fn run(knobs: &Knobs) -> anyhow::Result<()> {
    let (e_db, l_db) = (BenchDb::create().await?, BenchDb::create().await?);
    let result = async {
        let e = Bench::prepare(&e_db, knobs).await?;
        let l = Bench::prepare(&l_db, knobs).await?;
        compare(&e, &l).await
    }
    .await;
    e_db.drop_now().await?;
    l_db.drop_now().await?;
    result
}

async fn compare(e: &Bench<'_>, l: &Bench<'_>) -> anyhow::Result<()> {
    let knobs = e.knobs;
    println!("\n== seeding L with {} old rows ==", knobs.old_rows);
    {
        let pool = l.pool().await?;
        let seeded = history::seed(&pool, knobs.old_rows).await?;
        let vacuumed = history::vacuum_analyze(&pool).await?;
        let (rows, size) = history::table_size(&pool).await?;
        let (old_jobs, old_workers) = history::prunable(&pool).await?;
        println!(
            "  inserted in {:.1} s, vacuum analyze {:.1} s: {rows} rows, {size}; past retention: {old_jobs} jobs, \
             {old_workers} workers",
            seeded.as_secs_f64(),
            vacuumed.as_secs_f64()
        );
        pool.close().await;
    }

    let e1 = e.phase("E1 empty job table", None).await?;
    let l1 = l
        .phase(&format!("L1 {} old rows in apalis.jobs", knobs.old_rows), None)
        .await?;
    let e2 = e.phase("E2 empty job table", None).await?;

    let prune_id = {
        let pool = l.pool().await?;
        let id = history::enqueue_prune(&pool).await?;
        pool.close().await;
        id
    };
    let l2 = l
        .phase(
            "L2 same, the pruner's job running during the drain",
            Some(&prune_id),
        )
        .await?;
    {
        let pool = l.pool().await?;
        let (status, secs) = history::prune_outcome(&pool, &prune_id).await?;
        let (rows, size) = history::table_size(&pool).await?;
        let (left_jobs, left_workers) = history::prunable(&pool).await?;
        println!(
            "  prune job {status} in {:.1} s: past retention left {left_jobs} jobs, {left_workers} workers; \
             table now {rows} rows, {size} (not vacuumed)",
            secs.unwrap_or(f64::NAN)
        );
        pool.close().await;
        anyhow::ensure!(
            status == "Done" && left_jobs == 0,
            "the pruner did not finish its work"
        );
    }
    let e3 = e.phase("E3 empty job table", None).await?;
    let l3 = l
        .phase("L3 after the prune (dead rows not vacuumed)", None)
        .await?;
    let e4 = e.phase("E4 empty job table", None).await?;

    println!("\n== summary: each L drain against the mean of the E drains around it ==");
    for (loaded, before, after) in [(&l1, &e1, &e2), (&l2, &e2, &e3), (&l3, &e3, &e4)] {
        let empty_rate = (before.drain.rate + after.drain.rate) / 2.0;
        let empty_raw = (before.baseline + after.baseline) / 2.0;
        println!(
            "  {:<52} {:>6.0} jobs/s vs empty {:>6.0} = {}   raw loop {:>6.0} vs {:>6.0} = {}",
            loaded.label,
            loaded.drain.rate,
            empty_rate,
            ratio(loaded.drain.rate, empty_rate),
            loaded.baseline,
            empty_raw,
            ratio(loaded.baseline, empty_raw)
        );
    }
    let empty_rate = (e1.drain.rate + e2.drain.rate) / 2.0;
    println!(
        "  -> drain with {} old rows / drain on an empty table = {}   [target: flat, ~1.00]",
        knobs.old_rows,
        ratio(l1.drain.rate, empty_rate)
    );
    let all: Vec<&Phase> = vec![&e1, &l1, &e2, &l2, &e3, &l3, &e4];
    let runtime: f64 = all.iter().map(|p| p.drain.rate).sum();
    let raw: f64 = all.iter().map(|p| p.baseline).sum();
    println!(
        "  -> app runtime / raw SKIP LOCKED loop, all 7 drains = {}",
        ratio(runtime, raw)
    );
    Ok(())
}

/// One database of the comparison.
struct Bench<'a> {
    db: &'a BenchDb,
    knobs: &'a Knobs,
}

impl<'a> Bench<'a> {
    /// Migrates the database.
    async fn prepare(db: &'a BenchDb, knobs: &'a Knobs) -> anyhow::Result<Self> {
        let bench = Self { db, knobs };
        let pool = bench.pool().await?;
        workflows::db::migrate_all(&pool).await?;
        pool.close().await;
        Ok(bench)
    }

    /// A pool like the app's.
    async fn pool(&self) -> anyhow::Result<PgPool> {
        Ok(workflows::db::connect(&self.db.url, POOL_SIZE).await?)
    }

    /// Baseline, then drain; `prune` names a pruner job already enqueued.
    async fn phase(&self, label: &str, prune: Option<&str>) -> anyhow::Result<Phase> {
        println!("\n== {label} ==");
        let pool = self.pool().await?;
        let result = self.measure(&pool, label, prune).await;
        pool.close().await;
        let phase = result?;
        phase.print();
        Ok(phase)
    }

    async fn measure(&self, pool: &PgPool, label: &str, prune: Option<&str>) -> anyhow::Result<Phase> {
        let (jobs, settings) = (self.knobs.jobs, self.knobs.settings);
        let (baseline, cpu_baseline) = self.raw_loop(pool).await?;

        let token = format!("bench-drain-{}", label.split(' ').next().unwrap_or(label));
        runtime::push_canaries(pool, jobs, &token).await?;
        if prune.is_some() {
            println!("  (pruner job enqueued with the backlog)");
        }
        reads::settle().await;
        let reads_start = reads::sample(pool).await?;
        let start = cpu::sample(pool, &self.db.name).await;
        let drain = runtime::drain(pool, settings, jobs).await?;
        let cpu_drain = cpu::sample(pool, &self.db.name).await.since(&start);
        reads::settle().await;
        let reads = reads::sample(pool).await?.per_job_since(&reads_start, jobs);
        let outcome = runtime::outcome(pool, &token).await?;
        anyhow::ensure!(
            outcome.done == jobs as i64 && outcome.runs == jobs as i64,
            "drain incomplete: {} Done, {} runs of {jobs}",
            outcome.done,
            outcome.runs
        );
        Ok(Phase {
            label: label.to_owned(),
            jobs,
            drain,
            outcome,
            baseline,
            cpu: [cpu_baseline, cpu_drain],
            reads,
        })
    }

    /// The baseline: rows pushed (untimed), then drained by the raw loop;
    /// jobs per second and the CPU split of the drain.
    async fn raw_loop(&self, pool: &PgPool) -> anyhow::Result<(f64, String)> {
        let jobs = self.knobs.jobs;
        raw_queue::push(pool, jobs).await?;
        let start = cpu::sample(pool, &self.db.name).await;
        let (done, elapsed) = raw_queue::drain(pool, self.knobs.settings.concurrency).await?;
        let cpu = cpu::sample(pool, &self.db.name).await.since(&start);
        anyhow::ensure!(
            done == jobs as u64,
            "raw queue loop drained {done} of {jobs} rows"
        );
        Ok((done as f64 / elapsed.as_secs_f64(), cpu))
    }
}

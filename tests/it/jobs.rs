//! The job layer: transactional enqueue, crash recovery, pruning, repair actions, schedules.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use sqlx::PgPool;
use workflows::jobs::{
    JobSpec,
    canary::Canary,
    enqueue,
    prune::{self, PruneJobs, PruneReport},
    schedule::claim_tick,
};

use crate::support::{
    TestApp, TestDb,
    app::{ADMIN_TOKEN, test_vars},
    process::spawn_worker,
    wait_until,
};

async fn finished_runs(pool: &PgPool, token: &str) -> i64 {
    sqlx::query_scalar("select count(*) from job_canary_runs where token = $1 and finished_at is not null")
        .bind(token)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_job_pushed_in_a_rolled_back_transaction_never_runs_and_a_committed_one_does() {
    let app = TestApp::spawn().await;

    let mut tx = app.pool.begin().await.unwrap();
    enqueue(
        &mut tx,
        &Canary {
            token: "rolled-back".into(),
            hold_ms: 0,
        },
        None,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();

    let mut tx = app.pool.begin().await.unwrap();
    enqueue(
        &mut tx,
        &Canary {
            token: "committed".into(),
            hold_ms: 0,
        },
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Drained: every canary row is Done (the rolled-back one, had it leaked, would be a second row).
    let rows: Vec<String> = wait_until("the queue to drain", Duration::from_secs(20), || async {
        let rows: Vec<String> = sqlx::query_scalar("select status from apalis.jobs where job_type = $1")
            .bind(Canary::QUEUE)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        rows.iter().all(|s| s == "Done").then_some(rows)
    })
    .await;
    assert_eq!(rows, vec!["Done".to_owned()], "only the committed job exists");
    assert_eq!(finished_runs(&app.pool, "committed").await, 1);
    assert_eq!(finished_runs(&app.pool, "rolled-back").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn every_job_row_carries_its_max_attempts_and_delays_round_up_to_whole_seconds() {
    let (db, pool) = TestDb::migrated().await;
    let mut conn = pool.acquire().await.unwrap();
    let before = Utc::now();
    enqueue(
        &mut conn,
        &Canary {
            token: "later".into(),
            hold_ms: 0,
        },
        Some(Duration::from_millis(2_100)),
    )
    .await
    .unwrap();
    let (max_attempts, run_at): (i32, chrono::DateTime<Utc>) =
        sqlx::query_as("select max_attempts, run_at from apalis.jobs where job_type = $1")
            .bind(Canary::QUEUE)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(max_attempts, Canary::MAX_ATTEMPTS as i32);
    let delay = (run_at - before).num_milliseconds();
    assert!(
        (2_000..=4_000).contains(&delay),
        "run_at {delay} ms after push, expected 3 whole seconds"
    );
    drop(conn);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_job_whose_worker_process_is_sigkilled_runs_again_on_another_process_within_30s() {
    let (db, pool) = TestDb::migrated().await;
    let vars = test_vars(&db);
    let mut first = spawn_worker(&vars, &[]);

    // A long job, so it is certainly mid-run when the process dies.
    let mut conn = pool.acquire().await.unwrap();
    enqueue(
        &mut conn,
        &Canary {
            token: "crash".into(),
            hold_ms: 120_000,
        },
        None,
    )
    .await
    .unwrap();
    drop(conn);
    let first_worker: String = wait_until(
        "the first process to start the job",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar("select worker from job_canary_runs where token = 'crash'")
                .fetch_optional(&pool)
                .await
                .unwrap()
        },
    )
    .await;

    first.0.kill().unwrap(); // SIGKILL: no cleanup, no hand-back.
    first.0.wait().unwrap();
    let killed_at = Instant::now();
    // apalis marks a fetched job Queued (locked) and may not have flipped it to Running yet.
    let (status, locked): (String, bool) =
        sqlx::query_as("select status, lock_by is not null from apalis.jobs where job_type = $1")
            .bind(Canary::QUEUE)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        ["Queued", "Running"].contains(&status.as_str()) && locked,
        "the dead worker left its job locked: {status}"
    );

    let _second = spawn_worker(&vars, &[]);
    let second_worker: String = wait_until(
        "another process to run the job again",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar("select worker from job_canary_runs where token = 'crash' and worker <> $1")
                .bind(&first_worker)
                .fetch_optional(&pool)
                .await
                .unwrap()
        },
    )
    .await;
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(30), "rescued after {took:?}");
    assert_ne!(second_worker, first_worker);
    let attempts: Vec<i32> =
        sqlx::query_scalar("select attempt from job_canary_runs where token = 'crash' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 2, "ran once per process, not more: {attempts:?}");
    pool.close().await;
    db.drop_now().await;
}

async fn seed_job(pool: &PgPool, status: &str, done_days_ago: Option<i32>) -> String {
    let mut conn = pool.acquire().await.unwrap();
    enqueue(
        &mut conn,
        &Canary {
            token: format!("seed-{status}"),
            hold_ms: 0,
        },
        Some(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    sqlx::query_scalar(
        "update apalis.jobs set status = $1, done_at = now() - make_interval(days => $2)
         where id = (select id from apalis.jobs where status = 'Pending' order by id desc limit 1)
         returning id",
    )
    .bind(status)
    .bind(done_days_ago)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_pruner_deletes_old_finished_jobs_and_dead_workers_and_nothing_else() {
    let (db, pool) = TestDb::migrated().await;
    let old_done = seed_job(&pool, "Done", Some(10)).await;
    let old_killed = seed_job(&pool, "Killed", Some(10)).await;
    let recent_done = seed_job(&pool, "Done", Some(1)).await;
    let old_failed = seed_job(&pool, "Failed", Some(10)).await;
    let pending = seed_job(&pool, "Pending", None).await;
    // Workers: dead and idle (deleted), dead but still holding a job (kept), alive (kept).
    sqlx::query(
        "insert into apalis.workers (id, worker_type, storage_name, layers, last_seen) values
         ('dead-idle', 'q', 'PostgresStorage', '', now() - interval '10 days'),
         ('dead-holding', 'q', 'PostgresStorage', '', now() - interval '10 days'),
         ('alive', 'q', 'PostgresStorage', '', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("update apalis.jobs set lock_by = 'dead-holding' where id = $1")
        .bind(&old_failed)
        .execute(&pool)
        .await
        .unwrap();

    let report = prune::run_once(&pool, Duration::from_secs(7 * 86400))
        .await
        .unwrap();
    assert_eq!(report, PruneReport { jobs: 2, workers: 1 });

    let left: Vec<String> = sqlx::query_scalar("select id from apalis.jobs order by id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut expected = vec![recent_done, old_failed, pending];
    expected.sort();
    assert_eq!(left, expected);
    assert!(!left.contains(&old_done) && !left.contains(&old_killed));
    let workers: Vec<String> = sqlx::query_scalar("select id from apalis.workers order by id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(workers, vec!["alive".to_owned(), "dead-holding".to_owned()]);

    // A second run finds nothing more.
    assert_eq!(
        prune::run_once(&pool, Duration::from_secs(7 * 86400))
            .await
            .unwrap(),
        PruneReport::default()
    );
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_cron_tick_is_claimed_once_however_many_processes_try() {
    let (db, pool) = TestDb::migrated().await;
    let tick = Utc.with_ymd_and_hms(2026, 11, 28, 17, 17, 0).unwrap();
    let claims = futures_join(&pool, tick).await;
    assert_eq!(claims.iter().filter(|won| **won).count(), 1, "{claims:?}");
    let jobs: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where job_type = $1")
        .bind(PruneJobs::QUEUE)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 1);
    pool.close().await;
    db.drop_now().await;
}

async fn futures_join(pool: &PgPool, tick: chrono::DateTime<Utc>) -> Vec<bool> {
    let mut set = tokio::task::JoinSet::new();
    for n in 0..5 {
        let pool = pool.clone();
        set.spawn(async move {
            claim_tick(&pool, "prune-jobs", tick, &format!("process-{n}"), &PruneJobs {})
                .await
                .unwrap()
        });
    }
    set.join_all().await
}

#[tokio::test]
async fn operators_can_retry_a_failed_job_and_kill_a_pending_one() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let failed = seed_job(&app.pool, "Failed", Some(0)).await;
    sqlx::query("update apalis.jobs set attempts = 3 where id = $1")
        .bind(&failed)
        .execute(&app.pool)
        .await
        .unwrap();
    let pending = seed_job(&app.pool, "Pending", None).await;
    let done = seed_job(&app.pool, "Done", Some(0)).await;
    let post = |path: String| {
        app.http
            .post(format!("{}{path}", app.admin_url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({}))
            .send()
    };

    assert_eq!(
        post(format!("/api/admin/jobs/{failed}/retry"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, attempts): (String, i32) =
        sqlx::query_as("select status, attempts from apalis.jobs where id = $1")
            .bind(&failed)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("Pending", 0));

    assert_eq!(
        post(format!("/api/admin/jobs/{pending}/kill"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let status: String = sqlx::query_scalar("select status from apalis.jobs where id = $1")
        .bind(&pending)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "Killed");

    let conflict = post(format!("/api/admin/jobs/{done}/kill")).await.unwrap();
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert_eq!(
        conflict.json::<serde_json::Value>().await.unwrap()["error"],
        "job_wrong_status"
    );
    assert_eq!(
        post("/api/admin/jobs/01NOSUCH/retry".into())
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn sigterm_lets_a_running_job_finish_before_the_process_exits() {
    let (db, pool) = TestDb::migrated().await;
    let vars = test_vars(&db);
    let mut worker = spawn_worker(&vars, &[]);
    let mut conn = pool.acquire().await.unwrap();
    enqueue(
        &mut conn,
        &Canary {
            token: "graceful".into(),
            hold_ms: 1_500,
        },
        None,
    )
    .await
    .unwrap();
    drop(conn);
    wait_until("the job to start", Duration::from_secs(30), || async {
        let started: i64 =
            sqlx::query_scalar("select count(*) from job_canary_runs where token = 'graceful'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (started == 1).then_some(())
    })
    .await;

    let pid = worker.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::task::spawn_blocking(move || worker.0.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "serve exits cleanly on SIGTERM: {exit:?}");
    // The job ran to completion in the stopping process, and was acknowledged.
    assert_eq!(finished_runs(&pool, "graceful").await, 1);
    let status: String = sqlx::query_scalar("select status from apalis.jobs where job_type = $1")
        .bind(Canary::QUEUE)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "Done");
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn ticks_missed_while_everything_was_down_run_once_not_once_per_missed_tick() {
    use std::str::FromStr;
    use tokio_util::sync::CancellationToken;
    use workflows::jobs::schedule::{Scheduled, run};

    let (db, pool) = TestDb::migrated().await;
    // The schedule last ran two days ago: ~48 hourly ticks were missed.
    sqlx::query("insert into cron_runs (schedule, tick, claimed_by) values ('prune-jobs', now() - interval '2 days', 'old')")
        .execute(&pool)
        .await
        .unwrap();
    // Hourly: no new tick will fall inside this test.
    let hourly = || workflows::jobs::cron_schedule::CronSchedule::from_str("0 0 * * * *").unwrap();
    for process in ["a", "b"] {
        // Two processes start one after the other; each runs its catch-up claim.
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            pool.clone(),
            Scheduled {
                name: "prune-jobs",
                schedule: hourly(),
                make_job: |_| PruneJobs {},
            },
            process.to_owned(),
            stop.clone(),
        ));
        wait_until("the catch-up claim", Duration::from_secs(10), || async {
            let n: i64 = sqlx::query_scalar("select count(*) from cron_runs where schedule = 'prune-jobs'")
                .fetch_one(&pool)
                .await
                .unwrap();
            (n == 2).then_some(())
        })
        .await;
        stop.cancel();
        task.await.unwrap();
    }
    let jobs: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where job_type = $1")
        .bind(PruneJobs::QUEUE)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        jobs, 1,
        "one catch-up run, whatever the number of missed ticks and processes"
    );
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn workers_that_die_in_a_database_outage_are_replaced_and_run_new_jobs() {
    let app = TestApp::spawn().await;
    // A 3-second database outage: new connections are refused and every open
    // one is cut, so the workers' polls fail and apalis ends each worker.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&format!(
        "{}/postgres",
        crate::support::db::server_url()
    ))
    .await
    .unwrap();
    let db = &app.db.name;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{db}\" allow_connections false"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let cut: i64 = sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
                               where datname = $1 and pid <> pg_backend_pid()) t",
    )
    .bind(db)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(cut > 0, "the workers had connections to cut");
    // The outage itself: long enough for every worker's next polls (1 s heartbeat) to fail.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{db}\" allow_connections true"
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    // A job enqueued afterwards is still run: the supervisor replaced the workers.
    let mut conn = app.pool.acquire().await.unwrap();
    enqueue(
        &mut conn,
        &Canary {
            token: "after-outage".into(),
            hold_ms: 0,
        },
        None,
    )
    .await
    .unwrap();
    drop(conn);
    wait_until(
        "a worker to run a job after the outage",
        Duration::from_secs(60),
        || async { (finished_runs(&app.pool, "after-outage").await == 1).then_some(()) },
    )
    .await;
    app.stop().await;
}

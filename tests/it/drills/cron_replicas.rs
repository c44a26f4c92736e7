//! Drill 4, cron with replicas: three `serve` processes share a two-second
//! safety-net and cleanup schedule for 10 ticks (one replica is SIGKILLed and
//! replaced halfway). Verdict, for each schedule: exactly 10 runs in the
//! window, one per tick, none missed and none doubled, read from the durable
//! record (`cron_runs`), and every claimed tick's job actually ran (`apalis.jobs`).

use std::{collections::BTreeMap, str::FromStr, time::Duration, time::Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use workflows::{
    jobs::{JobSpec, cleanup::CleanupRun},
    safety_net::SafetyNet,
};

use super::fleet::Fleet;
use crate::support::{TestDb, app::test_vars, wait_until};

const EVERY_TWO_SECONDS: &str = "*/2 * * * * *";
const TICKS: usize = 10;
const REPLICAS: usize = 3;
/// (name in `cron_runs`, queue of the job it enqueues).
const SCHEDULES: [(&str, &str); 2] = [("safety-net", SafetyNet::QUEUE), ("cleanup", CleanupRun::QUEUE)];

/// Waits until every schedule has claimed a tick at or after `tick`.
async fn wait_claimed(pool: &PgPool, tick: DateTime<Utc>) {
    wait_until(
        &format!("both schedules to claim the tick of {tick}"),
        Duration::from_secs(30),
        || async {
            let claimed: i64 = sqlx::query_scalar(
                "select count(distinct schedule) from cron_runs
                 where schedule in ('safety-net', 'cleanup') and tick >= $1",
            )
            .bind(tick)
            .fetch_one(pool)
            .await
            .unwrap();
            (claimed == 2).then_some(())
        },
    )
    .await;
}

/// Claimed ticks of `schedule`, oldest first, with the process that claimed each.
async fn claims(pool: &PgPool, schedule: &str) -> Vec<(DateTime<Utc>, String)> {
    sqlx::query_as("select tick, claimed_by from cron_runs where schedule = $1 order by tick")
        .bind(schedule)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// (jobs, of which Done) of `queue`.
async fn jobs(pool: &PgPool, queue: &str) -> (i64, i64) {
    sqlx::query_as(
        "select count(*), count(*) filter (where status = 'Done') from apalis.jobs where job_type = $1",
    )
    .bind(queue)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The process id in a worker or scheduler name (`{queue}-{host}-{pid}-{ulid}`).
fn pid_of(name: &str) -> String {
    name.rsplit('-').nth(1).unwrap_or("?").to_owned()
}

#[tokio::test]
#[ignore = "a drill: .ci/run runs the drills alone, one at a time (cargo test --test it drills -- --ignored --test-threads=1)"]
async fn three_replicas_run_each_of_ten_cron_ticks_exactly_once() {
    let started = Instant::now();
    let (db, pool) = TestDb::migrated().await;
    let extra = [
        ("SAFETY_NET_CRON", EVERY_TWO_SECONDS),
        ("CLEANUP_CRON", EVERY_TWO_SECONDS),
        ("DATABASE_MAX_CONNECTIONS", "15"),
    ];
    let mut fleet = Fleet::start(&pool, &test_vars(&db), "all", &extra, REPLICAS).await;
    let schedule = workflows::jobs::cron_schedule::CronSchedule::from_str(EVERY_TWO_SECONDS).unwrap();
    // The window: the next 10 ticks, all replicas being up.
    let window: Vec<DateTime<Utc>> = schedule.ticks_after(Utc::now()).take(TICKS).collect();
    let after_window = schedule.next_after(window[TICKS - 1]).unwrap();

    // Halfway, one replica dies and is replaced: its catch-up claim at start
    // must not run a tick that already ran.
    wait_claimed(&pool, window[TICKS / 2 - 1]).await;
    fleet.sigkill(0);
    fleet.restart(0).await;

    // Once the tick after the window is claimed, every timer is past the window.
    wait_claimed(&pool, after_window).await;
    // The effect: every job claimed up to then has run.
    for (name, queue) in SCHEDULES {
        wait_until(
            &format!("the {name} jobs to run"),
            Duration::from_secs(30),
            || async {
                let claimed = claims(&pool, name)
                    .await
                    .iter()
                    .filter(|(tick, _)| *tick <= after_window)
                    .count() as i64;
                (jobs(&pool, queue).await.1 >= claimed).then_some(())
            },
        )
        .await;
    }
    fleet.stop_gracefully().await;

    // Verdict, from the durable record once every process has stopped.
    let mut summary = Vec::new();
    for (name, queue) in SCHEDULES {
        let claimed = claims(&pool, name).await;
        let ticks: Vec<DateTime<Utc>> = claimed.iter().map(|(tick, _)| *tick).collect();
        let in_window: Vec<DateTime<Utc>> = ticks
            .iter()
            .copied()
            .filter(|tick| (window[0]..=window[TICKS - 1]).contains(tick))
            .collect();
        assert_eq!(
            in_window, window,
            "{name}: exactly one run per tick of the window"
        );
        // None missed over the whole run either (the catch-up tick, the kill and the restart included).
        for pair in ticks.windows(2) {
            assert_eq!(
                schedule.next_after(pair[0]),
                Some(pair[1]),
                "{name}: a tick was missed between {} and {}",
                pair[0],
                pair[1]
            );
        }
        // None doubled: one job per claim, no job without a claim.
        let (enqueued, done) = jobs(&pool, queue).await;
        assert_eq!(enqueued, ticks.len() as i64, "{name}: one job per claimed tick");
        let claimed_through_window = ticks.iter().filter(|tick| **tick <= after_window).count() as i64;
        assert!(
            done >= claimed_through_window,
            "{name}: {done} of {claimed_through_window} jobs ran"
        );
        let mut by_process: BTreeMap<String, usize> = BTreeMap::new();
        for (_, claimed_by) in &claimed {
            *by_process.entry(pid_of(claimed_by)).or_default() += 1;
        }
        let before = ticks.iter().filter(|tick| **tick < window[0]).count();
        summary.push(format!(
            "{name}: {} runs in the 10-tick window, {} ticks claimed in all ({before} before the window, {} \
             after; contiguous), {enqueued} jobs ({done} done), claims by pid {by_process:?}",
            in_window.len(),
            ticks.len(),
            ticks.len() - before - in_window.len(),
        ));
    }
    eprintln!(
        "drill 4 PASS ({REPLICAS} replicas, cron {EVERY_TWO_SECONDS}, one SIGKILL + restart at tick {}): {}; \
         wall {:.1}s",
        TICKS / 2,
        summary.join("; "),
        started.elapsed().as_secs_f64()
    );
    pool.close().await;
    db.drop_now().await;
}

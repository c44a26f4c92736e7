//! Starting the workers and schedules of one process.

use std::str::FromStr;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use tokio::task::JoinSet;

use crate::safety_net::SafetyNet;
use tokio_util::sync::CancellationToken;

use super::{
    JobContext, JobSpec, WorkerSettings, canary, cleanup, prune,
    schedule::{self, Scheduled},
    settings::unique_worker_name,
    sync_item,
};

/// The schedules this process runs, as cron expressions.
#[derive(Debug, Clone)]
pub struct Schedules {
    /// When the pruner runs.
    pub prune: crate::jobs::cron_schedule::CronSchedule,
    /// When the safety net runs (`SAFETY_NET_CRON`).
    pub safety_net: crate::jobs::cron_schedule::CronSchedule,
    /// When dormant-item cleanup runs (`CLEANUP_CRON`).
    pub cleanup: crate::jobs::cron_schedule::CronSchedule,
}

impl Default for Schedules {
    fn default() -> Self {
        Self {
            // Hourly at minute 17: off the hour, away from other schedules.
            prune: crate::jobs::cron_schedule::CronSchedule::from_str("0 17 * * * *").expect("valid cron"),
            safety_net: crate::jobs::cron_schedule::CronSchedule::from_str("0 */30 * * * *")
                .expect("valid cron"),
            cleanup: crate::jobs::cron_schedule::CronSchedule::from_str("0 0 3 * * *").expect("valid cron"),
        }
    }
}

/// First delay before a stopped worker is replaced.
const RESTART_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest delay before a stopped worker is replaced.
const RESTART_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Every queue this service runs, for registration and monitoring.
pub const QUEUES: &[&str] = &[
    canary::Canary::QUEUE,
    prune::PruneJobs::QUEUE,
    sync_item::SyncItem::QUEUE,
    super::legacy_backfill::LegacyBackfill::QUEUE,
    SafetyNet::QUEUE,
    cleanup::RemoveItem::QUEUE,
    cleanup::CleanupDue::QUEUE,
    cleanup::CleanupRun::QUEUE,
];

/// Spawns one worker per queue (each with a unique name) and one task per
/// schedule into `set`; all stop when `shutdown` is cancelled. A stopping
/// worker finishes its running jobs and hands prefetched ones back.
pub fn spawn(
    set: &mut JoinSet<()>,
    ctx: &JobContext,
    settings: WorkerSettings,
    schedules: Schedules,
    shutdown: &CancellationToken,
) {
    // A macro, not a generic fn: apalis' builder bounds are long and would have
    // to be spelled out in full for a generic helper.
    //
    // Each worker is supervised: apalis ends a worker for good when polling
    // fails (the database went away, the pool timed out), so on any stop that
    // is not our shutdown a new worker, under a new unique name, takes over
    // after a backoff (1 s doubling to 30 s).
    macro_rules! spawn_worker {
        ($job:ty, $handler:path) => {{
            let ctx = ctx.clone();
            let stop = shutdown.clone();
            set.spawn(async move {
                let mut backoff = RESTART_BACKOFF_MIN;
                loop {
                    let name = unique_worker_name(<$job>::QUEUE);
                    let storage = PostgresStorage::<$job>::new(&ctx.pool)
                        .with_config(settings.config(<$job>::QUEUE))
                        .with_pubsub();
                    let worker = WorkerBuilder::new(name.as_str())
                        .backend(storage)
                        .concurrency(settings.concurrency)
                        .data(ctx.clone())
                        .build($handler);
                    let signal_stop = stop.clone();
                    let signal = async move {
                        signal_stop.cancelled().await;
                        Ok::<(), std::io::Error>(())
                    };
                    let result = worker.run_until(signal).await;
                    if stop.is_cancelled() {
                        return;
                    }
                    match result {
                        Err(e) => tracing::error!(worker = %name, error = %e, ?backoff, "worker stopped; restarting"),
                        Ok(()) => tracing::warn!(worker = %name, ?backoff, "worker stopped unexpectedly; restarting"),
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
                }
            });
        }};
    }

    spawn_worker!(canary::Canary, canary::handle);
    spawn_worker!(sync_item::SyncItem, sync_item::handle);
    spawn_worker!(prune::PruneJobs, prune::handle);
    spawn_worker!(SafetyNet, crate::safety_net::handle);
    spawn_worker!(cleanup::RemoveItem, cleanup::handle_remove);
    spawn_worker!(cleanup::CleanupDue, cleanup::handle_due);
    spawn_worker!(cleanup::CleanupRun, cleanup::handle_run);
    spawn_worker!(
        super::legacy_backfill::LegacyBackfill,
        super::legacy_backfill::handle
    );

    set.spawn(crate::monitoring::sampler::run(
        ctx.pool.clone(),
        shutdown.clone(),
    ));

    let by = unique_worker_name("scheduler");
    set.spawn(schedule::run(
        ctx.pool.clone(),
        Scheduled {
            name: "prune-jobs",
            schedule: schedules.prune,
            make_job: |_| prune::PruneJobs {},
        },
        by.clone(),
        shutdown.clone(),
    ));
    set.spawn(schedule::run(
        ctx.pool.clone(),
        Scheduled {
            name: "cleanup",
            schedule: schedules.cleanup,
            make_job: |_| cleanup::CleanupRun {},
        },
        by.clone(),
        shutdown.clone(),
    ));
    set.spawn(schedule::run(
        ctx.pool.clone(),
        Scheduled {
            name: "safety-net",
            schedule: schedules.safety_net,
            make_job: |_| SafetyNet {},
        },
        by,
        shutdown.clone(),
    ));
}

//! A worker process SIGKILLed mid-sync; another process finishes the job.

use std::time::Duration;

use plaid_simulator::Latency;

use crate::support::{
    TestApp,
    oracle::assert_matches_truth,
    plaid::{item_status, linked_item_with_history},
    process::{KillOnDrop, spawn_worker},
    wait_until,
};

fn worker(app: &TestApp) -> KillOnDrop {
    spawn_worker(&app.vars, &[])
}

#[tokio::test]
async fn a_worker_sigkilled_mid_sync_leaves_nothing_half_done_and_another_worker_finishes() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    // Its first sync job waits: no worker yet.
    let (item_id, id) = linked_item_with_history(&app, &token, 4_000, 21).await;
    // Slow pages, so the kill lands mid-pagination.
    app.sim.set_latency(Some(Latency {
        millis: 600,
        endpoint: Some("/transactions/sync".into()),
    }));

    let mut first = worker(&app);
    wait_until(
        "the first worker to be mid-sync (2 pages in)",
        Duration::from_secs(60),
        || async {
            let pages = app
                .sim
                .calls()
                .iter()
                .filter(|c| c.endpoint == "/transactions/sync" && c.status == 200)
                .count();
            (pages >= 2 && item_status(&app, id).await.0 == "syncing").then_some(())
        },
    )
    .await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from transactions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(applied, 0, "nothing is visible before the last page");
    // The pages fetched were applied on the run's transaction, which died with
    // the process: PostgreSQL counts the rolled-back inserts (statistics reach
    // pg_stat a moment after the backend ends).
    wait_until(
        "the killed run's inserts to be counted",
        Duration::from_secs(30),
        || async {
            let inserted: i64 = sqlx::query_scalar(
                "select n_tup_ins from pg_stat_user_tables where relname = 'transactions'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            (inserted > 0).then_some(())
        },
    )
    .await;

    app.sim.set_latency(None);
    let _second = worker(&app);
    wait_until(
        "another worker to finish the sync",
        Duration::from_secs(90),
        || async { (item_status(&app, id).await.0 == "active").then_some(()) },
    )
    .await;
    // The dead worker's job row is handed back by apalis' orphan rescue (and then
    // finds nothing to do); wait for that rather than race it.
    wait_until("the orphaned job to be rescued and finished", Duration::from_secs(60), || async {
        let running: i64 = sqlx::query_scalar(
            "select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item' and status in ('Running', 'Queued')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (running == 0).then_some(())
    })
    .await;
    assert_matches_truth(&app, &item_id).await;
    let (stuck_items, stuck_jobs): (i64, i64) = sqlx::query_as(
        "select (select count(*) from plaid_items where sync_status = 'syncing'),
                (select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item' and status = 'Running')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((stuck_items, stuck_jobs), (0, 0));
    app.stop().await;
}

//! The safety net, its cron schedule across processes, and the disabled manual-sync endpoints.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use workflows::jobs::sync_item;

use crate::support::{
    TestApp, TestDb,
    app::{JOBS_SECRET, test_vars},
    oracle::assert_matches_truth,
    plaid::{drain_syncs, linked_item_with_history, pending_sync_jobs, seed_item, sync_now},
    process::{KillOnDrop, spawn_worker},
    wait_until,
};

async fn safety_net(app: &TestApp) -> u64 {
    let response = app
        .http
        .post(format!("{}/api/jobs/plaid/safety-net", app.public_url))
        .bearer_auth(JOBS_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json::<Value>().await.unwrap()["enqueued"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn the_safety_net_syncs_an_item_whose_webhook_was_never_delivered() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 200, 31).await;
    sync_now(&app, id).await;
    // Let every sync the linking queued finish (one may have been deferred
    // behind the lease, and is not due yet): the safety net must find the
    // item with no job of its own.
    wait_until("the item to settle", Duration::from_secs(60), || async {
        let status: String = sqlx::query_scalar("select sync_status from plaid_items where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (status == "active" && pending_sync_jobs(&app, id).await == 0).then_some(())
    })
    .await;
    // The webhook is lost: Plaid cannot reach us any more.
    app.sim.set_webhook_url(&item_id, None).unwrap();
    app.sim
        .generate_history(&item_id, plaid_simulator::HistorySpec::new(25, 32))
        .unwrap();
    sqlx::query("update plaid_items set last_synced_at = now() - interval '25 hours' where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(safety_net(&app).await, 1);
    drain_syncs(&app).await;
    assert_matches_truth(&app, &item_id).await;
    assert_eq!(safety_net(&app).await, 0, "freshly synced: nothing to do");
    app.stop().await;
}

#[tokio::test]
async fn the_safety_net_picks_stuck_and_due_items_and_leaves_the_rest() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let mut items = Vec::new();
    for _ in 0..7 {
        items.push(seed_item(&app, user.id).await.1);
    }
    let set = |id: i64, sql: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
        }
    };
    // Picked: stale active, lost sync_needed, expired syncing, due failed.
    set(
        items[0],
        "update plaid_items set last_synced_at = now() - interval '2 days' where id = $1",
    )
    .await;
    set(items[1], "update plaid_items set sync_status = 'sync_needed', sync_requested_at = now() - interval '10 minutes' where id = $1").await;
    set(items[2], "update plaid_items set sync_status = 'syncing', sync_lease_until = now() - interval '1 minute' where id = $1").await;
    set(items[3], "update plaid_items set sync_status = 'failed', next_retry_at = now() - interval '1 minute' where id = $1").await;
    // Left alone: fresh active, needs_reauth, failed with a future retry.
    set(
        items[4],
        "update plaid_items set last_synced_at = now() where id = $1",
    )
    .await;
    set(items[5], "update plaid_items set sync_status = 'needs_reauth', last_synced_at = now() - interval '9 days' where id = $1").await;
    set(items[6], "update plaid_items set sync_status = 'failed', next_retry_at = now() + interval '1 hour' where id = $1").await;

    assert_eq!(safety_net(&app).await, 4);
    for (n, id) in items.iter().enumerate() {
        assert_eq!(pending_sync_jobs(&app, *id).await, i64::from(n < 4), "item {n}");
    }
    assert_eq!(safety_net(&app).await, 0, "pending jobs are not queued twice");
    app.stop().await;
}

#[tokio::test]
async fn a_guard_whose_job_spent_its_attempts_is_released_and_the_item_queued_again() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (_, spent) = seed_item(&app, user.id).await;
    let (_, live) = seed_item(&app, user.id).await;
    let mut conn = app.pool.acquire().await.unwrap();
    for id in [spent, live] {
        let request = sync_item::request_sync(&mut conn, sync_item::ItemRef::Id(id))
            .await
            .unwrap();
        assert_eq!(request, sync_item::SyncRequest::Enqueued { plaid_item_id: id });
    }
    drop(conn);
    // The first job's workers died with it until its attempts ran out: apalis
    // will never fetch it again, but its guard is still there.
    sqlx::query(
        "update apalis.jobs j set attempts = j.max_attempts
         from sync_pending p where p.plaid_item_id = $1 and j.id = p.task_id",
    )
    .bind(spent)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "update plaid_items set sync_requested_at = now() - interval '10 minutes' where id = any($1)",
    )
    .bind(vec![spent, live])
    .execute(&app.pool)
    .await
    .unwrap();

    assert_eq!(safety_net(&app).await, 1, "only the blocked item is queued again");
    let runnable = |id: i64| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from sync_pending p join apalis.jobs j on j.id = p.task_id
                 where p.plaid_item_id = $1 and j.status = 'Pending' and j.attempts < j.max_attempts",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(runnable(spent).await, 1);
    assert_eq!(runnable(live).await, 1, "a live guard is kept");
    assert_eq!(pending_sync_jobs(&app, live).await, 1, "and not queued twice");
    app.stop().await;
}

#[tokio::test]
async fn three_worker_processes_fire_each_cron_tick_exactly_once() {
    let (db, pool) = TestDb::migrated().await;
    let vars = test_vars(&db);
    let workers: Vec<KillOnDrop> = (0..3)
        .map(|_| spawn_worker(&vars, &[("SAFETY_NET_CRON", "*/2 * * * * *")]))
        .collect();
    let ticks = wait_until("5 safety-net ticks", Duration::from_secs(40), || async {
        let n: i64 = sqlx::query_scalar("select count(*) from cron_runs where schedule = 'safety-net'")
            .fetch_one(&pool)
            .await
            .unwrap();
        (n >= 6).then_some(n)
    })
    .await;
    drop(workers);
    let (runs, distinct_ticks, claimers): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(distinct tick), count(distinct split_part(claimed_by, '-', 3))
         from cron_runs where schedule = 'safety-net'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(runs, distinct_ticks, "one claim per tick");
    let jobs: i64 =
        sqlx::query_scalar("select count(*) from apalis.jobs where job_type = 'plaid-sync.safety-net'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        jobs, runs,
        "each claimed tick enqueued exactly one safety-net run ({ticks} ticks seen)"
    );
    assert!(claimers >= 1);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn manual_sync_endpoints_answer_410_for_plaid_accounts_and_404_otherwise() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (alice, alice_token) = app.user_with_token("alice@example.com").await;
    let (_, bob_token) = app.user_with_token("bob@example.com").await;
    let insert = |provider: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "insert into accounts (user_id, provider, name) values ($1, $2, 'x') returning id",
            )
            .bind(alice.id)
            .bind(provider)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let plaid = insert("plaid").await;
    let web3 = insert("web3").await;
    for action in ["sync", "refresh-metadata"] {
        let call = |id: i64, token: &str| {
            app.http
                .post(format!("{}/api/accounts/{id}/{action}", app.public_url))
                .bearer_auth(token.to_owned())
                .send()
        };
        let response = call(plaid, &alice_token).await.unwrap();
        assert_eq!(response.status(), StatusCode::GONE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "plaid_manual_sync_disabled");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("webhook") && message.contains("/api/jobs/plaid/process"),
            "{message}"
        );
        assert_eq!(
            call(web3, &alice_token).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(plaid, &bob_token).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(987_654, &alice_token).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    app.stop().await;
}

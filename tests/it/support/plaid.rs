//! Helpers for Plaid flows through the app and the simulator.

use plaid_simulator::{ItemSpec, WebhookEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestApp;

/// `POST /api/plaid/link-token` as the holder of `token`.
pub async fn request_link_token(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!("{}/api/plaid/link-token", app.public_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `POST /api/plaid/exchange-token` as the holder of `token`.
pub async fn exchange_public_token(app: &TestApp, token: &str, public_token: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!("{}/api/plaid/exchange-token", app.public_url))
        .bearer_auth(token)
        .json(&json!({ "public_token": public_token }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Links a new item for the holder of `token` through the app's Link endpoints
/// and the simulator's simulated Link; returns the exchange answer.
pub async fn link_new_item(app: &TestApp, token: &str) -> Value {
    let (_, link) = request_link_token(app, token, json!({})).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    let (status, body) = exchange_public_token(app, token, &completion.public_token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The user goes through Link in update mode for `item_id`; returns the exchange's status.
pub async fn relink_in_update_mode(app: &TestApp, token: &str, item_id: &str) -> StatusCode {
    let (_, link) = request_link_token(app, token, json!({ "item_id": item_id })).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    assert!(completion.update_mode);
    exchange_public_token(app, token, &completion.public_token)
        .await
        .0
}

/// Creates an item in the simulator and in the database (as if linked), without Link.
pub async fn seed_item(app: &TestApp, user_id: i64) -> (String, i64) {
    let created = app.sim.create_item(ItemSpec::default());
    let id: i64 = sqlx::query_scalar(
        "insert into plaid_items (user_id, item_id, sync_status) values ($1, $2, 'active') returning id",
    )
    .bind(user_id)
    .bind(&created.item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (created.item_id, id)
}

/// The `SYNC_UPDATES_AVAILABLE` event with both flags set.
pub fn sync_updates() -> WebhookEvent {
    WebhookEvent::SyncUpdatesAvailable {
        initial_update_complete: Some(true),
        historical_update_complete: Some(true),
    }
}

/// Posts raw bytes to the webhook endpoint with the given headers.
pub async fn post_webhook(app: &TestApp, body: &[u8], headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(format!("{}/webhook/plaid", app.public_url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Pending (not started) sync jobs per `plaid_items.id`.
pub async fn pending_sync_jobs(app: &TestApp, plaid_item_id: i64) -> i64 {
    sqlx::query_scalar(
        "select count(*) from apalis.jobs
         where job_type = 'plaid-sync.sync-item' and status = 'Pending'
           and convert_from(job, 'UTF8')::jsonb ->> 'plaid_item_id' = $1::text",
    )
    .bind(plaid_item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Number of stored webhook events.
pub async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from plaid_webhook_events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits until the sync queue is drained: no webhook of the simulator's on
/// its way, no sync job due now pending, queued or running, and no item
/// holding a sync lease.
pub async fn drain_syncs(app: &TestApp) {
    super::wait_until(
        "the sync queue to drain",
        std::time::Duration::from_secs(60),
        || async {
            // Webhooks the simulator still has on their way can queue a sync
            // after the queue looked empty: wait for their answers first.
            if app.sim.webhooks_in_flight() > 0 {
                return None;
            }
            let busy: i64 = sqlx::query_scalar(
                "select (select count(*) from apalis.jobs
                     where job_type = 'plaid-sync.sync-item' and status in ('Pending', 'Queued', 'Running')
                       and run_at <= now())
                  + (select count(*) from plaid_items where sync_lease_owner is not null)",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            (busy == 0).then_some(())
        },
    )
    .await;
}

/// Requests a sync of the item (as a webhook would) and waits for the queue to drain.
pub async fn sync_now(app: &TestApp, plaid_item_id: i64) {
    let mut conn = app.pool.acquire().await.unwrap();
    workflows::jobs::sync_item::request_sync(
        &mut conn,
        workflows::jobs::sync_item::ItemRef::Id(plaid_item_id),
    )
    .await
    .unwrap();
    drop(conn);
    drain_syncs(app).await;
}

/// Links an item through Link, makes its history ready with `count` generated
/// transactions, and returns (Plaid item id, plaid_items.id).
pub async fn linked_item_with_history(app: &TestApp, token: &str, count: usize, seed: u64) -> (String, i64) {
    let linked = link_new_item(app, token).await;
    let item_id = linked["item_id"].as_str().unwrap().to_owned();
    app.sim
        .generate_history(&item_id, plaid_simulator::HistorySpec::new(count, seed))
        .unwrap();
    app.sim
        .mark_ready(&item_id, plaid_simulator::ReadyState::HistoricalUpdateComplete)
        .unwrap();
    let id: i64 = sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(&item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (item_id, id)
}

/// The item's (sync_status, last_sync_error code).
pub async fn item_status(app: &TestApp, plaid_item_id: i64) -> (String, Option<String>) {
    sqlx::query_as("select sync_status, last_error_code from plaid_items where id = $1")
        .bind(plaid_item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits until the item is `active` (retries included) with nothing due or running;
/// on timeout, panics with the item's state and its open jobs.
pub async fn settle(app: &TestApp, plaid_item_id: i64) {
    let deadline = std::time::Duration::from_secs(120);
    let started = std::time::Instant::now();
    loop {
        let settled: bool = sqlx::query_scalar(
            "select i.sync_status = 'active' and i.sync_lease_owner is null
                    and not exists (select 1 from apalis.jobs
                                    where job_type = 'plaid-sync.sync-item'
                                      and status in ('Pending', 'Queued', 'Running') and run_at <= now())
             from plaid_items i where i.id = $1",
        )
        .bind(plaid_item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if settled {
            return;
        }
        if started.elapsed() > deadline {
            let item: (String, Option<String>, i32, Option<String>) = sqlx::query_as(
                "select sync_status, last_error_code, sync_attempts, sync_lease_owner from plaid_items where id = $1",
            )
            .bind(plaid_item_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
            let jobs: Vec<(String, String, chrono::DateTime<chrono::Utc>, i32)> = sqlx::query_as(
                "select id, status, run_at, attempts from apalis.jobs
                 where job_type = 'plaid-sync.sync-item' and status <> 'Done'",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap();
            let guard: Vec<String> =
                sqlx::query_scalar("select task_id from sync_pending where plaid_item_id = $1")
                    .bind(plaid_item_id)
                    .fetch_all(&app.pool)
                    .await
                    .unwrap();
            panic!(
                "item {plaid_item_id} did not settle in {deadline:?}: item {item:?}, open jobs {jobs:?}, \
                 guard {guard:?}, now {}",
                chrono::Utc::now()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

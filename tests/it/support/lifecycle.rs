//! Helpers for unlink and dormant-item cleanup tests.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use workflows::jobs::{JobSpec, cleanup::CleanupRun};

use super::{TestApp, app::JOBS_SECRET, wait_until};

/// `DELETE /api/accounts/{account}` as the holder of `token`.
pub async fn unlink(app: &TestApp, token: &str, account: impl std::fmt::Display) -> StatusCode {
    app.http
        .delete(format!("{}/api/accounts/{account}", app.public_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// `POST /api/jobs/plaid/cleanup` with the jobs secret.
pub async fn post_cleanup(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!("{}/api/jobs/plaid/cleanup", app.public_url))
        .bearer_auth(JOBS_SECRET)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// The item's mapped account ids (active or not), oldest first.
pub async fn mapped_accounts(app: &TestApp, plaid_item_id: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "select account_id from plaid_item_accounts where plaid_item_id = $1 order by account_id",
    )
    .bind(plaid_item_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The item's `lifecycle` and `secret_ref`.
pub async fn lifecycle(app: &TestApp, plaid_item_id: i64) -> (String, Option<String>) {
    sqlx::query_as("select lifecycle, secret_ref from plaid_items where id = $1")
        .bind(plaid_item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// One `item_removals` row: reason, state, attempts, last_error_code.
pub type RemovalRow = (String, String, i32, Option<String>);

/// The item's removals, oldest first.
pub async fn removals(app: &TestApp, plaid_item_id: i64) -> Vec<RemovalRow> {
    sqlx::query_as(
        "select reason, state, attempts, last_error_code from item_removals where plaid_item_id = $1 order by id",
    )
    .bind(plaid_item_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Every `/item/remove` call the simulator answered (whatever the item or answer).
pub fn remove_calls(app: &TestApp) -> usize {
    app.sim.call_count("/item/remove", None)
}

/// Notifications of `kind` about the item.
pub async fn notifications(app: &TestApp, plaid_item_id: i64, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from notifications where plaid_item_id = $1 and kind = $2")
        .bind(plaid_item_id)
        .bind(kind)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Whether a secret row exists.
pub async fn secret_exists(app: &TestApp, secret_ref: &str) -> bool {
    sqlx::query_scalar("select exists (select 1 from secrets where secret_ref = $1)")
        .bind(secret_ref)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits until the start-up cleanup run of the app's scheduler has run. A
/// worker process claims the last missed cleanup tick when it starts
/// (`jobs::schedule`), so a fresh app has a cleanup run queued; left alone it
/// may run (under load, seconds later) after a test has made an item dormant
/// and start that item's workflow before the test's own cleanup call, which
/// then finds nothing to do. Call it before making items dormant in an app
/// that runs workers.
pub async fn startup_cleanup_run_done(app: &TestApp) {
    wait_until(
        "the scheduler's start-up cleanup run to finish",
        Duration::from_secs(60),
        || async {
            let done: bool = sqlx::query_scalar(
                "select exists (select 1 from cron_runs where schedule = 'cleanup')
                        and not exists (select 1 from apalis.jobs
                                        where job_type = $1
                                          and status in ('Pending', 'Queued', 'Running'))",
            )
            .bind(CleanupRun::QUEUE)
            .fetch_one(&app.pool)
            .await
            .unwrap();
            done.then_some(())
        },
    )
    .await;
}

/// Waits until the item's lifecycle is `lifecycle`.
pub async fn wait_lifecycle(app: &TestApp, plaid_item_id: i64, lifecycle_is: &str) {
    wait_until(
        &format!("the item to become {lifecycle_is}"),
        Duration::from_secs(30),
        || async { (lifecycle(app, plaid_item_id).await.0 == lifecycle_is).then_some(()) },
    )
    .await;
}

/// Sets a column of the item to `now() - days` (the controllable clock: the
/// code compares with the database's `now()`).
pub async fn backdate(app: &TestApp, plaid_item_id: i64, column: &str, days: i32) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update plaid_items set {column} = now() - make_interval(days => $2) where id = $1"
    )))
    .bind(plaid_item_id)
    .bind(days)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// Puts the item in `status` since `days` ago (two statements: a trigger
/// stamps `sync_status_changed_at` whenever `sync_status` changes).
pub async fn status_since(app: &TestApp, plaid_item_id: i64, status: &str, days: i32) {
    // As the real transition does, entering needs_reauth stamps reauth_needed_at
    // (a sync already running then keeps the item in needs_reauth when it applies).
    sqlx::query(
        "update plaid_items set sync_status = $2,
             reauth_needed_at = case when $2 = 'needs_reauth' then coalesce(reauth_needed_at, now())
                                     else reauth_needed_at end
         where id = $1",
    )
    .bind(plaid_item_id)
    .bind(status)
    .execute(&app.pool)
    .await
    .unwrap();
    backdate(app, plaid_item_id, "sync_status_changed_at", days).await;
}

/// Counts jobs of `queue` in `status`.
pub async fn jobs(app: &TestApp, queue: &str, status: &str) -> i64 {
    sqlx::query_scalar("select count(*) from apalis.jobs where job_type = $1 and status = $2")
        .bind(queue)
        .bind(status)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

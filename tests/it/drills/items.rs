//! What the flood and misbehaving-Plaid drills share: many linked items, and
//! waiting until every one of them is synced and idle.

use std::time::{Duration, Instant};

use plaid_simulator::{HistorySpec, ReadyState};

use crate::support::{TestApp, plaid::link_new_item};

/// One linked item.
#[derive(Debug, Clone)]
pub struct Item {
    /// Plaid's `item_id`.
    pub item_id: String,
    /// `plaid_items.id`.
    pub id: i64,
}

/// Links `count` items through Link for the holder of `token`; their
/// transactions are not ready yet (see [`make_ready`]).
pub async fn link_items(app: &TestApp, token: &str, count: usize) -> Vec<Item> {
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let linked = link_new_item(app, token).await;
        let item_id = linked["item_id"].as_str().unwrap().to_owned();
        let id: i64 = sqlx::query_scalar("select id from plaid_items where item_id = $1")
            .bind(&item_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        items.push(Item { item_id, id });
    }
    items
}

/// Gives every item `history` generated transactions and makes them ready
/// (with the simulator's automatic webhooks on, that asks the app to sync).
pub fn make_ready(app: &TestApp, items: &[Item], history: usize, seed: u64) {
    for (n, item) in items.iter().enumerate() {
        app.sim
            .generate_history(&item.item_id, HistorySpec::new(history, seed + n as u64))
            .unwrap();
        app.sim
            .mark_ready(&item.item_id, ReadyState::HistoricalUpdateComplete)
            .unwrap();
    }
}

/// Items not yet settled (not `active`, or holding a sync lease) plus sync
/// jobs due now (pending, queued or running).
async fn unsettled(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select (select count(*) from plaid_items
                 where sync_status <> 'active' or sync_lease_owner is not null)
              + (select count(*) from apalis.jobs
                 where job_type = 'plaid-sync.sync-item' and status in ('Pending', 'Queued', 'Running')
                   and run_at <= now())",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Waits until every item is synced and idle; returns how long that took. On
/// timeout, panics with what is still open.
pub async fn wait_all_settled(app: &TestApp, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if unsettled(app).await == 0 {
            return started.elapsed();
        }
        if started.elapsed() > timeout {
            let items: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
                "select id, sync_status, last_error_code, sync_lease_owner from plaid_items
                 where sync_status <> 'active' or sync_lease_owner is not null",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap();
            let jobs: Vec<(String, String, chrono::DateTime<chrono::Utc>, i32)> = sqlx::query_as(
                "select id, status, run_at, attempts from apalis.jobs
                 where job_type = 'plaid-sync.sync-item' and status in ('Pending', 'Queued', 'Running')",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap();
            panic!(
                "the items did not settle in {timeout:?}: items {items:?}, open sync jobs {jobs:?}, now {}",
                chrono::Utc::now()
            );
        }
        // Polling a database state other tasks write; there is no signal to wait on.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Live (not removed) transactions stored, over all items.
pub async fn live_transactions(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from transactions where not archived")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

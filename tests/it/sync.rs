//! The sync engine against the simulator's truth.

use std::time::Duration;

use chrono::NaiveDate;
use plaid_simulator::{Fault, FaultError, MutationFault, NewTransaction, PostPending, TransactionPatch};
use reqwest::StatusCode;
use workflows::{
    jobs::{enqueue, sync_item::SyncItem},
    sync::lease::{self, Acquire},
};

use crate::support::{
    TestApp,
    oracle::{assert_matches_truth, live_count},
    plaid::{
        drain_syncs, item_status, link_new_item, linked_item_with_history, relink_in_update_mode, sync_now,
        sync_updates,
    },
    wait_until,
};

pub(crate) fn new_txn(account_id: &str, amount: f64, name: &str, pending: bool) -> NewTransaction {
    NewTransaction {
        account_id: account_id.to_owned(),
        amount,
        date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        name: name.to_owned(),
        pending,
        merchant_name: None,
        authorized_date: None,
        payment_channel: None,
        personal_finance_category: None,
        iso_currency_code: None,
        transaction_id: None,
        pending_transaction_id: None,
    }
}

fn first_account(app: &TestApp, item_id: &str) -> String {
    app.sim
        .truth(item_id)
        .unwrap()
        .accounts
        .keys()
        .next()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_initial_sync_of_5000_transactions_over_many_pages_matches_the_truth() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 5_000, 7).await;
    sync_now(&app, id).await;

    assert_matches_truth(&app, &item_id).await;
    assert_eq!(live_count(&app, &item_id).await, 5_000);
    assert_eq!(item_status(&app, id).await, ("active".to_owned(), None));
    let pages = app
        .sim
        .calls()
        .iter()
        .filter(|c| c.endpoint == "/transactions/sync" && c.status == 200)
        .count();
    assert!(
        pages >= 10,
        "5,000 transactions at 500 a page is at least 10 pages, saw {pages}"
    );
    let (cursor, accounts_active): (Option<String>, i64) = sqlx::query_as(
        "select i.cursor, (select count(*) from accounts a join plaid_item_accounts m on m.account_id = a.id
                            where m.plaid_item_id = i.id and a.sync_status = 'active' and a.last_synced_at is not null)
         from plaid_items i where i.id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(cursor.is_some_and(|c| !c.is_empty()));
    assert_eq!(accounts_active, 3, "each account follows the item");
    // Balances were stored from the responses.
    let with_balances: i64 = sqlx::query_scalar("select count(*) from accounts where balances ? 'current'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(with_balances >= 1);
    app.stop().await;
}

#[tokio::test]
async fn incremental_adds_modifies_removes_and_pending_to_posted_converge() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 300, 11).await;
    sync_now(&app, id).await;
    assert_matches_truth(&app, &item_id).await;

    let account = first_account(&app, &item_id);
    let truth = app.sim.truth(&item_id).unwrap();
    let existing: Vec<String> = truth
        .accounts
        .values()
        .flatten()
        .map(|t| t.transaction_id.clone())
        .take(4)
        .collect();
    let added = app
        .sim
        .add_transaction(&item_id, new_txn(&account, 12.34, "Coffee", false))
        .unwrap();
    let pending = app
        .sim
        .add_transaction(&item_id, new_txn(&account, 45.5, "Hotel hold", true))
        .unwrap();
    app.sim
        .modify_transaction(
            &item_id,
            &existing[0],
            TransactionPatch {
                amount: Some(99.99),
                name: Some("Refunded".into()),
                ..Default::default()
            },
        )
        .unwrap();
    app.sim
        .remove_transactions(&item_id, &[&existing[1], &existing[2]])
        .unwrap();
    sync_now(&app, id).await;
    assert_matches_truth(&app, &item_id).await;

    // The hold posts with a tip: pending row tombstoned, posted row linked to it.
    let posted = app
        .sim
        .post_pending(
            &item_id,
            &pending,
            PostPending {
                amount: Some(52.5),
                ..Default::default()
            },
        )
        .unwrap();
    sync_now(&app, id).await;
    assert_matches_truth(&app, &item_id).await;
    let (pending_ref, amount): (Option<String>, String) =
        sqlx::query_as("select pending_external_id, amount::text from transactions where external_id = $1")
            .bind(&posted)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(pending_ref.as_deref(), Some(pending.as_str()));
    assert_eq!(amount, "52.5");
    let (archived, raw): (bool, serde_json::Value) =
        sqlx::query_as("select archived, raw_json from transactions where external_id = $1")
            .bind(&pending)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(archived);
    assert_eq!(raw["source_removed"], true);
    assert_eq!(raw["name"], "Hotel hold", "the original payload is kept");
    let _ = added;
    app.stop().await;
}

#[tokio::test]
async fn a_removed_then_re_added_transaction_is_unarchived() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 20, 3).await;
    let account = first_account(&app, &item_id);
    let mut txn = new_txn(&account, 10.0, "Gym", false);
    txn.transaction_id = Some("txn-readded-1".into());
    app.sim.add_transaction(&item_id, txn.clone()).unwrap();
    sync_now(&app, id).await;
    app.sim.remove_transactions(&item_id, &["txn-readded-1"]).unwrap();
    sync_now(&app, id).await;
    let archived: bool =
        sqlx::query_scalar("select archived from transactions where external_id = 'txn-readded-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(archived);
    // Plaid sends the same id again (churn).
    if app.sim.add_transaction(&item_id, txn).is_ok() {
        sync_now(&app, id).await;
        let archived: bool =
            sqlx::query_scalar("select archived from transactions where external_id = 'txn-readded-1'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert!(!archived, "a re-added transaction is live again");
    }
    app.stop().await;
}

#[tokio::test]
async fn mutation_during_pagination_restarts_the_update_and_drops_what_the_abandoned_pages_held() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 2_000, 5).await;
    // A transaction that exists while page 1 is fetched and is removed before page 2.
    let account = first_account(&app, &item_id);
    let mut doomed = new_txn(&account, 1.0, "Doomed", false);
    doomed.transaction_id = Some("txn-doomed".into());
    app.sim.add_transaction(&item_id, doomed).unwrap();
    app.sim
        .inject_mutation_during_pagination(MutationFault {
            page: 2,
            item_id: Some(item_id.clone()),
            mutate: true,
        })
        .unwrap();
    // Make the mutation remove the doomed transaction: remove it right after the first page.
    app.sim.clear_calls();
    let sim = app.sim.control();
    let watcher_item = item_id.clone();
    let watcher = tokio::spawn(async move {
        loop {
            if sim
                .calls()
                .iter()
                .any(|c| c.endpoint == "/transactions/sync" && c.status == 200)
            {
                let _ = sim.remove_transactions(&watcher_item, &["txn-doomed"]);
                return;
            }
            tokio::task::yield_now().await;
        }
    });
    sync_now(&app, id).await;
    watcher.abort();

    assert_matches_truth(&app, &item_id).await;
    let doomed_rows: i64 = sqlx::query_scalar(
        "select count(*) from transactions where external_id = 'txn-doomed' and not archived",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        doomed_rows, 0,
        "added then removed inside abandoned pages: it must not survive"
    );
    let mutation_errors = app
        .sim
        .calls()
        .iter()
        .filter(|c| c.error_code.as_deref() == Some("TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"))
        .count();
    assert!(mutation_errors >= 1);
    assert_eq!(item_status(&app, id).await.0, "active");
    app.stop().await;
}

#[tokio::test]
async fn plaid_failures_on_pages_are_retried_durably_until_the_database_matches() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 1_500, 9).await;
    for error in [
        FaultError::internal_server_error(),
        FaultError::sync_rate_limit(),
        FaultError::institution_down(),
    ] {
        app.sim
            .inject_fault(
                Fault::new(error, 1)
                    .on_endpoint("/transactions/sync")
                    .for_item(&item_id),
            )
            .unwrap();
    }
    let mut conn = app.pool.acquire().await.unwrap();
    workflows::jobs::sync_item::request_sync(&mut conn, workflows::jobs::sync_item::ItemRef::Id(id))
        .await
        .unwrap();
    drop(conn);
    // Each failure is recorded, then retried after its backoff, until it applies.
    let failures = wait_until("three recorded failures and a final success", Duration::from_secs(60), || async {
        let (status, attempts_seen): (String, i64) = sqlx::query_as(
            "select sync_status, (select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item') from plaid_items where id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (status == "active").then_some(attempts_seen)
    })
    .await;
    assert!(
        failures >= 4,
        "the failed runs were re-pushed as jobs: {failures}"
    );
    drain_syncs(&app).await;
    assert_matches_truth(&app, &item_id).await;
    let errors: Vec<String> = app
        .sim
        .calls()
        .iter()
        .filter_map(|c| c.error_code.clone())
        .collect();
    for code in [
        "INTERNAL_SERVER_ERROR",
        "TRANSACTIONS_SYNC_LIMIT",
        "INSTITUTION_DOWN",
    ] {
        assert!(
            errors.iter().any(|e| e == code),
            "{code} was injected and seen: {errors:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_retryable_failure_marks_the_item_failed_with_the_error_and_a_future_retry() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 10, 2).await;
    drain_syncs(&app).await;
    app.sim
        .inject_fault(
            Fault::new(FaultError::institution_down(), 50)
                .on_endpoint("/transactions/sync")
                .for_item(&item_id),
        )
        .unwrap();
    sync_now(&app, id).await;
    let (status, code, error, retry_at, accounts_failed): (
        String,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        i64,
    ) = sqlx::query_as(
        "select sync_status, last_error_code, last_sync_error, next_retry_at,
                    (select count(*) from accounts a join plaid_item_accounts m on m.account_id = a.id
                     where m.plaid_item_id = i.id and a.sync_status = 'failed')
             from plaid_items i where id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(code.as_deref(), Some("INSTITUTION_DOWN"));
    assert!(
        error.is_some_and(|e| !e.contains("access-")),
        "no access token in the error"
    );
    assert!(retry_at.is_some_and(|t| t > chrono::Utc::now() - chrono::Duration::seconds(1)));
    assert_eq!(accounts_failed, 3);
    let pending_retry: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item' and status = 'Pending' and run_at > now()",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        pending_retry, 1,
        "a durable retry is scheduled (run_after), not a hot loop"
    );
    app.sim.clear_faults();
    app.stop().await;
}

#[tokio::test]
async fn a_terminal_error_fails_the_item_without_retrying() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 10, 2).await;
    drain_syncs(&app).await;
    app.sim
        .inject_fault(
            Fault::new(FaultError::Code("ITEM_NOT_FOUND".into()), 1)
                .on_endpoint("/transactions/sync")
                .for_item(&item_id),
        )
        .unwrap();
    sync_now(&app, id).await;
    assert_eq!(
        item_status(&app, id).await,
        ("failed".to_owned(), Some("ITEM_NOT_FOUND".to_owned()))
    );
    let queued: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item' and status = 'Pending'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(queued, 0, "no retry after a terminal error");
    app.stop().await;
}

#[tokio::test]
async fn item_login_required_moves_to_needs_reauth_and_update_mode_brings_it_back() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 100, 4).await;
    sync_now(&app, id).await;
    app.sim.reset_login(&item_id).unwrap(); // also fires ITEM ERROR to our webhook
    let account = first_account(&app, &item_id);
    app.sim
        .add_transaction(&item_id, new_txn(&account, 5.0, "While locked out", false))
        .unwrap();
    sync_now(&app, id).await;
    assert_eq!(
        item_status(&app, id).await,
        ("needs_reauth".to_owned(), Some("ITEM_LOGIN_REQUIRED".to_owned()))
    );
    // One notification, however many times the transition is attempted.
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(
        !workflows::lifecycle::reauth::enter(&mut conn, id, "ITEM_LOGIN_REQUIRED", "again")
            .await
            .unwrap()
    );
    drop(conn);
    let hook = app
        .sim
        .build_webhook(
            &item_id,
            &plaid_simulator::WebhookEvent::ItemError { error: None },
        )
        .unwrap();
    crate::support::plaid::post_webhook(&app, &hook.body, &[("plaid-verification", &hook.verification)])
        .await;
    let notes: i64 = sqlx::query_scalar(
        "select count(*) from notifications where user_id = $1 and kind = 'reauth_needed'",
    )
    .bind(user.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(notes, 1);
    // No sync is queued for it while it waits for the user.
    let request = {
        let mut conn = app.pool.acquire().await.unwrap();
        workflows::jobs::sync_item::request_sync(&mut conn, workflows::jobs::sync_item::ItemRef::Id(id))
            .await
            .unwrap()
    };
    assert!(matches!(
        request,
        workflows::jobs::sync_item::SyncRequest::AwaitingReauth { .. }
    ));

    // The user goes through update mode.
    assert_eq!(
        relink_in_update_mode(&app, &token, &item_id).await,
        StatusCode::OK
    );
    drain_syncs(&app).await;
    assert_eq!(item_status(&app, id).await, ("active".to_owned(), None));
    assert_matches_truth(&app, &item_id).await;
    app.stop().await;
}

#[tokio::test]
async fn login_repaired_returns_the_item_to_sync_and_catches_up() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 50, 8).await;
    sync_now(&app, id).await;
    app.sim.reset_login(&item_id).unwrap();
    wait_until(
        "the ITEM ERROR webhook to take effect",
        Duration::from_secs(10),
        || async { (item_status(&app, id).await.0 == "needs_reauth").then_some(()) },
    )
    .await;
    let account = first_account(&app, &item_id);
    app.sim
        .add_transaction(&item_id, new_txn(&account, 7.0, "Missed meanwhile", false))
        .unwrap();
    app.sim.repair_login(&item_id).unwrap(); // fires LOGIN_REPAIRED
    wait_until("the catch-up sync", Duration::from_secs(20), || async {
        (item_status(&app, id).await.0 == "active").then_some(())
    })
    .await;
    drain_syncs(&app).await;
    assert_matches_truth(&app, &item_id).await;
    app.stop().await;
}

#[tokio::test]
async fn two_sync_jobs_forced_to_start_together_never_run_side_by_side() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 3_000, 12).await;
    drain_syncs(&app).await;
    // The lease itself: of two concurrent takers (live workers) exactly one wins.
    sqlx::query(
        "insert into apalis.workers (id, worker_type, storage_name, layers, last_seen)
         values ('w-a', 'q', 'PostgresStorage', '', now()), ('w-b', 'q', 'PostgresStorage', '', now())",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (a, b) = tokio::join!(
        lease::acquire(
            &app.pool,
            id,
            "t-a",
            "w-a",
            Duration::from_secs(2),
            Duration::from_secs(10)
        ),
        lease::acquire(
            &app.pool,
            id,
            "t-b",
            "w-b",
            Duration::from_secs(2),
            Duration::from_secs(10)
        ),
    );
    let won = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(Acquire::Acquired(_))))
        .count();
    assert_eq!(won, 1, "{a:?} / {b:?}");
    sqlx::query("update plaid_items set sync_lease_owner = null, sync_lease_until = null, sync_status = 'sync_needed' where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    drain_syncs(&app).await;

    // Two jobs pushed past the guard, picked up together by the worker (concurrency 4).
    app.sim.set_latency(Some(plaid_simulator::Latency {
        millis: 150,
        endpoint: Some("/transactions/sync".into()),
    }));
    let mut tx = app.pool.begin().await.unwrap();
    enqueue(&mut tx, &SyncItem { plaid_item_id: id }, None)
        .await
        .unwrap();
    enqueue(&mut tx, &SyncItem { plaid_item_id: id }, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    drain_syncs(&app).await;
    wait_until("the deferred job to run too", Duration::from_secs(30), || async {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item' and status in ('Pending', 'Queued', 'Running')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (open == 0).then_some(())
    })
    .await;
    app.sim.set_latency(None);
    assert_matches_truth(&app, &item_id).await;
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_arriving_during_a_sync_leaves_the_item_due_and_its_changes_are_synced() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 2_500, 13).await;
    drain_syncs(&app).await;
    sqlx::query("update plaid_items set cursor = null where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.sim.set_latency(Some(plaid_simulator::Latency {
        millis: 300,
        endpoint: Some("/transactions/sync".into()),
    }));
    let mut conn = app.pool.acquire().await.unwrap();
    workflows::jobs::sync_item::request_sync(&mut conn, workflows::jobs::sync_item::ItemRef::Id(id))
        .await
        .unwrap();
    drop(conn);
    wait_until("the sync to be running", Duration::from_secs(20), || async {
        (item_status(&app, id).await.0 == "syncing").then_some(())
    })
    .await;
    let account = first_account(&app, &item_id);
    app.sim
        .add_transaction(&item_id, new_txn(&account, 3.21, "During the sync", false))
        .unwrap();
    let delivery = app.sim.fire_webhook(&item_id, &sync_updates()).await.unwrap();
    assert_eq!(delivery.status, Some(200));
    app.sim.set_latency(None);
    drain_syncs(&app).await;
    assert_matches_truth(&app, &item_id).await;
    assert_eq!(item_status(&app, id).await.0, "active");
    app.stop().await;
}

#[tokio::test]
async fn a_fresh_item_that_is_not_ready_stays_sync_needed_without_error() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let item_id = linked["item_id"].as_str().unwrap().to_owned();
    let id: i64 = sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(&item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    drain_syncs(&app).await;
    let (status, error) = item_status(&app, id).await;
    assert_eq!((status.as_str(), error), ("sync_needed", None));
    let cursor: Option<String> = sqlx::query_scalar("select cursor from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(cursor.is_none_or(|c| c.is_empty()));
    let recheck: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs where job_type = 'plaid-sync.sync-item' and status = 'Pending' and run_at > now()",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recheck, 1, "a short delayed re-check is queued");
    // Data becomes ready; Plaid's webhook (auto) triggers the sync that brings it in.
    app.sim
        .generate_history(&item_id, plaid_simulator::HistorySpec::new(40, 1))
        .unwrap();
    app.sim
        .mark_ready(&item_id, plaid_simulator::ReadyState::HistoricalUpdateComplete)
        .unwrap();
    wait_until("the item to sync once ready", Duration::from_secs(20), || async {
        (item_status(&app, id).await.0 == "active").then_some(())
    })
    .await;
    drain_syncs(&app).await;
    assert_matches_truth(&app, &item_id).await;
    app.stop().await;
}

//! Unlink: `DELETE /api/accounts/{id}` and the item's removal at Plaid.

use std::{sync::Arc, time::Duration};

use chrono::NaiveDate;
use plaid_simulator::{Fault, FaultError, NewTransaction, SimulatorConfig};
use reqwest::StatusCode;
use workflows::{
    jobs::{JobContext, cleanup::RemoveItem, enqueue},
    lifecycle::{
        cleanup::CleanupSettings,
        removal::{self, ERROR_PREFIX, MAX_ATTEMPTS, RemoveStep},
    },
    plaid::{PlaidClient, PlaidConfig},
    secrets::{SecretStore, SecretsKey},
};

use crate::support::{
    TestApp,
    app::test_sync_settings,
    lifecycle::{
        jobs, lifecycle, mapped_accounts, post_cleanup, removals, remove_calls, secret_exists, unlink,
        wait_lifecycle,
    },
    plaid::{link_new_item, linked_item_with_history, settle, sync_now},
    wait_until,
};

async fn id_of(app: &TestApp, item_id: &str) -> i64 {
    sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Live and archived transaction counts of one account.
async fn transactions_of(app: &TestApp, account_id: i64) -> (i64, i64) {
    sqlx::query_as(
        "select count(*) filter (where not archived), count(*) filter (where archived)
         from transactions where account_id = $1",
    )
    .bind(account_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// (mapping active, account archived).
async fn account_state(app: &TestApp, account_id: i64) -> (bool, bool) {
    sqlx::query_as(
        "select m.active, a.archived from accounts a join plaid_item_accounts m on m.account_id = a.id
         where a.id = $1",
    )
    .bind(account_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn deleting_one_of_three_accounts_archives_it_and_the_item_keeps_syncing_the_other_two() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 60, 11).await;
    settle(&app, id).await;
    let accounts = mapped_accounts(&app, id).await;
    assert_eq!(accounts.len(), 3);
    let kept_before = transactions_of(&app, accounts[0]).await;
    assert!(kept_before.0 > 0, "the account has history");

    assert_eq!(unlink(&app, &token, accounts[0]).await, StatusCode::NO_CONTENT);
    assert_eq!(account_state(&app, accounts[0]).await, (false, true));
    assert_eq!(
        transactions_of(&app, accounts[0]).await,
        kept_before,
        "its transactions are kept"
    );
    for sibling in &accounts[1..] {
        assert_eq!(account_state(&app, *sibling).await, (true, false));
    }

    // New transactions on every account: the item syncs the two still linked.
    let plaid_accounts: Vec<(i64, String)> = sqlx::query_as(
        "select account_id, plaid_account_id from plaid_item_accounts where plaid_item_id = $1 order by account_id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    for (_, plaid_account) in &plaid_accounts {
        app.sim
            .add_transaction(
                &item_id,
                NewTransaction::new(plaid_account, 12.5, date, "after unlink"),
            )
            .unwrap();
    }
    let siblings_before = [
        transactions_of(&app, accounts[1]).await.0,
        transactions_of(&app, accounts[2]).await.0,
    ];
    sync_now(&app, id).await;
    settle(&app, id).await;
    assert_eq!(transactions_of(&app, accounts[1]).await.0, siblings_before[0] + 1);
    assert_eq!(transactions_of(&app, accounts[2]).await.0, siblings_before[1] + 1);
    assert_eq!(
        transactions_of(&app, accounts[0]).await,
        kept_before,
        "the unlinked account gets nothing new"
    );

    assert_eq!(lifecycle(&app, id).await.0, "active");
    assert!(removals(&app, id).await.is_empty());
    assert_eq!(remove_calls(&app), 0, "/item/remove is never called");
    app.stop().await;
}

#[tokio::test]
async fn deleting_the_last_account_removes_the_item_at_plaid_exactly_once_even_when_the_job_runs_twice() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let item_id = linked["item_id"].as_str().unwrap().to_owned();
    let id = id_of(&app, &item_id).await;
    let secret_ref = lifecycle(&app, id).await.1.unwrap();
    let accounts = mapped_accounts(&app, id).await;
    for account in &accounts[..2] {
        assert_eq!(unlink(&app, &token, account).await, StatusCode::NO_CONTENT);
    }
    assert!(removals(&app, id).await.is_empty(), "siblings remain");

    assert_eq!(unlink(&app, &token, accounts[2]).await, StatusCode::NO_CONTENT);
    wait_lifecycle(&app, id, "removed").await;
    assert_eq!(remove_calls(&app), 1);
    assert!(app.sim.item(&item_id).unwrap().removed, "Plaid removed the item");
    assert_eq!(lifecycle(&app, id).await.1, None);
    assert!(!secret_exists(&app, &secret_ref).await, "the secret is deleted");
    assert_eq!(
        removals(&app, id).await,
        vec![("unlink".into(), "done".into(), 1, None)]
    );
    let removed_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select removed_at from plaid_items where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(removed_at.is_some());

    // The job again: the same task redelivered (as after an orphan rescue),
    // and a duplicate push of the same step.
    let removal_id: i64 = sqlx::query_scalar("select id from item_removals where plaid_item_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "update apalis.jobs set status = 'Pending', run_at = now(), lock_by = null, lock_at = null, done_at = null
         where job_type = 'plaid-sync.remove-item'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    enqueue(
        &mut app.pool.acquire().await.unwrap(),
        &RemoveItem { removal_id },
        None,
    )
    .await
    .unwrap();
    wait_until("both jobs to run", Duration::from_secs(30), || async {
        (jobs(&app, "plaid-sync.remove-item", "Done").await == 2).then_some(())
    })
    .await;
    assert_eq!(remove_calls(&app), 1, "never a second /item/remove");
    assert_eq!(
        removals(&app, id).await,
        vec![("unlink".into(), "done".into(), 1, None)]
    );
    // Deleting an unlinked account again is a no-op.
    assert_eq!(unlink(&app, &token, accounts[2]).await, StatusCode::NO_CONTENT);
    assert_eq!(removals(&app, id).await.len(), 1);
    app.stop().await;
}

/// A job context like the app's, for running a step directly.
fn job_context(app: &TestApp) -> JobContext {
    let sim = SimulatorConfig::default();
    JobContext {
        pool: app.pool.clone(),
        plaid: Arc::new(
            PlaidClient::new(&PlaidConfig::new(
                app.sim.base_url(),
                sim.client_id,
                sim.secret.into(),
            ))
            .unwrap(),
        ),
        secrets: SecretStore::new(SecretsKey::from_base64(&app.vars["SECRETS_KEY"]).unwrap(), vec![]),
        job_retention: Duration::from_secs(3600),
        sync: test_sync_settings(),
        safety_net_stale_after: Duration::from_secs(3600),
        cleanup: CleanupSettings::default(),
    }
}

#[tokio::test]
async fn two_deliveries_of_one_remove_step_at_once_call_plaid_once() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let id = id_of(&app, linked["item_id"].as_str().unwrap()).await;
    let accounts = mapped_accounts(&app, id).await;
    // The last two accounts unlinked at the same moment: exactly one sees the last go.
    assert_eq!(unlink(&app, &token, accounts[0]).await, StatusCode::NO_CONTENT);
    let (a, b) = tokio::join!(
        unlink(&app, &token, accounts[1]),
        unlink(&app, &token, accounts[2])
    );
    assert_eq!((a, b), (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT));
    assert_eq!(removals(&app, id).await.len(), 1);
    assert_eq!(jobs(&app, "plaid-sync.remove-item", "Pending").await, 1);

    let (removal_id, task_id): (i64, String) =
        sqlx::query_as("select id, task_id from item_removals where plaid_item_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let ctx = job_context(&app);
    let (first, second) = tokio::join!(
        removal::remove_step(&ctx, removal_id, &task_id),
        removal::remove_step(&ctx, removal_id, &task_id)
    );
    let mut steps = vec![first.unwrap(), second.unwrap()];
    steps.sort_by_key(|s| format!("{s:?}"));
    assert!(
        matches!(
            steps.as_slice(),
            [RemoveStep::Deferred, RemoveStep::Removed { already_gone: false }]
                | [RemoveStep::Removed { already_gone: false }, RemoveStep::Stale]
        ),
        "one delivery removes, the other waits or finds it done: {steps:?}"
    );
    assert_eq!(remove_calls(&app), 1);
    assert_eq!(lifecycle(&app, id).await, ("removed".into(), None));
    // A third delivery, late: nothing.
    assert_eq!(
        removal::remove_step(&ctx, removal_id, &task_id).await.unwrap(),
        RemoveStep::Stale
    );
    assert_eq!(remove_calls(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn when_item_remove_keeps_failing_the_item_and_its_secret_are_kept_and_the_failure_is_visible() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let item_id = linked["item_id"].as_str().unwrap().to_owned();
    let id = id_of(&app, &item_id).await;
    let secret_ref = lifecycle(&app, id).await.1.unwrap();
    app.sim
        .inject_fault(Fault::new(FaultError::internal_server_error(), 1_000).on_endpoint("/item/remove"))
        .unwrap();
    for account in mapped_accounts(&app, id).await {
        assert_eq!(unlink(&app, &token, account).await, StatusCode::NO_CONTENT);
    }

    // Retried durably, with backoff (1 s, 2 s in tests).
    wait_until("three failed attempts", Duration::from_secs(30), || async {
        let rows = removals(&app, id).await;
        (rows.len() == 1 && rows[0].2 >= 3 && rows[0].1 == "pending").then_some(())
    })
    .await;
    let rows = removals(&app, id).await;
    assert_eq!(rows[0].3.as_deref(), Some("INTERNAL_SERVER_ERROR"));
    assert_eq!(
        lifecycle(&app, id).await,
        ("active".into(), Some(secret_ref.clone()))
    );
    let health = removal::health(&mut app.pool.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!((health.retrying, health.failed), (1, 0));

    // Fast-forward to the last attempt.
    sqlx::query("update item_removals set attempts = $2 where plaid_item_id = $1")
        .bind(id)
        .bind(MAX_ATTEMPTS - 1)
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until(
        "the removal to fail for good",
        Duration::from_secs(30),
        || async { (removals(&app, id).await[0].1 == "failed").then_some(()) },
    )
    .await;
    let calls = remove_calls(&app);
    let (lifecycle_now, secret_now) = lifecycle(&app, id).await;
    assert_eq!(lifecycle_now, "active", "not marked removed");
    assert_eq!(secret_now.as_deref(), Some(secret_ref.as_str()));
    assert!(secret_exists(&app, &secret_ref).await, "the secret is kept");
    assert!(!app.sim.item(&item_id).unwrap().removed);
    let error: String = sqlx::query_scalar("select last_sync_error from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(error.starts_with(ERROR_PREFIX), "{error}");
    let health = removal::health(&mut app.pool.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!((health.retrying, health.failed), (0, 1));
    // Nothing more happens on its own.
    assert_eq!(jobs(&app, "plaid-sync.remove-item", "Pending").await, 0);

    // Plaid recovers: the next cleanup run retries, and it can still be removed.
    app.sim.clear_faults();
    let (status, body) = post_cleanup(&app).await;
    assert_eq!(
        (status, body["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    wait_lifecycle(&app, id, "removed").await;
    assert_eq!(remove_calls(&app), calls + 1);
    assert!(!secret_exists(&app, &secret_ref).await);
    let error: Option<String> = sqlx::query_scalar("select last_sync_error from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(error, None);
    let states: Vec<String> = removals(&app, id).await.into_iter().map(|r| r.1).collect();
    assert_eq!(states, vec!["failed", "done"]);
    app.stop().await;
}

#[tokio::test]
async fn item_not_found_or_invalid_access_token_from_item_remove_counts_as_removed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    for code in ["ITEM_NOT_FOUND", "INVALID_ACCESS_TOKEN"] {
        let linked = link_new_item(&app, &token).await;
        let item_id = linked["item_id"].as_str().unwrap().to_owned();
        let id = id_of(&app, &item_id).await;
        let secret_ref = lifecycle(&app, id).await.1.unwrap();
        app.sim
            .inject_fault(
                Fault::new(FaultError::Code(code.into()), 1)
                    .on_endpoint("/item/remove")
                    .for_item(&item_id),
            )
            .unwrap();
        for account in mapped_accounts(&app, id).await {
            assert_eq!(unlink(&app, &token, account).await, StatusCode::NO_CONTENT);
        }
        wait_lifecycle(&app, id, "removed").await;
        assert_eq!(app.sim.call_count("/item/remove", Some(&item_id)), 1, "{code}");
        assert!(!secret_exists(&app, &secret_ref).await, "{code}");
        assert_eq!(
            removals(&app, id).await,
            vec![("unlink".into(), "done".into(), 1, None)],
            "{code}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn another_users_or_an_unknown_account_is_a_404_and_nothing_changes() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (alice, alice_token) = app.user_with_token("alice@example.com").await;
    let (_, bob_token) = app.user_with_token("bob@example.com").await;
    let linked = link_new_item(&app, &alice_token).await;
    let id = id_of(&app, linked["item_id"].as_str().unwrap()).await;
    let accounts = mapped_accounts(&app, id).await;
    let web3: i64 = sqlx::query_scalar(
        "insert into accounts (user_id, provider, name) values ($1, 'web3', 'wallet') returning id",
    )
    .bind(alice.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();

    assert_eq!(unlink(&app, &bob_token, accounts[0]).await, StatusCode::NOT_FOUND);
    assert_eq!(unlink(&app, &alice_token, 999_999).await, StatusCode::NOT_FOUND);
    assert_eq!(
        unlink(&app, &alice_token, "not-a-number").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(unlink(&app, &alice_token, web3).await, StatusCode::NOT_FOUND);
    let anonymous = app
        .http
        .delete(format!("{}/api/accounts/{}", app.public_url, accounts[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for account in &accounts {
        assert_eq!(account_state(&app, *account).await, (true, false));
    }

    // Idempotent: the owner deletes the same account twice.
    assert_eq!(
        unlink(&app, &alice_token, accounts[0]).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        unlink(&app, &alice_token, accounts[0]).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(account_state(&app, accounts[0]).await, (false, true));
    assert_eq!(account_state(&app, accounts[1]).await, (true, false));
    assert!(removals(&app, id).await.is_empty());
    app.stop().await;
}

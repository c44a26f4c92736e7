//! Dormant-item cleanup: the scan, the durable grace window, cancellation,
//! removal, and the cron tick claimed once.

use std::{process::Command, time::Duration};

use reqwest::StatusCode;
use workflows::jobs::{cleanup::CleanupRun, schedule::claim_tick};

use crate::support::{
    TestApp,
    lifecycle::{
        backdate, jobs, lifecycle, mapped_accounts, notifications, post_cleanup, removals, remove_calls,
        secret_exists, startup_cleanup_run_done, status_since, unlink, wait_lifecycle,
    },
    plaid::{link_new_item, linked_item_with_history, relink_in_update_mode, seed_item, settle},
    process::{KillOnDrop, spawn_worker},
    wait_until,
};

fn worker(app: &TestApp) -> KillOnDrop {
    spawn_worker(&app.vars, &[])
}

fn grace(seconds: &'static str) -> impl FnOnce(&mut std::collections::HashMap<String, String>) {
    move |vars| {
        vars.insert("CLEANUP_GRACE".into(), seconds.into());
    }
}

/// Links an item through Link (so it has an access token and 3 mapped accounts).
async fn linked(app: &TestApp, token: &str) -> (String, i64) {
    let linked = link_new_item(app, token).await;
    let item_id = linked["item_id"].as_str().unwrap().to_owned();
    let id = sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(&item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (item_id, id)
}

/// A seeded item with a (dummy) secret and, optionally, one mapped account.
async fn seeded(app: &TestApp, user_id: i64, mapping: Option<bool>) -> i64 {
    let (_, id) = seed_item(app, user_id).await;
    let secret_ref = format!("sec_test_{id}");
    sqlx::query(
        "insert into secrets (secret_ref, key_id, nonce, ciphertext) values ($1, 'k', '\\x000000000000000000000000', '\\x00')",
    )
    .bind(&secret_ref)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("update plaid_items set secret_ref = $2, last_synced_at = now() where id = $1")
        .bind(id)
        .bind(&secret_ref)
        .execute(&app.pool)
        .await
        .unwrap();
    if let Some(active) = mapping {
        let account: i64 = sqlx::query_scalar(
            "insert into accounts (user_id, provider, name) values ($1, 'plaid', 'checking') returning id",
        )
        .bind(user_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into plaid_item_accounts (account_id, plaid_item_id, plaid_account_id, active)
             values ($1, $2, 'acc', $3)",
        )
        .bind(account)
        .bind(id)
        .bind(active)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    id
}

/// (cleanup_notified_at set, seconds from now to cleanup_due_at).
async fn cleanup_times(app: &TestApp, id: i64) -> (bool, Option<f64>) {
    sqlx::query_as(
        "select cleanup_notified_at is not null, extract(epoch from cleanup_due_at - now())::float8
         from plaid_items where id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_cleanup_run_starts_a_workflow_for_each_dormant_item_and_only_once() {
    let app = TestApp::spawn_with(grace("1h"), plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;

    // Dormant: needs_reauth for 31 days.
    let reauth_long = seeded(&app, user.id, Some(true)).await;
    status_since(&app, reauth_long, "needs_reauth", 31).await;
    // Dormant: no mapped account at all, for 31 days.
    let unmapped = seeded(&app, user.id, None).await;
    backdate(&app, unmapped, "created_at", 31).await;
    // Dormant: failed, retried recently (status just changed) but not synced for 40 days.
    let failing = seeded(&app, user.id, Some(true)).await;
    status_since(&app, failing, "failed", 0).await;
    backdate(&app, failing, "last_synced_at", 40).await;

    // Not dormant: needs_reauth for 2 days only.
    let reauth_short = seeded(&app, user.id, Some(true)).await;
    status_since(&app, reauth_short, "needs_reauth", 2).await;
    // Not dormant: healthy and linked, whatever its age.
    let healthy = seeded(&app, user.id, Some(true)).await;
    backdate(&app, healthy, "created_at", 400).await;
    // Not dormant: its last account was unlinked just now (not DORMANT_AFTER ago).
    let just_unmapped = seeded(&app, user.id, Some(false)).await;
    backdate(&app, just_unmapped, "created_at", 40).await;
    // Not considered: dormant, but there is no access token to remove it with.
    let tokenless = seeded(&app, user.id, Some(true)).await;
    status_since(&app, tokenless, "needs_reauth", 31).await;
    sqlx::query("update plaid_items set secret_ref = null where id = $1")
        .bind(tokenless)
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, body) = post_cleanup(&app).await;
    assert_eq!(
        (status, body["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(3))
    );
    for id in [reauth_long, unmapped, failing] {
        assert_eq!(lifecycle(&app, id).await.0, "pending_cleanup", "item {id}");
        let (notified, due_in) = cleanup_times(&app, id).await;
        let due_in = due_in.unwrap();
        assert!(
            notified && (3590.0..=3600.0).contains(&due_in),
            "due in {due_in}s"
        );
        assert_eq!(
            removals(&app, id).await,
            vec![("dormant".into(), "grace".into(), 0, None)]
        );
        assert_eq!(notifications(&app, id, "cleanup_scheduled").await, 1);
    }
    for id in [reauth_short, healthy, just_unmapped, tokenless] {
        assert_eq!(lifecycle(&app, id).await.0, "active", "item {id}");
        assert!(removals(&app, id).await.is_empty());
        assert_eq!(notifications(&app, id, "cleanup_scheduled").await, 0);
    }
    // The grace wait is a delayed job, one per workflow, due at cleanup_due_at.
    let waits: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from run_at - now())::float8 from apalis.jobs
         where job_type = 'plaid-sync.cleanup-due' and status = 'Pending'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(waits.len(), 3);
    assert!(waits.iter().all(|w| (3590.0..=3602.0).contains(w)), "{waits:?}");

    // Again: nothing new.
    let (_, body) = post_cleanup(&app).await;
    assert_eq!(body["enqueued"], 0);
    for id in [reauth_long, unmapped, failing] {
        assert_eq!(removals(&app, id).await.len(), 1);
        assert_eq!(notifications(&app, id, "cleanup_scheduled").await, 1);
    }
    assert_eq!(remove_calls(&app), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_grace_window_survives_a_killed_worker_and_the_item_is_removed_once_after_cleanup_due_at() {
    let app = TestApp::spawn_with(grace("4s"), plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked(&app, &token).await;
    let secret_ref = lifecycle(&app, id).await.1.unwrap();
    status_since(&app, id, "needs_reauth", 31).await;

    // A worker process starts; its cleanup schedule runs the tick it missed,
    // which finds the item dormant and starts the workflow.
    let mut first = worker(&app);
    wait_lifecycle(&app, id, "pending_cleanup").await;
    assert_eq!(notifications(&app, id, "cleanup_scheduled").await, 1);
    // The wait holds no worker: it is a pending job row, due at cleanup_due_at.
    assert_eq!(jobs(&app, "plaid-sync.cleanup-due", "Pending").await, 1);
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    wait_until("cleanup_due_at to pass", Duration::from_secs(30), || async {
        let passed: bool = sqlx::query_scalar(
            "select cleanup_due_at + interval '1 second' < now() from plaid_items where id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        passed.then_some(())
    })
    .await;
    assert_eq!(
        lifecycle(&app, id).await.0,
        "pending_cleanup",
        "no process was running"
    );
    assert_eq!(remove_calls(&app), 0);

    let _second = worker(&app);
    wait_lifecycle(&app, id, "removed").await;
    assert_eq!(remove_calls(&app), 1, "removed exactly once");
    assert!(app.sim.item(&item_id).unwrap().removed);
    assert!(!secret_exists(&app, &secret_ref).await);
    assert_eq!(
        removals(&app, id).await,
        vec![("dormant".into(), "done".into(), 1, None)]
    );
    assert_eq!(notifications(&app, id, "item_removed").await, 1);
    assert_eq!(notifications(&app, id, "cleanup_cancelled").await, 0);
    let (removed_at, mapped): (bool, i64) = sqlx::query_as(
        "select removed_at is not null,
                (select count(*) from plaid_item_accounts where plaid_item_id = $1 and active)
         from plaid_items where id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((removed_at, mapped), (true, 0));
    app.stop().await;
}

#[tokio::test]
async fn reauthenticating_during_the_grace_window_cancels_the_removal() {
    let app = TestApp::spawn_with(grace("3s"), plaid_sync::cli::Role::All).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 5, 1).await;
    settle(&app, id).await;
    startup_cleanup_run_done(&app).await;
    app.sim.reset_login(&item_id).unwrap();
    status_since(&app, id, "needs_reauth", 31).await;
    let (_, body) = post_cleanup(&app).await;
    assert_eq!(body["enqueued"], 1);
    assert_eq!(lifecycle(&app, id).await.0, "pending_cleanup");

    assert_eq!(
        relink_in_update_mode(&app, &token, &item_id).await,
        StatusCode::OK
    );
    assert_eq!(lifecycle(&app, id).await.0, "active", "cancelled at once");
    assert_eq!(cleanup_times(&app, id).await, (false, None));
    assert_eq!(
        removals(&app, id).await,
        vec![("dormant".into(), "cancelled".into(), 0, None)]
    );
    assert_eq!(notifications(&app, id, "cleanup_cancelled").await, 1);

    // The grace timer still fires, finds nothing to do.
    wait_until("the grace timer to fire", Duration::from_secs(30), || async {
        (jobs(&app, "plaid-sync.cleanup-due", "Done").await == 1).then_some(())
    })
    .await;
    assert_eq!(lifecycle(&app, id).await.0, "active");
    assert_eq!(remove_calls(&app), 0);
    assert_eq!(notifications(&app, id, "cleanup_cancelled").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_item_no_longer_dormant_when_the_grace_window_ends_is_not_removed() {
    let app = TestApp::spawn_with(grace("2s"), plaid_sync::cli::Role::All).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, id) = linked_item_with_history(&app, &token, 5, 1).await;
    settle(&app, id).await;
    startup_cleanup_run_done(&app).await;
    status_since(&app, id, "needs_reauth", 31).await;
    let (_, body) = post_cleanup(&app).await;
    assert_eq!(body["enqueued"], 1);
    // It recovers by a path that does not cancel anything itself.
    sqlx::query("update plaid_items set sync_status = 'active' where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();

    wait_until("the re-check to cancel", Duration::from_secs(30), || async {
        (removals(&app, id).await.first().map(|r| r.1.clone()) == Some("cancelled".into())).then_some(())
    })
    .await;
    assert_eq!(lifecycle(&app, id).await.0, "active");
    assert_eq!(cleanup_times(&app, id).await, (false, None));
    assert_eq!(notifications(&app, id, "cleanup_cancelled").await, 1);
    assert_eq!(remove_calls(&app), 0);
    app.stop().await;
}

#[tokio::test]
async fn unlinking_the_last_account_during_the_grace_window_removes_the_item_at_once() {
    let app = TestApp::spawn_with(grace("1h"), plaid_sync::cli::Role::All).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, id) = linked_item_with_history(&app, &token, 5, 1).await;
    settle(&app, id).await;
    startup_cleanup_run_done(&app).await;
    status_since(&app, id, "needs_reauth", 31).await;
    assert_eq!(post_cleanup(&app).await.1["enqueued"], 1);

    for account in mapped_accounts(&app, id).await {
        assert_eq!(unlink(&app, &token, account).await, StatusCode::NO_CONTENT);
    }
    wait_lifecycle(&app, id, "removed").await;
    assert_eq!(remove_calls(&app), 1);
    assert_eq!(
        removals(&app, id).await,
        vec![("unlink".into(), "done".into(), 1, None)],
        "the open removal was taken over, not duplicated"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_removal_whose_job_went_missing_is_resumed_by_the_next_cleanup_run() {
    let app = TestApp::spawn_with(grace("1h"), plaid_sync::cli::Role::All).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, id) = linked_item_with_history(&app, &token, 5, 1).await;
    settle(&app, id).await;
    startup_cleanup_run_done(&app).await;
    status_since(&app, id, "needs_reauth", 31).await;
    assert_eq!(post_cleanup(&app).await.1["enqueued"], 1);
    // The grace timer is lost (an operator killed it), and the window ended 10 minutes ago.
    sqlx::query("update apalis.jobs set status = 'Killed' where job_type = 'plaid-sync.cleanup-due'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "update item_removals set due_at = now() - interval '10 minutes', next_step_at = now() - interval '10 minutes'
         where plaid_item_id = $1",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    backdate(&app, id, "cleanup_due_at", 0).await;

    let (_, body) = post_cleanup(&app).await;
    assert_eq!(body["enqueued"], 1, "resumed");
    wait_lifecycle(&app, id, "removed").await;
    assert_eq!(remove_calls(&app), 1);
    assert_eq!(
        removals(&app, id).await,
        vec![("dormant".into(), "done".into(), 1, None)]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_cleanup_tick_is_claimed_once_however_many_processes_race_for_it() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let tick = chrono::DateTime::parse_from_rfc3339("2026-11-28T03:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let claims: Vec<_> = (0..8)
        .map(|i| {
            let pool = app.pool.clone();
            tokio::spawn(async move {
                claim_tick(&pool, "cleanup", tick, &format!("process-{i}"), &CleanupRun {}).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for claim in claims {
        won.push(claim.await.unwrap().unwrap());
    }
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(jobs(&app, "plaid-sync.cleanup-run", "Pending").await, 1);
    let rows: i64 = sqlx::query_scalar("select count(*) from cron_runs where schedule = 'cleanup'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_cleanup_jobs_api_needs_the_secret_and_the_enqueue_command_does_the_same() {
    let app = TestApp::spawn_with(grace("1h"), plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let id = seeded(&app, user.id, Some(true)).await;
    status_since(&app, id, "failed", 31).await;

    for secret in [None, Some("wrong")] {
        let mut request = app
            .http
            .post(format!("{}/api/jobs/plaid/cleanup", app.public_url));
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        lifecycle(&app, id).await.0,
        "active",
        "a refused call does nothing"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_plaid-sync"))
        .args(["enqueue", "cleanup"])
        .envs(app.vars.iter())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "enqueued: 1");
    assert_eq!(lifecycle(&app, id).await.0, "pending_cleanup");
    let (status, body) = post_cleanup(&app).await;
    assert_eq!(
        (status, body["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(0))
    );
    app.stop().await;
}

//! Drill 5, long waits survive deploys: 50 dormant items enter a 20-second
//! cleanup grace window; 10 come back to life in it (5 users re-authenticate
//! through update-mode Link, 5 logins are repaired at Plaid, which sends
//! `LOGIN_REPAIRED`); meanwhile every worker process is stopped and restarted
//! twice (SIGTERM, then SIGKILL). Verdict: each of the other 40 items is
//! removed at Plaid exactly once (`/item/remove` once in the simulator's call
//! log), after its window, and is `removed`; the 10 are never removed.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use plaid_simulator::ItemSpec;
use plaid_sync::cli::Role;
use reqwest::StatusCode;
use workflows::{
    redact::Secret,
    secrets::{SecretStore, SecretsKey},
};

use super::fleet::Fleet;
use crate::support::{
    TestApp,
    lifecycle::{lifecycle, notifications, post_cleanup, removals},
    plaid::relink_in_update_mode,
    wait_until,
};

const ITEMS: usize = 50;
const RELINKED: usize = 5;
const REPAIRED: usize = 5;
/// Long enough for two full restarts of the fleet on a loaded CI machine.
const GRACE_SECS: i64 = 20;
const WORKERS: usize = 2;

/// A dormant item: both ids.
struct Dormant {
    item_id: String,
    id: i64,
}

/// An item whose login broke at Plaid 31 days ago (so `needs_reauth` that
/// long, hence dormant), with a real encrypted access token and its three
/// accounts mapped, as linking would have left it.
async fn dormant_item(app: &TestApp, store: &SecretStore, user_id: i64) -> Dormant {
    let created = app.sim.create_item(ItemSpec::ready());
    app.sim.reset_login(&created.item_id).unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    let secret_ref = store
        .put(&mut tx, &Secret::new(created.access_token.clone()))
        .await
        .unwrap();
    // Inserted, not updated: the status-change trigger would stamp now().
    let id: i64 = sqlx::query_scalar(
        "insert into plaid_items (user_id, item_id, secret_ref, sync_status, reauth_needed_at,
                                  sync_status_changed_at, last_synced_at, created_at)
         values ($1, $2, $3, 'needs_reauth', now() - interval '31 days', now() - interval '31 days',
                 now() - interval '31 days', now() - interval '400 days')
         returning id",
    )
    .bind(user_id)
    .bind(&created.item_id)
    .bind(&secret_ref)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    for plaid_account_id in &created.account_ids {
        let account: i64 = sqlx::query_scalar(
            "insert into accounts (user_id, provider, name) values ($1, 'plaid', 'account') returning id",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "insert into plaid_item_accounts (account_id, plaid_item_id, plaid_account_id, active)
             values ($1, $2, $3, true)",
        )
        .bind(account)
        .bind(id)
        .bind(plaid_account_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    Dormant {
        item_id: created.item_id,
        id,
    }
}

/// Open work: cleanup jobs not yet done (grace timers, removals, runs), and
/// any job still locked (the SIGKILLed generation's jobs until they are rescued).
async fn open_jobs(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select count(*) from apalis.jobs
         where (job_type in ('plaid-sync.cleanup-due', 'plaid-sync.remove-item', 'plaid-sync.cleanup-run')
                and status = 'Pending')
            or status in ('Queued', 'Running')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Restarts every slot of a fleet whose processes have all exited.
async fn restart_all(fleet: &mut Fleet) {
    for slot in 0..fleet.len() {
        fleet.restart(slot).await;
    }
}

#[tokio::test]
#[ignore = "a drill: .ci/run runs the drills alone, one at a time (cargo test --test it drills -- --ignored --test-threads=1)"]
async fn grace_windows_survive_two_fleet_restarts_and_each_dormant_item_is_removed_exactly_once() {
    let started = Instant::now();
    let grace = format!("{GRACE_SECS}s");
    let app = TestApp::spawn_with(
        move |vars| {
            vars.insert("CLEANUP_GRACE".into(), grace);
        },
        Role::Api,
    )
    .await;
    let (user, token) = app.user_with_token("drill5@example.com").await;
    let store = SecretStore::new(SecretsKey::from_base64(&app.vars["SECRETS_KEY"]).unwrap(), vec![]);
    let mut items = Vec::new();
    for _ in 0..ITEMS {
        items.push(dormant_item(&app, &store, user.id).await);
    }

    // The windows open: one notification, one pending grace-timer job each.
    let (status, body) = post_cleanup(&app).await;
    assert_eq!(
        (status, body["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(ITEMS as u64))
    );
    let due_at: DateTime<Utc> =
        sqlx::query_scalar("select min(cleanup_due_at) from plaid_items where lifecycle = 'pending_cleanup'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let window_opened = Instant::now();

    // Generation 1 of the workers. Ten users come back during the window.
    let mut fleet = Fleet::start(&app.pool, &app.vars, "worker", &[], WORKERS).await;
    let (revived, doomed) = items.split_at(RELINKED + REPAIRED);
    for item in &revived[..RELINKED] {
        let status = relink_in_update_mode(&app, &token, &item.item_id).await;
        assert_eq!(status, StatusCode::OK);
    }
    for item in &revived[RELINKED..] {
        app.sim.repair_login(&item.item_id).unwrap();
    }
    for item in revived {
        wait_until("the removal to be cancelled", Duration::from_secs(30), || async {
            (lifecycle(&app, item.id).await.0 == "active").then_some(())
        })
        .await;
    }

    // Deploy 1: every process stopped gracefully, a new generation started.
    fleet.stop_gracefully().await;
    restart_all(&mut fleet).await;
    let first_restart = window_opened.elapsed();
    // Deploy 2: every process SIGKILLed (a crash, a forced deploy), a new generation started.
    fleet.kill_all();
    restart_all(&mut fleet).await;
    let second_restart = window_opened.elapsed();
    let restarts_done_at = Utc::now();
    assert!(
        restarts_done_at < due_at,
        "both restarts happened inside the window (done {restarts_done_at}, due {due_at})"
    );

    // The windows end; the third generation does the removals.
    wait_until(
        "every removal to finish, every grace timer to fire and no job to be left locked",
        Duration::from_secs(GRACE_SECS as u64 + 60),
        || async {
            let removed: i64 =
                sqlx::query_scalar("select count(*) from plaid_items where lifecycle = 'removed'")
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            (removed == doomed.len() as i64 && open_jobs(&app).await == 0).then_some(())
        },
    )
    .await;
    let all_removed = window_opened.elapsed();

    // Verdict.
    for item in doomed {
        assert_eq!(lifecycle(&app, item.id).await.0, "removed", "item {}", item.id);
        assert_eq!(
            app.sim.call_count("/item/remove", Some(&item.item_id)),
            1,
            "item {} removed at Plaid exactly once",
            item.id
        );
        assert!(app.sim.item(&item.item_id).unwrap().removed);
        assert_eq!(
            removals(&app, item.id).await,
            vec![("dormant".into(), "done".into(), 1, None)]
        );
        assert_eq!(notifications(&app, item.id, "item_removed").await, 1);
    }
    for item in revived {
        assert_eq!(lifecycle(&app, item.id).await.0, "active", "item {}", item.id);
        assert_eq!(app.sim.call_count("/item/remove", Some(&item.item_id)), 0);
        assert!(!app.sim.item(&item.item_id).unwrap().removed);
        assert_eq!(
            removals(&app, item.id).await,
            vec![("dormant".into(), "cancelled".into(), 0, None)]
        );
        assert_eq!(notifications(&app, item.id, "cleanup_cancelled").await, 1);
    }
    let total_calls = app.sim.call_count("/item/remove", None);
    assert_eq!(total_calls, doomed.len(), "no other /item/remove call");
    let (early, latest_after_due): (i64, f64) = sqlx::query_as(
        "select count(*) filter (where i.removed_at < r.due_at),
                coalesce(max(extract(epoch from i.removed_at - r.due_at)), 0)::float8
         from plaid_items i join item_removals r on r.plaid_item_id = i.id
         where i.lifecycle = 'removed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(early, 0, "no item removed before its window ended");
    let running: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where status = 'Running'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(running, 0, "no job left Running");

    eprintln!(
        "drill 5 PASS: {ITEMS} items in a {GRACE_SECS}s grace window, {WORKERS} worker processes; \
         {RELINKED} relinked + {REPAIRED} login-repaired -> cancelled, 0 /item/remove calls for them; \
         restarts done at +{:.1}s (SIGTERM) and +{:.1}s (SIGKILL), window ended at +{GRACE_SECS}s; \
         {} items removed with {total_calls} /item/remove calls (1 each), none early, the last {:.1}s after \
         its due time, all done at +{:.1}s; wall {:.1}s",
        first_restart.as_secs_f64(),
        second_restart.as_secs_f64(),
        doomed.len(),
        latest_after_due,
        all_removed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    fleet.kill_all();
    app.stop().await;
}

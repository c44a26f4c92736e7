//! The operator listener: `/metrics`, `/api/admin/status`, the attention list,
//! the "sync now" repair action, the rollup behind the charts, the embedded
//! dashboard and the mounted apalis board.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Duration as Ago, Utc};
use plaid_simulator::{Fault, FaultError, NewTransaction, SimulatorConfig, TransactionPatch};
use plaid_sync::cli::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workflows::{
    jobs::runtime::QUEUES,
    monitoring::{State, rollup, sampler, status},
};

use crate::support::{
    TestApp,
    app::{ADMIN_TOKEN, free_port},
    plaid::{linked_item_with_history, pending_sync_jobs, post_webhook, seed_item, settle, sync_updates},
    process::spawn_serve,
    wait_until,
};

// ---------- helpers ----------

async fn admin_get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .get(format!("{}{path}", app.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!("{}{path}", app.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn db_now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("select now()").fetch_one(pool).await.unwrap()
}

/// A `plaid_items` row to seed; unset columns take the table's defaults.
#[derive(Default)]
struct Item<'a> {
    item_id: &'a str,
    sync_status: &'a str,
    lifecycle: &'a str,
    created_at: Option<DateTime<Utc>>,
    last_synced_at: Option<DateTime<Utc>>,
    status_changed_at: Option<DateTime<Utc>>,
    reauth_needed_at: Option<DateTime<Utc>>,
    cleanup_due_at: Option<DateTime<Utc>>,
    removed_at: Option<DateTime<Utc>>,
    error_code: Option<&'a str>,
}

impl Item<'_> {
    async fn insert(&self, pool: &PgPool, user_id: i64) -> i64 {
        sqlx::query_scalar(
            "insert into plaid_items (user_id, item_id, sync_status, lifecycle, created_at, last_synced_at,
                                      sync_status_changed_at, reauth_needed_at, cleanup_due_at, removed_at,
                                      cleanup_notified_at, last_error_code, last_sync_error, institution_id)
             values ($1, $2, $3, $4, coalesce($5, now()), $6, coalesce($7, now()), $8, $9, $10,
                     case when $9 is not null then now() end, $11,
                     case when $11 is not null then 'seeded failure ' || $11 end, 'ins_seeded')
             returning id",
        )
        .bind(user_id)
        .bind(self.item_id)
        .bind(if self.sync_status.is_empty() {
            "active"
        } else {
            self.sync_status
        })
        .bind(if self.lifecycle.is_empty() {
            "active"
        } else {
            self.lifecycle
        })
        .bind(self.created_at)
        .bind(self.last_synced_at)
        .bind(self.status_changed_at)
        .bind(self.reauth_needed_at)
        .bind(self.cleanup_due_at)
        .bind(self.removed_at)
        .bind(self.error_code)
        .fetch_one(pool)
        .await
        .unwrap()
    }
}

/// Parses Prometheus text into `name{sorted labels}` → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        out.insert(key, value.parse().unwrap());
    }
    out
}

/// The key [`parse_metrics`] gives a series.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort_unstable();
    format!("{name}{{{}}}", labels.join(","))
}

// ---------- /metrics ----------

#[tokio::test]
async fn metrics_count_webhooks_syncs_transactions_and_plaid_calls_exactly() {
    // Arrange. Counters live in the process, and tests share one: the
    // counted work runs in a `serve --role all` process of its own, so every
    // value below is exact. The in-process app (API only: no workers) links
    // the item; its first sync job waits for the second process.
    let app = TestApp::spawn_full(
        |_| {},
        Role::Api,
        SimulatorConfig {
            auto_webhooks: false,
            ..SimulatorConfig::default()
        },
    )
    .await;
    let (_, token) = app.user_with_token("ops@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 10, 11).await;

    let (public, admin) = (free_port(), free_port());
    let (public_bind, admin_bind) = (format!("127.0.0.1:{public}"), format!("127.0.0.1:{admin}"));
    let _process = spawn_serve(
        &app.vars,
        "all",
        &[
            ("BIND_ADDR", public_bind.as_str()),
            ("ADMIN_BIND_ADDR", admin_bind.as_str()),
        ],
    );
    let (public_url, admin_url) = (
        format!("http://127.0.0.1:{public}"),
        format!("http://127.0.0.1:{admin}"),
    );
    let scrape = || async {
        app.http
            .get(format!("{admin_url}/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()
            .filter(|r| r.status() == StatusCode::OK)
    };
    wait_until(
        "the second process to serve /metrics",
        Duration::from_secs(60),
        || async { scrape().await.map(|_| ()) },
    )
    .await;
    // Sync 1: the initial sync of 10 transactions.
    settle(&app, id).await;

    // Sync 2: 2 added, 1 modified, 1 removed; announced by a verified webhook.
    let truth = app.sim.truth(&item_id).unwrap();
    let posted: Vec<&plaid_simulator::Transaction> = truth.transactions().filter(|t| !t.pending).collect();
    let account = posted[0].account_id.clone();
    let day = posted[0].date;
    app.sim
        .add_transactions(
            &item_id,
            vec![
                NewTransaction::new(&account, 1.5, day, "Added one"),
                NewTransaction::new(&account, 2.5, day, "Added two"),
            ],
        )
        .unwrap();
    app.sim
        .modify_transaction(
            &item_id,
            &posted[0].transaction_id,
            TransactionPatch {
                amount: Some(99.0),
                ..TransactionPatch::default()
            },
        )
        .unwrap();
    app.sim
        .remove_transactions(&item_id, &[&posted[1].transaction_id])
        .unwrap();
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    let deliver = |body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let request = app
            .http
            .post(format!("{public_url}/webhook/plaid"))
            .header("content-type", "application/json")
            .body(body);
        let request = headers.into_iter().fold(request, |r, (k, v)| r.header(k, v));
        async move { request.send().await.unwrap().status() }
    };
    let signed = vec![("plaid-verification", hook.verification.clone())];
    assert_eq!(deliver(hook.body.clone(), signed.clone()).await, StatusCode::OK);
    settle(&app, id).await;
    // Sync 3: the same body again is a duplicate, and still leaves the item due for a sync.
    assert_eq!(deliver(hook.body.clone(), signed).await, StatusCode::OK);
    settle(&app, id).await;

    // Three refusals: no signature, a malformed one, a verified body that is not JSON.
    assert_eq!(deliver(b"{}".to_vec(), vec![]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        deliver(b"{}".to_vec(), vec![("plaid-verification", "not-a-jwt".into())]).await,
        StatusCode::UNAUTHORIZED
    );
    let not_json = b"not json".to_vec();
    let signature = app.sim.sign_body(&not_json, Utc::now().timestamp());
    assert_eq!(
        deliver(not_json, vec![("plaid-verification", signature)]).await,
        StatusCode::BAD_REQUEST
    );

    // Sync 4: Plaid answers an error code unique to this test; a retry is scheduled.
    let error = serde_json::from_value(json!({
        "error_type": "API_ERROR", "error_code": "OPERATOR_METRICS_PROBE",
        "error_message": "injected by the operator metrics test", "display_message": null,
    }))
    .unwrap();
    app.sim
        .inject_fault(
            Fault::new(FaultError::Custom { status: 500, error }, 1)
                .on_endpoint("/transactions/sync")
                .for_item(&item_id),
        )
        .unwrap();
    let response = app
        .http
        .post(format!("{admin_url}/api/admin/items/{item_id}/sync"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    wait_until("the probe to fail the sync", Duration::from_secs(30), || async {
        let (status, leased): (String, bool) =
            sqlx::query_as("select sync_status, sync_lease_owner is not null from plaid_items where id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (status == "failed" && !leased).then_some(())
    })
    .await;

    // Job rows the gauges read: a failed and a killed canary, a job nobody serves.
    sqlx::query(
        "insert into apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at, done_at)
         values ('\\x7b7d', 'op-failed', 'plaid-sync.canary', 'Failed', 3, 3, now(), now()),
                ('\\x7b7d', 'op-killed', 'plaid-sync.canary', 'Killed', 1, 3, now(), now()),
                ('\\x7b7d', 'op-waiting', 'operator-test.unserved', 'Pending', 0, 3, now() - interval '10 minutes', null)",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // Act.
    let response = scrape().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let m = parse_metrics(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        *m.get(&series(name, labels))
            .unwrap_or_else(|| panic!("{} missing from:\n{text}", series(name, labels)))
    };

    // Assert: counters and histograms of the process.
    assert_eq!(get("plaid_sync_webhooks_received_total", &[]), 2.0);
    assert_eq!(get("plaid_sync_webhooks_duplicate_total", &[]), 1.0);
    for reason in ["missing_signature", "malformed_signature", "invalid_json"] {
        assert_eq!(
            get("plaid_sync_webhooks_rejected_total", &[("reason", reason)]),
            1.0,
            "{reason}"
        );
    }
    let hist = "plaid_sync_webhook_duration_seconds_count";
    assert_eq!(get(hist, &[("outcome", "accepted")]), 1.0);
    assert_eq!(get(hist, &[("outcome", "duplicate")]), 1.0);
    assert_eq!(get(hist, &[("outcome", "rejected")]), 3.0);
    assert_eq!(
        get(
            "plaid_sync_webhook_duration_seconds_bucket",
            &[("outcome", "rejected"), ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(get("plaid_sync_sync_runs_total", &[("outcome", "synced")]), 3.0);
    assert_eq!(get("plaid_sync_sync_runs_total", &[("outcome", "retry")]), 1.0);
    assert_eq!(
        get("plaid_sync_sync_duration_seconds_count", &[("outcome", "synced")]),
        3.0
    );
    assert_eq!(get("plaid_sync_transactions_total", &[("change", "added")]), 12.0);
    assert_eq!(
        get("plaid_sync_transactions_total", &[("change", "modified")]),
        1.0
    );
    assert_eq!(
        get("plaid_sync_transactions_total", &[("change", "removed")]),
        1.0
    );
    let calls = "plaid_sync_plaid_requests_total";
    assert_eq!(
        get(calls, &[("endpoint", "/transactions/sync"), ("error_code", "ok")]),
        3.0
    );
    assert_eq!(
        get(
            calls,
            &[
                ("endpoint", "/transactions/sync"),
                ("error_code", "OPERATOR_METRICS_PROBE")
            ]
        ),
        1.0
    );
    assert_eq!(
        get(
            calls,
            &[
                ("endpoint", "/webhook_verification_key/get"),
                ("error_code", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        get(
            "plaid_sync_plaid_request_duration_seconds_count",
            &[("endpoint", "/transactions/sync")]
        ),
        4.0
    );

    // Assert: gauges of database state.
    assert_eq!(
        get(
            "plaid_sync_items",
            &[("lifecycle", "active"), ("sync_status", "failed")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "plaid_sync_items",
            &[("lifecycle", "active"), ("sync_status", "active")]
        ),
        0.0
    );
    assert_eq!(
        get(
            "plaid_sync_items",
            &[("lifecycle", "removed"), ("sync_status", "active")]
        ),
        0.0
    );
    // The only item is failed: nothing is expected fresh.
    assert_eq!(get("plaid_sync_sync_lag_max_seconds", &[]), 0.0);
    let sync_queue = [("queue", "plaid-sync.sync-item")];
    assert_eq!(
        get("plaid_sync_queue_scheduled", &sync_queue),
        1.0,
        "the durable retry"
    );
    assert_eq!(get("plaid_sync_queue_depth", &sync_queue), 0.0);
    let unserved = [("queue", "operator-test.unserved")];
    assert_eq!(get("plaid_sync_queue_depth", &unserved), 1.0);
    let oldest = get("plaid_sync_queue_oldest_pending_seconds", &unserved);
    assert!((600.0..700.0).contains(&oldest), "{oldest}");
    assert_eq!(
        get("plaid_sync_jobs_failed", &[("queue", "plaid-sync.canary")]),
        1.0
    );
    assert_eq!(
        get("plaid_sync_jobs_killed", &[("queue", "plaid-sync.canary")]),
        1.0
    );
    for queue in QUEUES {
        get("plaid_sync_queue_depth", &[("queue", queue)]);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_sync_lag_gauge_is_the_oldest_fresh_expected_item() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("lag@example.com").await;
    let now = db_now(&app.pool).await;
    for (item_id, minutes, status) in [("a", 5, "active"), ("b", 50, "sync_needed"), ("c", 500, "failed")] {
        Item {
            item_id,
            sync_status: status,
            last_synced_at: Some(now - Ago::minutes(minutes)),
            ..Item::default()
        }
        .insert(&app.pool, user.id)
        .await;
    }
    let text = app.scrape_metrics().await;
    let lag = parse_metrics(&text)["plaid_sync_sync_lag_max_seconds"];
    // 50 minutes (the failed item does not count), plus the time the test took.
    assert!((3000.0..3060.0).contains(&lag), "{lag}");
    app.stop().await;
}

// ---------- /api/admin/status ----------

#[tokio::test]
async fn status_reports_each_checklist_figure_from_seeded_rows() {
    // Arrange.
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("status@example.com").await;
    let now = db_now(&app.pool).await;
    let at = |minutes: i64| now - Ago::minutes(minutes);
    // 20 fresh-expected items synced 1..20 minutes ago, one never synced (created 5 minutes ago).
    for k in 1..=20 {
        let item_id = format!("fresh-{k}");
        Item {
            item_id: &item_id,
            last_synced_at: Some(at(k)),
            ..Item::default()
        }
        .insert(&app.pool, user.id)
        .await;
    }
    Item {
        item_id: "never-synced",
        sync_status: "sync_needed",
        created_at: Some(at(5)),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    let failed_with_removal = Item {
        item_id: "failed-1",
        sync_status: "failed",
        error_code: Some("INSTITUTION_DOWN"),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    Item {
        item_id: "failed-2",
        sync_status: "failed",
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    Item {
        item_id: "reauth",
        sync_status: "needs_reauth",
        reauth_needed_at: Some(now - Ago::days(8)),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    let dormant = Item {
        item_id: "dormant",
        lifecycle: "pending_cleanup",
        cleanup_due_at: Some(now + Ago::days(3)),
        last_synced_at: Some(now - Ago::days(40)),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    for item_id in ["removed-1", "removed-2"] {
        Item {
            item_id,
            lifecycle: "removed",
            removed_at: Some(now - Ago::days(1)),
            ..Item::default()
        }
        .insert(&app.pool, user.id)
        .await;
    }
    // Removals: one retrying at Plaid, one that gave up (the item is still billed).
    sqlx::query(
        "insert into item_removals (plaid_item_id, reason, state, due_at, next_step_at, attempts, last_error_code, finished_at)
         values ($1, 'dormant', 'pending', $3, now(), 2, 'INTERNAL_SERVER_ERROR', null),
                ($2, 'dormant', 'failed', null, null, 16, 'INTERNAL_SERVER_ERROR', now())",
    )
    .bind(dormant)
    .bind(failed_with_removal)
    .bind(now + Ago::days(3))
    .execute(&app.pool)
    .await
    .unwrap();
    // Webhooks: one new and one duplicate delivery now, through the endpoint
    // (the seeded item joins the fresh-expected items: never synced, created now)...
    let (item_id, _) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    for expected in ["accepted", "duplicate"] {
        let (code, body) = post_webhook(
            &app,
            &hook.body,
            &[("plaid-verification", hook.verification.as_str())],
        )
        .await;
        assert_eq!((code, body["status"].as_str()), (StatusCode::OK, Some(expected)));
    }
    // ...and older minutes of the rollup: 2 h and 3 h ago count for 24 h, 30 h ago not at all.
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value) values
             (date_trunc('minute', now()) - interval '2 hours', 'webhook', 0, 5),
             (date_trunc('minute', now()) - interval '3 hours', 'webhook_duplicate', 0, 1),
             (date_trunc('minute', now()) - interval '30 hours', 'webhook', 0, 100)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let received_at: DateTime<Utc> = sqlx::query_scalar("select max(received_at) from plaid_webhook_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // Act.
    let (code, s) = admin_get(&app, "/api/admin/status").await;

    // Assert.
    assert_eq!(code, StatusCode::OK, "{s}");
    let ts = |v: &Value| {
        v.as_str()
            .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    };
    let lag = &s["sync_lag"];
    assert_eq!(lag["items"], 22);
    // Nearest-rank p95 of 22: the 2nd oldest (19 minutes); the oldest is 20 minutes.
    assert_eq!(ts(&lag["oldest_at"]), Some(at(20)));
    assert_eq!(ts(&lag["p95_at"]), Some(at(19)));
    let max = lag["max_seconds"].as_f64().unwrap();
    assert!((1200.0..1260.0).contains(&max), "{max}");
    let p95 = lag["p95_seconds"].as_f64().unwrap();
    assert!((1140.0..1200.0).contains(&p95), "{p95}");
    assert_eq!(lag["state"], "green");
    assert_eq!(lag["amber_above_seconds"], 25.0 * 3600.0);
    assert_eq!(lag["red_above_seconds"], 48.0 * 3600.0);

    let hooks = &s["webhooks"];
    assert_eq!(hooks["last_hour"], 1);
    assert_eq!(hooks["duplicates_last_hour"], 1);
    assert_eq!(hooks["last_24h"], 6);
    assert_eq!(hooks["duplicates_24h"], 2);
    assert_eq!(hooks["duplicate_ratio_24h"], 0.25);
    assert_eq!(ts(&hooks["last_received_at"]), Some(received_at));
    assert_eq!(hooks["state"], "green");

    let failures = &s["failures"];
    assert_eq!(
        (failures["failed"].as_i64(), failures["items"].as_i64()),
        (Some(2), Some(26))
    );
    assert_eq!(failures["ratio"].as_f64(), Some(2.0 / 26.0));
    assert_eq!(failures["state"], "red");

    let reauth = &s["reauth"];
    assert_eq!(reauth["count"], 1);
    assert_eq!(ts(&reauth["oldest_reauth_needed_at"]), Some(now - Ago::days(8)));
    assert_eq!(reauth["state"], "amber", "waiting over 7 days");

    let billing = &s["billing"];
    assert_eq!(billing["pending_cleanup"], 1);
    assert_eq!(billing["removed"], 2);
    assert_eq!(ts(&billing["next_cleanup_due_at"]), Some(now + Ago::days(3)));
    assert_eq!(billing["removals_retrying"], 1);
    assert_eq!(billing["removals_failed"], 1);
    assert_eq!(billing["state"], "red", "a removal gave up");

    assert_eq!(s["state"], "red");
    assert_eq!(
        s["items"],
        json!({
            "active": {"active": 20, "sync_needed": 2, "failed": 2, "needs_reauth": 1},
            "pending_cleanup": {"active": 1},
            "removed": {"active": 2},
        })
    );
    app.stop().await;
}

#[tokio::test]
async fn status_of_an_empty_database_is_green_with_no_figures() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (code, s) = admin_get(&app, "/api/admin/status").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(s["state"], "green");
    assert_eq!(s["sync_lag"]["items"], 0);
    assert_eq!(s["sync_lag"]["max_seconds"], Value::Null);
    assert_eq!(s["webhooks"]["last_24h"], 0);
    assert_eq!(s["failures"]["ratio"], 0.0);
    assert_eq!(s["reauth"]["oldest_reauth_needed_at"], Value::Null);
    assert_eq!(s["billing"]["next_cleanup_due_at"], Value::Null);
    assert_eq!(s["items"], json!({}));
    app.stop().await;
}

#[test]
fn checklist_thresholds_colour_the_figures() {
    assert_eq!(status::failure_rate(0, 0).state, State::Green);
    assert_eq!(status::failure_rate(0, 100).state, State::Green);
    assert_eq!(status::failure_rate(1, 101).state, State::Green);
    assert_eq!(status::failure_rate(1, 100).state, State::Amber);
    assert_eq!(status::failure_rate(4, 100).state, State::Amber);
    assert_eq!(status::failure_rate(5, 100).state, State::Red);
    assert!(State::Red > State::Amber && State::Amber > State::Green);
}

#[tokio::test]
async fn webhooks_are_red_without_deliveries_and_amber_when_they_stop() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("quiet@example.com").await;
    Item {
        item_id: "expects-webhooks",
        last_synced_at: Some(db_now(&app.pool).await),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    let (_, s) = admin_get(&app, "/api/admin/status").await;
    assert_eq!(
        s["webhooks"]["state"], "red",
        "an item expects webhooks, none in 24 h"
    );

    // 30 deliveries 3 hours ago, none since: traffic stopped.
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value)
         values (date_trunc('minute', now()) - interval '3 hours', 'webhook', 0, 30)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, s) = admin_get(&app, "/api/admin/status").await;
    assert_eq!(s["webhooks"]["state"], "amber");

    // One in the last hour: green again.
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value)
         values (date_trunc('minute', now()), 'webhook_duplicate', 3, 1)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, s) = admin_get(&app, "/api/admin/status").await;
    assert_eq!(s["webhooks"]["state"], "green");
    app.stop().await;
}

// ---------- attention and "sync now" ----------

#[tokio::test]
async fn attention_lists_failed_then_reauth_then_pending_cleanup_oldest_first() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("attention@example.com").await;
    let now = db_now(&app.pool).await;
    let user_id = user.id;
    let seed = |item: Item<'static>| {
        let pool = app.pool.clone();
        async move { item.insert(&pool, user_id).await }
    };
    seed(Item {
        item_id: "failed-newer",
        sync_status: "failed",
        status_changed_at: Some(now - Ago::hours(1)),
        error_code: Some("INSTITUTION_DOWN"),
        ..Item::default()
    })
    .await;
    seed(Item {
        item_id: "failed-older",
        sync_status: "failed",
        status_changed_at: Some(now - Ago::hours(2)),
        ..Item::default()
    })
    .await;
    seed(Item {
        item_id: "reauth",
        sync_status: "needs_reauth",
        reauth_needed_at: Some(now - Ago::days(3)),
        ..Item::default()
    })
    .await;
    seed(Item {
        item_id: "dormant",
        lifecycle: "pending_cleanup",
        cleanup_due_at: Some(now + Ago::days(2)),
        ..Item::default()
    })
    .await;
    seed(Item {
        item_id: "healthy",
        last_synced_at: Some(now),
        ..Item::default()
    })
    .await;
    seed(Item {
        item_id: "gone",
        sync_status: "failed",
        lifecycle: "removed",
        removed_at: Some(now),
        ..Item::default()
    })
    .await;
    let newer_id: i64 = sqlx::query_scalar("select id from plaid_items where item_id = 'failed-newer'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query("insert into sync_pending (plaid_item_id, task_id) values ($1, 'TASK-NEWER')")
        .bind(newer_id)
        .execute(&app.pool)
        .await
        .unwrap();

    let (code, body) = admin_get(&app, "/api/admin/attention").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let listed: Vec<(&str, &str)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["reason"].as_str().unwrap(), i["item_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("failed", "failed-older"),
            ("failed", "failed-newer"),
            ("needs_reauth", "reauth"),
            ("pending_cleanup", "dormant"),
        ]
    );
    let newer = &body["items"][1];
    assert_eq!(newer["pending_job_id"], "TASK-NEWER");
    assert_eq!(newer["last_error_code"], "INSTITUTION_DOWN");
    assert_eq!(newer["user_id"], user.id);
    assert_eq!(
        body["items"][2]["since"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(now - Ago::days(3))
    );
    assert_eq!(
        body["items"][3]["since"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(now + Ago::days(2))
    );

    let (_, one_each) = admin_get(&app, "/api/admin/attention?limit=1").await;
    let reasons: Vec<&str> = one_each["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["failed-older", "reauth", "dormant"]);
    app.stop().await;
}

#[tokio::test]
async fn sync_now_queues_one_job_for_a_known_item_and_refuses_the_rest() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("repair@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let path = format!("/api/admin/items/{item_id}/sync");

    // A known item: 202, one job queued (no worker runs in this app).
    let (code, first) = admin_post(&app, &path).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["item_id"], item_id.as_str());
    assert_eq!(first["result"], "enqueued");
    let job_id = first["job_id"].as_str().unwrap().to_owned();
    let (job_type, status, args): (String, String, Value) = sqlx::query_as(
        "select job_type, status, convert_from(job, 'UTF8')::jsonb from apalis.jobs where id = $1",
    )
    .bind(&job_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (job_type.as_str(), status.as_str()),
        ("plaid-sync.sync-item", "Pending")
    );
    assert_eq!(args, json!({"plaid_item_id": id}));
    let item_status: String = sqlx::query_scalar("select sync_status from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(item_status, "sync_needed");

    // Again before it ran: the same job covers it.
    let (code, again) = admin_post(&app, &path).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(again["result"], "already_queued");
    assert_eq!(again["job_id"], job_id.as_str());
    assert_eq!(pending_sync_jobs(&app, id).await, 1);

    // Unknown and removed items: 404. Waiting for reauth: 409.
    let (code, body) = admin_post(&app, "/api/admin/items/no-such-item/sync").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    Item {
        item_id: "removed",
        lifecycle: "removed",
        removed_at: Some(db_now(&app.pool).await),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    let (code, _) = admin_post(&app, "/api/admin/items/removed/sync").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    Item {
        item_id: "reauth",
        sync_status: "needs_reauth",
        reauth_needed_at: Some(db_now(&app.pool).await),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    let (code, body) = admin_post(&app, "/api/admin/items/reauth/sync").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("awaiting_reauth"))
    );

    // Without the admin token: 401, nothing queued.
    let response = app
        .http
        .post(format!("{}{path}", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(pending_sync_jobs(&app, id).await, 1);
    app.stop().await;
}

// ---------- the rollup ----------

#[tokio::test]
async fn series_buckets_the_rollup_and_the_pruner_keeps_seven_days() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    // Counters in two shards of one minute, a gauge sampled twice in one bucket.
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value) values
             (date_trunc('minute', now()), 'webhook', 0, 2),
             (date_trunc('minute', now()), 'webhook', 5, 3),
             (date_trunc('minute', now()) - interval '1 minute', 'sync_synced', 1, 4),
             (date_trunc('minute', now()) - interval '20 minutes', 'sync_failed', 0, 1),
             (date_trunc('minute', now()) - interval '20 minutes', 'lag_max_seconds', 0, 70),
             (date_trunc('minute', now()) - interval '21 minutes', 'lag_max_seconds', 0, 90),
             (date_trunc('minute', now()) - interval '8 days', 'webhook', 0, 9)",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let (code, s) = admin_get(&app, "/api/admin/dashboard/series?hours=1&step=10").await;
    assert_eq!(code, StatusCode::OK, "{s}");
    assert_eq!(
        (s["buckets"].as_i64(), s["step_minutes"].as_i64()),
        (Some(6), Some(10))
    );
    // The last bucket holds the current minute and the 9 before it.
    assert_eq!(s["counters"]["webhook"], json!([0, 0, 0, 0, 0, 5]));
    assert_eq!(s["counters"]["sync_synced"], json!([0, 0, 0, 0, 0, 4]));
    assert_eq!(s["counters"]["sync_failed"], json!([0, 0, 0, 1, 0, 0]));
    assert_eq!(
        s["counters"]["sync_retry"],
        json!([0, 0, 0, 0, 0, 0]),
        "zero-filled"
    );
    assert_eq!(
        s["gauges"]["lag_max_seconds"],
        json!([null, null, null, 90, null, null])
    );
    assert_eq!(
        s["gauges"]["lag_p95_seconds"],
        json!([null, null, null, null, null, null])
    );

    // The pruner's step: rows older than 7 days go.
    assert_eq!(rollup::prune(&app.pool).await.unwrap(), 1);
    let left: i64 = sqlx::query_scalar("select count(*) from metrics_minutely")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 6);
    app.stop().await;
}

#[tokio::test]
async fn webhooks_and_sync_runs_are_counted_in_the_rollup() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user_with_token("rollup@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    for _ in 0..2 {
        post_webhook(
            &app,
            &hook.body,
            &[("plaid-verification", hook.verification.as_str())],
        )
        .await;
    }
    // The seeded item has no access token: its sync fails for good. (If the
    // duplicate arrived while the first run was going, a second run follows
    // and fails too: wait for the item to settle, not just for a count.)
    wait_until(
        "the sync run to be counted and the item failed",
        Duration::from_secs(30),
        || async {
            let (failed, status): (Option<i64>, String) = sqlx::query_as(
                "select (select sum(value)::bigint from metrics_minutely where kind = 'sync_failed'),
                    (select sync_status from plaid_items where id = $1)",
            )
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
            (failed.unwrap_or(0) >= 1 && status == "failed").then_some(())
        },
    )
    .await;
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "select kind, sum(value)::bigint from metrics_minutely where kind like 'webhook%' group by kind order by kind",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(counted, [("webhook".into(), 1), ("webhook_duplicate".into(), 1)]);
    let status: String = sqlx::query_scalar("select sync_status from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");

    app.stop().await;
}

#[tokio::test]
async fn the_sampler_records_lag_once_a_minute_whoever_runs_it() {
    // API only: no sampler of the app's own races this test's.
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("sampler@example.com").await;
    assert!(
        !sampler::sample_once(&app.pool).await.unwrap(),
        "nothing to sample without items"
    );
    Item {
        item_id: "fresh",
        last_synced_at: Some(db_now(&app.pool).await - Ago::minutes(3)),
        ..Item::default()
    }
    .insert(&app.pool, user.id)
    .await;
    assert!(sampler::sample_once(&app.pool).await.unwrap());
    // A minute boundary between the two calls would make the second one sample too.
    let again = sampler::sample_once(&app.pool).await.unwrap();
    let (samples, max, p95): (i64, i64, i64) = sqlx::query_as(
        "select count(*), max(value) filter (where kind = 'lag_max_seconds'),
                max(value) filter (where kind = 'lag_p95_seconds')
         from metrics_minutely",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(samples, if again { 4 } else { 2 });
    assert!((180..240).contains(&max), "{max}");
    assert!((180..240).contains(&p95), "{p95}");
    app.stop().await;
}

// ---------- the listener: auth, dashboard, board ----------

#[tokio::test]
async fn every_operator_route_needs_the_admin_token() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    for path in [
        "/",
        "/dashboard",
        "/dashboard/app.js",
        "/metrics",
        "/api/admin/status",
        "/api/admin/attention",
        "/api/admin/dashboard/series",
        "/api/v1/queues",
        "/queues/plaid-sync.sync-item",
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.admin_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(response.headers().contains_key("www-authenticate"), "{path}");
        let wrong = app
            .http
            .get(format!("{}{path}", app.admin_url))
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let right = app
            .http
            .get(format!("{}{path}", app.admin_url))
            .basic_auth("admin", Some(ADMIN_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{path}");
    }
    let (code, body) = admin_get(&app, "/api/admin/no-such-route").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    app.stop().await;

    let closed = TestApp::spawn_with(|vars| drop(vars.remove("ADMIN_TOKEN")), Role::Api).await;
    for path in [
        "/",
        "/dashboard",
        "/metrics",
        "/api/admin/status",
        "/api/v1/queues",
    ] {
        let response = closed
            .http
            .get(format!("{}{path}", closed.admin_url))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    closed.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let get = |path: &'static str| {
        app.http
            .get(format!("{}{path}", app.admin_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let page = get("/dashboard").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    for needle in [
        "/dashboard/app.js",
        "/dashboard/style.css",
        "tile-lag",
        "tile-webhooks",
        "tile-failures",
        "tile-reauth",
        "tile-billing",
        "href=\"/\"",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    let js = get("/dashboard/app.js").await.unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let js = js.text().await.unwrap();
    for route in [
        "/api/admin/status",
        "/api/admin/dashboard/series",
        "/api/admin/attention",
        "/api/admin/items/",
    ] {
        assert!(js.contains(route), "{route}");
    }
    let css = get("/dashboard/style.css").await.unwrap();
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(
        get("/dashboard/other.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn the_board_is_mounted_at_the_root_with_every_queue_registered() {
    assert_eq!(plaid_sync::http::board::REGISTERED, QUEUES);
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    // A job in every queue, so each queue's task list decodes a real row.
    let mut conn = app.pool.acquire().await.unwrap();
    workflows::jobs::enqueue(
        &mut conn,
        &workflows::jobs::sync_item::SyncItem { plaid_item_id: 7 },
        None,
    )
    .await
    .unwrap();
    drop(conn);

    let (code, queues) = admin_get(&app, "/api/v1/queues").await;
    assert_eq!(code, StatusCode::OK, "{queues}");
    assert!(
        queues
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "plaid-sync.sync-item")
    );
    for queue in QUEUES {
        let (code, stats) = admin_get(&app, &format!("/api/v1/queues/{queue}/stats")).await;
        assert_eq!(code, StatusCode::OK, "{queue}");
        assert!(stats.is_array(), "{queue}: {stats}");
        let (code, tasks) = admin_get(
            &app,
            &format!("/api/v1/queues/{queue}/tasks?status=Pending&page=1"),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{queue}: {tasks}");
    }
    let (_, tasks) = admin_get(
        &app,
        "/api/v1/queues/plaid-sync.sync-item/tasks?status=Pending&page=1",
    )
    .await;
    assert_eq!(
        tasks[0]["args"],
        json!({"plaid_item_id": 7}),
        "typed registration decodes arguments"
    );

    // The UI: index.html at the root and at its client-side routes, and its wasm.
    for path in ["/", "/queues/plaid-sync.sync-item"] {
        let response = app
            .http
            .get(format!("{}{path}", app.admin_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap().contains("Apalis Board"), "{path}");
    }
    app.stop().await;
}

// ---------- at scale ----------

/// One `EXPLAIN (ANALYZE, FORMAT JSON)`: execution time (ms) and the plan's
/// node types with their index names.
async fn explain(pool: &PgPool, sql: &str, bind: Option<i64>) -> (f64, Vec<String>) {
    let text = format!("explain (analyze, buffers, format json) {sql}");
    let query = sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(text));
    let plan: Value = match bind {
        Some(b) => query.bind(b).fetch_one(pool).await.unwrap(),
        None => query.fetch_one(pool).await.unwrap(),
    };
    fn nodes(node: &Value, out: &mut Vec<String>) {
        let kind = node["Node Type"].as_str().unwrap_or("?");
        match node["Index Name"].as_str() {
            Some(index) => out.push(format!("{kind} on {index}")),
            None => out.push(format!(
                "{kind}{}",
                node["Relation Name"]
                    .as_str()
                    .map(|r| format!(" on {r}"))
                    .unwrap_or_default()
            )),
        }
        for child in node["Plans"].as_array().into_iter().flatten() {
            nodes(child, out);
        }
    }
    let mut out = Vec::new();
    nodes(&plan[0]["Plan"], &mut out);
    (plan[0]["Execution Time"].as_f64().unwrap(), out)
}

#[tokio::test]
#[ignore = "seeds 1,000,000 items and 1,000,000 jobs (about a minute); run with --ignored"]
async fn status_and_metrics_queries_stay_fast_with_a_million_items() {
    let (db, pool) = crate::support::TestDb::migrated().await;
    sqlx::query("insert into users (email) values ('bulk@example.com')")
        .execute(&pool)
        .await
        .unwrap();
    // 1,000,000 items: 1 % failed, 2 % needs_reauth, 10 % sync_needed, 0.5 %
    // pending_cleanup, 4 % removed, lags spread over a day.
    sqlx::query(
        "insert into plaid_items (user_id, item_id, sync_status, lifecycle, last_synced_at, created_at,
                                  reauth_needed_at, cleanup_notified_at, cleanup_due_at, removed_at, sync_status_changed_at)
         select (select min(id) from users), 'bulk-' || g,
           case when g % 100 = 0 then 'failed' when g % 50 = 1 then 'needs_reauth' when g % 10 = 2 then 'sync_needed' else 'active' end,
           case when g % 200 = 3 then 'pending_cleanup' when g % 25 = 4 then 'removed' else 'active' end,
           case when g % 1000 = 5 then null else now() - make_interval(secs => g % 86400) end,
           now() - interval '60 days',
           case when g % 50 = 1 then now() - make_interval(days => g % 30) end,
           case when g % 200 = 3 then now() - interval '1 day' end,
           case when g % 200 = 3 then now() + make_interval(days => g % 7) end,
           case when g % 25 = 4 then now() - interval '3 days' end,
           now() - make_interval(days => g % 40)
         from generate_series(1, 1000000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    // 1,000,000 job rows, 1 % not done (what JOB_RETENTION keeps on a busy day).
    sqlx::query(
        "insert into apalis.jobs (job, id, job_type, status, run_at, done_at, max_attempts)
         select '\\x7b7d', 'bulk' || g,
           (array['plaid-sync.sync-item', 'plaid-sync.cleanup-due', 'plaid-sync.prune-jobs'])[g % 3 + 1],
           case when g % 100 = 0 then 'Pending' when g % 997 = 0 then 'Failed' when g % 1999 = 0 then 'Killed' else 'Done' end,
           now() - make_interval(secs => g % 3600), now(), 5
         from generate_series(1, 1000000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A day of rollup: 1,440 minutes x 12 kinds.
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value)
         select date_trunc('minute', now()) - make_interval(mins => m), k, 0, m % 7
         from generate_series(0, 1439) m,
              unnest(array['webhook', 'webhook_duplicate', 'sync_synced', 'sync_retry', 'sync_failed', 'sync_needs_reauth',
                            'sync_error', 'sync_not_ready', 'sync_deferred', 'sync_skipped', 'lag_max_seconds', 'lag_p95_seconds']) k",
    )
    .execute(&pool)
    .await
    .unwrap();
    for table in ["plaid_items", "apalis.jobs", "metrics_minutely"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("vacuum analyze {table}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let fresh = status::lag_population(&mut conn).await.unwrap();

    // The webhooks query's two kinds, inlined (the helper binds one integer at most).
    let webhooks_sql = status::WEBHOOKS_SQL
        .replace("$1", "'webhook'")
        .replace("$2", "'webhook_duplicate'");
    let cases: [(&str, &str, Option<i64>); 9] = [
        ("items by lifecycle, sync_status", status::ITEM_COUNTS_SQL, None),
        ("sync lag max + p95", status::SYNC_LAG_SQL, Some(fresh)),
        ("webhooks (rollup)", &webhooks_sql, None),
        ("oldest reauth", status::REAUTH_OLDEST_SQL, None),
        ("next cleanup", status::NEXT_CLEANUP_SQL, None),
        ("queue figures", workflows::monitoring::gauges::QUEUES_SQL, None),
        (
            "lag max (metrics)",
            workflows::monitoring::gauges::LAG_MAX_SQL,
            None,
        ),
        (
            "attention list",
            workflows::monitoring::attention::LIST_SQL,
            Some(50),
        ),
        ("lag population (sampler)", status::LAG_POPULATION_SQL, None),
    ];
    println!("\nEXPLAIN ANALYZE at 1,000,000 items and 1,000,000 jobs ({fresh} fresh-expected items):");
    for (name, sql, bind) in cases {
        let (ms, plan) = explain(&pool, sql, bind).await;
        println!("  {name:<28} {ms:>8.1} ms  {}", plan.join(" > "));
        assert!(
            !plan
                .iter()
                .any(|n| n == "Seq Scan on plaid_items" || n == "Seq Scan on jobs"),
            "{name} scans a big table: {plan:?}"
        );
        assert!(ms < 1_000.0, "{name} took {ms} ms");
    }

    // End to end, as the routes run them.
    let started = std::time::Instant::now();
    let checklist = status::checklist(&mut conn, Duration::from_secs(86_400))
        .await
        .unwrap();
    let checklist_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = std::time::Instant::now();
    workflows::monitoring::gauges::render(&mut conn, QUEUES)
        .await
        .unwrap();
    let gauges_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = std::time::Instant::now();
    rollup::series(&mut conn, 24 * 60, 5).await.unwrap();
    let series_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = std::time::Instant::now();
    workflows::monitoring::attention::list(&mut conn, 50)
        .await
        .unwrap();
    let attention_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  end to end: status {checklist_ms:.0} ms, /metrics gauges {gauges_ms:.0} ms, series {series_ms:.0} ms, attention {attention_ms:.0} ms"
    );
    assert_eq!(checklist.failures.failed, 10_000);
    assert!(checklist_ms < 2_000.0 && gauges_ms < 2_000.0);
    drop(conn);
    pool.close().await;
    db.drop_now().await;
}

//! The dashboard and the board in a real browser: Debian's headless Chromium,
//! driven over the DevTools protocol (`support::browser`).
//!
//! Skipped (with a message) only when no `chromium` exists and `CI` is unset;
//! in CI it must run (`.ci/run` installs Chromium). Screenshots go to
//! `<target>/screenshots/`; with `UPDATE_DOCS_SCREENSHOT=1` the dashboard's is
//! also copied to `docs/dashboard.png` (the README's picture).

use std::{path::PathBuf, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use workflows::jobs::runtime::QUEUES;

use crate::support::{TestApp, app::ADMIN_TOKEN, browser, wait_until};

/// `<target>/screenshots` (the target directory this test binary was built in).
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("screenshots")
}

/// Per-minute webhook count of the seeded rollup, `m` minutes ago: a slow
/// daily wave with some jitter.
fn webhooks_at(m: i64) -> i64 {
    (9.0 + 5.0 * (m as f64 / 150.0).sin()).round() as i64 + m * 7 % 4
}

/// Seeds a small fleet: 30 healthy items synced 1..30 minutes ago, 2 failed,
/// 1 waiting for reauth, 1 in its cleanup grace window, 3 removed; and 23 h of
/// rollup (webhooks, sync outcomes, sampled lag), none of it in the last-hour
/// window except minutes 0..=30, so the tiles' figures are exact for 30 minutes.
async fn seed(pool: &PgPool, user_id: i64) {
    let now: DateTime<Utc> = sqlx::query_scalar("select now()").fetch_one(pool).await.unwrap();
    sqlx::query(
        "insert into plaid_items (user_id, item_id, institution_id, sync_status, last_synced_at)
         select $1, 'healthy-' || k, 'ins_' || (k % 3 + 1), 'active', $2 - make_interval(mins => k)
         from generate_series(1, 30) k",
    )
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into plaid_items (user_id, item_id, institution_id, sync_status, lifecycle, last_synced_at,
                                  sync_status_changed_at, reauth_needed_at, cleanup_notified_at, cleanup_due_at,
                                  removed_at, last_error_code, last_sync_error) values
         ($1, 'item-down-1', 'ins_109508', 'failed', 'active', $2 - interval '3 hours', $2 - interval '2 hours',
          null, null, null, null, 'INSTITUTION_DOWN', 'the institution is not responding; retrying with backoff'),
         ($1, 'item-down-2', 'ins_109508', 'failed', 'active', $2 - interval '3 hours', $2 - interval '90 minutes',
          null, null, null, null, 'INSTITUTION_DOWN', 'the institution is not responding; retrying with backoff'),
         ($1, 'item-login', 'ins_3', 'needs_reauth', 'active', $2 - interval '3 days', $2 - interval '3 days',
          $2 - interval '3 days', null, null, null, 'ITEM_LOGIN_REQUIRED', 'the user must log in again'),
         ($1, 'item-dormant', 'ins_4', 'active', 'pending_cleanup', $2 - interval '40 days', $2 - interval '40 days',
          null, $2 - interval '2 days', $2 + interval '5 days', null, null, null),
         ($1, 'item-gone-1', 'ins_5', 'active', 'removed', $2 - interval '60 days', $2, null, null, null, $2, null, null),
         ($1, 'item-gone-2', 'ins_5', 'active', 'removed', $2 - interval '60 days', $2, null, null, null, $2, null, null),
         ($1, 'item-gone-3', 'ins_5', 'active', 'removed', $2 - interval '60 days', $2, null, null, null, $2, null, null)",
    )
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    let minutes: Vec<i64> = (0..=30).chain(61..=1380).collect();
    let webhooks: Vec<i64> = minutes.iter().map(|m| webhooks_at(*m)).collect();
    sqlx::query(
        "insert into metrics_minutely (minute, kind, shard, value)
         select date_trunc('minute', now()) - make_interval(mins => m::int), k.kind,
                0,
                case k.kind
                  when 'webhook' then w
                  when 'webhook_duplicate' then (m % 5 = 0)::int
                  when 'sync_synced' then w - 1 + (m % 3)
                  when 'sync_retry' then (m % 47 = 0)::int
                  when 'sync_failed' then (m % 233 = 0)::int
                  when 'lag_max_seconds' then (1500 + 500 * sin(m / 200.0) + m * 13 % 90)::bigint
                  else (600 + 150 * sin(m / 200.0 + 1) + m * 7 % 40)::bigint end
         from unnest($1::bigint[], $2::bigint[]) as s(m, w)
         cross join (values ('webhook'), ('webhook_duplicate'), ('sync_synced'), ('sync_retry'), ('sync_failed'),
                            ('lag_max_seconds'), ('lag_p95_seconds')) as k(kind)
         on conflict do nothing",
    )
    .bind(&minutes)
    .bind(&webhooks)
    .execute(pool)
    .await
    .unwrap();
    // The last stored event (its delivery count is in the rollup above).
    sqlx::query(
        "insert into plaid_webhook_events (dedupe_key, item_id, webhook_type, webhook_code, body, received_at)
         values ('v1:seeded', 'healthy-1', 'TRANSACTIONS', 'SYNC_UPDATES_AVAILABLE', '{}', $1 - interval '40 seconds')",
    )
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
}

async fn text(b: &mut browser::Browser, selector: &str) -> String {
    let selector = serde_json::to_string(selector).unwrap();
    b.eval(&format!("document.querySelector({selector}).textContent.trim()"))
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until the page has loaded its tiles and the seeded attention list.
async fn wait_until_filled(b: &mut browser::Browser) {
    b.wait_for(
        "the tiles and the attention list to be filled",
        "document.body.dataset.loaded === 'true' && document.querySelectorAll('#attention tbody tr').length === 4",
        Duration::from_secs(30),
    )
    .await;
}

/// Clicks "sync now" on `item-down-1` (real mouse events) and returns the id
/// of the job the page lists under Recent actions.
async fn sync_now_on_first_failed_item(b: &mut browser::Browser) -> String {
    b.click("tr[data-item-id=\"item-down-1\"] button.sync-now").await;
    b.wait_for(
        "the queued job to appear under Recent actions",
        "document.querySelector('#actions li[data-job-id]')?.dataset.jobId",
        Duration::from_secs(15),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned()
}

#[tokio::test]
async fn the_dashboard_shows_seeded_figures_queues_a_sync_on_click_and_the_board_lists_every_queue() {
    let Some(chromium) = browser::chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test, but no chromium was found (.ci/run installs it with apt-get)"
        );
        eprintln!("SKIPPED the browser test: no chromium binary (apt-get install -y chromium)");
        return;
    };
    // Arrange: an app with workers (the board lists their queues; the queued job runs).
    let app = TestApp::spawn().await;
    let (user, _) = app.user_with_token("fleet@example.com").await;
    seed(&app.pool, user.id).await;
    let mut b = browser::Browser::launch(&chromium, 1400, 1000).await;
    b.basic_auth("admin", ADMIN_TOKEN).await;

    // Act: load the dashboard.
    b.navigate(&format!("{}/dashboard", app.admin_url)).await;
    wait_until_filled(&mut b).await;

    // Assert: the five tiles, from the seeded rows.
    assert_eq!(text(&mut b, "#tile-failures .value").await, "5.9 %");
    assert_eq!(
        text(&mut b, "#tile-failures .detail").await,
        "2 failed of 34 items"
    );
    let failures = b
        .eval("document.querySelector('#tile-failures').dataset.state")
        .await;
    assert_eq!(failures, "red");
    // p95 of 30 items synced 1..30 minutes ago: the 29-minute one (nearest rank).
    assert_eq!(text(&mut b, "#tile-lag .value").await, "29 min");
    assert!(
        text(&mut b, "#tile-lag .detail")
            .await
            .starts_with("max 30 min · 30 items")
    );
    assert_eq!(
        b.eval("document.querySelector('#tile-lag').dataset.state").await,
        "green"
    );
    let last_hour: i64 = (0..=30).map(webhooks_at).sum();
    assert_eq!(text(&mut b, "#tile-webhooks .value").await, last_hour.to_string());
    assert_eq!(
        b.eval("document.querySelector('#tile-webhooks').dataset.state")
            .await,
        "green"
    );
    assert_eq!(text(&mut b, "#tile-reauth .value").await, "1");
    assert!(
        text(&mut b, "#tile-reauth .detail")
            .await
            .starts_with("oldest waiting 3 d")
    );
    assert_eq!(text(&mut b, "#tile-billing .value").await, "1");
    assert!(text(&mut b, "#tile-billing .detail").await.contains("3 removed"));
    assert_eq!(text(&mut b, "#overall").await, "act now");
    // The charts are drawn (inline SVG lines) from the rollup.
    let lines = b
        .eval("document.querySelectorAll('.chart svg polyline').length")
        .await;
    assert!(lines.as_i64().unwrap() >= 6, "{lines}");
    // The attention list: failed (oldest first), reauth (no button), pending cleanup.
    let reasons = b
        .eval("[...document.querySelectorAll('#attention tbody tr')].map(r => r.dataset.itemId + ':' + r.dataset.reason)")
        .await;
    assert_eq!(
        reasons,
        serde_json::json!([
            "item-down-1:failed",
            "item-down-2:failed",
            "item-login:needs_reauth",
            "item-dormant:pending_cleanup"
        ])
    );
    assert_eq!(
        b.eval("document.querySelector('tr[data-item-id=\"item-login\"] button').disabled")
            .await,
        true
    );
    assert_eq!(
        b.eval("document.querySelector('#board-link').getAttribute('href')")
            .await,
        "/"
    );

    // Act: "sync now" on a failed item, with real mouse events.
    let job_id = sync_now_on_first_failed_item(&mut b).await;

    // Assert: the job exists, and the page follows it on the board's API until it ran.
    let (queue, args): (String, Value) =
        sqlx::query_as("select job_type, convert_from(job, 'UTF8')::jsonb from apalis.jobs where id = $1")
            .bind(&job_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let item_pk: i64 = sqlx::query_scalar("select id from plaid_items where item_id = 'item-down-1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queue, "plaid-sync.sync-item");
    assert_eq!(args["plaid_item_id"], item_pk);
    assert!(
        text(&mut b, "#actions li")
            .await
            .contains(&format!("queued job {job_id}"))
    );
    b.wait_for(
        "the job's status to reach Done",
        "document.querySelector('#actions .job-status')?.dataset.status === 'Done'",
        Duration::from_secs(30),
    )
    .await;
    wait_until("the job row to be Done", Duration::from_secs(10), || async {
        let status: String = sqlx::query_scalar("select status from apalis.jobs where id = $1")
            .bind(&job_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (status == "Done").then_some(())
    })
    .await;
    let shots = screenshots();
    b.screenshot(&shots.join("dashboard.png")).await;
    if std::env::var_os("UPDATE_DOCS_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(shots.join("dashboard.png"), docs.join("dashboard.png")).unwrap();
    }

    // The board at "/": its wasm UI loads and its overview lists every queue.
    b.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 1400, "height": 1800, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    b.navigate(&format!("{}/", app.admin_url)).await;
    let every_queue = QUEUES
        .iter()
        .map(|q| format!("document.body.innerText.includes('{q}')"))
        .collect::<Vec<_>>()
        .join(" && ");
    b.wait_for(
        "the board to list every queue",
        &every_queue,
        Duration::from_secs(45),
    )
    .await;
    assert!(text(&mut b, "body").await.contains("Overview"));
    b.screenshot(&shots.join("board.png")).await;
    eprintln!("screenshots: {}", shots.display());
    drop(b);
    app.stop().await;
}

/// The other way operators log in: credentials in the URL
/// (`http://admin:TOKEN@host:port/dashboard`), no extra headers. fetch()
/// refuses a URL that carries credentials, so the page must build its request
/// URLs from `location.origin`; the browser then reuses the login it cached.
#[tokio::test]
async fn the_dashboard_works_when_opened_with_credentials_in_the_url() {
    let Some(chromium) = browser::chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser test");
        eprintln!("SKIPPED the browser test: no chromium binary");
        return;
    };
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("url-login@example.com").await;
    seed(&app.pool, user.id).await;
    let mut b = browser::Browser::launch(&chromium, 1400, 1000).await;

    let with_credentials = app
        .admin_url
        .replacen("http://", &format!("http://admin:{ADMIN_TOKEN}@"), 1);
    b.navigate(&format!("{with_credentials}/dashboard")).await;
    wait_until_filled(&mut b).await;
    assert_eq!(text(&mut b, "#tile-failures .value").await, "5.9 %");

    // A state change from the page passes the cross-site guard (same origin, JSON).
    let job_id = sync_now_on_first_failed_item(&mut b).await;
    let queued: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where id = $1")
        .bind(&job_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queued, 1);
    drop(b);
    app.stop().await;
}

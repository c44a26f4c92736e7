//! An oversized body on every POST route: a JSON 413 and nothing stored,
//! including on routes whose handler never reads a body (they must not act).

use reqwest::{Method, StatusCode};

use super::fixtures::{party, send, user_rows, work_state};
use crate::support::{
    TestApp,
    app::{ADMIN_TOKEN, JOBS_SECRET},
};

/// Over every limit we have (the webhook's 256 KiB, the API's 64 KiB, axum's 2 MiB),
/// and a valid JSON object, so only its size can be the reason for a refusal.
fn huge_json() -> Vec<u8> {
    format!(
        r#"{{"item_id":"x","public_token":"x","webhook_type":"TRANSACTIONS","pad":"{}"}}"#,
        "x".repeat(3 * 1024 * 1024)
    )
    .into_bytes()
}

#[tokio::test]
async fn every_post_route_answers_413_to_an_oversized_body_and_stores_nothing() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let alice = party(&app, "alice@example.com").await;
    sqlx::query("delete from sync_pending")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("delete from apalis.jobs")
        .execute(&app.pool)
        .await
        .unwrap();
    let (state_before, rows_before) = (
        work_state(&app.pool).await,
        user_rows(&app.pool, alice.user_id).await,
    );
    let user = format!("Bearer {}", alice.token);
    let jobs = format!("Bearer {JOBS_SECRET}");
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let account = alice.account_ids[0];
    let routes: Vec<(String, &str)> = vec![
        (format!("{}/webhook/plaid", app.public_url), ""),
        (format!("{}/api/plaid/link-token", app.public_url), &user),
        (format!("{}/api/plaid/exchange-token", app.public_url), &user),
        (format!("{}/api/accounts/{account}/sync", app.public_url), &user),
        (
            format!("{}/api/accounts/{account}/refresh-metadata", app.public_url),
            &user,
        ),
        (format!("{}/api/jobs/plaid/process", app.public_url), &jobs),
        (format!("{}/api/jobs/plaid/safety-net", app.public_url), &jobs),
        (format!("{}/api/jobs/plaid/cleanup", app.public_url), &jobs),
        (
            format!("{}/api/admin/items/{}/sync", app.admin_url, alice.item_id),
            &admin,
        ),
        (
            format!("{}/api/admin/jobs/01NOSUCHJOB/retry", app.admin_url),
            &admin,
        ),
        (
            format!("{}/api/admin/jobs/01NOSUCHJOB/kill", app.admin_url),
            &admin,
        ),
    ];
    let body = huge_json();
    for (url, auth) in &routes {
        let auth = (!auth.is_empty()).then_some(*auth);
        let answer = send(&app, Method::POST, url, auth, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{url}: {answer:?}");
        answer.assert_error(url);
        assert_eq!(answer.json()["error"], "body_too_large", "{url}");
    }
    assert_eq!(work_state(&app.pool).await, state_before);
    assert_eq!(user_rows(&app.pool, alice.user_id).await, rows_before);
    app.stop().await;
}

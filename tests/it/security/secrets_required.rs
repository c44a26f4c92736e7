//! The jobs routes (`JOBS_SECRET`) and the operator listener (`ADMIN_TOKEN`):
//! every route, every kind of missing or wrong credential, 401 and nothing changed.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::fixtures::{Party, party, repairable_jobs, send, work_state};
use crate::support::{
    TestApp,
    app::{ADMIN_TOKEN, JOBS_SECRET},
};

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Credentials that must not open a route guarded by `secret`: none, wrong,
/// the other listener's secret, a user's API token, near misses of the secret.
fn wrong_credentials(secret: &str, other_secret: &str, api_token: &str) -> Vec<Option<String>> {
    vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some("Bearer wrong".into()),
        Some(format!("Bearer {other_secret}")),
        Some(format!("Bearer {api_token}")),
        Some(format!("Bearer {secret}x")),
        Some(format!("Bearer {}", &secret[..secret.len() - 1])),
        Some(format!("Bearer {}", secret.to_uppercase())),
        Some(format!("Token {secret}")),
        Some(secret.to_owned()),
        Some(basic(secret, "wrong")),
        Some(basic("admin", "")),
        Some("Basic !!!not-base64!!!".into()),
    ]
}

/// An item marked `sync_needed` without a job: what `process` would enqueue.
async fn item_due_for_sync(app: &TestApp, who: &Party) {
    sqlx::query("delete from sync_pending")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("delete from apalis.jobs")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update plaid_items set sync_status = 'sync_needed' where item_id = $1")
        .bind(&who.item_id)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn jobs_routes_refuse_missing_and_wrong_secrets_and_enqueue_nothing() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let alice = party(&app, "alice@example.com").await;
    item_due_for_sync(&app, &alice).await;
    let before = work_state(&app.pool).await;
    let routes = [
        ("/api/jobs/plaid/process", Some(json!({}))),
        (
            "/api/jobs/plaid/process",
            Some(json!({ "item_id": alice.item_id })),
        ),
        ("/api/jobs/plaid/process", None),
        ("/api/jobs/plaid/safety-net", None),
        ("/api/jobs/plaid/cleanup", None),
    ];
    let mut tried = 0;
    for (path, body) in &routes {
        for auth in wrong_credentials(JOBS_SECRET, ADMIN_TOKEN, &alice.token) {
            let body = body.as_ref().map(|b| b.to_string().into_bytes());
            let answer = send(
                &app,
                Method::POST,
                &format!("{}{path}", app.public_url),
                auth.as_deref(),
                body.as_deref(),
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{path} with {auth:?}: {answer:?}"
            );
            answer.assert_error(path);
            tried += 1;
        }
    }
    assert_eq!(
        work_state(&app.pool).await,
        before,
        "a refused call changed something"
    );
    println!("{tried} refused jobs calls, nothing changed");

    // Control: the right secret does enqueue, so the refusals above blocked real work.
    let answer = send(
        &app,
        Method::POST,
        &format!("{}/api/jobs/plaid/process", app.public_url),
        Some(&format!("Bearer {JOBS_SECRET}")),
        None,
    )
    .await;
    assert_eq!(
        (answer.status, answer.json()["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    app.stop().await;
}

#[tokio::test]
async fn every_operator_route_refuses_missing_and_wrong_tokens_and_changes_nothing() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let alice = party(&app, "alice@example.com").await;
    let (failed, pending) = repairable_jobs(&app).await;
    let before = work_state(&app.pool).await;
    let routes = [
        (Method::GET, "/".to_owned()),
        (Method::GET, "/dashboard".to_owned()),
        (Method::GET, "/dashboard/app.js".to_owned()),
        (Method::GET, "/metrics".to_owned()),
        (Method::GET, "/api/admin/status".to_owned()),
        (
            Method::GET,
            "/api/admin/dashboard/series?hours=24&step=5".to_owned(),
        ),
        (Method::GET, "/api/admin/attention?limit=5".to_owned()),
        (Method::GET, "/api/admin/no-such-route".to_owned()),
        (Method::GET, "/api/v1/queues".to_owned()),
        (Method::POST, format!("/api/admin/items/{}/sync", alice.item_id)),
        (Method::POST, format!("/api/admin/jobs/{failed}/retry")),
        (Method::POST, format!("/api/admin/jobs/{pending}/kill")),
    ];
    let mut tried = 0;
    for (method, path) in &routes {
        for auth in wrong_credentials(ADMIN_TOKEN, JOBS_SECRET, &alice.token) {
            let answer = send(
                &app,
                method.clone(),
                &format!("{}{path}", app.admin_url),
                auth.as_deref(),
                None,
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}: {answer:?}"
            );
            answer.assert_error(path);
            tried += 1;
        }
    }
    assert_eq!(
        work_state(&app.pool).await,
        before,
        "a refused call changed something"
    );
    println!("{tried} refused operator calls, nothing changed");

    // Control: the token as bearer or basic password does act.
    for auth in [format!("Bearer {ADMIN_TOKEN}"), basic("ops", ADMIN_TOKEN)] {
        let answer = send(
            &app,
            Method::GET,
            &format!("{}/api/admin/status", app.admin_url),
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    let answer = send(
        &app,
        Method::POST,
        &format!("{}/api/admin/jobs/{pending}/kill", app.admin_url),
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        Some(b"{}"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    app.stop().await;
}

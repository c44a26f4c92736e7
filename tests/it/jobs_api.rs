//! The jobs API and the `enqueue` commands.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    TestApp,
    app::JOBS_SECRET,
    plaid::{pending_sync_jobs, seed_item},
};

async fn post(app: &TestApp, secret: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(format!("{}/api/jobs/plaid/process", app.public_url));
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

async fn set_status(app: &TestApp, id: i64, status: &str) {
    sqlx::query("update plaid_items set sync_status = $2 where id = $1")
        .bind(id)
        .bind(status)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn process_enqueues_every_sync_needed_item_once_and_refuses_a_wrong_secret() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(seed_item(&app, user.id).await.1);
    }
    for id in &ids[..3] {
        set_status(&app, *id, "sync_needed").await;
    }
    set_status(&app, ids[3], "needs_reauth").await;

    assert_eq!(post(&app, None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(post(&app, Some("wrong"), None).await.0, StatusCode::UNAUTHORIZED);
    let prefix = &JOBS_SECRET[..JOBS_SECRET.len() - 1];
    assert_eq!(
        post(&app, Some(prefix), None).await.0,
        StatusCode::UNAUTHORIZED,
        "a prefix is not the secret"
    );
    assert_eq!(
        pending_sync_jobs(&app, ids[0]).await,
        0,
        "a refused call enqueues nothing"
    );

    let (status, body) = post(&app, Some(JOBS_SECRET), None).await;
    assert_eq!(
        (status, body["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(3))
    );
    for id in &ids[..3] {
        assert_eq!(pending_sync_jobs(&app, *id).await, 1);
    }
    assert_eq!(
        pending_sync_jobs(&app, ids[3]).await,
        0,
        "needs_reauth waits for the user"
    );
    // Again: every item already has a pending job.
    let (_, body) = post(&app, Some(JOBS_SECRET), Some(json!({}))).await;
    assert_eq!(body["enqueued"], 0);
    for id in &ids[..3] {
        assert_eq!(pending_sync_jobs(&app, *id).await, 1);
    }
    app.stop().await;
}

#[tokio::test]
async fn process_with_an_item_id_enqueues_that_item_and_404s_an_unknown_one() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let (other_item, other) = seed_item(&app, user.id).await;
    let (status, body) = post(&app, Some(JOBS_SECRET), Some(json!({ "item_id": item_id }))).await;
    assert_eq!(
        (status, body["enqueued"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    assert_eq!(pending_sync_jobs(&app, id).await, 1);
    assert_eq!(pending_sync_jobs(&app, other).await, 0);
    let (status, _) = post(&app, Some(JOBS_SECRET), Some(json!({ "item_id": "nope" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let _ = other_item;
    app.stop().await;
}

#[tokio::test]
async fn the_jobs_api_is_disabled_without_a_jobs_secret() {
    let app = TestApp::spawn_with(|v| drop(v.remove("JOBS_SECRET")), plaid_sync::cli::Role::Api).await;
    let (status, body) = post(&app, Some(JOBS_SECRET), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("jobs_disabled"))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_enqueue_commands_mark_and_enqueue_exactly_as_the_api_does() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let (_, other) = seed_item(&app, user.id).await;
    set_status(&app, other, "sync_needed").await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_plaid-sync"))
            .args(args)
            .envs(app.vars.iter())
            .output()
            .unwrap()
    };
    let out = run(&["enqueue", "sync", "--item", &item_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "enqueued: 1");
    assert_eq!(pending_sync_jobs(&app, id).await, 1);

    let out = run(&["enqueue", "process"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "enqueued: 1",
        "the marked item is already queued"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("progress:"));
    assert_eq!(pending_sync_jobs(&app, other).await, 1);

    let out = run(&["enqueue", "sync", "--item", "missing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no item"));
    app.stop().await;
}

//! Health, readiness and the OpenAPI document.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn healthz_readyz_and_openapi_answer() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let get = |path: &str| app.http.get(format!("{}{path}", app.public_url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ok");

    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/healthz", "/readyz", "/api/accounts"] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    assert!(doc["components"]["securitySchemes"]["api_token"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_while_migrations_are_pending() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    sqlx::query("delete from public._sqlx_migrations")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app
        .http
        .get(format!("{}/readyz", app.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "migrations_pending"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_client_id_is_kept() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let first = app
        .http
        .get(format!("{}/healthz", app.public_url))
        .send()
        .await
        .unwrap();
    let second = app
        .http
        .get(format!("{}/no-such-path", app.public_url))
        .send()
        .await
        .unwrap();
    let operator = app
        .http
        .get(format!("{}/metrics", app.admin_url))
        .send()
        .await
        .unwrap();
    let (a, b, c) = (
        id_of(&first).unwrap(),
        id_of(&second).unwrap(),
        id_of(&operator).unwrap(),
    );
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    assert_eq!(operator.status(), StatusCode::UNAUTHORIZED, "ids on refusals too");
    assert!(a != b && b != c && a.len() == 36, "fresh UUIDs: {a} {b} {c}");

    let kept = app
        .http
        .get(format!("{}/healthz", app.public_url))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&kept).as_deref(), Some("trace-me-42"));
    app.stop().await;
}

#[tokio::test]
async fn metrics_include_build_info_and_process_figures() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let body = app.scrape_metrics().await;
    let build = body
        .lines()
        .find(|l| l.starts_with("plaid_sync_build_info{"))
        .expect("build info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"),
        "{build}"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        let value: f64 = body
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(value > 0.0, "{name} = {value}");
    }
    app.stop().await;
}

//! Regressions for what `scripts/schemathesis.sh` found (docs/hostile-input.md):
//!
//! 1. `POST /api/plaid/link-token` with a body of the wrong shape (`{"item_id": {}}`)
//!    answered axum's plain-text 422, and `/api/jobs/plaid/process` an undocumented
//!    400: now both a documented JSON 400 `invalid_body`.
//! 2. The manual-sync routes answered 401 without a token, undocumented; a
//!    non-numeric account id was axum's plain-text 400 (now a JSON 404, like DELETE).
//! 3. Oversized bodies: `exchange-token` answered 400 and `link-token` a plain-text
//!    413; routes that never read their body acted on it. Now a documented JSON 413.
//!
//! The general form of the finding is checked here: every status these routes
//! answer to bad input is a JSON error body and is documented in `/openapi.json`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::fixtures::{Answer, send};
use crate::support::{TestApp, app::JOBS_SECRET};

/// Asserts `answer` has the contract's error body and that `/openapi.json`
/// documents its status for `method path` (the spec's templated path).
fn assert_documented(spec: &Value, method: &str, path: &str, answer: &Answer) {
    answer.assert_error(&format!("{method} {path}"));
    let status = answer.status.as_u16().to_string();
    let documented = &spec["paths"][path][method]["responses"][&status];
    assert!(
        documented.is_object(),
        "{method} {path} answered {status}, which /openapi.json does not document: {answer:?}"
    );
}

/// One probe: `method path` (its spec path `templated`) and the status it must answer.
struct Probe<'a> {
    method: Method,
    templated: &'a str,
    path: &'a str,
    auth: Option<&'a str>,
    body: Option<&'a [u8]>,
    expected: StatusCode,
}

/// A POST probe whose path is its own spec path.
fn post<'a>(path: &'a str, auth: Option<&'a str>, body: Option<&'a [u8]>, expected: StatusCode) -> Probe<'a> {
    Probe {
        method: Method::POST,
        templated: path,
        path,
        auth,
        body,
        expected,
    }
}

#[tokio::test]
async fn bad_input_answers_are_json_errors_with_documented_statuses() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let spec = send(
        &app,
        Method::GET,
        &format!("{}/openapi.json", app.public_url),
        None,
        None,
    )
    .await
    .json();
    let (user, jobs) = (format!("Bearer {token}"), format!("Bearer {JOBS_SECRET}"));
    let big = format!(r#"{{"item_id":"{}"}}"#, "x".repeat(100 * 1024)).into_bytes();
    let mut probes = vec![
        // 1. wrong shapes
        post(
            "/api/plaid/link-token",
            Some(&user),
            Some(br#"{"item_id": {}}"#),
            StatusCode::BAD_REQUEST,
        ),
        post(
            "/api/plaid/link-token",
            Some(&user),
            Some(b"{"),
            StatusCode::BAD_REQUEST,
        ),
        post(
            "/api/jobs/plaid/process",
            Some(&jobs),
            Some(br#"{"item_id": {}}"#),
            StatusCode::BAD_REQUEST,
        ),
        post(
            "/api/plaid/exchange-token",
            Some(&user),
            Some(br#"{"public_token": []}"#),
            StatusCode::BAD_REQUEST,
        ),
    ];
    // 2. the manual-sync routes: no token, and ids that are not numbers.
    for (templated, path, auth, expected) in [
        (
            "/api/accounts/{id}/sync",
            "/api/accounts/1/sync",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/api/accounts/{id}/refresh-metadata",
            "/api/accounts/1/refresh-metadata",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/api/accounts/{id}/sync",
            "/api/accounts/abc/sync",
            Some(user.as_str()),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/accounts/{id}/refresh-metadata",
            "/api/accounts/1e3/refresh-metadata",
            Some(&user),
            StatusCode::NOT_FOUND,
        ),
    ] {
        probes.push(Probe {
            templated,
            path,
            ..post(path, auth, None, expected)
        });
    }
    probes.push(Probe {
        method: Method::DELETE,
        templated: "/api/accounts/{id}",
        ..post("/api/accounts/abc", Some(&user), None, StatusCode::NOT_FOUND)
    });
    // 3. oversized bodies, on routes that read them and routes that do not.
    for (path, auth) in [
        ("/api/plaid/link-token", &user),
        ("/api/plaid/exchange-token", &user),
        ("/api/jobs/plaid/process", &jobs),
        ("/api/jobs/plaid/safety-net", &jobs),
        ("/api/jobs/plaid/cleanup", &jobs),
    ] {
        probes.push(post(path, Some(auth), Some(&big), StatusCode::PAYLOAD_TOO_LARGE));
    }
    probes.push(Probe {
        templated: "/api/accounts/{id}/sync",
        ..post(
            "/api/accounts/1/sync",
            Some(&user),
            Some(&big),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    });

    for probe in &probes {
        let url = format!("{}{}", app.public_url, probe.path);
        let answer = send(&app, probe.method.clone(), &url, probe.auth, probe.body).await;
        let method = probe.method.as_str().to_lowercase();
        assert_eq!(
            answer.status, probe.expected,
            "{method} {}: {answer:?}",
            probe.path
        );
        assert_documented(&spec, &method, probe.templated, &answer);
    }
    // Nothing ran: the refused jobs calls enqueued nothing.
    let enqueued: i64 = sqlx::query_scalar("select count(*) from apalis.jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(enqueued, 0);
    app.stop().await;
}

//! Cross-site requests to the operator listener (`http::same_origin`): a page
//! on another origin cannot make a logged-in operator's browser change
//! anything; the dashboard's own requests and non-browser clients still can.

use reqwest::StatusCode;

use super::fixtures::{repairable_jobs, work_state};
use crate::support::{TestApp, app::ADMIN_TOKEN};

/// A refused case: name, path, headers, expected status.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, StatusCode);

/// One POST to the operator listener with the admin login a browser would
/// attach by itself, and the given extra headers and body.
async fn post(app: &TestApp, path: &str, headers: &[(&str, String)], body: &str) -> (StatusCode, String) {
    let mut request = app
        .http
        .post(format!("{}{path}", app.admin_url))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn state_changes_from_other_origins_or_without_json_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (failed, pending) = repairable_jobs(&app).await;
    let own = app.admin_url.clone();
    let host = own.trim_start_matches("http://").to_owned();
    let form = ("content-type", "application/x-www-form-urlencoded".to_owned());
    let json = ("content-type", "application/json".to_owned());
    let evil = ("origin", "http://evil.example".to_owned());
    let before = work_state(&app.pool).await;

    let kill = format!("/api/admin/jobs/{pending}/kill");
    let retry = format!("/api/admin/jobs/{failed}/retry");
    let refused: Vec<Case> = vec![
        // The reported attack: a form posted from another origin.
        (
            "form from evil.example",
            "/api/admin/items/any/sync",
            vec![evil.clone(), form.clone()],
            StatusCode::FORBIDDEN,
        ),
        (
            "JSON from evil.example",
            &kill,
            vec![evil.clone(), json.clone()],
            StatusCode::FORBIDDEN,
        ),
        (
            "cross-site fetch",
            &retry,
            vec![("sec-fetch-site", "cross-site".into()), json.clone()],
            StatusCode::FORBIDDEN,
        ),
        (
            "same-site, other port",
            &kill,
            vec![("origin", "http://127.0.0.1:1".into()), json.clone()],
            StatusCode::FORBIDDEN,
        ),
        (
            "opaque origin",
            &kill,
            vec![("origin", "null".into()), json.clone()],
            StatusCode::FORBIDDEN,
        ),
        (
            "board API from evil.example",
            "/api/v1/queues",
            vec![evil.clone(), json.clone()],
            StatusCode::FORBIDDEN,
        ),
        // Same origin, but a body a page could send without a preflight.
        (
            "same-origin form",
            &kill,
            vec![("origin", own.clone()), form.clone()],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "text/plain",
            &retry,
            vec![("content-type", "text/plain".into())],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no content type",
            &kill,
            vec![],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (case, path, headers, expected) in &refused {
        let (status, body) = post(&app, path, headers, "{}").await;
        assert_eq!(status, *expected, "{case}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: a clear error, got {body}"
        );
    }
    assert_eq!(
        work_state(&app.pool).await,
        before,
        "a refused request changed something"
    );

    // Allowed: the page's own fetch (same origin, JSON), and a script with no browser headers.
    let page = vec![
        ("origin", own.clone()),
        ("host", host.clone()),
        ("sec-fetch-site", "same-origin".to_owned()),
        json.clone(),
    ];
    let (status, body) = post(&app, &kill, &page, "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(&app, &retry, &[json], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<String> =
        sqlx::query_scalar("select status from apalis.jobs where id = any($1) order by id")
            .bind(vec![failed, pending])
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        statuses.iter().all(|s| s != "Failed") && statuses.contains(&"Killed".to_owned()),
        "{statuses:?}"
    );
    app.stop().await;
}

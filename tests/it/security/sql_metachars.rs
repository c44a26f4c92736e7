//! SQL metacharacters and odd unicode in every string a client controls: stored
//! verbatim or refused cleanly with a JSON 4xx, never a 5xx, the tables intact.

use reqwest::{Method, StatusCode, header::HeaderValue};
use serde_json::{Value, json};

use super::fixtures::{
    HOSTILE, assert_healthy, assert_tables_intact, party, send, url_with_segments, user_rows, work_state,
};
use crate::support::{
    TestApp,
    app::{ADMIN_TOKEN, JOBS_SECRET},
};

/// Every body field, path segment and query parameter of both listeners.
#[tokio::test]
async fn hostile_strings_in_bodies_paths_and_queries_are_refused_cleanly() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let alice = party(&app, "alice@example.com").await;
    let (rows_before, state_before) = (
        user_rows(&app.pool, alice.user_id).await,
        work_state(&app.pool).await,
    );
    let user = format!("Bearer {}", alice.token);
    let jobs = format!("Bearer {JOBS_SECRET}");
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let mut tried = 0;
    for hostile in HOSTILE {
        let (public, operator) = (app.public_url.as_str(), app.admin_url.as_str());
        let bodies = [
            ("/api/plaid/link-token", &user, json!({ "item_id": hostile })),
            (
                "/api/plaid/exchange-token",
                &user,
                json!({ "public_token": hostile }),
            ),
            ("/api/jobs/plaid/process", &jobs, json!({ "item_id": hostile })),
        ];
        let mut requests: Vec<(Method, String, &String, Option<Vec<u8>>)> = bodies
            .into_iter()
            .map(|(path, auth, body)| {
                (
                    Method::POST,
                    format!("{public}{path}"),
                    auth,
                    Some(body.to_string().into_bytes()),
                )
            })
            .collect();
        for (method, base, segments, auth) in [
            (Method::DELETE, public, vec!["api", "accounts", hostile], &user),
            (
                Method::POST,
                public,
                vec!["api", "accounts", hostile, "sync"],
                &user,
            ),
            (
                Method::POST,
                public,
                vec!["api", "accounts", hostile, "refresh-metadata"],
                &user,
            ),
            (
                Method::POST,
                operator,
                vec!["api", "admin", "items", hostile, "sync"],
                &admin,
            ),
            (
                Method::POST,
                operator,
                vec!["api", "admin", "jobs", hostile, "retry"],
                &admin,
            ),
            (
                Method::POST,
                operator,
                vec!["api", "admin", "jobs", hostile, "kill"],
                &admin,
            ),
        ] {
            requests.push((method, url_with_segments(base, &segments), auth, None));
        }
        for query in [
            "/api/admin/dashboard/series?hours=",
            "/api/admin/dashboard/series?step=",
            "/api/admin/attention?limit=",
        ] {
            let mut url = reqwest::Url::parse(&format!("{operator}{query}")).unwrap();
            let name = url.query().unwrap().trim_end_matches('=').to_owned();
            url.query_pairs_mut().clear().append_pair(&name, hostile);
            requests.push((Method::GET, url.to_string(), &admin, None));
        }
        for (method, url, auth, body) in requests {
            let answer = send(&app, method.clone(), &url, Some(auth), body.as_deref()).await;
            assert!(
                answer.status.is_client_error(),
                "{method} {url} with {hostile:?}: {answer:?}"
            );
            answer.assert_error(&format!("{method} {url}"));
            tried += 1;
        }
    }
    println!("{tried} hostile requests, each a JSON 4xx");
    assert_eq!(user_rows(&app.pool, alice.user_id).await, rows_before);
    assert_eq!(work_state(&app.pool).await, state_before);
    assert_tables_intact(&app.pool, 1).await;
    assert_healthy(&app).await;
    app.stop().await;
}

/// Webhook fields (item_id, webhook_type, webhook_code, error codes) and the
/// signature headers themselves.
#[tokio::test]
async fn hostile_webhook_fields_are_stored_verbatim_and_hostile_signatures_refused() {
    // With a webhook secret, so hostile X-Webhook-Signature values reach the HMAC parser.
    let app = TestApp::spawn_with(
        |v| drop(v.insert("PLAID_WEBHOOK_SECRET".into(), "whsec-hostile".into())),
        plaid_sync::cli::Role::Api,
    )
    .await;
    let url = format!("{}/webhook/plaid", app.public_url);
    let now = chrono::Utc::now().timestamp();
    for hostile in HOSTILE {
        let body = json!({
            "webhook_type": hostile,
            "webhook_code": hostile,
            "item_id": hostile,
            "error": { "error_code": hostile, "error_message": hostile },
            "environment": "sandbox",
        })
        .to_string();
        let jwt = app.sim.sign_body(body.as_bytes(), now);
        let answer = app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("plaid-verification", jwt)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        if hostile.contains('\0') {
            // jsonb cannot hold NUL: refused with a clear 400 before anything is stored.
            assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile:?}: {text}");
            assert!(text.contains("invalid_text"), "{text}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{hostile:?}: {text}");
        let stored: (Option<String>, Option<String>, Option<String>, Value) = sqlx::query_as(
            "select item_id, webhook_type, webhook_code, body from plaid_webhook_events where item_id = $1",
        )
        .bind(hostile)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let expected: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            stored,
            (
                Some(hostile.to_string()),
                Some(hostile.to_string()),
                Some(hostile.to_string()),
                expected
            )
        );

        for header in ["plaid-verification", "x-webhook-signature"] {
            let Ok(value) = HeaderValue::from_str(hostile) else {
                continue; // not sendable as a header at all
            };
            let answer = send_with_header(&app, &url, header, value, &body).await;
            assert_eq!(answer, StatusCode::UNAUTHORIZED, "{header}: {hostile:?}");
        }
    }
    assert_tables_intact(&app.pool, 0).await;
    assert_healthy(&app).await;
    app.stop().await;
}

async fn send_with_header(
    app: &TestApp,
    url: &str,
    name: &str,
    value: HeaderValue,
    body: &str,
) -> StatusCode {
    app.http
        .post(url)
        .header("content-type", "application/json")
        .header(name, value)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

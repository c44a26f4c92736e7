//! Deeply nested and malformed JSON on every JSON route: a clear 4xx with the
//! contract's error body, never a 5xx; nothing stored; the process stays healthy.

use reqwest::{Method, StatusCode};

use super::fixtures::{assert_healthy, party, send, work_state};
use crate::support::{TestApp, app::JOBS_SECRET};

/// `depth` opening brackets and nothing else (serde_json's recursion limit must
/// stop it, not the stack).
fn nested(depth: usize, open: &str) -> Vec<u8> {
    open.repeat(depth).into_bytes()
}

/// Deep but balanced: `{"a":{"a":...1...}}`.
fn nested_balanced(depth: usize) -> Vec<u8> {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth)).into_bytes()
}

/// Bodies no JSON route takes: syntax errors, non-objects, and objects whose
/// fields (`item_id` for link-token and process, `public_token` for exchange)
/// have the wrong type, repeat, are lone surrogates, overflow or are not UTF-8.
fn malformed() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        &b"{"[..],
        b"}",
        b"{not json",
        b"{\"public_token\": \"abc",
        b"{\"item_id\": }",
        b"[]",
        b"null",
        b"\"str\"",
        b"12",
        b"\xef\xbb\xbf{}",
        b"\xff\xfe\xfd",
        b"{\"item_id\": 12, \"public_token\": 12}",
        b"{\"item_id\": [\"a\"], \"public_token\": [\"a\"]}",
        b"{\"item_id\": {\"$ne\": null}, \"public_token\": {\"$ne\": null}}",
        b"{\"item_id\": \"a\", \"item_id\": \"b\", \"public_token\": \"a\", \"public_token\": \"b\"}",
        b"{\"item_id\": \"\\ud800\", \"public_token\": \"\\ud800\"}",
        b"{\"item_id\": 1e999999, \"public_token\": 1e999999}",
        b"{\"item_id\": \"\xc3\x28\", \"public_token\": \"\xc3\x28\"}",
        b"{\"item_id\": \"a\\u0000b\", \"public_token\": \"a\\u0000b\"}",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    bodies.push(nested(50_000, "["));
    bodies.push(nested(50_000, "{\"a\":"));
    bodies.push(nested_balanced(10_000));
    bodies
}

#[tokio::test]
async fn malformed_and_deeply_nested_json_is_a_clear_4xx_on_every_json_route() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let alice = party(&app, "alice@example.com").await;
    let before = work_state(&app.pool).await;
    let user = format!("Bearer {}", alice.token);
    let jobs = format!("Bearer {JOBS_SECRET}");
    let routes = [
        ("/api/plaid/link-token", user.as_str()),
        ("/api/plaid/exchange-token", user.as_str()),
        ("/api/jobs/plaid/process", jobs.as_str()),
    ];
    let mut tried = 0;
    for (path, auth) in routes {
        for body in malformed() {
            let answer = send(
                &app,
                Method::POST,
                &format!("{}{path}", app.public_url),
                Some(auth),
                Some(&body),
            )
            .await;
            let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
            assert!(answer.status.is_client_error(), "{path} {shown:?}: {answer:?}");
            answer.assert_error(&format!("{path} {shown:?}"));
            tried += 1;
        }
    }
    println!("{tried} malformed API bodies refused with a 4xx");
    assert_eq!(work_state(&app.pool).await, before);
    assert_healthy(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_and_deeply_nested_webhooks_are_401_unsigned_and_400_signed() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let now = chrono::Utc::now().timestamp();
    let mut bodies = malformed();
    // The webhook takes up to 256 KiB: deeper still.
    bodies.push(nested(200_000, "["));
    bodies.push(nested_balanced(40_000));
    for body in &bodies {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let url = format!("{}/webhook/plaid", app.public_url);
        let unsigned = send(&app, Method::POST, &url, None, Some(body)).await;
        assert_eq!(
            unsigned.status,
            StatusCode::UNAUTHORIZED,
            "{shown:?}: {unsigned:?}"
        );

        // Signed with Plaid's key: verification passes, parsing must refuse it
        // (or, for a JSON object, store it verbatim).
        let jwt = app.sim.sign_body(body, now);
        let signed = app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("plaid-verification", jwt)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = signed.status();
        let answer: serde_json::Value = signed.json().await.unwrap_or_default();
        let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
        let is_object = parsed.as_ref().is_some_and(|v| v.is_object());
        let has_nul = parsed.as_ref().is_some_and(plaid_sync::http::text_guard::has_nul);
        if is_object && has_nul {
            // jsonb cannot hold NUL: a clear 400, nothing stored.
            assert_eq!(
                (status, answer["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_text")),
                "{shown:?}"
            );
        } else if is_object {
            assert_eq!(status, StatusCode::OK, "{shown:?}: {answer}");
        } else {
            assert_eq!(
                (status, answer["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_json")),
                "{shown:?}"
            );
        }
    }
    assert_healthy(&app).await;
    app.stop().await;
}

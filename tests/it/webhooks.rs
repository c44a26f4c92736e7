//! `POST /webhook/plaid`: verification, durable storage, dedupe, sync requests.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use plaid_simulator::WebhookEvent;
use plaid_sync::http::webhooks::hmac_sig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

use crate::support::{
    TestApp,
    plaid::{event_count, pending_sync_jobs, post_webhook, seed_item, sync_updates},
};

const HMAC_SECRET: &str = "whsec-test-secret";

async fn app_with_hmac() -> TestApp {
    TestApp::spawn_with(
        |v| drop(v.insert("PLAID_WEBHOOK_SECRET".into(), HMAC_SECRET.into())),
        plaid_sync::cli::Role::Api,
    )
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[tokio::test]
async fn a_simulator_signed_webhook_is_stored_marks_its_item_and_queues_one_sync() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;

    let delivery = app.sim.fire_webhook(&item_id, &sync_updates()).await.unwrap();
    assert_eq!(delivery.status, Some(200), "{delivery:?}");

    let (code, body, processed): (String, Value, bool) = sqlx::query_as(
        "select webhook_code, body, processed_at is not null from plaid_webhook_events where item_id = $1",
    )
    .bind(&item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(code, "SYNC_UPDATES_AVAILABLE");
    assert_eq!(body["historical_update_complete"], true);
    assert!(processed);
    let (status, requested): (String, bool) =
        sqlx::query_as("select sync_status, sync_requested_at is not null from plaid_items where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), requested), ("sync_needed", true));
    assert_eq!(pending_sync_jobs(&app, id).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn five_concurrent_deliveries_store_one_event_and_queue_one_job() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (http, url, body, jwt) = (
            app.http.clone(),
            format!("{}/webhook/plaid", app.public_url),
            hook.body.clone(),
            hook.verification.clone(),
        );
        set.spawn(async move {
            let response = http
                .post(url)
                .header("plaid-verification", jwt)
                .body(body)
                .send()
                .await
                .unwrap();
            (
                response.status(),
                response.json::<Value>().await.unwrap()["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        });
    }
    let mut answers = set.join_all().await;
    answers.sort_by(|a, b| a.1.cmp(&b.1));
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK));
    let statuses: Vec<&str> = answers.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["accepted", "duplicate", "duplicate", "duplicate", "duplicate"]
    );

    let (rows, duplicates): (i64, i64) =
        sqlx::query_as("select count(*), sum(duplicate_count) from plaid_webhook_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((rows, duplicates), (1, 4));
    assert_eq!(pending_sync_jobs(&app, id).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn thirty_interleaved_webhooks_for_three_items_leave_exactly_one_pending_job_each() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let mut items = Vec::new();
    for _ in 0..3 {
        items.push(seed_item(&app, user.id).await);
    }
    let mut set = tokio::task::JoinSet::new();
    for n in 0..30 {
        let (item_id, _) = &items[n % 3];
        // Distinct bodies (legacy DEFAULT_UPDATE counts), so none is a duplicate.
        let hook = app
            .sim
            .build_webhook(
                item_id,
                &WebhookEvent::DefaultUpdate {
                    new_transactions: n as u64,
                },
            )
            .unwrap();
        let (http, url) = (app.http.clone(), format!("{}/webhook/plaid", app.public_url));
        set.spawn(async move {
            http.post(url)
                .header("plaid-verification", hook.verification)
                .body(hook.body)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    assert!(set.join_all().await.iter().all(|s| *s == StatusCode::OK));
    assert_eq!(event_count(&app).await, 30);
    for (_, id) in &items {
        assert_eq!(pending_sync_jobs(&app, *id).await, 1, "item {id}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_arriving_after_the_sync_started_still_leaves_the_item_due() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    let headers = [("plaid-verification", hook.verification.as_str())];
    assert_eq!(
        post_webhook(&app, &hook.body, &headers).await.1["status"],
        "accepted"
    );

    // The sync job starts: it takes its guard row and marks the item syncing
    // (as the lease does: `sync_started_at`, then `syncing`).
    sqlx::query("delete from sync_pending where plaid_item_id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update apalis.jobs set status = 'Running' where job_type = 'plaid-sync.sync-item'")
        .execute(&app.pool)
        .await
        .unwrap();
    let sync_started: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar(
            "update plaid_items set sync_status = 'syncing', sync_started_at = now() where id = $1 returning now()",
        )
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();

    // The same body again (a retry, or a new event with an identical body).
    let (status, body) = post_webhook(&app, &hook.body, &headers).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    assert_eq!(
        pending_sync_jobs(&app, id).await,
        1,
        "a new sync job waits behind the running one"
    );
    let requested: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select sync_requested_at from plaid_items where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        requested > sync_started,
        "the item is due for a sync that starts after the duplicate arrived"
    );
    app.stop().await;
}

#[tokio::test]
async fn webhooks_for_unknown_items_types_and_codes_are_stored_and_kept_for_replay() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let body = serde_json::to_vec_pretty(&json!({
        "webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE", "item_id": "unknown-item-1",
        "initial_update_complete": true, "historical_update_complete": false, "environment": "sandbox"
    }))
    .unwrap();
    let jwt = app.sim.sign_body(&body, now());
    let (status, answer) = post_webhook(&app, &body, &[("plaid-verification", &jwt)]).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
    let processed: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select processed_at from plaid_webhook_events where item_id = 'unknown-item-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(processed.is_none(), "kept for replay");

    // Unknown types and codes are stored too.
    for (kind, code) in [("ITEM", "SOMETHING_NEW"), ("BRAND_NEW_PRODUCT", "DEFAULT_UPDATE")] {
        let body = format!(
            r#"{{"webhook_type":"{kind}","webhook_code":"{code}","item_id":"x","environment":"sandbox"}}"#
        );
        let jwt = app.sim.sign_body(body.as_bytes(), now());
        assert_eq!(
            post_webhook(&app, body.as_bytes(), &[("plaid-verification", &jwt)])
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(event_count(&app).await, 3);
    drop(token);
    app.stop().await;
}

#[tokio::test]
async fn every_item_webhook_code_of_plaid_is_stored() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, _) = seed_item(&app, user.id).await;
    let codes = [
        "ERROR",
        "PENDING_EXPIRATION",
        "PENDING_DISCONNECT",
        "USER_PERMISSION_REVOKED",
        "USER_ACCOUNT_REVOKED",
        "LOGIN_REPAIRED",
        "NEW_ACCOUNTS_AVAILABLE",
        "WEBHOOK_UPDATE_ACKNOWLEDGED",
    ];
    for code in codes {
        let body = serde_json::to_vec_pretty(&json!({
            "webhook_type": "ITEM", "webhook_code": code, "item_id": item_id, "environment": "sandbox", "error": null
        }))
        .unwrap();
        let jwt = app.sim.sign_body(&body, now());
        assert_eq!(
            post_webhook(&app, &body, &[("plaid-verification", &jwt)]).await.0,
            StatusCode::OK,
            "{code}"
        );
    }
    let stored: Vec<String> = sqlx::query_scalar("select webhook_code from plaid_webhook_events order by id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, codes);
    app.stop().await;
}

/// A rejection case: name, body, headers.
type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, String)>);

/// A P-256 key the test owns, and a JWT signed by it for `body`.
fn foreign_jwt(kid: &str, body: &[u8], iat: i64) -> String {
    jwt_ring::install();
    let key = jwt_ring::Es256KeyPair::generate().unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let claims = json!({ "iat": iat, "request_body_sha256": sha256_hex(body) });
    encode(&header, &claims, &key.encoding_key()).unwrap()
}

fn unsigned_jwt(alg: &str, kid: &str, body: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "kid": kid, "typ": "JWT" }).to_string());
    let claims =
        URL_SAFE_NO_PAD.encode(json!({ "iat": now(), "request_body_sha256": sha256_hex(body) }).to_string());
    format!("{header}.{claims}.")
}

#[tokio::test]
async fn every_bad_signature_is_refused_with_401_and_stores_nothing() {
    let app = app_with_hmac().await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, _) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    let kid = app.sim.current_webhook_key_id();
    let body = hook.body.clone();

    let mut altered = body.clone();
    let at = altered.iter().position(|b| *b == b'T').unwrap();
    altered[at] = b'X'; // one byte
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialised, body, "different whitespace");

    let hs256 = encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(kid.clone());
            h
        },
        &json!({ "iat": now(), "request_body_sha256": sha256_hex(&body) }),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();

    let cases: Vec<Case> = vec![
        ("missing header", body.clone(), vec![]),
        (
            "wrong key",
            body.clone(),
            vec![("plaid-verification", foreign_jwt(&kid, &body, now()))],
        ),
        (
            "unknown kid",
            body.clone(),
            vec![("plaid-verification", foreign_jwt("no-such-kid", &body, now()))],
        ),
        (
            "alg none",
            body.clone(),
            vec![("plaid-verification", unsigned_jwt("none", &kid, &body))],
        ),
        ("alg HS256", body.clone(), vec![("plaid-verification", hs256)]),
        (
            "stale iat",
            body.clone(),
            vec![("plaid-verification", app.sim.sign_body(&body, now() - 301))],
        ),
        (
            "future iat",
            body.clone(),
            vec![("plaid-verification", app.sim.sign_body(&body, now() + 600))],
        ),
        (
            "body altered by one byte",
            altered,
            vec![("plaid-verification", hook.verification.clone())],
        ),
        (
            "re-serialised body",
            reserialised,
            vec![("plaid-verification", hook.verification.clone())],
        ),
        (
            "garbage header",
            body.clone(),
            vec![("plaid-verification", "not.a.jwt".into())],
        ),
        (
            "HMAC wrong secret",
            body.clone(),
            vec![(hmac_sig::HEADER, hmac_sig::sign(&body, b"wrong", now()))],
        ),
        (
            "HMAC stale timestamp",
            body.clone(),
            vec![(
                hmac_sig::HEADER,
                hmac_sig::sign(&body, HMAC_SECRET.as_bytes(), now() - 301),
            )],
        ),
        (
            "HMAC malformed",
            body.clone(),
            vec![(hmac_sig::HEADER, "v1=abc".into())],
        ),
    ];
    for (name, body, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = post_webhook(&app, body, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {answer}");
        assert_eq!(answer["error"], "invalid_signature", "{name}");
    }
    assert_eq!(
        event_count(&app).await,
        0,
        "nothing stored for any rejected signature"
    );
    let marked: i64 =
        sqlx::query_scalar("select count(*) from plaid_items where sync_requested_at is not null")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(marked, 0);

    // The genuine ones pass: Plaid's JWT, and our HMAC.
    let (status, _) = post_webhook(&app, &body, &[("plaid-verification", &hook.verification)]).await;
    assert_eq!(status, StatusCode::OK);
    let other = br#"{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"x","new_transactions":1}"#;
    let (status, _) = post_webhook(
        &app,
        other,
        &[(
            hmac_sig::HEADER,
            &hmac_sig::sign(other, HMAC_SECRET.as_bytes(), now()),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event_count(&app).await, 2);
    app.stop().await;
}

#[tokio::test]
async fn hmac_headers_are_ignored_when_no_webhook_secret_is_configured() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let body = br#"{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"x"}"#;
    let (status, _) = post_webhook(
        &app,
        body,
        &[(hmac_sig::HEADER, &hmac_sig::sign(body, b"", now()))],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(event_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_by_its_new_kid_and_an_expired_key_is_refused() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, _) = seed_item(&app, user.id).await;
    // Signed before the rotation, delivered after: its key now has expired_at.
    let old = app
        .sim
        .build_webhook(&item_id, &WebhookEvent::DefaultUpdate { new_transactions: 1 })
        .unwrap();
    app.sim.rotate_webhook_key().unwrap();
    let (status, answer) = post_webhook(&app, &old.body, &[("plaid-verification", &old.verification)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        answer["message"].as_str().unwrap().contains("expired_key"),
        "{answer}"
    );

    let new = app
        .sim
        .build_webhook(&item_id, &WebhookEvent::DefaultUpdate { new_transactions: 2 })
        .unwrap();
    assert_eq!(
        post_webhook(&app, &new.body, &[("plaid-verification", &new.verification)])
            .await
            .0,
        StatusCode::OK
    );
    // The key is cached: a second webhook costs no key fetch.
    let fetches = app.sim.call_count("/webhook_verification_key/get", None);
    let third = app
        .sim
        .build_webhook(&item_id, &WebhookEvent::DefaultUpdate { new_transactions: 3 })
        .unwrap();
    assert_eq!(
        post_webhook(&app, &third.body, &[("plaid-verification", &third.verification)])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(app.sim.call_count("/webhook_verification_key/get", None), fetches);
    app.stop().await;
}

#[tokio::test]
async fn verified_bodies_that_are_not_json_objects_are_400_and_oversized_ones_413() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    for body in [&b"not json"[..], b"[1,2,3]", b"\"str\""] {
        let jwt = app.sim.sign_body(body, now());
        let (status, answer) = post_webhook(&app, body, &[("plaid-verification", &jwt)]).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_json"))
        );
    }
    let big = format!(
        r#"{{"webhook_type":"TRANSACTIONS","pad":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let jwt = app.sim.sign_body(big.as_bytes(), now());
    let (status, answer) = post_webhook(&app, big.as_bytes(), &[("plaid-verification", &jwt)]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    assert_eq!(event_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_database_outage_answers_503_stores_nothing_and_redelivery_is_accepted() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    // Warm the key cache, so the outage is the database's alone.
    let warm = app
        .sim
        .build_webhook(&item_id, &WebhookEvent::DefaultUpdate { new_transactions: 9 })
        .unwrap();
    assert_eq!(
        post_webhook(&app, &warm.body, &[("plaid-verification", &warm.verification)])
            .await
            .0,
        StatusCode::OK
    );

    let mut admin = PgConnection::connect(&format!("{}/postgres", crate::support::db::server_url()))
        .await
        .unwrap();
    let db = &app.db.name;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{db}\" allow_connections false"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()")
        .bind(db)
        .execute(&mut admin)
        .await
        .unwrap();

    let (status, answer) =
        post_webhook(&app, &hook.body, &[("plaid-verification", &hook.verification)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"], "database_unavailable");

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{db}\" allow_connections true"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    // Plaid re-delivers the same bytes.
    let (status, answer) =
        post_webhook(&app, &hook.body, &[("plaid-verification", &hook.verification)]).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from plaid_webhook_events where webhook_code = 'SYNC_UPDATES_AVAILABLE'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        stored, 1,
        "the 503 stored nothing; the re-delivery stored it once"
    );
    assert_eq!(pending_sync_jobs(&app, id).await, 1);
    let _ = tokio::time::timeout(Duration::from_secs(1), admin.close()).await;
    app.stop().await;
}

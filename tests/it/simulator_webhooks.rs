//! Webhooks from the simulator: signatures verifiable exactly as Plaid documents, key rotation,
//! body shapes, automatic webhooks, and the reset-login → update-mode flow.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use plaid_simulator::{ItemSpec, NewTransaction, ReadyState, WebhookEvent};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::openapi;
use crate::simulator_support::{Received, Sim, start, webhook_receiver};

/// Verifies a `Plaid-Verification` JWT the way PLAID.md §5 says a receiver must; returns the
/// kid and claims. Panics on any failure.
async fn verify(sim: &Sim, jwt: &str, body: &[u8]) -> (String, Value) {
    let header = jsonwebtoken::decode_header(jwt).expect("JWT header decodes");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("kid in header");
    let key = sim
        .ok("/webhook_verification_key/get", json!({"key_id": kid}))
        .await;
    let claims = decode_with(&key["key"], jwt).expect("signature verifies with the served key");
    let now = chrono::Utc::now().timestamp();
    let iat = claims["iat"].as_i64().expect("iat is a number");
    assert!(
        iat <= now + 5 && now - iat <= 300,
        "iat {iat} is not fresh (now {now})"
    );
    assert_eq!(
        claims["request_body_sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(body)),
        "body hash"
    );
    (kid, claims)
}

fn decode_with(jwk: &Value, jwt: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("sig"))
    );
    let key = DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    Ok(jsonwebtoken::decode::<Value>(jwt, &key, &validation)?.claims)
}

fn jwt_of(received: &Received) -> String {
    received
        .headers
        .get("plaid-verification")
        .expect("Plaid-Verification header")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn simulator_webhooks_verify_with_the_served_key() {
    let sim = start().await;
    let mut receiver = webhook_receiver(200).await;
    let item = sim
        .handle
        .create_item(ItemSpec::ready().with_webhook(&receiver.url));

    let delivery = sim
        .handle
        .fire_webhook(&item.item_id, &WebhookEvent::sync_updates_available())
        .await
        .unwrap();
    assert_eq!(delivery.status, Some(200));
    let received = receiver.next().await;

    let (kid, _) = verify(&sim, &jwt_of(&received), &received.body).await;
    assert_eq!(kid, sim.handle.current_webhook_key_id());
    assert_eq!(received.headers["content-type"], "application/json");
    let text = std::str::from_utf8(&received.body).unwrap();
    assert!(
        text.starts_with("{\n  \"webhook_type\": \"TRANSACTIONS\",\n"),
        "2-space indent: {text}"
    );
    let body = received.json();
    openapi::validate_schema("SyncUpdatesAvailableWebhook", &body);
    assert_eq!(body["item_id"], item.item_id.as_str());
    assert_eq!(
        (
            body["initial_update_complete"].as_bool(),
            body["historical_update_complete"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(body["environment"], "sandbox");

    // A re-serialized (4-space) body no longer matches the signed hash.
    let reserialized = serde_json::to_vec(&body).unwrap();
    let claims = decode_with(
        &sim.ok("/webhook_verification_key/get", json!({"key_id": kid}))
            .await["key"],
        &jwt_of(&received),
    )
    .unwrap();
    assert_ne!(
        claims["request_body_sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&reserialized))
    );

    // Built-but-not-sent webhooks verify the same way.
    let built = sim
        .handle
        .build_webhook(&item.item_id, &WebhookEvent::LoginRepaired)
        .unwrap();
    verify(&sim, &built.verification, &built.body).await;
    assert_eq!(built.url.as_deref(), Some(receiver.url.as_str()));

    let (status, err) = sim
        .call(
            "/webhook_verification_key/get",
            json!({"key_id": "bfbd5111-8e33-4643-8ced-b2e642a72f3c"}),
        )
        .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("INVALID_WEBHOOK_VERIFICATION_KEY_ID"))
    );
}

#[tokio::test]
async fn simulator_key_rotation_expires_the_old_key() {
    let sim = start().await;
    let mut receiver = webhook_receiver(200).await;
    let item = sim
        .handle
        .create_item(ItemSpec::ready().with_webhook(&receiver.url));
    sim.handle
        .fire_webhook(&item.item_id, &WebhookEvent::NewAccountsAvailable)
        .await
        .unwrap();
    let before = receiver.next().await;
    let (old_kid, _) = verify(&sim, &jwt_of(&before), &before.body).await;

    let (status, rotated) = sim.control(Method::POST, "/keys/rotate", json!({})).await;
    assert_eq!(status, 200);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    sim.handle
        .fire_webhook(&item.item_id, &WebhookEvent::NewAccountsAvailable)
        .await
        .unwrap();
    let after = receiver.next().await;
    let (kid, _) = verify(&sim, &jwt_of(&after), &after.body).await;
    assert_eq!(kid, new_kid);

    let old = sim
        .ok("/webhook_verification_key/get", json!({"key_id": old_kid}))
        .await;
    let new = sim
        .ok("/webhook_verification_key/get", json!({"key_id": new_kid}))
        .await;
    assert!(old["key"]["expired_at"].is_i64(), "old key expired: {old}");
    assert_eq!(new["key"]["expired_at"], Value::Null);
    // The new signature does not verify with the old key.
    assert!(decode_with(&old["key"], &jwt_of(&after)).is_err());
}

#[tokio::test]
async fn simulator_reset_login_requires_update_mode_link() {
    let sim = start().await;
    let mut receiver = webhook_receiver(200).await;
    let (item_id, token) = sim.sandbox_item(Some(&receiver.url)).await;
    sim.handle
        .mark_ready(&item_id, ReadyState::HistoricalUpdateComplete)
        .unwrap();

    let reset = sim
        .ok("/sandbox/item/reset_login", json!({"access_token": token}))
        .await;
    assert_eq!(reset["reset_login"], true);
    let hook = receiver.next().await;
    verify(&sim, &jwt_of(&hook), &hook.body).await;
    let body = hook.json();
    openapi::validate_schema("ItemErrorWebhook", &body);
    assert_eq!(body["webhook_code"], "ERROR");
    assert_eq!(body["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(body["error"]["status"], 400);
    assert!(body["error"].get("request_id").is_none());

    let (status, err) = sim.sync(&token, "", None).await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("ITEM_LOGIN_REQUIRED"))
    );
    let (_, code) = sim.err("/accounts/get", json!({"access_token": token})).await;
    assert_eq!(code, "ITEM_LOGIN_REQUIRED");
    let item = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(item["item"]["error"]["error_code"], "ITEM_LOGIN_REQUIRED");

    // Update mode: link token for the existing item, then simulated Link.
    let link = sim
        .ok(
            "/link/token/create",
            json!({"client_name": "plaid-sync", "language": "en", "country_codes": ["US"],
                   "user": {"client_user_id": "u"}, "access_token": token}),
        )
        .await;
    let (status, done) = sim
        .control(
            Method::POST,
            "/link/complete",
            json!({"link_token": link["link_token"]}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["update_mode"].as_bool(), done["item_id"].as_str()),
        (Some(true), Some(item_id.as_str()))
    );
    let exchanged = sim
        .ok(
            "/item/public_token/exchange",
            json!({"public_token": done["public_token"]}),
        )
        .await;
    assert_eq!(exchanged["access_token"], token.as_str());

    assert_eq!(sim.sync(&token, "", None).await.0, 200);
    let item = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(item["item"]["error"], Value::Null);
    // Update mode repairs in-app, so no LOGIN_REPAIRED is sent; only the ERROR webhook went out.
    let codes: Vec<String> = sim
        .handle
        .webhook_deliveries()
        .iter()
        .map(|d| d.webhook_code.clone())
        .collect();
    assert_eq!(codes, vec!["ERROR".to_owned()]);
    assert!(receiver.drain().is_empty());
}

#[tokio::test]
async fn simulator_sandbox_fire_webhook_sends_supported_codes() {
    let sim = start().await;
    let mut receiver = webhook_receiver(200).await;
    let (item_id, token) = sim.sandbox_item(Some(&receiver.url)).await;
    for (code, schema) in [
        ("SYNC_UPDATES_AVAILABLE", "SyncUpdatesAvailableWebhook"),
        ("DEFAULT_UPDATE", "DefaultUpdateWebhook"),
        ("NEW_ACCOUNTS_AVAILABLE", "NewAccountsAvailableWebhook"),
        ("USER_PERMISSION_REVOKED", "UserPermissionRevokedWebhook"),
        ("USER_ACCOUNT_REVOKED", "UserAccountRevokedWebhook"),
        ("PENDING_DISCONNECT", "PendingDisconnectWebhook"),
        ("LOGIN_REPAIRED", "ItemLoginRepairedWebhook"),
    ] {
        let fired = sim
            .ok(
                "/sandbox/item/fire_webhook",
                json!({"access_token": token, "webhook_code": code}),
            )
            .await;
        assert_eq!(fired["webhook_fired"], true);
        let hook = receiver.next().await;
        verify(&sim, &jwt_of(&hook), &hook.body).await;
        let body = hook.json();
        openapi::validate_schema(schema, &body);
        assert_eq!(
            (body["webhook_code"].as_str(), body["item_id"].as_str()),
            (Some(code), Some(item_id.as_str()))
        );
    }
    let (_, code) = sim
        .err(
            "/sandbox/item/fire_webhook",
            json!({"access_token": token, "webhook_code": "PRODUCT_READY"}),
        )
        .await;
    assert_eq!(code, "INVALID_FIELD");
    let (_, code) = sim
        .err(
            "/sandbox/item/fire_webhook",
            json!({"access_token": token, "webhook_code": "LOGIN_REPAIRED", "webhook_type": "TRANSACTIONS"}),
        )
        .await;
    assert_eq!(code, "INVALID_FIELD");
    let (_, bare) = sim.sandbox_item(None).await;
    let (_, code) = sim
        .err(
            "/sandbox/item/fire_webhook",
            json!({"access_token": bare, "webhook_code": "DEFAULT_UPDATE"}),
        )
        .await;
    assert_eq!(code, "SANDBOX_WEBHOOK_INVALID");
}

#[tokio::test]
async fn simulator_every_webhook_body_matches_its_schema() {
    let sim = start().await;
    let item = sim
        .handle
        .create_item(ItemSpec::ready().with_webhook("http://127.0.0.1:9/unused"));
    let events = [
        (
            WebhookEvent::sync_updates_available(),
            "SyncUpdatesAvailableWebhook",
        ),
        (
            WebhookEvent::InitialUpdate {
                new_transactions: None,
            },
            "InitialUpdateWebhook",
        ),
        (
            WebhookEvent::HistoricalUpdate {
                new_transactions: Some(3),
            },
            "HistoricalUpdateWebhook",
        ),
        (
            WebhookEvent::DefaultUpdate { new_transactions: 2 },
            "DefaultUpdateWebhook",
        ),
        (
            WebhookEvent::TransactionsRemoved {
                removed_transactions: vec!["a".into()],
            },
            "TransactionsRemovedWebhook",
        ),
        (WebhookEvent::ItemError { error: None }, "ItemErrorWebhook"),
        (WebhookEvent::LoginRepaired, "ItemLoginRepairedWebhook"),
        (
            WebhookEvent::PendingExpiration {
                consent_expiration_time: None,
            },
            "PendingExpirationWebhook",
        ),
        (
            WebhookEvent::PendingDisconnect {
                reason: None,
                disconnect_time: None,
            },
            "PendingDisconnectWebhook",
        ),
        (
            WebhookEvent::UserPermissionRevoked,
            "UserPermissionRevokedWebhook",
        ),
        (
            WebhookEvent::UserAccountRevoked { account_id: None },
            "UserAccountRevokedWebhook",
        ),
        (WebhookEvent::NewAccountsAvailable, "NewAccountsAvailableWebhook"),
        (
            WebhookEvent::WebhookUpdateAcknowledged {
                new_webhook_url: "https://x.test/h".into(),
            },
            "WebhookUpdateAcknowledgedWebhook",
        ),
    ];
    for (event, schema) in events {
        let built = sim.handle.build_webhook(&item.item_id, &event).unwrap();
        let body: Value = serde_json::from_slice(&built.body).unwrap();
        openapi::validate_schema(schema, &body);
        assert_eq!(body["webhook_code"].as_str(), Some(event.type_and_code().1));
        assert_eq!(body["environment"], "sandbox");
    }
    let revoked = sim
        .handle
        .build_webhook(
            &item.item_id,
            &WebhookEvent::UserAccountRevoked { account_id: None },
        )
        .unwrap();
    let body: Value = serde_json::from_slice(&revoked.body).unwrap();
    assert_eq!(body["account_id"], item.account_ids[0].as_str());
}

#[tokio::test]
async fn simulator_auto_webhooks_fire_only_once_sync_was_called() {
    let sim = start().await;
    let mut receiver = webhook_receiver(200).await;
    let item = sim
        .handle
        .create_item(ItemSpec::ready().with_webhook(&receiver.url));
    let account = &item.account_ids[0];
    let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();

    // Before the first sync nothing is armed: no webhook was even queued.
    sim.handle
        .add_transaction(&item.item_id, NewTransaction::new(account, 1.0, date, "A"))
        .unwrap();
    let status = sim
        .ok("/item/get", json!({"access_token": item.access_token}))
        .await;
    assert_eq!(status["status"]["last_webhook"], Value::Null);

    sim.sync(&item.access_token, "", None).await;
    sim.handle
        .add_transaction(&item.item_id, NewTransaction::new(account, 2.0, date, "B"))
        .unwrap();
    let body = receiver.next().await.json();
    assert_eq!(body["webhook_code"], "SYNC_UPDATES_AVAILABLE");
    assert_eq!(body["historical_update_complete"], true);
    let status = sim
        .ok("/item/get", json!({"access_token": item.access_token}))
        .await;
    assert_eq!(
        status["status"]["last_webhook"]["code_sent"],
        "SYNC_UPDATES_AVAILABLE"
    );

    // A fresh item: sync (NOT_READY) arms it; readiness then fires with the right flags.
    let (item_id, token) = sim.sandbox_item(Some(&receiver.url)).await;
    sim.sync(&token, "", None).await;
    sim.handle
        .mark_ready(&item_id, ReadyState::InitialUpdateComplete)
        .unwrap();
    let body = receiver.next().await.json();
    assert_eq!(
        (
            body["item_id"].as_str(),
            body["initial_update_complete"].as_bool(),
            body["historical_update_complete"].as_bool()
        ),
        (Some(item_id.as_str()), Some(true), Some(false))
    );
}

#[tokio::test]
async fn simulator_fire_webhook_reports_the_receivers_status() {
    let sim = start().await;
    let receiver = webhook_receiver(500).await;
    let item = sim
        .handle
        .create_item(ItemSpec::ready().with_webhook(&receiver.url));
    let delivery = sim
        .handle
        .fire_webhook(&item.item_id, &WebhookEvent::LoginRepaired)
        .await
        .unwrap();
    assert_eq!(
        (delivery.status, delivery.webhook_code.as_str()),
        (Some(500), "LOGIN_REPAIRED")
    );
    assert_eq!(sim.handle.webhook_deliveries(), vec![delivery]);

    let bare = sim.handle.create_item(ItemSpec::ready());
    let err = sim
        .handle
        .fire_webhook(&bare.item_id, &WebhookEvent::LoginRepaired)
        .await
        .unwrap_err();
    assert!(matches!(err, plaid_simulator::SimError::NoWebhookUrl(_)), "{err}");
}

#[tokio::test]
async fn simulator_counts_queued_webhooks_until_they_are_answered() {
    let sim = start().await;
    // A receiver that holds each answer until the test lets it go.
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<()>();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let gate = gate.clone();
            move || async move {
                let _ = arrived_tx.send(());
                let _permit = gate.acquire().await.unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let item = sim.handle.create_item(ItemSpec::ready().with_webhook(&url));
    sim.sync(&item.access_token, "", None).await;
    assert_eq!(sim.handle.webhooks_in_flight(), 0);

    // New data on an armed item queues a webhook: counted before the call returns.
    let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
    sim.handle
        .add_transaction(
            &item.item_id,
            NewTransaction::new(&item.account_ids[0], 1.0, date, "A"),
        )
        .unwrap();
    assert_eq!(sim.handle.webhooks_in_flight(), 1);
    // Delivered but not answered: still in flight.
    arrived.recv().await.expect("the webhook arrives");
    assert_eq!(sim.handle.webhooks_in_flight(), 1);
    assert!(sim.handle.webhook_deliveries().is_empty());

    gate.add_permits(1);
    crate::support::wait_until(
        "the answered webhook to leave the count",
        std::time::Duration::from_secs(5),
        || async { (sim.handle.webhooks_in_flight() == 0).then_some(()) },
    )
    .await;
    let deliveries = sim.handle.webhook_deliveries();
    assert_eq!(deliveries.len(), 1, "recorded once answered");
    assert_eq!(deliveries[0].status, Some(200));
}

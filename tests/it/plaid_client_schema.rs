//! What the Plaid client puts on the wire: every request body it sends
//! validates against Plaid's OpenAPI request schema, with the credentials and
//! version in headers. A capturing server answers each call with the SPEC's
//! example response (itself checked against the response schema), so this also
//! shows the client parsing Plaid's own examples over HTTP.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, Uri},
};
use chrono::NaiveDate;
use secrecy::SecretString;
use serde_json::Value;
use workflows::plaid::{
    AccessToken, PlaidClient, PlaidConfig, PublicToken,
    types::{
        AccountsGetOptions, AccountsGetRequest, ItemGetRequest, ItemPublicTokenExchangeRequest,
        ItemRemoveReasonCode, ItemRemoveRequest, ItemWebhookUpdateRequest, LinkTokenCreateRequest,
        LinkTokenTransactions, LinkTokenUpdate, Product, SandboxItemFireWebhookRequest,
        SandboxItemResetLoginRequest, SandboxPublicTokenCreateOptions, SandboxPublicTokenCreateRequest,
        SandboxPublicTokenTransactionsOptions, SandboxWebhookCode, TransactionsSyncOptions,
        TransactionsSyncRequest, WebhookType, WebhookVerificationKeyGetRequest,
    },
};

use crate::openapi;

const CLIENT_ID: &str = "schema-client-id";
const SECRET: &str = "schema-secret-value";

/// One captured call: path, headers, JSON body.
type Captured = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

async fn capture(
    State((captured, examples)): State<(Captured, Arc<Value>)>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let path = uri.path().to_owned();
    captured.lock().unwrap().push((path.clone(), headers, body));
    let key = if path == "/transactions/sync" {
        "sync_response"
    } else {
        path.as_str()
    };
    let response = examples[key].clone();
    openapi::validate_response(&path, 200, &response);
    Json(response)
}

async fn start_capture_server() -> (PlaidClient, Captured, tokio::task::JoinHandle<()>) {
    let captured = Captured::default();
    let app = Router::new().fallback(capture).with_state((
        Arc::clone(&captured),
        Arc::new(crate::support::fixtures::examples()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let plaid = PlaidClient::new(&PlaidConfig::new(url, CLIENT_ID, SecretString::from(SECRET))).unwrap();
    (plaid, captured, server)
}

/// Calls every endpoint twice: once with the least the request allows, once
/// with every optional field we support set.
async fn call_every_endpoint(plaid: &PlaidClient) {
    let token = || AccessToken::new("access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6");
    let date = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();

    let mut full_link = LinkTokenCreateRequest::new("plaid-sync", "user-1", vec![Product::Transactions]);
    full_link.webhook = Some("https://example.com/webhooks/plaid".into());
    full_link.redirect_uri = Some("https://example.com/oauth".into());
    full_link.transactions = Some(LinkTokenTransactions { days_requested: 730 });
    full_link.link_customization_name = Some("default".into());
    let mut update_link = LinkTokenCreateRequest::update_mode("plaid-sync", "user-1", token());
    update_link.update = Some(LinkTokenUpdate {
        account_selection_enabled: true,
    });
    for request in [full_link, update_link] {
        plaid.link_token_create(&request).await.expect("link token");
    }

    let exchange = plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest {
            public_token: PublicToken::new("public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d"),
        })
        .await
        .expect("exchange");
    assert_eq!(exchange.item_id, "M5eVJqLnv3tbzdngLDp9FL5OlDNxlNhlE55op");

    let mut filtered = AccountsGetRequest::new(token());
    filtered.options = Some(AccountsGetOptions {
        account_ids: vec!["blgvvBlXw3cq5GMPwqB6s6q4dLKB9WcVqGDGo".into()],
    });
    for request in [AccountsGetRequest::new(token()), filtered] {
        let accounts = plaid.accounts_get(&request).await.expect("accounts");
        assert_eq!(
            accounts.accounts[1].balances.current.as_ref().unwrap().as_str(),
            "23631.9805"
        );
    }

    plaid
        .item_get(&ItemGetRequest {
            access_token: token(),
        })
        .await
        .expect("item");

    let mut with_reason = ItemRemoveRequest::new(token());
    with_reason.reason_code = Some(ItemRemoveReasonCode::ConnectionIsNonFunctional);
    with_reason.reason_note = Some("user unlinked the bank".into());
    for request in [ItemRemoveRequest::new(token()), with_reason] {
        plaid.item_remove(&request).await.expect("remove");
    }

    for webhook in [Some("https://example.com/webhooks/plaid".to_owned()), None] {
        plaid
            .item_webhook_update(&ItemWebhookUpdateRequest {
                access_token: token(),
                webhook,
            })
            .await
            .expect("webhook update");
    }

    let mut full_sync = TransactionsSyncRequest::new(token()).with_cursor(Some(
        "tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9nsgeXWvhOfkECvUeR663i3Dt1uf/94S8".into(),
    ));
    full_sync.count = Some(500);
    full_sync.options = Some(TransactionsSyncOptions {
        include_original_description: Some(true),
        days_requested: Some(730),
        account_id: Some("BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp".into()),
        personal_finance_category_version: Some("v2".into()),
    });
    for request in [TransactionsSyncRequest::new(token()), full_sync] {
        let page = plaid.transactions_sync(&request).await.expect("sync");
        assert_eq!(page.added[0].amount.as_str(), "72.1");
    }

    plaid
        .webhook_verification_key_get(&WebhookVerificationKeyGetRequest {
            key_id: "bfbd5111-8e33-4643-8ced-b2e642a72f3c".into(),
        })
        .await
        .expect("key");

    let mut full_sandbox = SandboxPublicTokenCreateRequest::transactions("ins_109508");
    full_sandbox.options = Some(SandboxPublicTokenCreateOptions {
        webhook: Some("https://example.com/webhooks/plaid".into()),
        override_username: Some("user_transactions_dynamic".into()),
        override_password: Some("any".into()),
        transactions: Some(SandboxPublicTokenTransactionsOptions {
            start_date: Some(date(1)),
            end_date: Some(date(31)),
            days_requested: Some(90),
        }),
    });
    for request in [
        SandboxPublicTokenCreateRequest::transactions("ins_109508"),
        full_sandbox,
    ] {
        plaid
            .sandbox_public_token_create(&request)
            .await
            .expect("sandbox token");
    }

    for (webhook_type, webhook_code) in [
        (None, SandboxWebhookCode::SyncUpdatesAvailable),
        (Some(WebhookType::Transactions), SandboxWebhookCode::DefaultUpdate),
        (Some(WebhookType::Item), SandboxWebhookCode::LoginRepaired),
    ] {
        plaid
            .sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest {
                access_token: token(),
                webhook_type,
                webhook_code,
            })
            .await
            .expect("fire");
    }

    plaid
        .sandbox_item_reset_login(&SandboxItemResetLoginRequest {
            access_token: token(),
        })
        .await
        .expect("reset");
}

#[tokio::test]
async fn every_request_the_client_sends_matches_plaids_request_schema() {
    // Arrange
    let (plaid, captured, server) = start_capture_server().await;

    // Act
    call_every_endpoint(&plaid).await;

    // Assert
    let captured = captured.lock().unwrap().clone();
    let mut paths: Vec<&str> = captured.iter().map(|(path, _, _)| path.as_str()).collect();
    paths.dedup();
    assert_eq!(
        paths,
        [
            "/link/token/create",
            "/item/public_token/exchange",
            "/accounts/get",
            "/item/get",
            "/item/remove",
            "/item/webhook/update",
            "/transactions/sync",
            "/webhook_verification_key/get",
            "/sandbox/public_token/create",
            "/sandbox/item/fire_webhook",
            "/sandbox/item/reset_login",
        ]
    );
    for (path, headers, body) in &captured {
        openapi::validate_request(path, body);
        // Credentials travel in headers only, never in the body.
        assert!(
            body.get("client_id").is_none() && body.get("secret").is_none(),
            "{path}"
        );
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("plaid-client-id"), Some(CLIENT_ID), "{path}");
        assert_eq!(header("plaid-secret"), Some(SECRET), "{path}");
        assert_eq!(header("plaid-version"), Some("2020-09-14"), "{path}");
        assert_eq!(header("content-type"), Some("application/json"), "{path}");
    }
    server.abort();
}

#[test]
fn a_request_that_breaks_the_schema_is_caught_by_the_validator() {
    // Guards the test above: the validator really checks our bodies' shape.
    let mut body = serde_json::to_value(TransactionsSyncRequest::new(AccessToken::new("t"))).unwrap();
    body["count"] = 501.into();
    assert!(!openapi::request_errors("/transactions/sync", &body).is_empty());
    body["count"] = 500.into();
    assert!(openapi::request_errors("/transactions/sync", &body).is_empty());
}

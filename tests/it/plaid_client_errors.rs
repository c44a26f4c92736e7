//! `PlaidClient` failures against the simulator (and, for bodies the
//! simulator never sends, a tiny local server): each error class, rate limits,
//! mutation during pagination, timeouts, transport and decode errors, and no
//! secret in any error string.

use std::time::{Duration, Instant};

use axum::{Router, http::StatusCode, routing::post};
use plaid_simulator::{
    Fault, FaultError, ItemSpec, Latency, MutationFault, NewTransaction, PlaidError as SimError,
    RemovedItemError,
};
use secrecy::SecretString;
use workflows::plaid::{
    AccessToken, ErrorClass, PlaidClient, PlaidConfig, PlaidError,
    types::{
        AccountsGetRequest, ItemGetRequest, ItemPublicTokenExchangeRequest, ItemRemoveRequest,
        SandboxItemFireWebhookRequest, SandboxWebhookCode, TransactionsSyncRequest,
    },
};

use crate::plaid_client::{CLIENT_ID, SECRET, client, start_simulator, sync_all, token};

/// The outcome of one `/item/get` after `fault` was queued for it.
async fn item_get_with_fault(fault: FaultError) -> (PlaidError, AccessToken) {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    sim.inject_fault(Fault::new(fault, 1).on_endpoint("/item/get"))
        .unwrap();
    let err = plaid
        .item_get(&ItemGetRequest {
            access_token: token(&item),
        })
        .await
        .expect_err("the fault fires");
    (err, token(&item))
}

/// Neither the access token, the client secret nor a request body shows up.
fn assert_no_secrets(err: &PlaidError, access_token: &AccessToken) {
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(
            !text.contains(access_token.expose_secret()),
            "token leaked: {text}"
        );
        assert!(!text.contains("access_token"), "request body leaked: {text}");
    }
}

fn sim_error(error_type: &str, error_code: &str) -> SimError {
    SimError {
        error_type: error_type.to_owned(),
        error_code: error_code.to_owned(),
        error_code_reason: None,
        error_message: "a code this client has never seen".to_owned(),
        display_message: None,
        request_id: None,
        causes: Vec::new(),
        status: None,
        documentation_url: None,
        suggested_action: None,
    }
}

#[tokio::test]
async fn a_500_is_retryable_and_keeps_plaids_fields() {
    let (err, access_token) = item_get_with_fault(FaultError::internal_server_error()).await;

    let api = err.api().expect("an API error");
    assert_eq!(api.status, 500);
    assert_eq!(api.error_type.as_str(), "API_ERROR");
    assert_eq!(api.error_code, "INTERNAL_SERVER_ERROR");
    assert_eq!(api.endpoint, "/item/get");
    assert!(api.request_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(!err.is_rate_limit());
    assert!(err.to_string().contains("INTERNAL_SERVER_ERROR"), "{err}");
    assert_no_secrets(&err, &access_token);
}

#[tokio::test]
async fn planned_maintenance_and_institution_outages_are_retryable() {
    for code in [
        "PLANNED_MAINTENANCE",
        "INSTITUTION_DOWN",
        "INSTITUTION_NOT_RESPONDING",
    ] {
        let (err, _) = item_get_with_fault(FaultError::Code(code.into())).await;
        assert_eq!(err.error_code(), Some(code));
        assert_eq!(err.class(), ErrorClass::Retryable, "{code}");
        assert!(!err.is_rate_limit(), "{code}");
    }
}

#[tokio::test]
async fn a_429_sync_limit_is_a_retryable_rate_limit() {
    // Arrange: the simulator's real per-item limiter, one call per window.
    let sim = start_simulator(|config| config.sync_rate_limit = Some(1)).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    let request = TransactionsSyncRequest::new(token(&item));
    plaid
        .transactions_sync(&request)
        .await
        .expect("first call is allowed");

    // Act
    let err = plaid.transactions_sync(&request).await.expect_err("limited");

    // Assert
    assert_eq!(err.api().map(|api| api.status), Some(429));
    assert_eq!(err.error_code(), Some("TRANSACTIONS_SYNC_LIMIT"));
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(err.is_rate_limit());
    assert!(!err.is_mutation_during_pagination());
}

#[tokio::test]
async fn other_rate_limit_codes_are_flagged_too() {
    for code in ["ITEM_GET_LIMIT", "RATE_LIMIT", "INSTITUTION_RATE_LIMIT"] {
        let (err, _) = item_get_with_fault(FaultError::Code(code.into())).await;
        assert!(err.is_rate_limit(), "{code}");
        assert_eq!(err.class(), ErrorClass::Retryable, "{code}");
    }
}

#[tokio::test]
async fn item_login_required_needs_reauth_until_the_user_repairs_it() {
    // Arrange
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    sim.reset_login(&item.item_id).unwrap();

    // Act
    let err = plaid
        .transactions_sync(&TransactionsSyncRequest::new(token(&item)))
        .await
        .expect_err("login required");

    // Assert
    assert_eq!(err.error_code(), Some("ITEM_LOGIN_REQUIRED"));
    assert_eq!(err.api().unwrap().error_type.as_str(), "ITEM_ERROR");
    assert_eq!(err.class(), ErrorClass::NeedsReauth);
    assert_no_secrets(&err, &token(&item));

    // After update mode the same call succeeds again.
    sim.repair_login(&item.item_id).unwrap();
    plaid
        .transactions_sync(&TransactionsSyncRequest::new(token(&item)))
        .await
        .expect("repaired");
}

#[tokio::test]
async fn access_not_granted_and_no_accounts_need_reauth() {
    for code in ["ACCESS_NOT_GRANTED", "NO_ACCOUNTS"] {
        let sim = start_simulator(|_| {}).await;
        let plaid = client(&sim, Duration::from_secs(5));
        let item = sim.create_item(ItemSpec::ready());
        sim.set_item_error(&item.item_id, code).unwrap();

        let err = plaid
            .accounts_get(&AccountsGetRequest::new(token(&item)))
            .await
            .expect_err("item error");

        assert_eq!(err.error_code(), Some(code));
        assert_eq!(err.class(), ErrorClass::NeedsReauth, "{code}");
    }
}

#[tokio::test]
async fn an_unknown_access_token_is_terminal_and_never_echoed() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let bogus = AccessToken::new("access-sandbox-00000000-dead-beef-0000-000000000000");

    let err = plaid
        .item_get(&ItemGetRequest {
            access_token: bogus.clone(),
        })
        .await
        .expect_err("unknown token");

    assert_eq!(err.error_code(), Some("INVALID_ACCESS_TOKEN"));
    assert_eq!(err.api().unwrap().error_type.as_str(), "INVALID_INPUT");
    assert_eq!(err.class(), ErrorClass::Terminal);
    assert_no_secrets(&err, &bogus);
}

#[tokio::test]
async fn a_removed_item_is_terminal_whether_plaid_says_item_not_found_or_invalid_token() {
    for (setting, code) in [
        (RemovedItemError::ItemNotFound, "ITEM_NOT_FOUND"),
        (RemovedItemError::InvalidAccessToken, "INVALID_ACCESS_TOKEN"),
    ] {
        let sim = start_simulator(|config| config.removed_item_error = setting).await;
        let plaid = client(&sim, Duration::from_secs(5));
        let item = sim.create_item(ItemSpec::ready());
        plaid
            .item_remove(&ItemRemoveRequest::new(token(&item)))
            .await
            .unwrap();

        let err = plaid
            .transactions_sync(&TransactionsSyncRequest::new(token(&item)))
            .await
            .expect_err("removed");

        assert_eq!(err.error_code(), Some(code));
        assert_eq!(err.class(), ErrorClass::Terminal, "{code}");
    }
}

#[tokio::test]
async fn user_permission_revoked_is_terminal() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    sim.set_item_error(&item.item_id, "USER_PERMISSION_REVOKED")
        .unwrap();

    let err = plaid
        .transactions_sync(&TransactionsSyncRequest::new(token(&item)))
        .await
        .expect_err("revoked");

    assert_eq!(err.error_code(), Some("USER_PERMISSION_REVOKED"));
    assert_eq!(err.class(), ErrorClass::Terminal);
}

#[tokio::test]
async fn an_expired_public_token_is_terminal() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));

    let err = plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest {
            public_token: "public-sandbox-expired-000".to_owned().into(),
        })
        .await
        .expect_err("unknown public token");

    assert_eq!(err.error_code(), Some("INVALID_PUBLIC_TOKEN"));
    assert_eq!(err.class(), ErrorClass::Terminal);
    assert!(!err.to_string().contains("public-sandbox-expired-000"));
}

#[tokio::test]
async fn mutation_during_pagination_is_flagged_and_a_restart_from_the_first_cursor_succeeds() {
    // Arrange: three transactions, one per page, and a real change at page 2.
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    for (amount, name) in [(1.5, "A"), (2.25, "B"), (3.75, "C")] {
        sim.add_transaction(
            &item.item_id,
            NewTransaction::new(&item.account_ids[0], amount, day, name),
        )
        .unwrap();
    }
    sim.inject_mutation_during_pagination(MutationFault {
        page: 2,
        item_id: Some(item.item_id.clone()),
        mutate: true,
    })
    .unwrap();
    let mut request = TransactionsSyncRequest::new(token(&item));
    request.count = Some(1);
    let first = plaid.transactions_sync(&request).await.expect("page 1");
    assert!(first.has_more);

    // Act
    let err = plaid
        .transactions_sync(&request.clone().with_cursor(Some(first.next_cursor)))
        .await
        .expect_err("page 2 fails");

    // Assert
    assert_eq!(err.api().map(|api| api.status), Some(400));
    assert_eq!(err.api().unwrap().error_type.as_str(), "TRANSACTIONS_ERROR");
    assert!(err.is_mutation_during_pagination());
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(!err.is_rate_limit());

    // The documented recovery: restart from the loop's first cursor (none).
    let (added, _, _, _, _) = sync_all(&plaid, &token(&item), None, 1).await;
    assert_eq!(added.len(), 3);
}

#[tokio::test]
async fn wrong_api_keys_are_a_developer_error_that_never_shows_the_secret() {
    let sim = start_simulator(|_| {}).await;
    let item = sim.create_item(ItemSpec::ready());
    let wrong_secret = "wrong-secret-also-never-print-41d2";
    let plaid = PlaidClient::new(&PlaidConfig::new(
        sim.base_url(),
        CLIENT_ID,
        SecretString::from(wrong_secret),
    ))
    .unwrap();

    let err = plaid
        .item_get(&ItemGetRequest {
            access_token: token(&item),
        })
        .await
        .expect_err("bad keys");

    assert_eq!(err.error_code(), Some("INVALID_API_KEYS"));
    assert_eq!(err.class(), ErrorClass::Developer);
    for text in [err.to_string(), format!("{err:?}"), format!("{plaid:?}")] {
        assert!(!text.contains(wrong_secret), "{text}");
    }
}

#[tokio::test]
async fn a_sandbox_call_for_an_item_without_a_webhook_is_a_developer_error() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());

    let err = plaid
        .sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest {
            access_token: token(&item),
            webhook_type: None,
            webhook_code: SandboxWebhookCode::SyncUpdatesAvailable,
        })
        .await
        .expect_err("no webhook URL");

    assert_eq!(err.error_code(), Some("SANDBOX_WEBHOOK_INVALID"));
    assert_eq!(err.class(), ErrorClass::Developer);
}

#[tokio::test]
async fn unknown_error_codes_are_classified_by_status_and_type() {
    let cases = [
        (503, "API_ERROR", "BRAND_NEW_OUTAGE", ErrorClass::Retryable),
        (
            400,
            "RATE_LIMIT_EXCEEDED",
            "BRAND_NEW_LIMIT",
            ErrorClass::Retryable,
        ),
        (
            400,
            "INVALID_REQUEST",
            "BRAND_NEW_FIELD_RULE",
            ErrorClass::Developer,
        ),
        (400, "ITEM_ERROR", "BRAND_NEW_ITEM_PROBLEM", ErrorClass::Terminal),
        (400, "SOME_NEW_TYPE", "BRAND_NEW_THING", ErrorClass::Terminal),
    ];
    for (status, error_type, code, expected) in cases {
        let (err, _) = item_get_with_fault(FaultError::Custom {
            status,
            error: sim_error(error_type, code),
        })
        .await;

        let api = err.api().expect("parsed despite the unknown values");
        assert_eq!((api.status, api.error_type.as_str()), (status, error_type));
        assert_eq!(err.class(), expected, "{status} {error_type}/{code}");
    }
}

#[tokio::test]
async fn a_slow_response_times_out_quickly_as_a_retryable_error() {
    // Arrange: the simulator answers after 5 s; the client allows 200 ms.
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_millis(200));
    let item = sim.create_item(ItemSpec::ready());
    sim.set_latency(Some(Latency {
        millis: 5_000,
        endpoint: Some("/transactions/sync".into()),
    }));
    let started = Instant::now();

    // Act
    let err = plaid
        .transactions_sync(&TransactionsSyncRequest::new(token(&item)))
        .await
        .expect_err("times out");

    // Assert
    let elapsed = started.elapsed();
    assert!(
        matches!(err, PlaidError::Timeout { endpoint: "/transactions/sync", timeout } if timeout == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_no_secrets(&err, &token(&item));

    // Other endpoints are not slowed, so the client itself is still usable.
    plaid
        .accounts_get(&AccountsGetRequest::new(token(&item)))
        .await
        .expect("fast endpoint");
    drop(sim); // Don't wait for the slow in-flight response.
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let plaid = PlaidClient::new(&PlaidConfig::new(
        format!("http://127.0.0.1:{port}"),
        CLIENT_ID,
        SecretString::from(SECRET),
    ))
    .unwrap();
    let access_token = AccessToken::new("access-sandbox-transport-test-1");

    let err = plaid
        .item_get(&ItemGetRequest {
            access_token: access_token.clone(),
        })
        .await
        .expect_err("connection refused");

    assert!(
        matches!(
            err,
            PlaidError::Transport {
                endpoint: "/item/get",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_no_secrets(&err, &access_token);
}

/// Serves fixed answers the simulator never gives: a proxy's HTML error
/// page and a 200 body that breaks the schema.
async fn start_misbehaving_server() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/item/get",
            post(|| async { (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>") }),
        )
        .route(
            "/sandbox/item/fire_webhook",
            post(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"webhook_fired": "yes-with-a-token-access-sandbox-zzz", "request_id": "r1"}"#,
                )
            }),
        )
        .route(
            "/accounts/get",
            post(|| async { (StatusCode::BAD_REQUEST, "not json") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

#[tokio::test]
async fn unreadable_bodies_are_decode_errors_classed_by_status_without_echoing_values() {
    // Arrange
    let (url, server) = start_misbehaving_server().await;
    let plaid = PlaidClient::new(&PlaidConfig::new(url, CLIENT_ID, SecretString::from(SECRET))).unwrap();
    let access_token = AccessToken::new("access-sandbox-decode-test-1");

    // Act
    let bad_gateway = plaid
        .item_get(&ItemGetRequest {
            access_token: access_token.clone(),
        })
        .await
        .expect_err("HTML 502");
    let bad_request = plaid
        .accounts_get(&AccountsGetRequest::new(access_token.clone()))
        .await
        .expect_err("text 400");
    let wrong_shape = plaid
        .sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest {
            access_token: access_token.clone(),
            webhook_type: None,
            webhook_code: SandboxWebhookCode::DefaultUpdate,
        })
        .await
        .expect_err("200 with a string where a bool belongs");

    // Assert
    assert!(
        matches!(bad_gateway, PlaidError::Decode { status: 502, .. }),
        "{bad_gateway:?}"
    );
    assert_eq!(bad_gateway.class(), ErrorClass::Retryable);
    assert!(matches!(bad_request, PlaidError::Decode { status: 400, .. }));
    assert_eq!(bad_request.class(), ErrorClass::Developer);
    assert!(matches!(wrong_shape, PlaidError::Decode { status: 200, .. }));
    assert_eq!(wrong_shape.class(), ErrorClass::Developer);
    let text = format!("{wrong_shape} {wrong_shape:?}");
    assert!(text.contains("expected a boolean"), "{text}");
    assert!(
        !text.contains("access-sandbox-zzz"),
        "quoted value leaked: {text}"
    );
    for err in [&bad_gateway, &bad_request, &wrong_shape] {
        assert_no_secrets(err, &access_token);
    }
    server.abort();
}

#[tokio::test]
async fn bad_config_is_rejected_without_showing_the_secret() {
    let secret_with_newline = "line-one\nline-two-secret";
    let err = PlaidClient::new(&PlaidConfig::new(
        "http://127.0.0.1:1",
        CLIENT_ID,
        SecretString::from(secret_with_newline),
    ))
    .expect_err("not a header value");
    assert!(matches!(err, PlaidError::Config { .. }));
    assert_eq!(err.class(), ErrorClass::Developer);
    assert!(!format!("{err} {err:?}").contains("line-two-secret"));

    let err = PlaidClient::new(&PlaidConfig::new(
        "not a url",
        CLIENT_ID,
        SecretString::from(SECRET),
    ))
    .expect_err("bad URL");
    assert!(matches!(err, PlaidError::Config { .. }));

    let config = PlaidConfig::new("http://127.0.0.1:1", CLIENT_ID, SecretString::from(SECRET));
    assert!(!format!("{config:?}").contains(SECRET));
}

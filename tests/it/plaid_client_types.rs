//! The Plaid client's types, without a server: Plaid's example bodies parse,
//! unknown fields and enum values are tolerated, amounts stay exact, request
//! bodies have the documented shape, and tokens never print.

use std::str::FromStr;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use workflows::plaid::{
    AccessToken, Amount, ErrorClass, PublicToken,
    types::{
        AccountType, AccountsGetResponse, ErrorBody, ErrorType, ItemGetResponse,
        ItemPublicTokenExchangeResponse, ItemUpdateType, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
        LinkTokenCreateRequest, LinkTokenCreateResponse, PaymentChannel, Product,
        SandboxItemFireWebhookResponse, Transaction, TransactionsSyncRequest, TransactionsSyncResponse,
        TransactionsUpdateStatus, WebhookVerificationKeyGetResponse,
    },
};

fn example(name: &str) -> Value {
    crate::support::fixtures::examples()
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("examples.json has no {name}"))
}

fn parse<T: DeserializeOwned>(body: Value) -> T {
    serde_json::from_value(body).expect("body parses")
}

/// Adds a field we have never heard of to every object in `value`.
fn with_unknown_fields(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.values_mut().for_each(walk);
                map.insert(
                    "field_from_the_future".into(),
                    json!({"nested": [1, "two", null]}),
                );
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

#[test]
fn sync_example_parses_into_typed_fields_and_keeps_the_raw_transaction() {
    // Arrange
    let body = example("sync_response");
    let first_added = body["added"][0].clone();

    // Act
    let page: TransactionsSyncResponse = parse(body);

    // Assert
    assert_eq!(
        page.transactions_update_status,
        TransactionsUpdateStatus::HistoricalUpdateComplete
    );
    assert!(!page.has_more);
    assert!(page.next_cursor.starts_with("tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9"));
    assert_eq!(page.request_id, "Wvhy9PZHQLV8njG");
    assert_eq!(page.accounts[0].account_type, AccountType::Depository);
    assert_eq!(
        page.accounts[0].balances.current.as_ref().map(Amount::as_str),
        Some("110.94")
    );

    let walmart = &page.added[0];
    assert_eq!(walmart.transaction_id, "lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje");
    assert_eq!(walmart.amount.as_str(), "72.1");
    assert_eq!(walmart.date, NaiveDate::from_ymd_opt(2023, 9, 24).unwrap());
    assert_eq!(walmart.authorized_date, NaiveDate::from_ymd_opt(2023, 9, 22));
    assert_eq!(
        walmart.datetime.map(|d| d.to_rfc3339()),
        Some("2023-09-24T11:01:01+00:00".to_owned())
    );
    assert_eq!(walmart.payment_channel, Some(PaymentChannel::InStore));
    assert_eq!(walmart.merchant_name.as_deref(), Some("Walmart"));
    assert_eq!(
        walmart.pending_transaction_id.as_deref(),
        Some("no86Eox18VHMvaOVL7gPUM9ap3aR1LsAVZ5nc")
    );
    assert_eq!(
        walmart
            .personal_finance_category
            .as_ref()
            .map(|c| c.primary.as_str()),
        Some("GENERAL_MERCHANDISE")
    );
    assert_eq!(walmart.raw(), first_added, "raw is the whole object");

    assert!(page.modified[0].pending);
    assert_eq!(
        page.removed[0].transaction_id,
        "CmdQTNgems8BT1B7ibkoUXVPyAeehT3Tmzk0l"
    );
}

#[test]
fn sync_response_tolerates_unknown_fields_and_enum_values() {
    // Arrange: new fields everywhere, and values no enum lists yet.
    let mut body = with_unknown_fields(example("sync_response"));
    body["transactions_update_status"] = json!("PARTIALLY_HISTORICAL");
    body["accounts"][0]["type"] = json!("crypto_wallet");
    body["added"][0]["payment_channel"] = json!("telepathy");
    body["added"][0]["transaction_code"] = json!("teleport");
    body["added"][0]["datetime"] = json!("sometime on tuesday");

    // Act
    let page: TransactionsSyncResponse = parse(body);

    // Assert: the unknown values survive as text; the raw JSON keeps the new
    // field; an unreadable timestamp is dropped instead of failing the page.
    assert_eq!(
        page.transactions_update_status,
        TransactionsUpdateStatus::Unknown("PARTIALLY_HISTORICAL".into())
    );
    assert_eq!(page.accounts[0].account_type.as_str(), "crypto_wallet");
    let added = &page.added[0];
    assert_eq!(
        added.payment_channel,
        Some(PaymentChannel::Unknown("telepathy".into()))
    );
    assert_eq!(added.transaction_code.as_deref(), Some("teleport"));
    assert_eq!(added.datetime, None);
    assert_eq!(added.raw()["field_from_the_future"]["nested"][1], "two");
    assert_eq!(added.amount.as_str(), "72.1");
}

#[test]
fn a_not_ready_sync_response_with_a_null_cursor_parses_as_empty() {
    let page: TransactionsSyncResponse = parse(json!({
        "transactions_update_status": "NOT_READY",
        "accounts": [], "added": [], "modified": [], "removed": [],
        "next_cursor": null, "has_more": false, "request_id": "r1"
    }));
    assert_eq!(
        page.transactions_update_status,
        TransactionsUpdateStatus::NotReady
    );
    assert_eq!(page.next_cursor, "");
    assert!(page.added.is_empty());
}

#[test]
fn every_other_example_response_parses_even_with_unknown_fields() {
    for unknown in [false, true] {
        let body = |name: &str| {
            let value = example(name);
            if unknown {
                with_unknown_fields(value)
            } else {
                value
            }
        };

        let item: ItemGetResponse = parse(body("/item/get"));
        assert_eq!(item.item.item_id, "Ed6bjNrDLJfGvZWwnkQlfxwoNz54B5C97ejBr");
        assert_eq!(item.item.update_type, Some(ItemUpdateType::Background));
        assert_eq!(
            item.item.billed_products,
            [Product::Identity, Product::Transactions]
        );
        assert!(item.item.error.is_none());
        let status = item.status.expect("status");
        assert_eq!(
            status.last_webhook.and_then(|w| w.code_sent).as_deref(),
            Some("DEFAULT_UPDATE")
        );
        assert!(status.transactions.unwrap().last_successful_update.is_some());

        let accounts: AccountsGetResponse = parse(body("/accounts/get"));
        assert_eq!(accounts.accounts.len(), 3);
        assert_eq!(accounts.accounts[1].account_type, AccountType::Investment);
        assert_eq!(accounts.accounts[1].subtype.as_deref(), Some("401k"));
        assert_eq!(accounts.item.auth_method.as_deref(), Some("INSTANT_AUTH"));

        let link: LinkTokenCreateResponse = parse(body("/link/token/create"));
        assert_eq!(
            link.link_token,
            "link-sandbox-af1a0311-da53-4636-b754-dd15cc058176"
        );
        assert_eq!(link.expiration.to_rfc3339(), "2020-03-27T12:56:34+00:00");

        let exchange: ItemPublicTokenExchangeResponse = parse(body("/item/public_token/exchange"));
        assert_eq!(
            exchange.access_token.expose_secret(),
            "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6"
        );
        assert_eq!(exchange.item_id, "M5eVJqLnv3tbzdngLDp9FL5OlDNxlNhlE55op");

        let fired: SandboxItemFireWebhookResponse = parse(body("/sandbox/item/fire_webhook"));
        assert!(fired.webhook_fired);

        let updated: ItemWebhookUpdateResponse = parse(body("/item/webhook/update"));
        assert_eq!(
            updated.item.webhook.as_deref(),
            Some("https://www.genericwebhookurl.com/webhook")
        );

        let key: WebhookVerificationKeyGetResponse = parse(body("/webhook_verification_key/get"));
        assert_eq!(key.key.kid, "bfbd5111-8e33-4643-8ced-b2e642a72f3c");
        assert_eq!(key.key.key_use, "sig");
        assert_eq!(key.key.created_at, 1_560_466_150);
        assert_eq!(key.key.expired_at, None);
    }
}

#[test]
fn unknown_products_and_error_types_are_kept_as_text() {
    let mut body = example("/item/get");
    body["item"]["available_products"] = json!(["balance", "quantum_budgeting"]);
    body["item"]["update_type"] = json!("sometimes");
    body["item"]["error"] = json!({
        "error_type": "BRAND_NEW_ERROR", "error_code": "BRAND_NEW_CODE",
        "error_message": "m", "display_message": null
    });

    let item: ItemGetResponse = parse(body);

    assert_eq!(
        item.item.available_products,
        [Product::Balance, Product::Unknown("quantum_budgeting".into())]
    );
    assert_eq!(
        item.item.update_type,
        Some(ItemUpdateType::Unknown("sometimes".into()))
    );
    let error = item.item.error.expect("error");
    assert_eq!(error.error_type, ErrorType::Unknown("BRAND_NEW_ERROR".into()));
    assert_eq!(error.class(), ErrorClass::Terminal);
}

#[test]
fn an_item_error_embedded_in_item_get_is_classified() {
    // The shape of the ITEM ERROR webhook's error, which carries `status`.
    let body: ErrorBody = parse(example("ItemErrorWebhook")["error"].clone());
    assert_eq!(body.error_code, "ITEM_LOGIN_REQUIRED");
    assert_eq!(body.error_code_reason.as_deref(), Some("OAUTH_INVALID_TOKEN"));
    assert_eq!(body.status, Some(400));
    assert_eq!(body.class(), ErrorClass::NeedsReauth);
}

#[test]
fn amounts_keep_the_decimal_plaid_sent() {
    // Arrange: JSON number text → the decimal string we must store.
    let cases = [
        ("72.1", "72.1"),
        ("-0.01", "-0.01"),
        ("110.94", "110.94"),
        ("23631.9805", "23631.9805"),
        ("0.000001", "0.000001"),
        ("1e-7", "0.0000001"),
        ("65262", "65262"),
        ("-4.5e3", "-4500"),
        ("12345678.91", "12345678.91"),
        ("0.1", "0.1"),
        ("1234.5678901", "1234.5678901"),
    ];
    for (json_text, expected) in cases {
        // Act: inside a transaction, as the sync engine reads it.
        let raw: Value = serde_json::from_str(&format!(
            r#"{{"transaction_id":"t","account_id":"a","amount":{json_text},"date":"2024-01-02"}}"#
        ))
        .unwrap();
        let transaction = Transaction::from_value(raw).expect("parses");

        // Assert
        assert_eq!(transaction.amount.as_str(), expected, "for {json_text}");
        assert_eq!(
            transaction.raw()["amount"].to_string().parse::<f64>().unwrap(),
            expected.parse::<f64>().unwrap()
        );
    }
    // A decimal string is accepted as is; malformed text is rejected.
    assert_eq!(Amount::from_str("72.10").unwrap().as_str(), "72.10");
    for bad in ["", "-", "1.", ".5", "1e5", "12a", "1.2.3", "--1"] {
        assert!(Amount::from_str(bad).is_err(), "{bad:?} should be rejected");
    }
    let parsed: Amount = serde_json::from_value(json!("-19.99")).unwrap();
    assert_eq!(parsed.to_string(), "-19.99");
    assert!(serde_json::from_value::<Amount>(json!("NaN")).is_err());
}

#[test]
fn sync_requests_leave_out_an_absent_or_empty_cursor() {
    let token = AccessToken::new("access-sandbox-abc");

    let first = TransactionsSyncRequest::new(token.clone()).with_cursor(Some(String::new()));
    assert_eq!(
        serde_json::to_value(&first).unwrap(),
        json!({"access_token": "access-sandbox-abc"})
    );

    let mut next = TransactionsSyncRequest::new(token).with_cursor(Some("c+/=".into()));
    next.count = Some(500);
    next.options = Some(workflows::plaid::types::TransactionsSyncOptions {
        include_original_description: Some(true),
        days_requested: Some(730),
        ..Default::default()
    });
    assert_eq!(
        serde_json::to_value(&next).unwrap(),
        json!({
            "access_token": "access-sandbox-abc", "cursor": "c+/=", "count": 500,
            "options": {"include_original_description": true, "days_requested": 730}
        })
    );
}

#[test]
fn webhook_update_sends_null_to_remove_the_webhook() {
    let request = ItemWebhookUpdateRequest {
        access_token: AccessToken::new("access-sandbox-abc"),
        webhook: None,
    };
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"access_token": "access-sandbox-abc", "webhook": null})
    );
}

#[test]
fn link_token_requests_for_update_mode_carry_the_token_and_no_products() {
    let new_item = LinkTokenCreateRequest::new("plaid-sync", "user-1", vec![Product::Transactions]);
    assert_eq!(
        serde_json::to_value(&new_item).unwrap(),
        json!({
            "client_name": "plaid-sync", "language": "en", "country_codes": ["US"],
            "user": {"client_user_id": "user-1"}, "products": ["transactions"]
        })
    );

    let update =
        LinkTokenCreateRequest::update_mode("plaid-sync", "user-1", AccessToken::new("access-sandbox-abc"));
    let body = serde_json::to_value(&update).unwrap();
    assert_eq!(body["access_token"], "access-sandbox-abc");
    assert!(body.get("products").is_none());
}

#[test]
fn tokens_never_print() {
    let access = AccessToken::new("access-sandbox-very-secret-1");
    let public = PublicToken::new("public-sandbox-very-secret-2");
    for printed in [
        format!("{access}"),
        format!("{access:?}"),
        format!("{public}"),
        format!("{public:?}"),
    ] {
        assert!(!printed.contains("very-secret"), "{printed}");
    }
    assert_eq!(format!("{access:?}"), "access-***");

    let exchange: ItemPublicTokenExchangeResponse = parse(example("/item/public_token/exchange"));
    assert!(!format!("{exchange:?}").contains("de3ce8ef"));
}

//! The simulator's non-sync endpoints over real HTTP: auth and request errors, Link and token
//! exchange, accounts and items, removal, webhook URL updates, and the control API.

use plaid_simulator::{ItemSpec, RemovedItemError};
use reqwest::Method;
use serde_json::{Value, json};

use crate::openapi;
use crate::simulator_support::{CLIENT_ID, SECRET, read, start, start_with, webhook_receiver};

/// Header credentials (client id, secret), if any.
type Credentials = Option<(&'static str, &'static str)>;

#[tokio::test]
async fn simulator_rejects_missing_or_wrong_credentials() {
    let sim = start().await;
    let item = sim.handle.create_item(ItemSpec::ready());
    let body = json!({"access_token": item.access_token});

    // Arrange three ways of getting credentials wrong, and two of getting them right.
    let cases: [(Credentials, Value, u16); 5] = [
        (None, body.clone(), 400),
        (Some((CLIENT_ID, "wrong")), body.clone(), 400),
        (
            None,
            json!({"access_token": item.access_token, "client_id": CLIENT_ID, "secret": "x"}),
            400,
        ),
        (Some((CLIENT_ID, SECRET)), body.clone(), 200),
        (
            None,
            json!({"access_token": item.access_token, "client_id": CLIENT_ID, "secret": SECRET}),
            200,
        ),
    ];
    for (headers, body, want) in cases {
        let mut req = sim.http.post(sim.url("/item/get")).json(&body);
        if let Some((id, secret)) = headers {
            req = req.header("PLAID-CLIENT-ID", id).header("PLAID-SECRET", secret);
        }
        let (status, value) = read("/item/get", req.send().await.unwrap()).await;
        assert_eq!(status, want, "{value}");
        if want == 400 {
            assert_eq!(value["error_type"], "INVALID_INPUT");
            assert_eq!(value["error_code"], "INVALID_API_KEYS");
            assert_eq!(value["error_message"], "invalid client_id or secret provided");
        }
    }
    assert_eq!(sim.handle.call_count("/item/get", None), 5);
}

#[tokio::test]
async fn simulator_rejects_unparsable_bodies_and_missing_fields() {
    let sim = start().await;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut req = sim
            .http
            .post(sim.url("/transactions/sync"))
            .header("PLAID-CLIENT-ID", CLIENT_ID)
            .header("PLAID-SECRET", SECRET)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        req.send()
    };
    for (body, ct) in [
        (r#"{"access_token":"x"}"#, None),
        (r#"{"access_token":"x"}"#, Some("text/plain")),
        ("{not json", Some("application/json")),
        ("[1,2]", Some("application/json")),
    ] {
        let (status, err) = read("/transactions/sync", post(body, ct).await.unwrap()).await;
        assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_BODY")));
        assert_eq!(err["error_type"], "INVALID_REQUEST");
    }

    let (status, err) = read(
        "/transactions/sync",
        post("{}", Some("application/json; charset=utf-8")).await.unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("MISSING_FIELDS"))
    );
    assert!(
        err["error_message"]
            .as_str()
            .unwrap()
            .ends_with("missing: access_token")
    );

    let (status, err) = read(
        "/item/get",
        post(
            r#"{"access_token":"access-sandbox-nope"}"#,
            Some("application/json"),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("INVALID_ACCESS_TOKEN"))
    );

    let response = sim
        .http
        .post(sim.url("/no/such/endpoint"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "NOT_FOUND");
    openapi::validate_schema("PlaidError", &body);
}

#[tokio::test]
async fn simulator_link_flow_creates_an_item_with_accounts() {
    let sim = start().await;
    let link = sim
        .ok(
            "/link/token/create",
            json!({
                "client_name": "plaid-sync", "language": "en", "country_codes": ["US"],
                "user": {"client_user_id": "user-1"}, "products": ["transactions"],
                "webhook": "https://example.test/hook"
            }),
        )
        .await;
    let link_token = link["link_token"].as_str().unwrap();
    assert!(link_token.starts_with("link-sandbox-"));

    // Simulated Link over the control API.
    let (status, done) = sim
        .control(Method::POST, "/link/complete", json!({"link_token": link_token}))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["update_mode"], false);
    let public_token = done["public_token"].as_str().unwrap();
    assert!(public_token.starts_with("public-sandbox-"));
    // A link token completes once.
    let (status, _) = sim
        .control(Method::POST, "/link/complete", json!({"link_token": link_token}))
        .await;
    assert_eq!(status, 404);

    let exchanged = sim
        .ok(
            "/item/public_token/exchange",
            json!({"public_token": public_token}),
        )
        .await;
    let access_token = exchanged["access_token"].as_str().unwrap();
    assert!(access_token.starts_with("access-sandbox-"));
    assert_eq!(exchanged["item_id"], done["item_id"]);
    assert_eq!(exchanged["item_id"].as_str().unwrap().len(), 37);
    // Public tokens are single-use.
    let (status, code) = sim
        .err(
            "/item/public_token/exchange",
            json!({"public_token": public_token}),
        )
        .await;
    assert_eq!((status, code.as_str()), (400, "INVALID_PUBLIC_TOKEN"));

    let accounts = sim
        .ok("/accounts/get", json!({"access_token": access_token}))
        .await;
    let ids: Vec<&str> = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(accounts["item"]["webhook"], "https://example.test/hook");

    let one = sim
        .ok(
            "/accounts/get",
            json!({"access_token": access_token, "options": {"account_ids": [ids[1]]}}),
        )
        .await;
    assert_eq!(one["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(one["accounts"][0]["account_id"], ids[1]);
    let (_, code) = sim
        .err(
            "/accounts/get",
            json!({"access_token": access_token, "options": {"account_ids": ["nope"]}}),
        )
        .await;
    assert_eq!(code, "INVALID_ACCOUNT_ID");

    let item = sim.ok("/item/get", json!({"access_token": access_token})).await;
    assert_eq!(item["item"]["item_id"], done["item_id"]);
    assert_eq!(item["item"]["error"], Value::Null);
    assert_eq!(item["item"]["products"], json!(["transactions"]));
}

#[tokio::test]
async fn simulator_link_token_create_validates_its_request() {
    let sim = start().await;
    let base = json!({"client_name": "x", "language": "en", "country_codes": ["US"],
                      "user": {"client_user_id": "u"}, "products": ["transactions"]});
    let mut no_user = base.clone();
    no_user.as_object_mut().unwrap().remove("user");
    let (_, code) = sim.err("/link/token/create", no_user).await;
    assert_eq!(code, "MISSING_FIELDS");
    let mut no_products = base.clone();
    no_products.as_object_mut().unwrap().remove("products");
    let (_, code) = sim.err("/link/token/create", no_products).await;
    assert_eq!(code, "MISSING_FIELDS");
    let mut bad_token = base.clone();
    bad_token["access_token"] = json!("access-sandbox-unknown");
    let (_, code) = sim.err("/link/token/create", bad_token).await;
    assert_eq!(code, "INVALID_ACCESS_TOKEN");
    sim.ok("/link/token/create", base).await;
}

#[tokio::test]
async fn simulator_removed_items_reject_further_calls() {
    for (mode, code) in [
        (RemovedItemError::InvalidAccessToken, "INVALID_ACCESS_TOKEN"),
        (RemovedItemError::ItemNotFound, "ITEM_NOT_FOUND"),
    ] {
        let sim = start_with(|c| c.removed_item_error = mode).await;
        let (item_id, token) = sim.sandbox_item(None).await;
        let removed = sim.ok("/item/remove", json!({"access_token": token})).await;
        assert_eq!(
            removed.as_object().unwrap().len(),
            1,
            "only request_id: {removed}"
        );

        for path in ["/item/get", "/accounts/get", "/transactions/sync", "/item/remove"] {
            let (status, got) = sim.err(path, json!({"access_token": token})).await;
            assert_eq!((status, got.as_str()), (400, code), "{path}");
        }
        assert_eq!(sim.handle.call_count("/item/remove", Some(&item_id)), 1);
        let removes: Vec<_> = sim
            .handle
            .calls()
            .into_iter()
            .filter(|c| c.endpoint == "/item/remove")
            .collect();
        assert_eq!(removes.len(), 2);
        assert_eq!(removes[0].status, 200);
        assert_eq!(removes[1].error_code.as_deref(), Some(code));
        assert!(sim.handle.item(&item_id).unwrap().removed);
        assert!(sim.handle.add_transactions(&item_id, vec![]).is_err());
    }
}

#[tokio::test]
async fn simulator_item_webhook_update_acknowledges_to_the_new_url() {
    let sim = start().await;
    let mut receiver = webhook_receiver(200).await;
    let (item_id, token) = sim.sandbox_item(None).await;

    let updated = sim
        .ok(
            "/item/webhook/update",
            json!({"access_token": token, "webhook": receiver.url}),
        )
        .await;
    assert_eq!(updated["item"]["webhook"], receiver.url.as_str());
    let hook = receiver.next().await.json();
    openapi::validate_schema("WebhookUpdateAcknowledgedWebhook", &hook);
    assert_eq!(hook["webhook_code"], "WEBHOOK_UPDATE_ACKNOWLEDGED");
    assert_eq!(hook["new_webhook_url"], receiver.url.as_str());
    assert_eq!(hook["item_id"], item_id.as_str());

    let cleared = sim
        .ok(
            "/item/webhook/update",
            json!({"access_token": token, "webhook": null}),
        )
        .await;
    assert_eq!(cleared["item"]["webhook"], Value::Null);
    let (_, code) = sim
        .err(
            "/item/webhook/update",
            json!({"access_token": token, "webhook": "ftp://nope"}),
        )
        .await;
    assert_eq!(code, "INVALID_FIELD");
}

#[tokio::test]
async fn simulator_control_api_drives_items_over_http() {
    let sim = start().await;
    let (status, created) = sim
        .control(
            Method::POST,
            "/items",
            json!({"ready": "HISTORICAL_UPDATE_COMPLETE"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let item_id = created["item_id"].as_str().unwrap();
    let account = created["account_ids"][0].as_str().unwrap();

    let (status, generated) = sim
        .control(
            Method::POST,
            &format!("/items/{item_id}/generate"),
            json!({"count": 40, "seed": 3}),
        )
        .await;
    assert_eq!(status, 200, "{generated}");
    let (status, added) = sim
        .control(
            Method::POST,
            &format!("/items/{item_id}/transactions"),
            json!({"transactions": [{"account_id": account, "amount": 12.5,
                    "date": "2024-05-01", "name": "Coffee", "pending": true}]}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    let pending_id = added["transaction_ids"][0].as_str().unwrap();
    let (status, posted) = sim
        .control(
            Method::POST,
            &format!("/items/{item_id}/transactions/post"),
            json!({"pending_transaction_id": pending_id, "amount": 14.0}),
        )
        .await;
    assert_eq!(status, 200, "{posted}");

    let (status, truth) = sim
        .control(Method::GET, &format!("/items/{item_id}/truth"), Value::Null)
        .await;
    assert_eq!(status, 200);
    let all: Vec<&Value> = truth["accounts"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap())
        .collect();
    assert_eq!(all.len(), 41);
    let posted_txn = all
        .iter()
        .find(|t| t["transaction_id"] == posted["transaction_id"])
        .unwrap();
    assert_eq!(posted_txn["pending_transaction_id"], pending_id);
    assert_eq!(posted_txn["amount"], 14.0);
    assert_eq!(truth["removed_transaction_ids"], json!([pending_id]));
    for txn in all {
        openapi::validate_schema("Transaction", txn);
    }

    let (status, err) = sim.control(Method::GET, "/items/nope/truth", Value::Null).await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = sim
        .control(
            Method::POST,
            &format!("/items/{item_id}/transactions"),
            json!({"transactions": [{"account_id": "other", "amount": 1.0,
                    "date": "2024-05-01", "name": "x"}]}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
}

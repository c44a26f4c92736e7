//! User A's API token on user B's rows: 404 on every route that takes an id,
//! the same answer as for an id that does not exist, and B's rows unchanged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::fixtures::{Answer, Party, party, send, user_rows};
use crate::support::{
    TestApp,
    plaid::{exchange_public_token, request_link_token},
};

/// One user-scoped request naming an id: the route, and its body for that id.
struct IdRoute {
    method: Method,
    path: fn(&str) -> String,
    body: fn(&str) -> Option<Value>,
}

/// Every route of CONTRACT.md that takes an id of the caller's rows, including
/// `GET .../transactions` (the control below checks it answers its owner, so
/// the 404 is not that of an unserved route).
fn id_routes() -> Vec<(&'static str, IdRoute)> {
    vec![
        (
            "DELETE /api/accounts/{id}",
            IdRoute {
                method: Method::DELETE,
                path: |id| format!("/api/accounts/{id}"),
                body: |_| None,
            },
        ),
        (
            "POST /api/accounts/{id}/sync",
            IdRoute {
                method: Method::POST,
                path: |id| format!("/api/accounts/{id}/sync"),
                body: |_| None,
            },
        ),
        (
            "POST /api/accounts/{id}/refresh-metadata",
            IdRoute {
                method: Method::POST,
                path: |id| format!("/api/accounts/{id}/refresh-metadata"),
                body: |_| None,
            },
        ),
        (
            "GET /api/accounts/{id}/transactions",
            IdRoute {
                method: Method::GET,
                path: |id| format!("/api/accounts/{id}/transactions?limit=10"),
                body: |_| None,
            },
        ),
    ]
}

async fn call(app: &TestApp, who: &Party, route: &IdRoute, id: &str) -> Answer {
    let body = (route.body)(id).map(|b| b.to_string().into_bytes());
    send(
        app,
        route.method.clone(),
        &format!("{}{}", app.public_url, (route.path)(id)),
        Some(&format!("Bearer {}", who.token)),
        body.as_deref(),
    )
    .await
}

async fn listed_ids(app: &TestApp, who: &Party, path: &str, key: &str) -> Value {
    let answer = send(
        app,
        Method::GET,
        &format!("{}{path}", app.public_url),
        Some(&format!("Bearer {}", who.token)),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let ids: Vec<Value> = answer.json()[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[if key == "items" { "item_id" } else { "id" }].clone())
        .collect();
    Value::Array(ids)
}

#[tokio::test]
async fn another_users_rows_are_a_404_everywhere_and_stay_unchanged() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let alice = party(&app, "alice@example.com").await;
    let bob = party(&app, "bob@example.com").await;
    let bob_before = user_rows(&app.pool, bob.user_id).await;

    // Lists: each sees only their own.
    assert_eq!(
        listed_ids(&app, &alice, "/api/plaid/items", "items").await,
        json!([alice.item_id])
    );
    assert_eq!(
        listed_ids(&app, &alice, "/api/accounts", "accounts").await,
        json!(alice.account_ids)
    );

    // Every id route, on each of Bob's accounts: exactly the answer for a missing id.
    for (name, route) in id_routes() {
        let missing = call(&app, &alice, &route, &i64::MAX.to_string()).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{name}: {missing:?}");
        for bob_account in &bob.account_ids {
            let foreign = call(&app, &alice, &route, &bob_account.to_string()).await;
            assert_eq!(foreign, missing, "{name} on Bob's account {bob_account}");
        }
    }
    // Control: the same ids are Bob's, and Bob's token reaches them (410: sync is webhook-driven).
    let (_, sync) = id_routes().remove(1);
    let own = call(&app, &bob, &sync, &bob.account_ids[0].to_string()).await;
    assert_eq!(own.status, StatusCode::GONE, "{own:?}");
    let (_, transactions) = id_routes().remove(3);
    let own = call(&app, &bob, &transactions, &bob.account_ids[0].to_string()).await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");

    // Link update mode for Bob's item: 404 like an unknown item.
    let (status, foreign) = request_link_token(&app, &alice.token, json!({ "item_id": bob.item_id })).await;
    let (_, missing) = request_link_token(&app, &alice.token, json!({ "item_id": "no-such-item" })).await;
    assert_eq!((status, &foreign), (StatusCode::NOT_FOUND, &missing));

    // A public token for Bob's item (leaked from Bob's update-mode Link) exchanged by Alice.
    let (_, link) = request_link_token(&app, &bob.token, json!({ "item_id": bob.item_id })).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    let (status, body) = exchange_public_token(&app, &alice.token, &completion.public_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    assert_eq!(user_rows(&app.pool, bob.user_id).await, bob_before);
    assert_eq!(
        app.sim.call_count("/item/remove", None),
        0,
        "Bob's item is never removed at Plaid"
    );
    assert_eq!(
        listed_ids(&app, &bob, "/api/plaid/items", "items").await,
        json!([bob.item_id])
    );
    app.stop().await;
}

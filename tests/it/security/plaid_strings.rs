//! Strings Plaid sends are hostile input too: account, institution, transaction
//! and merchant names with SQL metacharacters are stored verbatim. The item is
//! made through the simulator's control API (real HTTP), adopted as the user's
//! item, relinked in update mode through our routes, then synced by a worker.

use serde_json::{Value, json};
use workflows::{redact::Secret, secrets::SecretStore, secrets::SecretsKey};

use super::fixtures::{HOSTILE, assert_tables_intact};
use crate::support::{
    TestApp,
    plaid::{exchange_public_token, request_link_token, sync_now},
};

/// The hostile strings PostgreSQL can hold (text cannot hold NUL; see `sql_metachars`).
fn storable() -> Vec<&'static str> {
    HOSTILE.iter().copied().filter(|s| !s.contains('\0')).collect()
}

async fn control(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app
        .http
        .post(format!("{}/simulator{path}", app.sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

/// Adopts a simulator item as `user_id`'s (its access token in our secret store).
async fn adopt(app: &TestApp, user_id: i64, item_id: &str, access_token: &str) -> i64 {
    let store = SecretStore::new(SecretsKey::from_base64(&app.vars["SECRETS_KEY"]).unwrap(), vec![]);
    let mut conn = app.pool.acquire().await.unwrap();
    let secret_ref = store.put(&mut conn, &Secret::new(access_token)).await.unwrap();
    sqlx::query_scalar(
        "insert into plaid_items (user_id, item_id, secret_ref, sync_status) values ($1, $2, $3, 'active')
         returning id",
    )
    .bind(user_id)
    .bind(item_id)
    .bind(secret_ref)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn hostile_names_from_plaid_are_stored_verbatim() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token("alice@example.com").await;
    let names = storable();
    let institution = "ins_'; drop table plaid_items; --";
    let accounts: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"name": name, "official_name": name, "mask": "0000", "type": "depository",
                   "subtype": name, "balances": {"current": 1.5, "iso_currency_code": "USD"}})
        })
        .collect();
    let created = control(
        &app,
        "/items",
        json!({ "institution_id": institution, "accounts": accounts }),
    )
    .await;
    let item_id = created["item_id"].as_str().unwrap();
    let plaid_item_id = adopt(&app, user.id, item_id, created["access_token"].as_str().unwrap()).await;

    // Update-mode Link through our routes: the exchange records Plaid's accounts.
    let (_, link) = request_link_token(&app, &token, json!({ "item_id": item_id })).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    let (status, body) = exchange_public_token(&app, &token, &completion.public_token).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let stored: Vec<(String, Option<String>)> =
        sqlx::query_as("select name, subtype from accounts where user_id = $1 order by id")
            .bind(user.id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let expected: Vec<(String, Option<String>)> = names
        .iter()
        .map(|n| (n.to_string(), Some(n.to_string())))
        .collect();
    assert_eq!(stored, expected);
    let stored_institution: Option<String> =
        sqlx::query_scalar("select institution_id from plaid_items where id = $1")
            .bind(plaid_item_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored_institution.as_deref(), Some(institution));

    // Transactions named like the accounts, synced by a worker.
    let account_ids: Vec<String> = created["account_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let transactions: Vec<Value> = names
        .iter()
        .zip(&account_ids)
        .map(|(name, account)| {
            json!({"account_id": account, "amount": 12.34, "date": "2026-11-01", "name": name,
                   "merchant_name": name})
        })
        .collect();
    control(
        &app,
        &format!("/items/{item_id}/transactions"),
        json!({ "transactions": transactions }),
    )
    .await;
    control(
        &app,
        &format!("/items/{item_id}/ready"),
        json!({ "status": "HISTORICAL_UPDATE_COMPLETE" }),
    )
    .await;
    sync_now(&app, plaid_item_id).await;
    let synced: Vec<(String, Option<String>)> = sqlx::query_as(
        "select t.name, t.merchant_name from transactions t join accounts a on a.id = t.account_id
         where a.user_id = $1 order by a.id",
    )
    .bind(user.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(synced, expected);
    let status: String = sqlx::query_scalar("select sync_status from plaid_items where id = $1")
        .bind(plaid_item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "active");
    assert_tables_intact(&app.pool, 1).await;
    app.stop().await;
}

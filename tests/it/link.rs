//! Link and reauth entry: link tokens, public token exchange, items.

use plaid_simulator::{Fault, FaultError};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    TestApp,
    plaid::{exchange_public_token, link_new_item, pending_sync_jobs, post_webhook, request_link_token},
};

async fn plaid_item_id(app: &TestApp, item_id: &str) -> i64 {
    sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn linking_stores_the_item_its_accounts_an_encrypted_token_and_queues_the_first_sync() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let item_id = linked["item_id"].as_str().unwrap();
    let accounts = linked["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3, "the simulator's default item has 3 accounts");
    assert!(
        accounts
            .iter()
            .all(|a| a["id"].is_i64() && a["name"].is_string() && a["type"].is_string())
    );

    let (owner, status, secret_ref, institution): (i64, String, String, Option<String>) = sqlx::query_as(
        "select user_id, sync_status, secret_ref, institution_id from plaid_items where item_id = $1",
    )
    .bind(item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((owner, status.as_str()), (user.id, "sync_needed"));
    assert_eq!(institution.as_deref(), Some("ins_109508"));
    // The access token is stored only encrypted.
    let access_token = app.sim.item(item_id).unwrap().access_token;
    let ciphertext: Vec<u8> = sqlx::query_scalar("select ciphertext from secrets where secret_ref = $1")
        .bind(&secret_ref)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        !ciphertext
            .windows(access_token.len())
            .any(|w| w == access_token.as_bytes())
    );
    let mappings: i64 = sqlx::query_scalar(
        "select count(*) from plaid_item_accounts m join plaid_items i on i.id = m.plaid_item_id
         where i.item_id = $1 and m.active",
    )
    .bind(item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(mappings, 3);
    assert_eq!(
        pending_sync_jobs(&app, plaid_item_id(&app, item_id).await).await,
        1
    );

    // GET /api/plaid/items shows it with its accounts.
    let items: Value = app
        .http
        .get(format!("{}/api/plaid/items", app.public_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = items["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["item_id"], item_id);
    assert_eq!(items[0]["sync_status"], "sync_needed");
    assert_eq!(items[0]["lifecycle"], "active");
    assert_eq!(items[0]["accounts"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn the_same_public_token_exchanged_twice_never_creates_two_items() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, link) = request_link_token(&app, &token, json!({})).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();

    let (a, b) = tokio::join!(
        exchange_public_token(&app, &token, &completion.public_token),
        exchange_public_token(&app, &token, &completion.public_token)
    );
    let statuses = [a.0, b.0];
    assert!(statuses.contains(&StatusCode::CREATED), "{a:?} {b:?}");
    let items: i64 = sqlx::query_scalar("select count(*) from plaid_items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let accounts: i64 = sqlx::query_scalar("select count(*) from accounts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((items, accounts), (1, 3));
    app.stop().await;
}

#[tokio::test]
async fn update_mode_replaces_the_secret_and_returns_a_needs_reauth_item_to_sync_needed() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let item_id = linked["item_id"].as_str().unwrap();
    let id = plaid_item_id(&app, item_id).await;
    let old_secret: String = sqlx::query_scalar("select secret_ref from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query("delete from sync_pending")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "update plaid_items set sync_status = 'needs_reauth', reauth_needed_at = now() where id = $1",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    app.sim.reset_login(item_id).unwrap();

    let (status, link) = request_link_token(&app, &token, json!({ "item_id": item_id })).await;
    assert_eq!(status, StatusCode::OK);
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    assert!(completion.update_mode);
    let (status, body) = exchange_public_token(&app, &token, &completion.public_token).await;
    assert_eq!(status, StatusCode::OK, "an item we already have: {body}");
    assert_eq!(body["item_id"], item_id);

    let (sync_status, reauth, secret_ref): (String, Option<chrono::DateTime<chrono::Utc>>, String) =
        sqlx::query_as("select sync_status, reauth_needed_at, secret_ref from plaid_items where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(sync_status, "sync_needed");
    assert!(reauth.is_none());
    assert_ne!(secret_ref, old_secret, "the secret is replaced");
    let old_left: i64 = sqlx::query_scalar("select count(*) from secrets where secret_ref = $1")
        .bind(&old_secret)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(old_left, 0, "the old secret is deleted");
    assert_eq!(
        pending_sync_jobs(&app, id).await,
        2,
        "first link's job plus the catch-up sync"
    );
    let items: i64 = sqlx::query_scalar("select count(*) from plaid_items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(items, 1);
    app.stop().await;
}

#[tokio::test]
async fn another_users_item_is_a_404_for_link_tokens_and_exchanges() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, alice) = app.user_with_token("alice@example.com").await;
    let (_, mallory) = app.user_with_token("mallory@example.com").await;
    let linked = link_new_item(&app, &alice).await;
    let item_id = linked["item_id"].as_str().unwrap();
    let secret_before: String = sqlx::query_scalar("select secret_ref from plaid_items where item_id = $1")
        .bind(item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let (status, body) = request_link_token(&app, &mallory, json!({ "item_id": item_id })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // A public token for Alice's item (say, leaked) exchanged by Mallory: refused, nothing changes.
    let (_, alice_link) = request_link_token(&app, &alice, json!({ "item_id": item_id })).await;
    let completion = app
        .sim
        .complete_link(alice_link["link_token"].as_str().unwrap())
        .unwrap();
    let (status, _) = exchange_public_token(&app, &mallory, &completion.public_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (owner_email, secret_after): (String, String) = sqlx::query_as(
        "select u.email, i.secret_ref from plaid_items i join users u on u.id = i.user_id where i.item_id = $1",
    )
    .bind(item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (owner_email.as_str(), secret_after),
        ("alice@example.com", secret_before)
    );
    assert_eq!(
        app.sim.call_count("/item/remove", None),
        0,
        "Alice's item is never removed"
    );

    // Mallory sees none of it.
    let items: Value = app
        .http
        .get(format!("{}/api/plaid/items", app.public_url))
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn plaid_errors_are_clear_answers_and_leave_nothing_behind() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;

    // An invalid public token.
    let (status, body) = exchange_public_token(
        &app,
        &token,
        "public-sandbox-00000000-0000-0000-0000-000000000000",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_public_token"))
    );

    // Plaid down during the exchange.
    let (_, link) = request_link_token(&app, &token, json!({})).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    app.sim
        .inject_fault(
            Fault::new(FaultError::internal_server_error(), 1).on_endpoint("/item/public_token/exchange"),
        )
        .unwrap();
    let (status, body) = exchange_public_token(&app, &token, &completion.public_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("plaid_unavailable"))
    );

    // Plaid fails after the exchange (accounts): nothing stored, and the new item is removed at Plaid
    // so it is not billed while nobody holds its token.
    let (_, link) = request_link_token(&app, &token, json!({})).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    app.sim
        .inject_fault(Fault::new(FaultError::institution_down(), 1).on_endpoint("/accounts/get"))
        .unwrap();
    let (status, _) = exchange_public_token(&app, &token, &completion.public_token).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(app.sim.call_count("/item/remove", Some(&completion.item_id)), 1);

    for table in [
        "plaid_items",
        "accounts",
        "secrets",
        "plaid_item_accounts",
        "sync_pending",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} must be empty");
    }

    // Malformed bodies.
    let response = app
        .http
        .post(format!("{}/api/plaid/exchange-token", app.public_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_body");
    app.stop().await;
}

#[tokio::test]
async fn accounts_plaid_no_longer_lists_are_deactivated_on_relink_not_deleted() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let linked = link_new_item(&app, &token).await;
    let item_id = linked["item_id"].as_str().unwrap();
    let id = plaid_item_id(&app, item_id).await;
    // An account mapped earlier that Plaid no longer lists.
    let gone: i64 = sqlx::query_scalar(
        "insert into accounts (user_id, provider, name) values ($1, 'plaid', 'Old') returning id",
    )
    .bind(user.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    sqlx::query("insert into plaid_item_accounts (account_id, plaid_item_id, plaid_account_id) values ($1, $2, 'vanished')")
        .bind(gone)
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();

    let (_, link) = request_link_token(&app, &token, json!({ "item_id": item_id })).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        exchange_public_token(&app, &token, &completion.public_token)
            .await
            .0,
        StatusCode::OK
    );

    let active: bool = sqlx::query_scalar("select active from plaid_item_accounts where account_id = $1")
        .bind(gone)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!active);
    let still_there: i64 = sqlx::query_scalar("select count(*) from accounts where id = $1")
        .bind(gone)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(still_there, 1);
    let active_total: i64 = sqlx::query_scalar("select count(*) from plaid_item_accounts where active")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(active_total, 3);
    app.stop().await;
}

#[tokio::test]
async fn webhooks_stored_before_the_item_existed_are_absorbed_by_its_first_sync() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, link) = request_link_token(&app, &token, json!({})).await;
    let completion = app
        .sim
        .complete_link(link["link_token"].as_str().unwrap())
        .unwrap();
    // Plaid's webhook beats our exchange.
    let hook = app
        .sim
        .build_webhook(&completion.item_id, &crate::support::plaid::sync_updates())
        .unwrap();
    assert_eq!(
        post_webhook(&app, &hook.body, &[("plaid-verification", &hook.verification)])
            .await
            .0,
        StatusCode::OK
    );
    let unprocessed = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from plaid_webhook_events where processed_at is null")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(unprocessed().await, 1);

    assert_eq!(
        exchange_public_token(&app, &token, &completion.public_token)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(unprocessed().await, 0, "the first sync covers it");
    assert_eq!(
        pending_sync_jobs(&app, plaid_item_id(&app, &completion.item_id).await).await,
        1
    );
    app.stop().await;
}

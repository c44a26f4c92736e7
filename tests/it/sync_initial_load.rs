//! The initial load by `COPY` (`workflows::sync::initial_load`): it writes
//! exactly what the upsert writes, it is used only for an item's first update
//! into empty accounts, and what it cannot take goes through the upsert.
//!
//! The app runs without workers (`Role::Api`); each test drives
//! `workflows::sync::run` itself so it can read the run's outcome (how many
//! rows went by `COPY`).

use std::{collections::HashMap, sync::Arc};

use axum::{Json, Router, extract::State, routing::post};
use plaid_simulator::{NewTransaction, SimulatorConfig, TransactionPatch};
use plaid_sync::cli::Role;
use secrecy::SecretString;
use serde_json::{Value, json};
use workflows::{
    plaid::{AccessToken, PlaidClient, PlaidConfig, types::TransactionsSyncRequest},
    secrets::{SecretStore, SecretsKey},
    sync::{self, SyncOutcome, apply::apply_page, initial_load::InitialLoad},
};

use crate::support::{
    TestApp,
    app::test_sync_settings,
    oracle::{assert_matches_truth, live_count},
    plaid::{item_status, linked_item_with_history},
};

async fn api_only() -> TestApp {
    TestApp::spawn_with(|_| {}, Role::Api).await
}

fn client_for(base_url: String) -> PlaidClient {
    let defaults = SimulatorConfig::default();
    PlaidClient::new(&PlaidConfig::new(
        base_url,
        defaults.client_id,
        SecretString::from(defaults.secret),
    ))
    .unwrap()
}

fn secrets(app: &TestApp) -> SecretStore {
    SecretStore::new(SecretsKey::from_base64(&app.vars["SECRETS_KEY"]).unwrap(), vec![])
}

/// One sync run of `id` through `plaid`, as a worker would run it.
async fn run_sync(app: &TestApp, plaid: &PlaidClient, id: i64) -> SyncOutcome {
    sync::run(
        &app.pool,
        plaid,
        &secrets(app),
        &test_sync_settings(),
        id,
        &format!("test-run-{id}-{}", std::process::id()),
        "test-worker",
    )
    .await
    .unwrap()
}

/// (copied, upserted) of a `Synced` outcome; fails on any other.
fn copied_of(outcome: &SyncOutcome) -> (u64, u64) {
    match outcome {
        SyncOutcome::Synced { copied, upserted, .. } => (*copied, *upserted),
        other => panic!("expected a synced run, got {other:?}"),
    }
}

/// A new transaction with a merchant name too (text COPY must escape it as well).
fn new_txn(account_id: &str, amount: f64, name: &str, pending: bool) -> NewTransaction {
    NewTransaction {
        merchant_name: Some(format!("{name} & co")),
        ..crate::sync::new_txn(account_id, amount, name, pending)
    }
}

/// Every column a sync writes, per row, as text (ids and timestamps aside).
async fn stored_rows(conn: &mut sqlx::PgConnection) -> Vec<Vec<Option<String>>> {
    sqlx::query_scalar::<_, Vec<Option<String>>>(
        "select array[account_id::text, external_id, amount::text, iso_currency_code, unofficial_currency_code,
                      date::text, authorized_date::text, name, merchant_name, pending::text,
                      pending_external_id, archived::text, raw_json::text]
         from transactions order by account_id, external_id",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn copy_writes_exactly_what_the_upsert_writes_for_the_same_pages() {
    let app = api_only().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 1_200, 5).await;
    // Text COPY must escape: tabs, newlines, carriage returns, backslashes,
    // quotes, `\N`, non-ASCII; and a pending row.
    let account = app
        .sim
        .truth(&item_id)
        .unwrap()
        .accounts
        .keys()
        .next()
        .unwrap()
        .clone();
    for name in [
        "tab\there",
        "new\nline\r\n",
        r"back\slash \N",
        "quote \" and ' ",
        "café 🍩",
        "",
    ] {
        app.sim
            .add_transaction(&item_id, new_txn(&account, 1.5, name, false))
            .unwrap();
    }
    app.sim
        .add_transaction(&item_id, new_txn(&account, 7.25, "hold", true))
        .unwrap();

    // Plaid's pages for the first update, as sent.
    let plaid = client_for(app.sim.base_url());
    let secret_ref: String = sqlx::query_scalar("select secret_ref from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let access_token = secrets(&app)
        .get(&mut app.pool.acquire().await.unwrap(), &secret_ref)
        .await
        .unwrap();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let request = TransactionsSyncRequest {
            count: Some(500),
            ..TransactionsSyncRequest::new(AccessToken::new(access_token.expose()))
                .with_cursor(cursor.clone())
        };
        let (page, body) = plaid.transactions_sync_page(&request).await.unwrap();
        pages.push(String::from_utf8(body.to_vec()).unwrap());
        if !page.has_more {
            break;
        }
        cursor = Some(page.next_cursor);
    }
    assert!(pages.len() >= 3, "1,207 transactions take 3 pages of 500");

    // Each path on its own transaction, rolled back after reading what it wrote.
    let mut tx = app.pool.begin().await.unwrap();
    let load = InitialLoad::plan(&mut tx, id, None)
        .await
        .unwrap()
        .expect("a first update into empty accounts is an initial load");
    let mut segment = load.begin_copy(&mut tx).await.unwrap();
    for page in &pages {
        let rows = load.rows(page).expect("Plaid's initial pages qualify");
        segment.send(rows).await.unwrap();
    }
    let (written, tombstoned) = segment
        .finish()
        .await
        .unwrap()
        .tombstone_replaced_pending(&mut tx)
        .await
        .unwrap();
    assert_eq!((written, tombstoned), (1_207, 0));
    let copied = stored_rows(&mut tx).await;
    tx.rollback().await.unwrap();

    let mut tx = app.pool.begin().await.unwrap();
    for page in &pages {
        apply_page(&mut tx, id, page).await.unwrap();
    }
    let upserted = stored_rows(&mut tx).await;
    tx.rollback().await.unwrap();

    assert_eq!(copied.len(), 1_207);
    assert_eq!(copied, upserted, "COPY and the upsert wrote different rows");
    let names: Vec<&str> = copied.iter().filter_map(|row| row[7].as_deref()).collect();
    assert!(names.contains(&"new\nline\r\n") && names.contains(&r"back\slash \N"));
    app.stop().await;
}

#[tokio::test]
async fn the_first_sync_is_copied_and_later_updates_are_upserted() {
    let app = api_only().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 2_000, 9).await;
    let plaid = client_for(app.sim.base_url());

    let first = run_sync(&app, &plaid, id).await;
    assert_eq!(copied_of(&first), (2_000, 2_000), "{first:?}");
    assert_matches_truth(&app, &item_id).await;

    let truth = app.sim.truth(&item_id).unwrap();
    let account = truth.accounts.keys().next().unwrap().clone();
    let existing: Vec<String> = truth
        .accounts
        .values()
        .flatten()
        .map(|t| t.transaction_id.clone())
        .take(3)
        .collect();
    app.sim
        .add_transaction(&item_id, new_txn(&account, 3.0, "later", false))
        .unwrap();
    app.sim
        .modify_transaction(
            &item_id,
            &existing[0],
            TransactionPatch {
                amount: Some(42.0),
                ..Default::default()
            },
        )
        .unwrap();
    app.sim.remove_transactions(&item_id, &[&existing[1]]).unwrap();
    let second = run_sync(&app, &plaid, id).await;
    assert_eq!(
        copied_of(&second).0,
        0,
        "an update from a cursor is upserted: {second:?}"
    );
    assert_matches_truth(&app, &item_id).await;
    assert_eq!(live_count(&app, &item_id).await, 2_000);
    app.stop().await;
}

#[tokio::test]
async fn an_empty_cursor_over_stored_rows_goes_through_the_upsert() {
    let app = api_only().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (item_id, id) = linked_item_with_history(&app, &token, 700, 3).await;
    let plaid = client_for(app.sim.base_url());
    assert_eq!(copied_of(&run_sync(&app, &plaid, id).await).0, 700);

    // The cursor is lost (e.g. reset by an operator): Plaid sends the whole
    // history again, over rows we already hold.
    let existing = app
        .sim
        .truth(&item_id)
        .unwrap()
        .accounts
        .values()
        .flatten()
        .next()
        .unwrap()
        .transaction_id
        .clone();
    app.sim
        .modify_transaction(
            &item_id,
            &existing,
            TransactionPatch {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .unwrap();
    sqlx::query("update plaid_items set cursor = null where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let again = run_sync(&app, &plaid, id).await;
    assert_eq!(copied_of(&again).0, 0, "rows exist, so no COPY: {again:?}");
    assert_matches_truth(&app, &item_id).await;
    assert_eq!(live_count(&app, &item_id).await, 700);
    app.stop().await;
}

/// A `/transactions/sync` that serves fixed pages by cursor ("" → page 0,
/// "c1" → page 1, ...), whatever the access token. Pages are `{"added": [...],
/// "modified": [...]}`; with `mutate_at`, the first request for that page
/// fails with `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`.
async fn fixed_pages_failing_once(pages: Vec<Value>, mutate_at: Option<usize>) -> String {
    struct Pages {
        pages: Vec<Value>,
        mutate_at: std::sync::Mutex<Option<usize>>,
    }
    async fn answer(
        State(state): State<Arc<Pages>>,
        Json(request): Json<Value>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        let cursor = request["cursor"].as_str().unwrap_or("");
        let index: usize = cursor.strip_prefix('c').map_or(0, |n| n.parse().unwrap());
        let mut mutate_at = state.mutate_at.lock().unwrap();
        if *mutate_at == Some(index) {
            *mutate_at = None;
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({
                    "error_type": "TRANSACTIONS_ERROR",
                    "error_code": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
                    "error_message": "Underlying transaction data changed since last page was fetched.",
                    "display_message": null,
                    "request_id": format!("req-m{index}"),
                })),
            );
        }
        let page = &state.pages[index];
        let last = index + 1 == state.pages.len();
        (
            axum::http::StatusCode::OK,
            Json(json!({
                "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
                "accounts": [],
                "added": page["added"],
                "modified": page.get("modified").cloned().unwrap_or(json!([])),
                "removed": [],
                "next_cursor": format!("c{}", index + 1),
                "has_more": !last,
                "request_id": format!("req-{index}"),
            })),
        )
    }
    let state = Pages {
        pages,
        mutate_at: std::sync::Mutex::new(mutate_at),
    };
    let app = Router::new()
        .route("/transactions/sync", post(answer))
        .with_state(Arc::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn fixed_pages(pages: Vec<Value>) -> String {
    fixed_pages_failing_once(pages, None).await
}

fn txn(account: &str, id: &str, amount: i64, pending: bool, pending_id: Option<&str>) -> Value {
    json!({
        "transaction_id": id, "account_id": account, "amount": amount, "iso_currency_code": "USD",
        "date": "2026-11-20", "name": format!("txn {id}"), "pending": pending,
        "pending_transaction_id": pending_id,
    })
}

/// (external_id → (amount, archived, pending_external_id)) of the item's rows.
async fn rows_by_id(app: &TestApp, id: i64) -> HashMap<String, (String, bool, Option<String>)> {
    let rows: Vec<(String, String, bool, Option<String>)> = sqlx::query_as(
        "select t.external_id, t.amount::text, t.archived, t.pending_external_id
         from transactions t join plaid_item_accounts m on m.account_id = t.account_id
         where m.plaid_item_id = $1",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(e, a, ar, p)| (e, (a, ar, p))).collect()
}

async fn plaid_account_of(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("select plaid_account_id from plaid_item_accounts where plaid_item_id = $1 limit 1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_transaction_repeated_on_a_later_page_redoes_the_update_without_copy() {
    let app = api_only().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, id) = linked_item_with_history(&app, &token, 0, 1).await;
    let account = plaid_account_of(&app, id).await;
    let url = fixed_pages(vec![
        json!({"added": [txn(&account, "t1", 1, false, None), txn(&account, "t2", 2, false, None)]}),
        json!({"added": [txn(&account, "t1", 5, false, None), txn(&account, "t3", 3, false, None)]}),
    ])
    .await;

    let outcome = run_sync(&app, &client_for(url), id).await;
    assert_eq!(
        copied_of(&outcome).0,
        0,
        "the redo went through the upsert: {outcome:?}"
    );
    let rows = rows_by_id(&app, id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows["t1"].0, "5", "the later entry wins, as in the upsert");
    assert_eq!(item_status(&app, id).await.0, "active");
    app.stop().await;
}

#[tokio::test]
async fn a_posted_row_copied_after_its_pending_row_tombstones_it() {
    let app = api_only().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, id) = linked_item_with_history(&app, &token, 0, 1).await;
    let account = plaid_account_of(&app, id).await;
    let url = fixed_pages(vec![
        json!({"added": [txn(&account, "p1", 10, true, None), txn(&account, "a1", 1, false, None)]}),
        json!({"added": [txn(&account, "t1", 12, false, Some("p1"))]}),
    ])
    .await;

    let outcome = run_sync(&app, &client_for(url), id).await;
    assert_eq!(copied_of(&outcome), (3, 3), "{outcome:?}");
    let rows = rows_by_id(&app, id).await;
    assert!(rows["p1"].1, "the pending row became a tombstone");
    assert_eq!(rows["t1"], ("12".to_owned(), false, Some("p1".to_owned())));
    assert!(!rows["a1"].1);
    let source_removed: bool = sqlx::query_scalar(
        "select (raw_json ->> 'source_removed')::boolean from transactions where external_id = 'p1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(source_removed);
    app.stop().await;
}

#[tokio::test]
async fn copy_segments_around_an_upserted_page_and_a_mutation_restart_end_as_the_upsert_would() {
    let app = api_only().await;
    let (_, token) = app.user_with_token("a@example.com").await;
    let (_, id) = linked_item_with_history(&app, &token, 0, 1).await;
    let a = plaid_account_of(&app, id).await;
    let url = fixed_pages_failing_once(
        vec![
            // COPY: a pending row and a plain one.
            json!({"added": [txn(&a, "p1", 10, true, None), txn(&a, "a1", 1, false, None)]}),
            // No entries: the segment stays open.
            json!({"added": []}),
            // COPY, same segment: p1 posts as t1.
            json!({"added": [txn(&a, "t1", 12, false, Some("p1")), txn(&a, "a2", 2, false, None)]}),
            // Upsert (a modified entry): the segment closes first, so p1 is a
            // tombstone before this page runs; a1 changes.
            json!({"added": [txn(&a, "a3", 3, false, None)], "modified": [txn(&a, "a1", 100, false, None)]}),
            // COPY again: a new segment.
            json!({"added": [txn(&a, "a4", 4, false, None)]}),
        ],
        // The first try fails on page 3, inside the first segment: the COPY is
        // aborted, the attempt rolled back and the update restarted.
        Some(2),
    )
    .await;

    let outcome = run_sync(&app, &client_for(url), id).await;
    let SyncOutcome::Synced {
        restarts,
        copied,
        upserted,
        tombstoned,
        ..
    } = outcome
    else {
        panic!("expected a synced run, got {outcome:?}");
    };
    assert_eq!(restarts, 1);
    assert_eq!((copied, upserted, tombstoned), (5, 7, 1));
    let rows = rows_by_id(&app, id).await;
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows["p1"].1, "p1 tombstoned by its posted row");
    assert_eq!(rows["t1"], ("12".to_owned(), false, Some("p1".to_owned())));
    assert_eq!(rows["a1"].0, "100", "the upserted page modified a copied row");
    for id in ["a2", "a3", "a4"] {
        assert!(!rows[id].1, "{id} live");
    }
    app.stop().await;
}

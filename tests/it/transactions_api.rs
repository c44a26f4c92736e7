//! `GET /api/accounts/{id}/transactions`: newest-first keyset pages, tombstones
//! on request, the caller's accounts only. Rows are inserted with SQL, so every
//! expectation is computed from what was inserted, not from the API.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

async fn spawn() -> TestApp {
    TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await
}

/// A Plaid account of `user_id` (no item needed: the route reads `transactions`).
async fn account(pool: &PgPool, user_id: i64) -> i64 {
    sqlx::query_scalar(
        "insert into accounts (user_id, provider, name) values ($1, 'plaid', 'Checking') returning id",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// One transaction; returns its id.
async fn insert(
    pool: &PgPool,
    account_id: i64,
    external_id: &str,
    date: &str,
    amount: &str,
    archived: bool,
) -> i64 {
    sqlx::query_scalar(
        "insert into transactions (account_id, external_id, amount, iso_currency_code, date, name, archived, raw_json)
         values ($1, $2, $3::numeric, 'USD', $4::date, 'Coffee', $5,
                 case when $5 then '{\"source_removed\": true}'::jsonb else '{}'::jsonb end)
         returning id",
    )
    .bind(account_id)
    .bind(external_id)
    .bind(amount)
    .bind(date)
    .bind(archived)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `GET /api/accounts/{account}/transactions{query}` as the holder of `token`.
async fn get(
    app: &TestApp,
    token: Option<&str>,
    account: &str,
    query: &str,
) -> (StatusCode, Option<String>, Value) {
    let mut request = app.http.get(format!(
        "{}/api/accounts/{account}/transactions{query}",
        app.public_url
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, response.json().await.unwrap())
}

/// Follows `next_cursor` from the first page; returns the ids of each page.
async fn all_pages(app: &TestApp, token: &str, account: i64, extra: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut after = String::new();
    loop {
        let (status, _, body) = get(
            app,
            Some(token),
            &account.to_string(),
            &format!("?{extra}{after}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages.push(ids(&body));
        match body["next_cursor"].as_str() {
            Some(cursor) => after = format!("&after={cursor}"),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

fn ids(page: &Value) -> Vec<i64> {
    page["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

/// Ids sorted as the route must return them: date desc, then id desc.
fn newest_first(mut rows: Vec<(&str, i64)>) -> Vec<i64> {
    rows.sort_by(|a, b| b.cmp(a));
    rows.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test]
async fn pages_are_newest_first_and_no_row_is_lost_or_repeated() {
    // Arrange: 7 rows inserted out of order, three of them on the same date.
    let app = spawn().await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let acct = account(&app.pool, user.id).await;
    let other = account(&app.pool, user.id).await;
    let dates = [
        "2026-11-03",
        "2026-11-01",
        "2026-11-05",
        "2026-11-03",
        "2026-10-30",
        "2026-11-03",
        "2026-11-02",
    ];
    let mut rows = Vec::new();
    for (i, date) in dates.iter().enumerate() {
        rows.push((
            *date,
            insert(&app.pool, acct, &format!("tx-{i}"), date, "1.00", false).await,
        ));
    }
    insert(&app.pool, other, "elsewhere", "2026-11-04", "1.00", false).await;
    let expected = newest_first(rows.clone());

    // Act: pages of 3.
    let pages = all_pages(&app, &token, acct, "limit=3").await;

    // Assert: 3 + 3 + 1 in order, the last page without a cursor.
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(pages.concat(), expected);
    // One page of exactly all rows says it is the last; the default limit (50) holds them all.
    for query in ["limit=7", ""] {
        let pages = all_pages(&app, &token, acct, query).await;
        assert_eq!((pages.len(), pages.concat()), (1, expected.clone()), "{query}");
    }

    // A row newer than everything, added after the first page, does not shift the next one.
    let (_, _, first) = get(&app, Some(&token), &acct.to_string(), "?limit=3").await;
    insert(&app.pool, acct, "late", "2026-12-01", "1.00", false).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, second) = get(
        &app,
        Some(&token),
        &acct.to_string(),
        &format!("?limit=3&after={cursor}"),
    )
    .await;
    assert_eq!(ids(&second), expected[3..6]);
    app.stop().await;
}

#[tokio::test]
async fn a_transaction_has_the_contract_fields_and_an_exact_amount() {
    let app = spawn().await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let acct = account(&app.pool, user.id).await;
    let id = insert(
        &app.pool,
        acct,
        "tx-exact",
        "2026-11-28",
        "12345678901234567.105",
        false,
    )
    .await;

    let (status, _, body) = get(&app, Some(&token), &acct.to_string(), "").await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "transactions": [{
                "id": id,
                "external_id": "tx-exact",
                "amount": "12345678901234567.105",
                "iso_currency_code": "USD",
                "date": "2026-11-28",
                "authorized_date": null,
                "name": "Coffee",
                "merchant_name": null,
                "pending": false,
                "pending_external_id": null,
                "archived": false,
            }],
            "next_cursor": null,
        })
    );
    app.stop().await;
}

#[tokio::test]
async fn tombstones_are_listed_only_with_include_archived() {
    let app = spawn().await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let acct = account(&app.pool, user.id).await;
    let mut live = Vec::new();
    let mut all = Vec::new();
    for (i, (date, archived)) in [
        ("2026-11-01", false),
        ("2026-11-02", true),
        ("2026-11-02", false),
        ("2026-11-03", true),
        ("2026-11-04", false),
    ]
    .into_iter()
    .enumerate()
    {
        let id = insert(&app.pool, acct, &format!("tx-{i}"), date, "2.50", archived).await;
        all.push((date, id));
        if !archived {
            live.push((date, id));
        }
    }
    let (live, all) = (newest_first(live), newest_first(all));

    // Hidden by default and with include_archived=false.
    assert_eq!(all_pages(&app, &token, acct, "").await.concat(), live);
    assert_eq!(
        all_pages(&app, &token, acct, "include_archived=false&limit=2")
            .await
            .concat(),
        live
    );
    // Shown, flagged, and paged like the rest with include_archived=true.
    let pages = all_pages(&app, &token, acct, "include_archived=true&limit=2").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), all);
    let (_, _, body) = get(&app, Some(&token), &acct.to_string(), "?include_archived=true").await;
    let flagged: Vec<i64> = body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["archived"] == json!(true))
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let mut expected_flagged: Vec<i64> = all.iter().copied().filter(|id| !live.contains(id)).collect();
    expected_flagged.sort_by(|a, b| b.cmp(a));
    assert_eq!(flagged, expected_flagged);
    app.stop().await;
}

#[tokio::test]
async fn another_users_account_is_the_same_404_as_a_missing_one() {
    let app = spawn().await;
    let (_alice, alice_token) = app.user_with_token("alice@example.com").await;
    let (bob, bob_token) = app.user_with_token("bob@example.com").await;
    let bobs = account(&app.pool, bob.id).await;
    insert(&app.pool, bobs, "bob-tx", "2026-11-01", "9.99", true).await;

    let missing = get(&app, Some(&alice_token), &i64::MAX.to_string(), "").await;
    let foreign = get(
        &app,
        Some(&alice_token),
        &bobs.to_string(),
        "?include_archived=true",
    )
    .await;
    let not_a_number = get(&app, Some(&alice_token), "abc", "").await;

    assert_eq!(missing.0, StatusCode::NOT_FOUND, "{missing:?}");
    assert_eq!(missing.2["error"], "not_found");
    assert_eq!(foreign, missing);
    assert_eq!(not_a_number, missing);
    // Control: the account is Bob's, and Bob sees its row.
    let (status, _, own) = get(
        &app,
        Some(&bob_token),
        &bobs.to_string(),
        "?include_archived=true",
    )
    .await;
    assert_eq!(
        (status, own["transactions"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_limit_cursor_or_flag_is_a_json_400_documented_in_openapi() {
    let app = spawn().await;
    let (user, token) = app.user_with_token("a@example.com").await;
    let acct = account(&app.pool, user.id).await;
    insert(&app.pool, acct, "tx", "2026-11-01", "1.00", false).await;
    let forged = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    };
    let mut cases = vec![
        ("?limit=0", "invalid_limit"),
        ("?limit=501", "invalid_limit"),
        ("?limit=-1", "invalid_limit"),
        ("?limit=abc", "invalid_limit"),
        ("?limit=1.5", "invalid_limit"),
        ("?limit=99999999999999999999", "invalid_limit"),
        ("?after=garbage!", "invalid_cursor"),
        ("?include_archived=yes", "invalid_include_archived"),
        ("?limit=1&limit=2", "invalid_query"),
        // The URI guard in front of every API route (`text_guard`).
        ("?after=%00", "invalid_text"),
    ];
    let bad_cursors: Vec<String> = [
        "2026-11-01",
        "2026-11-01|x",
        "x|1",
        "2026-02-30|1",
        "-5000-01-01|1",
    ]
    .into_iter()
    .map(|t| format!("?after={}", forged(t)))
    .collect();
    cases.extend(bad_cursors.iter().map(|q| (q.as_str(), "invalid_cursor")));

    for (query, code) in cases {
        let (status, content_type, body) = get(&app, Some(&token), &acct.to_string(), query).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {body}"
        );
        assert!(body["message"].is_string(), "{query}: {body}");
        assert!(content_type.unwrap().starts_with("application/json"), "{query}");
    }
    // The boundaries are accepted.
    for query in ["?limit=1", "?limit=500", "?limit=&after=&include_archived="] {
        assert_eq!(
            get(&app, Some(&token), &acct.to_string(), query).await.0,
            StatusCode::OK,
            "{query}"
        );
    }

    let spec: Value = app
        .http
        .get(format!("{}/openapi.json", app.public_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let responses = &spec["paths"]["/api/accounts/{id}/transactions"]["get"]["responses"];
    for status in ["200", "400", "401", "404"] {
        assert!(
            responses[status].is_object(),
            "{status} undocumented: {responses}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_a_401() {
    let app = spawn().await;
    let (user, _token) = app.user_with_token("a@example.com").await;
    let acct = account(&app.pool, user.id).await;

    for token in [None, Some("not-a-token")] {
        let (status, content_type, body) = get(&app, token, &acct.to_string(), "").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        assert!(content_type.unwrap().starts_with("application/json"));
    }
    app.stop().await;
}

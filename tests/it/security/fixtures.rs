//! What the security tests share: users with linked items, raw requests that
//! keep whatever the server answered, snapshots of rows, hostile strings.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;
use workflows::jobs::{canary::Canary, enqueue};

use crate::support::{TestApp, plaid::link_new_item};

/// Strings an attacker would try in any text field: SQL metacharacters, LIKE
/// wildcards, escapes, dollar quoting, control and bidi characters, emoji, NUL.
pub const HOSTILE: &[&str] = &[
    "'; drop table users; --",
    "\" or \"1\"=\"1",
    "' or '1'='1' --",
    "'; select pg_sleep(10); --",
    "\\",
    "\\'",
    "%",
    "_",
    "%_%",
    "$1",
    "$$; drop table plaid_items; $$",
    "Ünïcödé ✓ 日本語 🏦",
    "\u{202e}evil\u{202c}",
    "\r\n\tline",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "a\u{0}b",
];

/// A user with one item linked through the real Link routes.
pub struct Party {
    /// `users.id`.
    pub user_id: i64,
    /// Their API token.
    pub token: String,
    /// Plaid's item id.
    pub item_id: String,
    /// `accounts.id` of the item's accounts.
    pub account_ids: Vec<i64>,
}

/// Creates a user and links an item for them.
pub async fn party(app: &TestApp, email: &str) -> Party {
    let (user, token) = app.user_with_token(email).await;
    let linked = link_new_item(app, &token).await;
    Party {
        user_id: user.id,
        token,
        item_id: linked["item_id"].as_str().unwrap().to_owned(),
        account_ids: linked["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect(),
    }
}

/// What the server answered: status, content type and the raw body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// `content-type`, if any.
    pub content_type: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// Asserts the contract's error shape: JSON `{"error": <code>, "message": <text>}`.
    pub fn assert_error(&self, what: &str) {
        let body = self.json();
        assert!(
            self.content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}: error body is not JSON: {self:?}"
        );
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}: not an error body: {self:?}"
        );
    }
}

/// Sends one request; `auth` is a whole `Authorization` header value.
pub async fn send(
    app: &TestApp,
    method: Method,
    url: &str,
    auth: Option<&str>,
    json_body: Option<&[u8]>,
) -> Answer {
    let mut request = app.http.request(method, url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(body) = json_body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        content_type: response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_owned()),
        body: response.text().await.unwrap(),
    }
}

/// `base` with `segments` appended as path segments, each percent-encoded.
pub fn url_with_segments(base: &str, segments: &[&str]) -> String {
    let mut url = reqwest::Url::parse(base).unwrap();
    url.path_segments_mut().unwrap().extend(segments);
    url.to_string()
}

/// Every row that belongs to `user_id`, as one JSON value: items, mappings,
/// accounts, their transactions, secrets, removals, notifications and API tokens.
pub async fn user_rows(pool: &PgPool, user_id: i64) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object(
           'items', (select jsonb_agg(to_jsonb(i) order by i.id) from plaid_items i where i.user_id = $1),
           'mappings', (select jsonb_agg(to_jsonb(m) order by m.account_id)
                        from plaid_item_accounts m join plaid_items i on i.id = m.plaid_item_id
                        where i.user_id = $1),
           'accounts', (select jsonb_agg(to_jsonb(a) order by a.id) from accounts a where a.user_id = $1),
           'transactions', (select jsonb_agg(to_jsonb(t) order by t.id)
                            from transactions t join accounts a on a.id = t.account_id where a.user_id = $1),
           'secrets', (select jsonb_agg(to_jsonb(s) order by s.secret_ref)
                       from secrets s join plaid_items i on i.secret_ref = s.secret_ref where i.user_id = $1),
           'removals', (select jsonb_agg(to_jsonb(r) order by r.id)
                        from item_removals r join plaid_items i on i.id = r.plaid_item_id where i.user_id = $1),
           'notifications', (select jsonb_agg(to_jsonb(n) order by n.id) from notifications n where n.user_id = $1),
           'tokens', (select jsonb_agg(to_jsonb(t) - 'last_used_at' order by t.id)
                      from api_tokens t where t.user_id = $1))",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Everything an enqueue or repair could change: jobs, items, removals,
/// notifications, webhook events and schedule claims.
pub async fn work_state(pool: &PgPool) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object(
           'jobs', (select jsonb_agg(jsonb_build_object('id', id, 'status', status, 'run_at', run_at,
                                                        'attempts', attempts) order by id) from apalis.jobs),
           'items', (select jsonb_agg(to_jsonb(i) order by i.id) from plaid_items i),
           'removals', (select jsonb_agg(to_jsonb(r) order by r.id) from item_removals r),
           'notifications', (select jsonb_agg(to_jsonb(n) order by n.id) from notifications n),
           'events', (select count(*) from plaid_webhook_events),
           'cron_runs', (select count(*) from cron_runs))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The app's tables, every one still there, and `users` still holding `users` rows.
pub async fn assert_tables_intact(pool: &PgPool, users: i64) {
    let tables = [
        "users",
        "api_tokens",
        "secrets",
        "accounts",
        "plaid_items",
        "plaid_item_accounts",
        "plaid_webhook_events",
        "transactions",
        "notifications",
        "item_removals",
    ];
    let present: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'public' and table_name = any($1)",
    )
    .bind(&tables[..])
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(present, tables.len() as i64, "a table is missing");
    let count: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(count, users, "users were added or deleted");
}

/// `/healthz` and `/readyz` still answer 200.
pub async fn assert_healthy(app: &TestApp) {
    for path in ["/healthz", "/readyz"] {
        let answer = send(app, Method::GET, &format!("{}{path}", app.public_url), None, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {answer:?}");
    }
}

/// Two job rows an operator could act on: one `Failed` (retry), one `Pending` (kill),
/// delayed an hour so that no worker would take them.
pub async fn repairable_jobs(app: &TestApp) -> (String, String) {
    let mut conn = app.pool.acquire().await.unwrap();
    let mut ids = Vec::new();
    for token in ["security-failed", "security-pending"] {
        let job = Canary {
            token: token.into(),
            hold_ms: 0,
        };
        let id = enqueue(&mut conn, &job, Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        ids.push(id.to_string());
    }
    sqlx::query("update apalis.jobs set status = 'Failed', attempts = max_attempts where id = $1")
        .bind(&ids[0])
        .execute(&mut *conn)
        .await
        .unwrap();
    (ids[0].clone(), ids[1].clone())
}

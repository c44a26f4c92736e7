//! Secrets never leak: a real `plaid-sync serve` at `RUST_LOG=trace` goes
//! through link, exchange, sync, webhooks (good and bad signatures), Plaid
//! errors, relink, the jobs and operator APIs and an unlink that removes the
//! item at Plaid; then neither its output nor any response body may contain an
//! access token, an API token or any configured secret.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    time::Duration,
};

use plaid_simulator::{Fault, FaultError, HistorySpec, ReadyState, Simulator, SimulatorConfig};
use plaid_sync::http::webhooks::hmac_sig;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use workflows::secrets::SecretsKey;

use crate::support::{
    TestDb,
    app::{free_port, test_vars},
    plaid::sync_updates,
    process::KillOnDrop,
    wait_until,
};

/// Calls the service and keeps every response body, to search them afterwards.
struct Client {
    http: reqwest::Client,
    bodies: Vec<String>,
}

impl Client {
    async fn call(&mut self, request: RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.bodies.push(text);
        (status, body)
    }
}

fn random_secret(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn scalar_i64(pool: &PgPool, sql: &'static str, item_id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(item_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn no_secret_appears_in_trace_logs_or_error_bodies() {
    // Arrange: the simulator here (its truth has the access tokens), serve in its own process.
    let db = TestDb::create().await;
    let (public_port, admin_port) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{public_port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    let plaid_secret = random_secret("plaid-secret");
    let sim = Simulator::start(SimulatorConfig {
        client_id: "leak-test-client".into(),
        secret: plaid_secret.clone(),
        default_webhook_url: Some(format!("{public}/webhook/plaid")),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let secrets: HashMap<&str, String> = HashMap::from([
        ("PLAID_SECRET", plaid_secret),
        ("PLAID_WEBHOOK_SECRET", random_secret("whsec")),
        ("ADMIN_TOKEN", random_secret("admin")),
        ("JOBS_SECRET", random_secret("jobs")),
        ("SECRETS_KEY", SecretsKey::generate().to_base64()),
    ]);
    let mut vars = test_vars(&db);
    vars.extend([
        ("BIND_ADDR".into(), format!("127.0.0.1:{public_port}")),
        ("ADMIN_BIND_ADDR".into(), format!("127.0.0.1:{admin_port}")),
        ("PLAID_BASE_URL".into(), sim.base_url()),
        ("PLAID_CLIENT_ID".into(), "leak-test-client".into()),
        ("PLAID_WEBHOOK_URL".into(), format!("{public}/webhook/plaid")),
        ("RUST_LOG".into(), "trace".into()),
    ]);
    vars.extend(secrets.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let log_dir = std::env::temp_dir().join(format!("plaid-sync-log-leaks-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let (out_path, err_path) = (log_dir.join("stdout.log"), log_dir.join("stderr.log"));
    let mut serve = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_plaid-sync"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&vars)
            .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
            .spawn()
            .unwrap(),
    );
    let mut client = Client {
        http: reqwest::Client::new(),
        bodies: Vec::new(),
    };
    let http = client.http.clone();
    wait_until("serve to be ready", Duration::from_secs(60), || {
        let http = http.clone();
        let url = format!("{public}/readyz");
        async move {
            http.get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    let pool = workflows::db::connect(&db.url, 4).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let user = workflows::db::users::insert_user(&mut tx, "leak@example.com")
        .await
        .unwrap()
        .unwrap();
    let api_token = workflows::auth::issue_token(&mut tx, user.id)
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();
    tx.commit().await.unwrap();
    let bearer = |r: RequestBuilder| r.bearer_auth(&api_token);

    // Link and exchange.
    let (_, link) = client
        .call(bearer(http.post(format!("{public}/api/plaid/link-token"))).json(&json!({})))
        .await;
    let completion = sim.complete_link(link["link_token"].as_str().unwrap()).unwrap();
    let (status, linked) = client
        .call(
            bearer(http.post(format!("{public}/api/plaid/exchange-token")))
                .json(&json!({ "public_token": completion.public_token })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    let item_id = linked["item_id"].as_str().unwrap().to_owned();

    // Sync: history becomes ready, Plaid's webhook arrives, a worker syncs it.
    sim.generate_history(&item_id, HistorySpec::new(40, 7)).unwrap();
    wait_until("the first sync call", Duration::from_secs(30), || async {
        (sim.call_count("/transactions/sync", Some(&item_id)) > 0).then_some(())
    })
    .await;
    sim.mark_ready(&item_id, ReadyState::HistoricalUpdateComplete)
        .unwrap();
    let transactions = "select count(*) from transactions t join plaid_item_accounts m
                        on m.account_id = t.account_id join plaid_items i on i.id = m.plaid_item_id
                        where i.item_id = $1";
    wait_until("the history to be synced", Duration::from_secs(60), || async {
        (scalar_i64(&pool, transactions, &item_id).await == 40).then_some(())
    })
    .await;

    // Webhooks: Plaid's JWT, our HMAC, and refused ones of each.
    assert_eq!(
        sim.fire_webhook(&item_id, &sync_updates()).await.unwrap().status,
        Some(200)
    );
    let now = chrono::Utc::now().timestamp();
    let body = json!({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
                      "item_id": item_id, "initial_update_complete": true})
    .to_string();
    let webhook = |signature: String, header: &'static str| {
        http.post(format!("{public}/webhook/plaid"))
            .header("content-type", "application/json")
            .header(header, signature)
            .body(body.clone())
    };
    let hmac_secret = secrets["PLAID_WEBHOOK_SECRET"].as_bytes();
    for (signature, header, expected) in [
        (
            hmac_sig::sign(body.as_bytes(), hmac_secret, now),
            hmac_sig::HEADER,
            StatusCode::OK,
        ),
        (
            hmac_sig::sign(body.as_bytes(), b"wrong", now),
            hmac_sig::HEADER,
            StatusCode::UNAUTHORIZED,
        ),
        (
            hmac_sig::sign(body.as_bytes(), hmac_secret, now - 1000),
            hmac_sig::HEADER,
            StatusCode::UNAUTHORIZED,
        ),
        (
            sim.sign_body(b"{}", now),
            "plaid-verification",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "eyJhbGciOiJub25lIn0.e30.".into(),
            "plaid-verification",
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let (status, answer) = client.call(webhook(signature, header)).await;
        assert_eq!(status, expected, "{answer}");
    }

    // Plaid errors: Link token creation, an invalid public token, a sync needing reauth.
    sim.inject_fault(Fault::new(FaultError::internal_server_error(), 1).on_endpoint("/link/token/create"))
        .unwrap();
    let (status, _) = client
        .call(bearer(http.post(format!("{public}/api/plaid/link-token"))).json(&json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _) = client
        .call(
            bearer(http.post(format!("{public}/api/plaid/exchange-token")))
                .json(&json!({ "public_token": "public-sandbox-bogus" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.inject_fault(
        Fault::new(FaultError::Code("ITEM_LOGIN_REQUIRED".into()), 1)
            .on_endpoint("/transactions/sync")
            .for_item(&item_id),
    )
    .unwrap();
    sim.fire_webhook(&item_id, &sync_updates()).await.unwrap();
    let reauth = "select count(*) from plaid_items where item_id = $1 and sync_status = 'needs_reauth'";
    wait_until("the item to need reauth", Duration::from_secs(60), || async {
        (scalar_i64(&pool, reauth, &item_id).await == 1).then_some(())
    })
    .await;
    // Relink in update mode (the access token is decrypted and sent to Plaid).
    let (_, link) = client
        .call(
            bearer(http.post(format!("{public}/api/plaid/link-token"))).json(&json!({ "item_id": item_id })),
        )
        .await;
    let completion = sim.complete_link(link["link_token"].as_str().unwrap()).unwrap();
    let (status, _) = client
        .call(
            bearer(http.post(format!("{public}/api/plaid/exchange-token")))
                .json(&json!({ "public_token": completion.public_token })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The jobs and operator APIs, right and wrong secrets; a wrong API token.
    for (secret, expected) in [
        (secrets["JOBS_SECRET"].as_str(), StatusCode::ACCEPTED),
        ("nope", StatusCode::UNAUTHORIZED),
    ] {
        let (status, _) = client
            .call(
                http.post(format!("{public}/api/jobs/plaid/safety-net"))
                    .bearer_auth(secret),
            )
            .await;
        assert_eq!(status, expected);
    }
    for (secret, expected) in [
        (secrets["ADMIN_TOKEN"].as_str(), StatusCode::OK),
        ("nope", StatusCode::UNAUTHORIZED),
    ] {
        let (status, _) = client
            .call(http.get(format!("{admin}/api/admin/status")).bearer_auth(secret))
            .await;
        assert_eq!(status, expected);
    }
    let (status, _) = client
        .call(
            http.get(format!("{public}/api/accounts"))
                .bearer_auth(format!("{api_token}x")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Unlink every account: the item is removed at Plaid with its access token.
    let (_, accounts) = client
        .call(bearer(http.get(format!("{public}/api/accounts"))))
        .await;
    for account in accounts["accounts"].as_array().unwrap() {
        let (status, _) = client
            .call(bearer(
                http.delete(format!("{public}/api/accounts/{}", account["id"])),
            ))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    wait_until(
        "the item to be removed at Plaid",
        Duration::from_secs(60),
        || async { sim.item(&item_id).unwrap().removed.then_some(()) },
    )
    .await;

    // Stop gracefully so every line is written.
    Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .unwrap();
    wait_until("serve to exit", Duration::from_secs(30), || {
        std::future::ready(serve.0.try_wait().unwrap())
    })
    .await;

    // Assert.
    let output = std::fs::read_to_string(&out_path).unwrap() + &std::fs::read_to_string(&err_path).unwrap();
    let trace_lines = output.matches("\"level\":\"TRACE\"").count();
    println!(
        "serve wrote {} lines ({} bytes, {trace_lines} at TRACE) to {}; {} response bodies",
        output.lines().count(),
        output.len(),
        log_dir.display(),
        client.bodies.len()
    );
    assert!(trace_lines > 100, "RUST_LOG=trace did not take effect");
    assert!(output.contains(&item_id), "the flow was not logged");
    // One access line per request, carrying the request id (http::request_log).
    let access: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("plaid_sync::access"))
        .collect();
    assert!(
        access.iter().any(|l| l.contains("/webhook/plaid")
            && l.contains("request_id")
            && l.contains("\"status\":200")),
        "no access line for a webhook with its request id: {:?}",
        access.first()
    );
    let mut searched: Vec<(String, String)> = secrets
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    searched.push(("API token".into(), api_token.clone()));
    for item in sim.items() {
        searched.push((format!("access token of {}", item.item_id), item.access_token));
    }
    for (name, value) in &searched {
        assert!(
            !output.contains(value.as_str()),
            "{name} appears in the log ({})",
            log_dir.display()
        );
        for body in &client.bodies {
            assert!(
                !body.contains(value.as_str()),
                "{name} appears in a response body: {body}"
            );
        }
    }
    println!("{} secrets searched, none found", searched.len());
    std::fs::remove_dir_all(&log_dir).unwrap();
    pool.close().await;
    db.drop_now().await;
}

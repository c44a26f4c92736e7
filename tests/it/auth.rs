//! Users, API tokens, the operator token and the jobs secret.

use base64::{Engine, engine::general_purpose::STANDARD};

use reqwest::StatusCode;
use serde_json::Value;

use plaid_sync::cli::Role;
use workflows::db::users;

use crate::support::{TestApp, app::ADMIN_TOKEN};

async fn seed_account(app: &TestApp, user_id: i64, name: &str) -> i64 {
    sqlx::query_scalar("insert into accounts (user_id, provider, name) values ($1, 'plaid', $2) returning id")
        .bind(user_id)
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn users_create_prints_a_token_once_and_stores_only_its_hash() {
    let app = TestApp::spawn().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plaid-sync"))
        .args(["users", "create", "--email", "cli@example.com"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(app.vars.iter().filter(|(k, _)| k.as_str() != "BIND_ADDR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("api_token: "))
        .expect("token printed")
        .to_owned();
    let user_id: i64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("user_id: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(token.starts_with("psk_") && token.len() > 40);

    // Only the digest is stored.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select token_sha256 from api_tokens where user_id = $1")
        .bind(user_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec![workflows::auth::token_digest(&token).to_vec()]);

    // The token works.
    seed_account(&app, user_id, "Checking").await;
    let response = app
        .http
        .get(format!("{}/api/accounts", app.public_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A second user with the same email is refused with a clear message.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_plaid-sync"))
        .args(["users", "create", "--email", "cli@example.com"])
        .envs(app.vars.iter())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    app.stop().await;
}

#[tokio::test]
async fn api_tokens_valid_missing_wrong_and_revoked() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token("alice@example.com").await;
    let (bob, _) = app.user_with_token("bob@example.com").await;
    let alice_account = seed_account(&app, alice.id, "Alice checking").await;
    seed_account(&app, bob.id, "Bob savings").await;
    let url = format!("{}/api/accounts", app.public_url);

    // Valid: only the caller's rows.
    let body: Value = app
        .http
        .get(&url)
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![alice_account]);

    // Missing.
    let response = app.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(body["message"].as_str().unwrap().contains("Bearer"));

    // Wrong (well-formed but unknown), and a wrong scheme.
    let wrong = format!("{}x", &alice_token[..alice_token.len() - 1]);
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.http
            .get(&url)
            .basic_auth("alice", Some(&alice_token))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Revoked.
    let token_id: i64 = sqlx::query_scalar("select id from api_tokens where user_id = $1")
        .bind(alice.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(users::revoke_api_token(&mut conn, token_id).await.unwrap());
    drop(conn);
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth(&alice_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn the_operator_listener_takes_the_admin_token_as_bearer_or_basic_password() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/admin/jobs/01NOSUCHJOB/kill", app.admin_url);

    let missing = app.http.post(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        app.http
            .post(&url)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.http
            .post(&url)
            .basic_auth("ops", Some("nope"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Right token: authenticated, and the action itself answers (404: no such job).
    assert_eq!(
        app.http
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let header = format!("Basic {}", STANDARD.encode(format!("anyone:{ADMIN_TOKEN}")));
    assert_eq!(
        app.http
            .post(&url)
            .header("authorization", header)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn the_operator_listener_answers_503_when_no_admin_token_is_configured() {
    let app = TestApp::spawn_with(|vars| drop(vars.remove("ADMIN_TOKEN")), Role::Api).await;
    let response = app
        .http
        .post(format!("{}/api/admin/jobs/x/retry", app.admin_url))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "admin_disabled");
    assert!(body["message"].as_str().unwrap().contains("ADMIN_TOKEN"));
    app.stop().await;
}

#[test]
fn secret_comparison_takes_about_the_same_time_for_near_and_far_misses() {
    // Constant time, checked statistically: comparing a guess that shares a long
    // prefix with the secret must not be measurably slower than one that differs
    // at the first byte. Medians over many rounds, generous bound: this catches an
    // early-exit comparison of long strings, not nanosecond noise.
    use std::time::Instant;
    use workflows::{auth::secret_matches, redact::Secret};
    let secret = Secret::new("s".repeat(4096));
    let near = format!("{}t", "s".repeat(4095));
    let far = format!("t{}", "s".repeat(4095));
    let time = |guess: &str| {
        let mut samples: Vec<u128> = (0..301)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..20 {
                    std::hint::black_box(secret_matches(std::hint::black_box(guess), &secret));
                }
                start.elapsed().as_nanos()
            })
            .collect();
        samples.sort_unstable();
        samples[150] as f64
    };
    let (near_t, far_t) = (time(&near), time(&far));
    let ratio = near_t / far_t;
    assert!(
        (0.5..2.0).contains(&ratio),
        "near {near_t} ns vs far {far_t} ns (ratio {ratio:.2})"
    );
}

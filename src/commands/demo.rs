//! `demo`: the whole service against the built-in simulator, with a demo user,
//! a linked item and transactions that keep arriving by signed webhook.
//! Needs nothing but a reachable PostgreSQL.

use std::{collections::HashMap, path::Path, process::ExitCode, time::Duration};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use plaid_simulator::{NewTransaction, PostPending, SimulatorConfig, SimulatorControl};
use rand::{Rng, RngCore, seq::SliceRandom};
use workflows::{
    auth,
    db::users,
    link,
    plaid::{
        PlaidClient, PlaidConfig,
        types::{LinkTokenCreateRequest, Product},
    },
    secrets::SecretStore,
};

use crate::{
    app::{Application, RunOptions},
    config::{Config, SIMULATOR_KEY_FILE},
    telemetry,
};

/// The demo user's email.
pub const DEMO_EMAIL: &str = "demo@plaid-sync.local";
/// How often the simulator produces new transactions.
const FEED_EVERY: Duration = Duration::from_secs(5);

fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run() -> anyhow::Result<ExitCode> {
    let _ = dotenvy::dotenv();
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    // Always the in-process simulator: the demo must never touch a real Plaid.
    vars.insert("PLAID_ENV".into(), "simulator".into());
    vars.remove("PLAID_BASE_URL");
    vars.remove("PLAID_WEBHOOK_URL");
    vars.entry("ADMIN_TOKEN".into()).or_insert_with(random_secret);
    vars.entry("JOBS_SECRET".into()).or_insert_with(random_secret);
    let config = Config::from_vars(&vars, Path::new(SIMULATOR_KEY_FILE))?;
    telemetry::init(config.log_format);
    let admin_token = config.admin_token.clone().expect("set above");
    let jobs_secret = config.jobs_secret.clone().expect("set above");

    let secrets = SecretStore::new(config.secrets_key.clone(), config.secrets_key_previous.clone());
    let plaid_config = (config.plaid.client_id.clone(), config.plaid.secret.clone());
    let options = RunOptions {
        simulator: Some(SimulatorConfig::demo()),
        ..RunOptions::default()
    };
    let app = Application::build(config, options).await?;
    let sim = app
        .simulator()
        .context("simulator mode starts the simulator")?
        .control();
    let plaid = PlaidClient::new(&PlaidConfig::new(
        app.simulator().expect("checked").base_url(),
        plaid_config.0,
        plaid_config.1.expose().to_owned().into(),
    ))?;

    // The demo user (created once) with a fresh token, and a linked item.
    let pool = app.pool().clone();
    let mut tx = pool.begin().await?;
    let user = match users::insert_user(&mut tx, DEMO_EMAIL).await? {
        Some(user) => user,
        None => users::find_user_by_email(&mut tx, DEMO_EMAIL)
            .await?
            .context("demo user exists")?,
    };
    let token = auth::issue_token(&mut tx, user.id).await?;
    tx.commit().await?;
    let link_token = plaid
        .link_token_create(&LinkTokenCreateRequest::new(
            "plaid-sync demo",
            user.id.to_string(),
            vec![Product::Transactions],
        ))
        .await?;
    let completion = sim.complete_link(&link_token.link_token)?;
    let linked =
        link::exchange_public_token(&pool, &plaid, &secrets, user.id, &completion.public_token).await?;

    let public = app
        .public_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    let admin = app
        .admin_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    println!("plaid-sync demo is running against the built-in Plaid simulator\n");
    println!("  public API      {public}   (GET /api/accounts, /api/plaid/items, /openapi.json)");
    println!("  operator        {admin}   (ADMIN_TOKEN as bearer, or as the basic-auth password)");
    println!(
        "  Plaid simulator {}/simulator",
        app.simulator().expect("checked").base_url()
    );
    println!("  demo user       {DEMO_EMAIL} (id {})", user.id);
    println!("  API token       {}", token.token.expose());
    println!("  admin token     {}", admin_token.expose());
    println!("  jobs secret     {}", jobs_secret.expose());
    println!(
        "  linked item     {} with {} accounts",
        linked.item_id,
        linked.accounts.len()
    );
    println!(
        "\nnew transactions arrive every {}s by signed webhook; try:",
        FEED_EVERY.as_secs()
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' {public}/api/accounts",
        token.token.expose()
    );
    println!("\nCtrl-C stops it.");

    let stop = app.shutdown_token();
    let feed_stop = stop.clone();
    let item_id = linked.item_id.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FEED_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                () = feed_stop.cancelled() => return,
                _ = tick.tick() => feed(&sim, &item_id),
            }
        }
    });
    tokio::spawn(async move {
        super::shutdown_signal().await;
        stop.cancel();
    });
    app.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}

/// One round of bank activity: a few new transactions (some pending), and
/// sometimes a pending one posting. The simulator signs and sends the webhook.
fn feed(sim: &SimulatorControl, item_id: &str) {
    let mut rng = rand::thread_rng();
    let Ok(truth) = sim.truth(item_id) else { return };
    let accounts: Vec<String> = truth.accounts.keys().cloned().collect();
    let merchants = [
        "Blue Bottle",
        "Trader Joe's",
        "Lyft",
        "Netflix",
        "Shell",
        "Whole Foods",
        "Amazon",
    ];
    let new: Vec<NewTransaction> = (0..rng.gen_range(1..4))
        .map(|_| NewTransaction {
            account_id: accounts.choose(&mut rng).cloned().unwrap_or_default(),
            amount: f64::from(rng.gen_range(100..15_000)) / 100.0,
            date: Utc::now().date_naive(),
            name: merchants
                .choose(&mut rng)
                .copied()
                .unwrap_or("Shop")
                .to_uppercase(),
            pending: rng.gen_bool(0.3),
            merchant_name: merchants.choose(&mut rng).map(|m| (*m).to_owned()),
            authorized_date: None,
            payment_channel: None,
            personal_finance_category: None,
            iso_currency_code: Some("USD".into()),
            transaction_id: None,
            pending_transaction_id: None,
        })
        .collect();
    if let Err(e) = sim.add_transactions(item_id, new) {
        tracing::warn!(error = %e, "demo feed could not add transactions");
    }
    if rng.gen_bool(0.3)
        && let Some(pending) = truth.accounts.values().flatten().find(|t| t.pending)
    {
        let _ = sim.post_pending(item_id, &pending.transaction_id, PostPending::default());
    }
}

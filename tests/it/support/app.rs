//! The application under test, on port 0, against its own database.

use std::{collections::HashMap, path::Path, time::Duration};

use plaid_simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use plaid_sync::{
    app::{Application, RunOptions},
    cli::Role,
    config::Config,
};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workflows::sync::{SyncLimits, SyncSettings};
use workflows::{auth, db::users, jobs::WorkerSettings, secrets::SecretsKey};

use super::TestDb;

/// The admin token every test app is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The jobs secret every test app is configured with.
pub const JOBS_SECRET: &str = "test-jobs-secret";

/// A running app with its database.
pub struct TestApp {
    /// Its database.
    pub db: TestDb,
    /// A pool on it, for arranging and asserting.
    pub pool: PgPool,
    /// `http://127.0.0.1:<port>` of the public listener.
    pub public_url: String,
    /// `http://127.0.0.1:<port>` of the operator listener.
    pub admin_url: String,
    /// A client.
    pub http: reqwest::Client,
    /// The variables the app was configured with (to start more processes alike).
    pub vars: HashMap<String, String>,
    /// The Plaid simulator the app talks to.
    pub sim: SimulatorHandle,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

/// Worker settings for tests: fast heartbeats so orphans are rescued in ~3 s.
pub fn test_worker_settings() -> WorkerSettings {
    WorkerSettings {
        heartbeat: Duration::from_secs(1),
        missed_heartbeats: 3,
        batch_size: 20,
        concurrency: 4,
    }
}

/// Sync settings for tests: a short lease (crash tests wait for it), short
/// backoffs, and pacing at the simulator's (and Plaid's) 50 sync calls/min per item.
pub fn test_sync_settings() -> SyncSettings {
    SyncSettings {
        lease: Duration::from_secs(6),
        limits: std::sync::Arc::new(SyncLimits::new(50, 10_000)),
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(4),
        rate_limit_floor: Duration::from_secs(1),
        ..SyncSettings::default()
    }
}

/// A free local port (bound, read, released: tests need the app's URL before it starts,
/// to give it to the simulator as the webhook URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The variables of a test configuration against `db`.
pub fn test_vars(db: &TestDb) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("DATABASE_MAX_CONNECTIONS".into(), "20".into()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("ADMIN_BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("PLAID_ENV".into(), "simulator".into()),
        ("SECRETS_KEY".into(), SecretsKey::generate().to_base64()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("JOBS_SECRET".into(), JOBS_SECRET.into()),
        ("LOG_FORMAT".into(), "json".into()),
    ])
}

impl TestApp {
    /// Starts an app (all roles) on a fresh database.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}, Role::All).await
    }

    /// Starts an app after letting `adjust` change its variables.
    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<String, String>), role: Role) -> Self {
        Self::spawn_full(adjust, role, SimulatorConfig::default()).await
    }

    /// Starts a simulator with `sim_config`, then the app against it.
    pub async fn spawn_full(
        adjust: impl FnOnce(&mut HashMap<String, String>),
        role: Role,
        sim_config: SimulatorConfig,
    ) -> Self {
        let db = TestDb::create().await;
        let mut vars = test_vars(&db);
        let port = free_port();
        let webhook_url = format!("http://127.0.0.1:{port}/webhook/plaid");
        let sim = Simulator::start(SimulatorConfig {
            default_webhook_url: Some(webhook_url.clone()),
            ..sim_config
        })
        .await
        .expect("simulator starts");
        vars.insert("BIND_ADDR".into(), format!("127.0.0.1:{port}"));
        vars.insert("PLAID_BASE_URL".into(), sim.base_url());
        vars.insert("PLAID_CLIENT_ID".into(), SimulatorConfig::default().client_id);
        vars.insert("PLAID_SECRET".into(), SimulatorConfig::default().secret);
        vars.insert("PLAID_WEBHOOK_URL".into(), webhook_url);
        adjust(&mut vars);
        let config = Config::from_vars(&vars, Path::new("/nonexistent/key")).expect("test config is valid");
        let options = RunOptions {
            role,
            migrate: true,
            worker_settings: test_worker_settings(),
            sync_settings: test_sync_settings(),
            simulator: None,
        };
        let app = Application::build(config, options).await.expect("app starts");
        let public_url = app
            .public_addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let admin_url = app
            .admin_addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        let pool = app.pool().clone();
        let shutdown = app.shutdown_token();
        let handle = tokio::spawn(app.run_until_stopped());
        Self {
            db,
            pool,
            public_url,
            admin_url,
            http: reqwest::Client::new(),
            vars,
            sim,
            shutdown,
            handle: Some(handle),
        }
    }

    /// Creates a user and an API token for it.
    pub async fn user_with_token(&self, email: &str) -> (users::User, String) {
        let mut tx = self.pool.begin().await.unwrap();
        let user = users::insert_user(&mut tx, email).await.unwrap().unwrap();
        let token = auth::issue_token(&mut tx, user.id).await.unwrap();
        tx.commit().await.unwrap();
        (user, token.token.expose().to_owned())
    }

    /// `GET /metrics` on the operator listener, as Prometheus would scrape it.
    pub async fn scrape_metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the app gracefully and drops its database.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
        }
        self.pool.close().await;
        self.db.drop_now().await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that panicked before `stop`: at least stop the app's tasks.
        self.shutdown.cancel();
    }
}

//! The service the fuzz targets talk to, started once per fuzzing process:
//! PostgreSQL (a fresh database `plaid_sync_fuzz_<pid>` on 127.0.0.1:5432), the
//! Plaid simulator (for webhook verification keys) and `plaid-sync`'s own
//! [`Application`] with the API role, on loopback ports. Requests go over real
//! HTTP, so the fuzzed path is exactly production's: body limit, signature
//! verification (both schemes), parsing, storing.
//!
//! libFuzzer ends the process with `exit`, so nothing is torn down; the next
//! run drops the databases of fuzzing processes that are gone.

use std::{path::Path, sync::OnceLock, time::Duration};

use plaid_simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use plaid_sync::{
    app::{Application, RunOptions},
    cli::Role,
    config::Config,
};
use sqlx::{Connection, PgConnection};
use tokio::runtime::Runtime;

/// The HMAC secret the service is configured with (`PLAID_WEBHOOK_SECRET`).
pub const WEBHOOK_SECRET: &str = "whsec-fuzz";

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// The running service and what a target needs to address it.
pub struct Harness {
    /// Runs the service, the simulator and the requests.
    pub runtime: Runtime,
    /// `http://127.0.0.1:<port>/webhook/plaid`.
    pub webhook_url: String,
    /// The `kid` of the simulator's current signing key.
    pub kid: String,
    /// A client with a short timeout (a hang is a finding too).
    pub client: reqwest::Client,
    _simulator: SimulatorHandle,
}

/// The harness, started on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(start)
}

fn start() -> Harness {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (simulator, webhook_url) = runtime.block_on(async {
        drop_stale_databases().await;
        let simulator = Simulator::start(SimulatorConfig::default())
            .await
            .expect("simulator starts");
        let defaults = SimulatorConfig::default();
        let vars = std::collections::HashMap::from([
            (
                "DATABASE_URL".to_owned(),
                format!("{SERVER}/plaid_sync_fuzz_{}", std::process::id()),
            ),
            ("DATABASE_MAX_CONNECTIONS".into(), "5".into()),
            ("BIND_ADDR".into(), "127.0.0.1:0".into()),
            ("ADMIN_BIND_ADDR".into(), "127.0.0.1:0".into()),
            ("PLAID_ENV".into(), "simulator".into()),
            ("PLAID_BASE_URL".into(), simulator.base_url()),
            ("PLAID_CLIENT_ID".into(), defaults.client_id),
            ("PLAID_SECRET".into(), defaults.secret),
            ("PLAID_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
            (
                "SECRETS_KEY".into(),
                workflows::secrets::SecretsKey::generate().to_base64(),
            ),
            ("LOG_FORMAT".into(), "json".into()),
        ]);
        let config = Config::from_vars(&vars, Path::new("/nonexistent/key")).expect("valid config");
        let options = RunOptions {
            role: Role::Api,
            ..RunOptions::default()
        };
        let app = Application::build(config, options).await.expect("app starts");
        let url = format!(
            "http://{}/webhook/plaid",
            app.public_addr().expect("public listener")
        );
        tokio::spawn(app.run_until_stopped());
        (simulator, url)
    });
    Harness {
        runtime,
        webhook_url,
        kid: simulator.current_webhook_key_id(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        _simulator: simulator,
    }
}

/// Drops `plaid_sync_fuzz_<pid>` databases whose process is gone.
async fn drop_stale_databases() {
    let mut conn = PgConnection::connect(&format!("{SERVER}/postgres"))
        .await
        .expect("PostgreSQL must be reachable at 127.0.0.1:5432");
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 'plaid\\_sync\\_fuzz\\_%'")
            .fetch_all(&mut conn)
            .await
            .expect("list databases");
    for name in names {
        let pid = name.rsplit('_').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists \"{name}\" with (force)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

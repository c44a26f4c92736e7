//! Wiring: one [`Application`] per process, built from the configuration.
//!
//! `build` binds the listeners (port 0 works, for tests), connects, migrates,
//! and starts the servers, workers and schedules its role asks for;
//! `run_until_stopped` waits until they end. Shutdown is cooperative: cancel
//! [`Application::shutdown_token`] (SIGINT/SIGTERM do it in `serve`), listeners
//! stop accepting and finish in-flight requests, workers finish running jobs
//! and hand prefetched ones back.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use plaid_simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use workflows::{
    db,
    ingest::{IngestQueue, QueueSettings},
    jobs::{self, JobContext, WorkerSettings, runtime::Schedules},
    plaid::{PlaidClient, PlaidConfig},
    secrets::SecretStore,
    sync::SyncSettings,
};

use crate::{cli::Role, config::Config, http, http::webhooks::keys::KeyCache, state::AppState};

/// Options that are not configuration (they come from the command line or tests).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What this process runs.
    pub role: Role,
    /// Run migrations at start.
    pub migrate: bool,
    /// Worker tuning.
    pub worker_settings: WorkerSettings,
    /// Sync engine tuning.
    pub sync_settings: SyncSettings,
    /// Settings of the in-process simulator (simulator mode without `PLAID_BASE_URL`).
    pub simulator: Option<SimulatorConfig>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            role: Role::All,
            migrate: true,
            worker_settings: WorkerSettings::default(),
            sync_settings: SyncSettings::default(),
            simulator: None,
        }
    }
}

/// A running service.
pub struct Application {
    public_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    pool: PgPool,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
    simulator: Option<SimulatorHandle>,
}

/// Connects (creating the database if missing) and optionally migrates.
pub async fn prepare_database(config: &Config, migrate: bool) -> anyhow::Result<PgPool> {
    let url = config.database_url.expose();
    db::ensure_database(url).await?;
    let pool = db::connect(url, config.database_max_connections).await?;
    if migrate {
        db::migrate_all(&pool).await?;
    }
    Ok(pool)
}

impl Application {
    /// Builds and starts everything the role asks for.
    pub async fn build(config: Config, options: RunOptions) -> anyhow::Result<Self> {
        // Before anything signs or verifies a JWT (jsonwebtoken has no backend of its own).
        jwt_ring::install();
        // Before anything records: metrics sent earlier would be lost.
        crate::metrics::prometheus();
        let pool = prepare_database(&config, options.migrate).await?;
        let secrets = SecretStore::new(config.secrets_key.clone(), config.secrets_key_previous.clone());
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        // Bind first: the in-process simulator needs our webhook URL.
        let listeners = if options.role.serves_http() {
            Some((bind(config.bind_addr).await?, bind(config.admin_bind_addr).await?))
        } else {
            None
        };
        let public_addr = listeners.as_ref().map(|(p, _)| p.local_addr()).transpose()?;
        let admin_addr = listeners.as_ref().map(|(_, a)| a.local_addr()).transpose()?;

        let (base_url, simulator) = match &config.plaid.base_url {
            Some(url) => (url.clone(), None),
            None => {
                let base = options.simulator.clone().unwrap_or_default();
                let handle = start_simulator(&config, public_addr, base).await?;
                tracing::info!(base_url = %handle.base_url(), "simulator mode: built-in Plaid simulator started");
                (handle.base_url(), Some(handle))
            }
        };
        let plaid = Arc::new(PlaidClient::new(&PlaidConfig::new(
            base_url,
            config.plaid.client_id.clone(),
            config.plaid.secret.expose().to_owned().into(),
        ))?);

        let config = Arc::new(config);
        let state = AppState {
            pool: pool.clone(),
            config: config.clone(),
            secrets: secrets.clone(),
            webhook_keys: KeyCache::new(plaid.clone()),
            plaid: plaid.clone(),
            ingest: IngestQueue::start(pool.clone(), QueueSettings::default()),
        };
        if let Some((public, admin)) = listeners {
            serve(&mut tasks, public, http::public_router(state.clone()), &shutdown)?;
            serve(&mut tasks, admin, http::admin_router(state.clone()), &shutdown)?;
        }
        if options.role.runs_workers() {
            let ctx = JobContext {
                pool: pool.clone(),
                plaid,
                secrets,
                job_retention: config.job_retention,
                safety_net_stale_after: config.safety_net_stale_after,
                cleanup: config.cleanup_settings(),
                sync: SyncSettings {
                    // A lease held by a worker that missed its heartbeats is void.
                    worker_stale_after: options.worker_settings.orphan_timeout(),
                    ..options.sync_settings.clone()
                },
            };
            jobs::runtime::spawn(
                &mut tasks,
                &ctx,
                options.worker_settings,
                Schedules {
                    safety_net: config.safety_net_cron.clone(),
                    cleanup: config.cleanup_cron.clone(),
                    ..Schedules::default()
                },
                &shutdown,
            );
        }
        Ok(Self {
            public_addr,
            admin_addr,
            pool,
            tasks,
            shutdown,
            simulator,
        })
    }

    /// The public listener's bound address (None for `--role worker`).
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public_addr
    }

    /// The operator listener's bound address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Cancel it to stop the application gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The in-process simulator, in simulator mode.
    pub fn simulator(&self) -> Option<&SimulatorHandle> {
        self.simulator.as_ref()
    }

    /// Waits until every server, worker and schedule has stopped.
    pub async fn run_until_stopped(mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "a service task panicked; shutting down");
                self.shutdown.cancel();
            }
        }
        if let Some(simulator) = self.simulator.take() {
            let _ = simulator.shutdown().await;
        }
        self.pool.close().await;
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))
}

fn serve(
    tasks: &mut JoinSet<()>,
    listener: TcpListener,
    router: axum::Router,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let stop = shutdown.clone();
    tasks.spawn(async move {
        // Answers are small and latency is what Plaid (and its 10 s timeout)
        // sees: no Nagle delay on them.
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(addr = %bound, error = %e, "listener failed");
        }
    });
    Ok(())
}

/// Simulator mode: the built-in simulator on a free local port, accepting our
/// credentials and sending its webhooks to our public listener.
async fn start_simulator(
    config: &Config,
    public_addr: Option<SocketAddr>,
    base: SimulatorConfig,
) -> anyhow::Result<SimulatorHandle> {
    let sim_config = SimulatorConfig {
        client_id: config.plaid.client_id.clone(),
        secret: config.plaid.secret.expose().to_owned(),
        default_webhook_url: config
            .plaid
            .webhook_url
            .clone()
            .or_else(|| public_addr.map(|a| format!("http://{a}/webhook/plaid"))),
        ..base
    };
    Ok(Simulator::start(sim_config).await?)
}

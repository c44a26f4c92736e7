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
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use workflows::{
    db,
    jobs::{self, JobContext, WorkerSettings, runtime::Schedules},
    secrets::SecretStore,
};

use crate::{cli::Role, config::Config, http, state::AppState};

/// Options that are not configuration (they come from the command line or tests).
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// What this process runs.
    pub role: Role,
    /// Run migrations at start.
    pub migrate: bool,
    /// Worker tuning.
    pub worker_settings: WorkerSettings,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            role: Role::All,
            migrate: true,
            worker_settings: WorkerSettings::default(),
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
        let pool = prepare_database(&config, options.migrate).await?;
        let secrets = SecretStore::new(
            config.secrets_key.clone(),
            config.secrets_key_previous.clone(),
        );
        let config = Arc::new(config);
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let state = AppState {
            pool: pool.clone(),
            config: config.clone(),
            secrets,
        };

        let (mut public_addr, mut admin_addr) = (None, None);
        if options.role.serves_http() {
            public_addr = Some(
                serve(
                    &mut tasks,
                    config.bind_addr,
                    http::public_router(state.clone()),
                    &shutdown,
                )
                .await?,
            );
            admin_addr = Some(
                serve(
                    &mut tasks,
                    config.admin_bind_addr,
                    http::admin_router(state.clone()),
                    &shutdown,
                )
                .await?,
            );
        }
        if options.role.runs_workers() {
            let ctx = JobContext {
                pool: pool.clone(),
                job_retention: config.job_retention,
            };
            jobs::runtime::spawn(
                &mut tasks,
                &ctx,
                options.worker_settings,
                Schedules::default(),
                &shutdown,
            );
        }
        Ok(Self {
            public_addr,
            admin_addr,
            pool,
            tasks,
            shutdown,
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

    /// Waits until every server, worker and schedule has stopped.
    pub async fn run_until_stopped(mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "a service task panicked; shutting down");
                self.shutdown.cancel();
            }
        }
        self.pool.close().await;
    }
}

async fn serve(
    tasks: &mut JoinSet<()>,
    addr: SocketAddr,
    router: axum::Router,
    shutdown: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(addr = %bound, error = %e, "listener failed");
        }
    });
    Ok(bound)
}

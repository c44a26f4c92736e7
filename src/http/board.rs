//! The apalis board (apalis-board 1.0, `axum` + `ui` features): its prebuilt
//! UI at `/` with its API at `/api/v1`, both paths compiled into the UI.
//! Every queue of `workflows::jobs::runtime::QUEUES` is registered with its
//! job type, so the board shows arguments decoded. The board is read-only
//! (apart from pushing a task); the repair actions it lacks are ours
//! (`/api/admin/...`). It has no authentication of its own: `admin_router`
//! puts it behind `ADMIN_TOKEN`.

use apalis_board::axum::{
    framework::{ApiBuilder, RegisterRoute},
    sse::TracingBroadcaster,
    ui::ServeUI,
};
use apalis_postgres::{Config, PostgresStorage};
use axum::{Extension, Router};
use sqlx::PgPool;
use workflows::{
    jobs::{
        JobSpec, canary::Canary, cleanup, legacy_backfill::LegacyBackfill, prune::PruneJobs,
        sync_item::SyncItem,
    },
    safety_net::SafetyNet,
};

/// The queues registered here, in the order of `QUEUES` (a test checks both agree).
pub const REGISTERED: &[&str] = &[
    Canary::QUEUE,
    PruneJobs::QUEUE,
    SyncItem::QUEUE,
    LegacyBackfill::QUEUE,
    SafetyNet::QUEUE,
    cleanup::RemoveItem::QUEUE,
    cleanup::CleanupDue::QUEUE,
    cleanup::CleanupRun::QUEUE,
];

/// The board: API under `/api/v1`, the UI as the fallback of everything else.
pub fn router(pool: &PgPool) -> Router {
    // A macro: the builder's bounds are long, and `T` must be spelled out
    // (any `T` fits the JSON codec).
    macro_rules! register {
        ($api:expr, $job:ty) => {
            RegisterRoute::<_, $job>::register(
                $api,
                <$job>::QUEUE,
                PostgresStorage::<$job>::new(pool).with_config(Config::default().queue(<$job>::QUEUE)),
            )
        };
    }
    let api = ApiBuilder::new(Router::new());
    let api = register!(api, Canary);
    let api = register!(api, PruneJobs);
    let api = register!(api, SyncItem);
    let api = register!(api, LegacyBackfill);
    let api = register!(api, SafetyNet);
    let api = register!(api, cleanup::RemoveItem);
    let api = register!(api, cleanup::CleanupDue);
    let api = register!(api, cleanup::CleanupRun);
    Router::new()
        .nest("/api/v1", api.build())
        .fallback_service(ServeUI::new())
        // GET /api/v1/events (the log pane) needs it.
        .layer(Extension(TracingBroadcaster::create()))
}

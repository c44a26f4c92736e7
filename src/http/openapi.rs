//! `GET /openapi.json`: the public listener's API, generated from the handlers.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "plaid-sync", description = "Keeps a personal-finance database in sync with Plaid, webhook-first."),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::webhooks::receive::receive,
        super::plaid::link_token,
        super::plaid::exchange_token,
        super::plaid::list_items,
        super::accounts::list,
        super::accounts::unlink,
        super::transactions::list,
        super::disabled::sync,
        super::disabled::refresh_metadata,
        super::jobs::process,
        super::jobs::safety_net,
        super::jobs::cleanup,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health and readiness"),
        (name = "webhooks", description = "Plaid webhooks (signed)"),
        (name = "plaid", description = "Link and items"),
        (name = "accounts", description = "The caller's accounts and their transactions"),
        (name = "jobs", description = "Enqueue work (JOBS_SECRET)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "jobs_secret",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Serves the document.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

//! The HTTP server: one route per Plaid endpoint, all going through [`dispatch`], plus the
//! control API under `/simulator`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::Value;

use crate::calls::CallRecord;
use crate::ids;
use crate::plaid_error::ApiError;
use crate::request::ApiRequest;
use crate::routes::{Ctx, ENDPOINTS, Endpoint, TRANSACTIONS_SYNC};
use crate::shared::Shared;
use crate::state::SimState;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut api = Router::new();
    for endpoint in ENDPOINTS {
        api = api.route(
            endpoint.path,
            post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                    dispatch(shared, endpoint, headers, body)
                },
            ),
        );
    }
    api.fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(Arc::clone(&shared))
        .nest("/simulator", crate::control::router(shared))
}

/// Plaid answers unknown paths with 404 `INVALID_REQUEST`/`NOT_FOUND`.
async fn not_found() -> Response {
    error_response(ApiError::code("NOT_FOUND"), &ids::request_id())
}

/// The common pipeline for every Plaid endpoint: parse → authenticate → required fields →
/// resolve the access token → rate limit → injected faults → handler. The call is logged, then
/// any injected latency is served, then the response.
async fn dispatch(
    shared: Arc<Shared>,
    endpoint: &'static Endpoint,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = ids::request_id();
    let (result, latency) = shared.with_state(|st| {
        let mut item_id = None;
        let result = process(st, endpoint, &headers, &body, &mut item_id);
        let (status, error_code) = match &result {
            Ok(_) => (200, None),
            Err(err) => (err.status, Some(err.error.error_code.clone())),
        };
        let seq = st.calls.len() as u64 + 1;
        st.calls.push(CallRecord {
            seq,
            endpoint: endpoint.path.to_owned(),
            item_id,
            status,
            error_code,
            request_id: request_id.clone(),
            at: Utc::now(),
        });
        (result, st.faults.latency_for(endpoint.path))
    });
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    match result {
        Ok(mut value) => {
            value["request_id"] = Value::String(request_id);
            (StatusCode::OK, axum::Json(value)).into_response()
        }
        Err(err) => error_response(err, &request_id),
    }
}

fn process(
    st: &mut SimState,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    item_id: &mut Option<String>,
) -> Result<Value, ApiError> {
    let req = ApiRequest::parse(headers, body)?;
    req.authenticate(headers, &st.config.client_id, &st.config.secret)?;
    req.require(endpoint.required)?;
    if endpoint.item_scoped {
        let token = req.str("access_token")?.unwrap_or_default();
        *item_id = Some(st.resolve_access_token(token)?);
    }
    if endpoint.path == TRANSACTIONS_SYNC
        && let Some(id) = item_id.as_deref()
        && !st.rate.try_acquire(id, Instant::now())
    {
        return Err(ApiError::code("TRANSACTIONS_SYNC_LIMIT"));
    }
    if let Some(err) = st.faults.take(endpoint.path, item_id.as_deref()) {
        return Err(err);
    }
    let ctx = Ctx {
        req,
        item_id: item_id.clone(),
    };
    (endpoint.handler)(st, &ctx)
}

fn error_response(mut err: ApiError, request_id: &str) -> Response {
    err.error.request_id = Some(request_id.to_owned());
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(err.error)).into_response()
}

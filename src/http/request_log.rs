//! A request id on every request and one access-log line per answer.
//!
//! The id is the client's `x-request-id` when it sent one, else a new UUID;
//! it is echoed in the answer's `x-request-id` and is a field of the
//! request's span, so every log line written while handling it carries it.
//! The access line (`INFO`, target `plaid_sync::access`) is written when the
//! answer's head is sent: method, path (never the query string, which may
//! carry user input), status, latency in milliseconds, request id.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{HeaderName, Request, Response},
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Span;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` with the request id and the access log (outermost layers).
pub fn layer(router: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            let id = request
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        })
        .on_request(())
        .on_response(|response: &Response<Body>, latency: Duration, _span: &Span| {
            tracing::info!(
                target: "plaid_sync::access",
                status = response.status().as_u16(),
                latency_ms = latency.as_secs_f64() * 1000.0,
                "answered"
            );
        });
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

//! The control API under `/simulator/...`: the in-process controls as JSON over HTTP, so the
//! standalone `plaid-sync simulator` process can be driven with curl. No credentials: it is a
//! test tool and must never be exposed beyond localhost.
//!
//! Errors are `{"error": "<message>"}` with 404 for unknown items/transactions/link tokens and
//! 400 otherwise.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::SimError;
use crate::faults::{Chaos, Fault, Latency, MutationChaos, MutationFault};
use crate::generate::HistorySpec;
use crate::handle::SimulatorControl;
use crate::model::{ItemSpec, NewTransaction, PostPending, ReadyState, TransactionPatch};
use crate::shared::Shared;
use crate::webhooks::WebhookEvent;

type Sim = State<SimulatorControl>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/items", get(list_items).post(create_item))
        .route("/items/{item_id}", get(get_item))
        .route("/items/{item_id}/truth", get(truth))
        .route("/items/{item_id}/webhook_url", post(set_webhook_url))
        .route("/items/{item_id}/transactions", post(add_transactions))
        .route("/items/{item_id}/transactions/modify", post(modify))
        .route("/items/{item_id}/transactions/remove", post(remove))
        .route("/items/{item_id}/transactions/post", post(post_pending))
        .route("/items/{item_id}/generate", post(generate))
        .route("/items/{item_id}/ready", post(ready))
        .route("/items/{item_id}/reset_login", post(reset_login))
        .route("/items/{item_id}/repair_login", post(repair_login))
        .route("/items/{item_id}/error", post(set_error))
        .route("/items/{item_id}/webhooks", post(fire_webhook))
        .route("/items/{item_id}/webhooks/build", post(build_webhook))
        .route("/link/complete", post(complete_link))
        .route("/faults", get(faults).post(inject_fault).delete(clear_faults))
        .route("/faults/mutation", post(inject_mutation))
        .route("/latency", post(set_latency).delete(clear_latency))
        .route("/chaos", post(set_chaos).delete(clear_chaos))
        .route(
            "/chaos/mutation",
            post(set_mutation_chaos).delete(clear_mutation_chaos),
        )
        .route("/rate_limit", post(set_rate_limit))
        .route("/keys", get(keys))
        .route("/keys/rotate", post(rotate_key))
        .route("/calls", get(calls).delete(clear_calls))
        .route("/webhooks", get(deliveries))
        .with_state(SimulatorControl::new(shared))
}

/// A control-API error.
struct ControlError(StatusCode, String);

impl From<SimError> for ControlError {
    fn from(err: SimError) -> Self {
        let status = if err.is_not_found() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        ControlError(status, err.to_string())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

type Reply = Result<Json<Value>, ControlError>;

fn ok(value: impl serde::Serialize) -> Reply {
    Ok(Json(
        serde_json::to_value(value).expect("control responses serialize"),
    ))
}

/// Parses a JSON body; an empty body means "all defaults" where the type has them.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ControlError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| ControlError(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

async fn list_items(State(sim): Sim) -> Reply {
    ok(sim.items())
}

async fn create_item(State(sim): Sim, body: Bytes) -> Reply {
    ok(sim.create_item(parse::<ItemSpec>(&body)?))
}

async fn get_item(State(sim): Sim, Path(item_id): Path<String>) -> Reply {
    ok(sim.item(&item_id)?)
}

async fn truth(State(sim): Sim, Path(item_id): Path<String>) -> Reply {
    ok(sim.truth(&item_id)?)
}

#[derive(Deserialize)]
struct WebhookUrl {
    url: Option<String>,
}

async fn set_webhook_url(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: WebhookUrl = parse(&body)?;
    sim.set_webhook_url(&item_id, req.url.as_deref())?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct AddTransactions {
    transactions: Vec<NewTransaction>,
}

async fn add_transactions(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: AddTransactions = parse(&body)?;
    ok(json!({"transaction_ids": sim.add_transactions(&item_id, req.transactions)?}))
}

#[derive(Deserialize)]
struct Modify {
    transaction_id: String,
    #[serde(default)]
    patch: TransactionPatch,
}

async fn modify(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: Modify = parse(&body)?;
    sim.modify_transaction(&item_id, &req.transaction_id, req.patch)?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct Remove {
    transaction_ids: Vec<String>,
}

async fn remove(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: Remove = parse(&body)?;
    let ids: Vec<&str> = req.transaction_ids.iter().map(String::as_str).collect();
    sim.remove_transactions(&item_id, &ids)?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct Post {
    pending_transaction_id: String,
    #[serde(default)]
    amount: Option<f64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    date: Option<NaiveDate>,
}

async fn post_pending(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: Post = parse(&body)?;
    let post = PostPending {
        amount: req.amount,
        name: req.name,
        date: req.date,
    };
    let id = sim.post_pending(&item_id, &req.pending_transaction_id, post)?;
    ok(json!({"transaction_id": id}))
}

async fn generate(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let spec: HistorySpec = parse(&body)?;
    ok(json!({"transaction_ids": sim.generate_history(&item_id, spec)?}))
}

#[derive(Deserialize)]
struct Ready {
    #[serde(default = "historical")]
    status: ReadyState,
}

fn historical() -> ReadyState {
    ReadyState::HistoricalUpdateComplete
}

async fn ready(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: Ready = parse(&body)?;
    sim.mark_ready(&item_id, req.status)?;
    ok(json!({}))
}

async fn reset_login(State(sim): Sim, Path(item_id): Path<String>) -> Reply {
    sim.reset_login(&item_id)?;
    ok(json!({}))
}

async fn repair_login(State(sim): Sim, Path(item_id): Path<String>) -> Reply {
    sim.repair_login(&item_id)?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct SetError {
    error_code: String,
}

async fn set_error(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let req: SetError = parse(&body)?;
    sim.set_item_error(&item_id, &req.error_code)?;
    ok(json!({}))
}

async fn fire_webhook(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let event: WebhookEvent = parse(&body)?;
    ok(sim.fire_webhook(&item_id, &event).await?)
}

async fn build_webhook(State(sim): Sim, Path(item_id): Path<String>, body: Bytes) -> Reply {
    let event: WebhookEvent = parse(&body)?;
    let hook = sim.build_webhook(&item_id, &event)?;
    ok(json!({
        "url": hook.url,
        "body": String::from_utf8_lossy(&hook.body),
        "plaid_verification": hook.verification,
    }))
}

#[derive(Deserialize)]
struct CompleteLink {
    link_token: String,
}

async fn complete_link(State(sim): Sim, body: Bytes) -> Reply {
    let req: CompleteLink = parse(&body)?;
    ok(sim.complete_link(&req.link_token)?)
}

async fn faults(State(sim): Sim) -> Reply {
    ok(sim.faults())
}

async fn inject_fault(State(sim): Sim, body: Bytes) -> Reply {
    sim.inject_fault(parse::<Fault>(&body)?)?;
    ok(sim.faults())
}

async fn clear_faults(State(sim): Sim) -> Reply {
    sim.clear_faults();
    ok(sim.faults())
}

async fn inject_mutation(State(sim): Sim, body: Bytes) -> Reply {
    sim.inject_mutation_during_pagination(parse::<MutationFault>(&body)?)?;
    ok(sim.faults())
}

async fn set_latency(State(sim): Sim, body: Bytes) -> Reply {
    sim.set_latency(Some(parse::<Latency>(&body)?));
    ok(sim.faults())
}

async fn clear_latency(State(sim): Sim) -> Reply {
    sim.set_latency(None);
    ok(sim.faults())
}

async fn set_chaos(State(sim): Sim, body: Bytes) -> Reply {
    sim.set_chaos(Some(parse::<Chaos>(&body)?))?;
    ok(sim.faults())
}

async fn clear_chaos(State(sim): Sim) -> Reply {
    sim.set_chaos(None)?;
    ok(sim.faults())
}

async fn set_mutation_chaos(State(sim): Sim, body: Bytes) -> Reply {
    sim.set_mutation_chaos(Some(parse::<MutationChaos>(&body)?))?;
    ok(sim.faults())
}

async fn clear_mutation_chaos(State(sim): Sim) -> Reply {
    sim.set_mutation_chaos(None)?;
    ok(sim.faults())
}

#[derive(Deserialize)]
struct RateLimit {
    sync_per_window: Option<u32>,
}

async fn set_rate_limit(State(sim): Sim, body: Bytes) -> Reply {
    let req: RateLimit = parse(&body)?;
    sim.set_sync_rate_limit(req.sync_per_window);
    ok(json!({"sync_per_window": sim.sync_rate_limit()}))
}

async fn keys(State(sim): Sim) -> Reply {
    ok(sim.webhook_keys())
}

async fn rotate_key(State(sim): Sim) -> Reply {
    ok(json!({"kid": sim.rotate_webhook_key()?}))
}

async fn calls(State(sim): Sim) -> Reply {
    ok(sim.calls())
}

async fn clear_calls(State(sim): Sim) -> Reply {
    sim.clear_calls();
    ok(json!({}))
}

async fn deliveries(State(sim): Sim) -> Reply {
    ok(sim.webhook_deliveries())
}

//! Helpers for the simulator tests: a running simulator plus a raw HTTP client that checks
//! every body against the OpenAPI subset, a webhook receiver, and a tiny "database" that applies
//! sync responses so it can be compared with the simulator's truth.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use plaid_simulator::{Simulator, SimulatorConfig, SimulatorHandle, Truth};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::openapi;

pub const CLIENT_ID: &str = "test-client";
pub const SECRET: &str = "test-secret";

/// A simulator plus a client for it.
pub struct Sim {
    pub handle: SimulatorHandle,
    pub http: reqwest::Client,
}

pub async fn start() -> Sim {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut SimulatorConfig)) -> Sim {
    let mut config = SimulatorConfig {
        client_id: CLIENT_ID.to_owned(),
        secret: SECRET.to_owned(),
        seed: Some(7),
        ..SimulatorConfig::default()
    };
    tweak(&mut config);
    let handle = Simulator::start(config).await.expect("simulator starts");
    Sim {
        handle,
        http: reqwest::Client::new(),
    }
}

impl Sim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// POSTs `body` with credentials in headers; validates the request and the response
    /// against the OpenAPI subset.
    pub async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        openapi::validate_request(path, &body);
        let response = self
            .http
            .post(self.url(path))
            .header("PLAID-CLIENT-ID", CLIENT_ID)
            .header("PLAID-SECRET", SECRET)
            .json(&body)
            .send()
            .await
            .expect("request reaches the simulator");
        read(path, response).await
    }

    /// Like [`Sim::call`] but insists on 200 and returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.call(path, body).await;
        assert_eq!(status, 200, "{path} failed: {value}");
        value
    }

    /// Like [`Sim::call`] but insists on an error and returns (status, error_code).
    pub async fn err(&self, path: &str, body: Value) -> (u16, String) {
        let (status, value) = self.call(path, body).await;
        assert_ne!(status, 200, "{path} unexpectedly succeeded: {value}");
        (status, value["error_code"].as_str().unwrap().to_owned())
    }

    /// One `/transactions/sync` call.
    pub async fn sync(&self, access_token: &str, cursor: &str, count: Option<u64>) -> (u16, Value) {
        let mut body = json!({"access_token": access_token, "cursor": cursor});
        if let Some(count) = count {
            body["count"] = json!(count);
        }
        self.call("/transactions/sync", body).await
    }

    /// Pages until `has_more` is false, applying every page to `db`; returns the pages.
    pub async fn sync_all(&self, access_token: &str, db: &mut MirrorDb, count: Option<u64>) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut cursor = db.cursor.clone();
        loop {
            let (status, page) = self.sync(access_token, &cursor, count).await;
            assert_eq!(status, 200, "sync failed: {page}");
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
            let more = page["has_more"].as_bool().unwrap();
            pages.push(page);
            if !more {
                break;
            }
        }
        for page in &pages {
            db.apply(page);
        }
        db.cursor = cursor;
        pages
    }

    /// Control API call over HTTP.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .request(method, self.url(&format!("/simulator{path}")))
            .json(&body)
            .send()
            .await
            .expect("control request reaches the simulator");
        let status = response.status().as_u16();
        (status, response.json().await.expect("control answers JSON"))
    }

    /// Creates an item through the sandbox endpoint and exchanges the public token.
    pub async fn sandbox_item(&self, webhook: Option<&str>) -> (String, String) {
        let mut req = json!({"institution_id": "ins_109508", "initial_products": ["transactions"]});
        if let Some(url) = webhook {
            req["options"] = json!({"webhook": url});
        }
        let created = self.ok("/sandbox/public_token/create", req).await;
        let exchanged = self
            .ok(
                "/item/public_token/exchange",
                json!({"public_token": created["public_token"]}),
            )
            .await;
        (
            exchanged["item_id"].as_str().unwrap().to_owned(),
            exchanged["access_token"].as_str().unwrap().to_owned(),
        )
    }
}

/// Reads a response, checks it has a `request_id` and matches the schema for `path`.
pub async fn read(path: &str, response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("Plaid answers JSON");
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "no request_id in {body}"
    );
    openapi::validate_response(path, status, &body);
    (status, body)
}

/// A client-side copy of the transactions, built only from sync responses.
#[derive(Default)]
pub struct MirrorDb {
    pub cursor: String,
    pub transactions: BTreeMap<String, Value>,
}

impl MirrorDb {
    /// Applies one page strictly: an added id must be new, a modified or removed id must be
    /// known. Strictness is the point — it catches a simulator that reports changes the client
    /// never needed.
    pub fn apply(&mut self, page: &Value) {
        for txn in page["added"].as_array().unwrap() {
            let id = txn["transaction_id"].as_str().unwrap().to_owned();
            assert!(
                self.transactions.insert(id.clone(), txn.clone()).is_none(),
                "added twice: {id}"
            );
        }
        for txn in page["modified"].as_array().unwrap() {
            let id = txn["transaction_id"].as_str().unwrap().to_owned();
            assert!(
                self.transactions.insert(id.clone(), txn.clone()).is_some(),
                "modified unknown: {id}"
            );
        }
        for removed in page["removed"].as_array().unwrap() {
            let id = removed["transaction_id"].as_str().unwrap();
            assert!(self.transactions.remove(id).is_some(), "removed unknown: {id}");
        }
    }

    /// Asserts the mirror holds exactly the truth, field for field.
    pub fn assert_matches(&self, truth: &Truth) {
        let expected: BTreeMap<String, Value> = truth
            .transactions()
            .map(|t| {
                let mut v = serde_json::to_value(t).unwrap();
                // Sync omits it unless include_original_description is set.
                v["original_description"] = Value::Null;
                (t.transaction_id.clone(), v)
            })
            .collect();
        assert_eq!(self.transactions.len(), expected.len(), "transaction count");
        for (id, want) in &expected {
            let got = self
                .transactions
                .get(id)
                .unwrap_or_else(|| panic!("missing {id}"));
            assert_eq!(got, want, "transaction {id} differs");
        }
        for id in &truth.removed_transaction_ids {
            assert!(!self.transactions.contains_key(id), "removed {id} still present");
        }
    }
}

/// One webhook as received.
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook bodies are JSON")
    }
}

/// A local HTTP server that records webhooks and answers with a fixed status.
pub struct WebhookReceiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

pub async fn webhook_receiver(status: u16) -> WebhookReceiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let status = StatusCode::from_u16(status).unwrap();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State((tx, status)): State<(mpsc::UnboundedSender<Received>, StatusCode)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let _ = tx.send(Received { headers, body });
                    status
                },
            ),
        )
        .with_state((tx, status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    WebhookReceiver { url, rx }
}

impl WebhookReceiver {
    /// The next webhook; fails the test after 5 s (a wait on the channel, not a sleep).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a webhook arrives within 5 s")
            .expect("receiver is running")
    }

    /// Whatever has already arrived, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }
}

//! Signed webhook deliveries to the app, each with its answer and timing,
//! and what `plaid_webhook_events` holds for them.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use plaid_simulator::VERIFICATION_HEADER;
use serde_json::Value;

use super::items::Item;
use crate::support::{TestApp, plaid::sync_updates};

/// What the app answered to one delivery.
#[derive(Debug, Clone)]
pub enum Answer {
    /// An HTTP answer: status, and the body's `status` or `error` field.
    Http(u16, String),
    /// No HTTP answer at all (connection error, timeout).
    None(String),
}

/// One delivery: which webhook, when it was sent and answered (on the
/// caller's clock), the answer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The bytes sent.
    pub body: Vec<u8>,
    /// The `Plaid-Verification` header sent.
    pub verification: String,
    /// When it was sent.
    pub sent_at: Duration,
    /// When its answer came.
    pub answered_at: Duration,
    /// The answer.
    pub answer: Answer,
}

impl Answer {
    /// The answer in a few words, for a verdict message.
    pub fn describe(&self) -> String {
        match self {
            Answer::Http(code, what) => format!("{code} {what}"),
            Answer::None(error) => format!("no answer: {error}"),
        }
    }
}

impl Delivery {
    /// Answered 200.
    pub fn ok(&self) -> bool {
        matches!(self.answer, Answer::Http(200, _))
    }
}

/// Posts a signed webhook and records the answer, timed on `clock`.
pub async fn deliver(
    http: reqwest::Client,
    url: String,
    body: Vec<u8>,
    verification: String,
    clock: Instant,
) -> Delivery {
    let sent_at = clock.elapsed();
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header(VERIFICATION_HEADER, &verification)
        .body(body.clone())
        .send()
        .await;
    let answer = match sent {
        Ok(response) => {
            let code = response.status().as_u16();
            let json: Value = response.json().await.unwrap_or(Value::Null);
            let what = json["status"].as_str().or(json["error"].as_str()).unwrap_or("");
            Answer::Http(code, what.to_owned())
        }
        Err(e) => {
            // The whole chain: "error sending request" alone hides whether it
            // was a timeout, a refused connection or a reset.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            Answer::None(text)
        }
    };
    Delivery {
        body,
        verification,
        sent_at,
        answered_at: clock.elapsed(),
        answer,
    }
}

/// A JSON value as text with object keys sorted at every level, so a stored
/// `jsonb` body and the bytes that were sent compare equal.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The canonical text of a sent body (see [`canonical`]).
pub fn key_of(body: &[u8]) -> String {
    canonical(&serde_json::from_slice(body).expect("webhook bodies are JSON"))
}

/// Per body: how many deliveries were stored (the event row plus its duplicates).
pub async fn stored_deliveries(app: &TestApp) -> HashMap<String, i64> {
    let rows: Vec<(Value, i32)> = sqlx::query_as("select body, duplicate_count from plaid_webhook_events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(body, duplicates)| (canonical(&body), 1 + i64::from(duplicates)))
        .collect()
}

/// Sends `SYNC_UPDATES_AVAILABLE` for every item once (before the flood).
pub async fn webhook_each(app: &TestApp, http: &reqwest::Client, items: &[Item]) -> Vec<Delivery> {
    let url = format!("{}/webhook/plaid", app.public_url);
    let mut out = Vec::new();
    for item in items {
        let hook = app.sim.build_webhook(&item.item_id, &sync_updates()).unwrap();
        out.push(
            deliver(
                http.clone(),
                url.clone(),
                hook.body,
                hook.verification,
                Instant::now(),
            )
            .await,
        );
    }
    out
}

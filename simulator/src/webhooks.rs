//! Webhook bodies (PLAID.md §4), signing (§5) and delivery.
//!
//! Signing follows Plaid exactly: the body is serialized once with 2-space indentation, and the
//! `Plaid-Verification` header carries an ES256 JWT (`{"alg":"ES256","kid":..,"typ":"JWT"}`)
//! whose claims are `{"iat": <now>, "request_body_sha256": <lowercase hex of the body bytes>}`.
//! Deliveries are single attempts with Plaid's 10 s timeout; Plaid's 24 h retry schedule is not
//! simulated (fire the webhook again to model a retry).

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::keys::KeyStore;
use crate::plaid_error::PlaidError;

/// Name of the header carrying the signature JWT.
pub const VERIFICATION_HEADER: &str = "Plaid-Verification";

/// A webhook the simulator can send. Fields left `None` are filled from the item's state.
/// Over HTTP it is written as `{"webhook_code": "SYNC_UPDATES_AVAILABLE", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "webhook_code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookEvent {
    /// TRANSACTIONS `SYNC_UPDATES_AVAILABLE`; the flags default to the item's readiness.
    SyncUpdatesAvailable {
        /// Override for `initial_update_complete`.
        #[serde(default)]
        initial_update_complete: Option<bool>,
        /// Override for `historical_update_complete`.
        #[serde(default)]
        historical_update_complete: Option<bool>,
    },
    /// Legacy TRANSACTIONS `INITIAL_UPDATE`.
    InitialUpdate {
        /// Defaults to the number of live transactions.
        #[serde(default)]
        new_transactions: Option<u64>,
    },
    /// Legacy TRANSACTIONS `HISTORICAL_UPDATE`.
    HistoricalUpdate {
        /// Defaults to the number of live transactions.
        #[serde(default)]
        new_transactions: Option<u64>,
    },
    /// Legacy TRANSACTIONS `DEFAULT_UPDATE`.
    DefaultUpdate {
        /// Number of new transactions.
        #[serde(default)]
        new_transactions: u64,
    },
    /// Legacy TRANSACTIONS `TRANSACTIONS_REMOVED`.
    TransactionsRemoved {
        /// Removed ids.
        #[serde(default)]
        removed_transactions: Vec<String>,
    },
    /// ITEM `ERROR`; the error defaults to the item's current error, else `ITEM_LOGIN_REQUIRED`.
    #[serde(rename = "ERROR")]
    ItemError {
        /// The error to embed (its `status` is filled in).
        #[serde(default)]
        error: Option<PlaidError>,
    },
    /// ITEM `LOGIN_REPAIRED`.
    LoginRepaired,
    /// ITEM `PENDING_EXPIRATION`.
    PendingExpiration {
        /// Defaults to 7 days from now.
        #[serde(default)]
        consent_expiration_time: Option<DateTime<Utc>>,
    },
    /// ITEM `PENDING_DISCONNECT`.
    PendingDisconnect {
        /// Defaults to `INSTITUTION_MIGRATION`.
        #[serde(default)]
        reason: Option<String>,
        /// Defaults to 7 days from now.
        #[serde(default)]
        disconnect_time: Option<DateTime<Utc>>,
    },
    /// ITEM `USER_PERMISSION_REVOKED`.
    UserPermissionRevoked,
    /// ITEM `USER_ACCOUNT_REVOKED`.
    UserAccountRevoked {
        /// Defaults to the item's first account.
        #[serde(default)]
        account_id: Option<String>,
    },
    /// ITEM `NEW_ACCOUNTS_AVAILABLE`.
    NewAccountsAvailable,
    /// ITEM `WEBHOOK_UPDATE_ACKNOWLEDGED`.
    WebhookUpdateAcknowledged {
        /// The URL now registered.
        new_webhook_url: String,
    },
}

impl WebhookEvent {
    /// `SYNC_UPDATES_AVAILABLE` with flags from the item's state.
    pub fn sync_updates_available() -> Self {
        WebhookEvent::SyncUpdatesAvailable {
            initial_update_complete: None,
            historical_update_complete: None,
        }
    }

    /// (`webhook_type`, `webhook_code`).
    pub fn type_and_code(&self) -> (&'static str, &'static str) {
        match self {
            WebhookEvent::SyncUpdatesAvailable { .. } => ("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE"),
            WebhookEvent::InitialUpdate { .. } => ("TRANSACTIONS", "INITIAL_UPDATE"),
            WebhookEvent::HistoricalUpdate { .. } => ("TRANSACTIONS", "HISTORICAL_UPDATE"),
            WebhookEvent::DefaultUpdate { .. } => ("TRANSACTIONS", "DEFAULT_UPDATE"),
            WebhookEvent::TransactionsRemoved { .. } => ("TRANSACTIONS", "TRANSACTIONS_REMOVED"),
            WebhookEvent::ItemError { .. } => ("ITEM", "ERROR"),
            WebhookEvent::LoginRepaired => ("ITEM", "LOGIN_REPAIRED"),
            WebhookEvent::PendingExpiration { .. } => ("ITEM", "PENDING_EXPIRATION"),
            WebhookEvent::PendingDisconnect { .. } => ("ITEM", "PENDING_DISCONNECT"),
            WebhookEvent::UserPermissionRevoked => ("ITEM", "USER_PERMISSION_REVOKED"),
            WebhookEvent::UserAccountRevoked { .. } => ("ITEM", "USER_ACCOUNT_REVOKED"),
            WebhookEvent::NewAccountsAvailable => ("ITEM", "NEW_ACCOUNTS_AVAILABLE"),
            WebhookEvent::WebhookUpdateAcknowledged { .. } => ("ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED"),
        }
    }
}

/// What the body builder needs to know about the item.
pub(crate) struct ItemFacts<'a> {
    pub(crate) item_id: &'a str,
    pub(crate) initial_complete: bool,
    pub(crate) historical_complete: bool,
    pub(crate) live_transactions: u64,
    pub(crate) error: Option<(u16, &'a PlaidError)>,
    pub(crate) first_account_id: Option<&'a str>,
}

/// A JSON object that keeps its keys in insertion order, so bodies read like Plaid's
/// (`webhook_type`, `webhook_code`, `item_id`, ..., `environment`) without switching serde_json
/// to `preserve_order` for the whole workspace.
struct Ordered(Vec<(&'static str, Value)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Builds the exact body bytes Plaid would send for `event`.
pub(crate) fn body(event: &WebhookEvent, item: &ItemFacts<'_>, now: DateTime<Utc>) -> Vec<u8> {
    let (webhook_type, webhook_code) = event.type_and_code();
    let mut fields = vec![
        ("webhook_type", json!(webhook_type)),
        ("webhook_code", json!(webhook_code)),
        ("item_id", json!(item.item_id)),
    ];
    let in_a_week = now + chrono::Duration::days(7);
    let error_json = |err: &PlaidError, status: u16| {
        serde_json::to_value(err.for_webhook(status)).expect("errors serialize")
    };
    match event {
        WebhookEvent::SyncUpdatesAvailable {
            initial_update_complete,
            historical_update_complete,
        } => {
            let initial = initial_update_complete.unwrap_or(item.initial_complete);
            let historical = historical_update_complete.unwrap_or(item.historical_complete);
            fields.push(("initial_update_complete", json!(initial)));
            fields.push(("historical_update_complete", json!(historical)));
        }
        WebhookEvent::InitialUpdate { new_transactions }
        | WebhookEvent::HistoricalUpdate { new_transactions } => {
            fields.push(("error", Value::Null));
            let count = new_transactions.unwrap_or(item.live_transactions);
            fields.push(("new_transactions", json!(count)));
        }
        WebhookEvent::DefaultUpdate { new_transactions } => {
            fields.push(("error", Value::Null));
            fields.push(("new_transactions", json!(new_transactions)));
        }
        WebhookEvent::TransactionsRemoved { removed_transactions } => {
            fields.push(("removed_transactions", json!(removed_transactions)));
            fields.push(("error", Value::Null));
        }
        WebhookEvent::ItemError { error } => {
            let value = match (error, item.error) {
                (Some(err), _) => {
                    let status = PlaidError::from_code(&err.error_code).map_or(400, |(s, _)| s);
                    error_json(err, err.status.unwrap_or(status))
                }
                (None, Some((status, err))) => error_json(err, status),
                (None, None) => {
                    let (status, err) =
                        PlaidError::from_code("ITEM_LOGIN_REQUIRED").expect("catalogued code");
                    error_json(&err, status)
                }
            };
            fields.push(("error", value));
        }
        WebhookEvent::LoginRepaired | WebhookEvent::NewAccountsAvailable => {
            if matches!(event, WebhookEvent::NewAccountsAvailable) {
                fields.push(("error", Value::Null));
            }
        }
        WebhookEvent::PendingExpiration {
            consent_expiration_time,
        } => {
            let at = consent_expiration_time.unwrap_or(in_a_week);
            fields.push(("consent_expiration_time", json!(at)));
        }
        WebhookEvent::PendingDisconnect {
            reason,
            disconnect_time,
        } => {
            let reason = reason.as_deref().unwrap_or("INSTITUTION_MIGRATION");
            fields.push(("reason", json!(reason)));
            fields.push(("disconnect_time", json!(disconnect_time.unwrap_or(in_a_week))));
        }
        WebhookEvent::UserPermissionRevoked => {
            let (_, mut err) = PlaidError::from_code("USER_PERMISSION_REVOKED").expect("catalogued code");
            // The webhook example types this as ITEM_ERROR, while API calls say INVALID_INPUT
            // (PLAID.md §9); we copy each source.
            err.error_type = "ITEM_ERROR".to_owned();
            fields.push(("error", error_json(&err, 400)));
        }
        WebhookEvent::UserAccountRevoked { account_id } => {
            let account = account_id.as_deref().or(item.first_account_id);
            fields.push(("account_id", json!(account)));
        }
        WebhookEvent::WebhookUpdateAcknowledged { new_webhook_url } => {
            fields.push(("error", Value::Null));
            fields.push(("new_webhook_url", json!(new_webhook_url)));
        }
    }
    fields.push(("environment", json!("sandbox")));
    serde_json::to_vec_pretty(&Ordered(fields)).expect("webhook bodies serialize")
}

/// Lowercase hex SHA-256 of the body bytes, as in the `request_body_sha256` claim.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The `Plaid-Verification` header value for `body`, signed with the current key at `iat`.
pub(crate) fn sign(keys: &KeyStore, body: &[u8], iat: i64) -> String {
    keys.sign(&json!({"iat": iat, "request_body_sha256": body_sha256(body)}))
}

/// A webhook ready to send (or to feed to a verifier under test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedWebhook {
    /// Where it goes (`None` when the item has no webhook URL).
    pub url: Option<String>,
    /// The item it is about.
    pub item_id: String,
    /// `TRANSACTIONS` or `ITEM`.
    pub webhook_type: String,
    /// e.g. `SYNC_UPDATES_AVAILABLE`.
    pub webhook_code: String,
    /// The exact body bytes (2-space indented JSON).
    pub body: Vec<u8>,
    /// The `Plaid-Verification` header value.
    pub verification: String,
}

/// The record of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Target URL.
    pub url: String,
    /// The item it was about.
    pub item_id: String,
    /// `webhook_type`.
    pub webhook_type: String,
    /// `webhook_code`.
    pub webhook_code: String,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Transport error (connection refused, timeout), if any.
    pub error: Option<String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

/// POSTs the webhook once and reports what happened.
pub(crate) async fn deliver(http: &reqwest::Client, url: &str, hook: &SignedWebhook) -> WebhookDelivery {
    let sent_at = Utc::now();
    let result = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(VERIFICATION_HEADER, &hook.verification)
        .body(hook.body.clone())
        .send()
        .await;
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(err) => (None, Some(err.to_string())),
    };
    if let Some(error) = &error {
        tracing::warn!(%url, code = hook.webhook_code, %error, "webhook delivery failed");
    }
    WebhookDelivery {
        url: url.to_owned(),
        item_id: hook.item_id.clone(),
        webhook_type: hook.webhook_type.clone(),
        webhook_code: hook.webhook_code.clone(),
        status,
        error,
        sent_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_two_space_indented_and_ordered_like_plaid() {
        let facts = ItemFacts {
            item_id: "item1",
            initial_complete: true,
            historical_complete: false,
            live_transactions: 3,
            error: None,
            first_account_id: None,
        };
        let bytes = body(&WebhookEvent::sync_updates_available(), &facts, Utc::now());
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\n  \"webhook_type\": \"TRANSACTIONS\",\n  \"webhook_code\""));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["initial_update_complete"], true);
        assert_eq!(v["historical_update_complete"], false);
        assert_eq!(v["environment"], "sandbox");
    }

    #[test]
    fn events_parse_from_control_json() {
        let e: WebhookEvent = serde_json::from_value(json!({"webhook_code": "ERROR"})).unwrap();
        assert_eq!(e, WebhookEvent::ItemError { error: None });
        let e: WebhookEvent = serde_json::from_value(json!({"webhook_code": "LOGIN_REPAIRED"})).unwrap();
        assert_eq!(e.type_and_code(), ("ITEM", "LOGIN_REPAIRED"));
    }
}

//! The log of API calls, so tests can assert on what a client did ("`/item/remove` was called
//! exactly once", "no sync after the 429").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One API request and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// 1-based order of arrival.
    pub seq: u64,
    /// Endpoint path, e.g. `/transactions/sync`.
    pub endpoint: String,
    /// The item, when the access token resolved to one.
    pub item_id: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// `error_code`, for error answers.
    pub error_code: Option<String>,
    /// The response's `request_id`.
    pub request_id: String,
    /// When it was answered (before any injected latency).
    pub at: DateTime<Utc>,
}

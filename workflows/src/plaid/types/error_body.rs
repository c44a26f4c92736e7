//! Plaid's error object (SPEC `PlaidError`, PLAID.md §3.1).

use serde::Deserialize;

use crate::plaid::error::{ErrorClass, classify};

open_enum! {
    /// `error_type` (SPEC `PlaidErrorType`). Branch on `error_code`; the type
    /// is the fallback for codes we don't know (see [`classify`]).
    pub enum ErrorType {
        /// `INVALID_REQUEST`: the request is malformed.
        InvalidRequest = "INVALID_REQUEST",
        /// `INVALID_RESULT`
        InvalidResult = "INVALID_RESULT",
        /// `INVALID_INPUT`: a field value (token, key id, API keys) is wrong.
        InvalidInput = "INVALID_INPUT",
        /// `INSTITUTION_ERROR`: the bank is down or unsupported.
        InstitutionError = "INSTITUTION_ERROR",
        /// `RATE_LIMIT_EXCEEDED` (HTTP 429).
        RateLimitExceeded = "RATE_LIMIT_EXCEEDED",
        /// `API_ERROR`: a Plaid-side failure.
        ApiError = "API_ERROR",
        /// `ITEM_ERROR`: the Item needs attention.
        ItemError = "ITEM_ERROR",
        /// `TRANSACTIONS_ERROR`
        TransactionsError = "TRANSACTIONS_ERROR",
        /// `OAUTH_ERROR`
        OauthError = "OAUTH_ERROR",
        /// `SANDBOX_ERROR`
        SandboxError = "SANDBOX_ERROR",
    }
}

/// The error object in a non-2xx response body, in `/item/get`'s
/// `item.error`, and in webhooks.
///
/// `status` (the HTTP code) is present only in webhook-embedded errors, and
/// `request_id` only outside webhooks (PLAID.md §3.1).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    /// The broad category.
    pub error_type: ErrorType,
    /// The specific code; the thing to branch on.
    pub error_code: String,
    /// Only for OAuth Item errors, e.g. `OAUTH_CONSENT_EXPIRED`.
    #[serde(default)]
    pub error_code_reason: Option<String>,
    /// For developers; its wording can change, so never parse it.
    #[serde(default)]
    pub error_message: String,
    /// A message fit to show the user, when Plaid has one.
    #[serde(default)]
    pub display_message: Option<String>,
    /// Plaid's id for the failed request.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The HTTP status, in webhook-embedded errors only.
    #[serde(default)]
    pub status: Option<u16>,
    /// A link to Plaid's page about this error.
    #[serde(default)]
    pub documentation_url: Option<String>,
    /// Plaid's hint about what to do.
    #[serde(default)]
    pub suggested_action: Option<String>,
}

impl ErrorBody {
    /// What to do about this error; see [`classify`]. Uses the embedded
    /// `status` when there is one (webhooks), else decides on type and code.
    pub fn class(&self) -> ErrorClass {
        classify(self.status, &self.error_type, &self.error_code)
    }
}

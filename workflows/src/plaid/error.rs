//! [`PlaidError`] and the one table that says what each Plaid error means
//! for us ([`classify`]).
//!
//! No variant's `Display` or `Debug` contains an access token, a public
//! token, the client secret or a request body: API errors carry only Plaid's
//! error fields, transport errors only `reqwest`'s message and URL (our URLs
//! hold no secrets), and decode errors a message with every quoted value cut
//! out.

use std::time::Duration;

use crate::plaid::types::{ErrorBody, ErrorType};

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Try again later, with backoff: Plaid, the bank or the network had a
    /// passing problem, a rate limit was hit, or (for
    /// [`PlaidError::is_mutation_during_pagination`]) the page loop must
    /// restart from its first cursor.
    Retryable,
    /// The user must go through Link update mode (PLAID.md §3.2 "user
    /// reauth"/"user action"); retrying before that only fails again.
    NeedsReauth,
    /// The Item (or, for a public token, the Link session) is gone or
    /// unusable for good; stop syncing it.
    Terminal,
    /// Our request or our configuration is wrong (bad API keys, malformed
    /// body, sandbox-only call, a response we could not parse). Says nothing
    /// about the Item, so don't mark it; fail loudly so a person looks.
    Developer,
}

/// The error-code table, citing PLAID.md §3.2 (codes, HTTP status, handling)
/// and §7.2 (rate-limit codes). PLAID.md's class column is itself DERIVED
/// from Plaid's per-code handling advice; where it says "terminal for that
/// call" or "user action / terminal" we chose the class the sync engine can
/// act on, as noted per line.
mod table {
    /// Passing failures: retry with backoff.
    pub(super) const RETRYABLE: &[&str] = &[
        "INTERNAL_SERVER_ERROR",      // 500 API_ERROR: "Retry the request."
        "PLANNED_MAINTENANCE",        // 503 API_ERROR: retry later
        "INSTITUTION_DOWN",           // 400 INSTITUTION_ERROR: retry in hours
        "INSTITUTION_NOT_RESPONDING", // same handling
        "INSTITUTION_NOT_AVAILABLE",  // same handling
        "PRODUCT_NOT_READY",          // wait for the webhook or retry
        // 400 TRANSACTIONS_ERROR: restart the whole page loop (§2.5).
        "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
    ];

    /// 429 `RATE_LIMIT_EXCEEDED` codes (§3.2, §7.2): retryable with backoff.
    pub(super) const RATE_LIMIT: &[&str] = &[
        "TRANSACTIONS_SYNC_LIMIT",
        "ITEM_GET_LIMIT",
        "ACCOUNTS_LIMIT",
        "TRANSACTIONS_LIMIT",
        "TRANSACTIONS_REFRESH_LIMIT",
        "RATE_LIMIT",
        "INSTITUTION_RATE_LIMIT",
    ];

    /// Fixed by the user in Link update mode.
    pub(super) const NEEDS_REAUTH: &[&str] = &[
        "ITEM_LOGIN_REQUIRED",         // "Send the Item through Link update mode"
        "ACCESS_NOT_GRANTED",          // "Use update mode"
        "NO_ACCOUNTS",                 // "update mode with account selection"
        "ADDITIONAL_CONSENT_REQUIRED", // in §3.2's "most common errors" list
        // Not in PLAID.md: Item errors that Plaid's errors/item docs and
        // support articles resolve by sending the user through update mode.
        "INVALID_CREDENTIALS",
        "INVALID_MFA",
        "INVALID_UPDATED_USERNAME",
        "INSUFFICIENT_CREDENTIALS",
        "ITEM_LOCKED",
        "USER_SETUP_REQUIRED",
    ];

    /// The Item (or token) cannot be used again; a new Link is needed.
    pub(super) const TERMINAL: &[&str] = &[
        "ITEM_NOT_FOUND",                  // "Start a new Link flow"
        "INVALID_ACCESS_TOKEN",            // removed, or another environment
        "USER_PERMISSION_REVOKED",         // "delete the Item … and re-link"
        "ITEM_CONCURRENTLY_DELETED",       // deleted mid-operation
        "INSTITUTION_NO_LONGER_SUPPORTED", // docs: "un-retryable"
        "UNSUPPORTED_RESPONSE",            // docs: "un-retryable"
        "PRODUCTS_NOT_SUPPORTED",          // "terminal for that call"
        "INVALID_PUBLIC_TOKEN",            // expired public token: Link again
    ];

    /// Our bug or misconfiguration (§3.2 class "developer").
    pub(super) const DEVELOPER: &[&str] = &[
        "INVALID_API_KEYS",
        "MISSING_FIELDS",
        "UNKNOWN_FIELDS",
        // Includes "cursor not associated with access_token" (§2.5, pitfall
        // 3): the fix, clearing the stored cursor, is the caller's decision.
        "INVALID_FIELD",
        "INVALID_BODY",
        "INVALID_HEADERS",
        "NOT_FOUND",
        "NO_LONGER_AVAILABLE",
        "SANDBOX_ONLY",
        "SANDBOX_PRODUCT_NOT_ENABLED",
        "SANDBOX_WEBHOOK_INVALID", // fire_webhook on an Item without a webhook URL
        "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
    ];
}

/// Classifies a Plaid error by code, then by HTTP status and `error_type`.
///
/// Known codes use the table above. Plaid adds codes without a version bump
/// (PLAID.md §1), so an unknown code falls back to what its status and type
/// say about *who* is at fault:
///
/// * HTTP 5xx or 429, or type `RATE_LIMIT_EXCEEDED` / `API_ERROR`: Plaid's
///   side or a limit, both passing (§3.1: "5xx means a Plaid problem");
///   **retryable**.
/// * Type `INVALID_REQUEST` / `INVALID_INPUT` / `INVALID_RESULT`: the
///   request was wrong; retrying the same request cannot help and it is not
///   the Item's fault; **developer**.
/// * Anything else (`ITEM_ERROR`, `INSTITUTION_ERROR`, …): **terminal**. An
///   unknown Item error might be fixable by update mode, but we cannot know,
///   and retrying forever is worse than surfacing it; a person can re-link.
///
/// `status` is `None` for errors embedded in `/item/get` or webhooks without
/// one.
pub fn classify(status: Option<u16>, error_type: &ErrorType, error_code: &str) -> ErrorClass {
    let code_in = |list: &[&str]| list.contains(&error_code);
    if code_in(table::RETRYABLE) || code_in(table::RATE_LIMIT) {
        return ErrorClass::Retryable;
    }
    if code_in(table::NEEDS_REAUTH) {
        return ErrorClass::NeedsReauth;
    }
    if code_in(table::TERMINAL) {
        return ErrorClass::Terminal;
    }
    if code_in(table::DEVELOPER) {
        return ErrorClass::Developer;
    }
    if status.is_some_and(|status| status >= 500 || status == 429) {
        return ErrorClass::Retryable;
    }
    match error_type {
        ErrorType::RateLimitExceeded | ErrorType::ApiError => ErrorClass::Retryable,
        ErrorType::InvalidRequest | ErrorType::InvalidInput | ErrorType::InvalidResult => {
            ErrorClass::Developer
        }
        _ => ErrorClass::Terminal,
    }
}

/// A failed Plaid call.
#[derive(Debug, thiserror::Error)]
pub enum PlaidError {
    /// Plaid answered with its error object (boxed to keep `Result`s small).
    #[error(transparent)]
    Api(Box<ApiError>),
    /// No complete response within the configured timeout.
    #[error("Plaid {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// e.g. `/transactions/sync`.
        endpoint: &'static str,
        /// The configured deadline.
        timeout: Duration,
    },
    /// The request could not be sent or the response not read (connection
    /// refused or reset, DNS, TLS).
    #[error("Plaid {endpoint} request failed: {source}")]
    Transport {
        /// e.g. `/transactions/sync`.
        endpoint: &'static str,
        /// The underlying error; its message names at most the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not what the SPEC promises: a 2xx body that
    /// doesn't fit our types, or an error status without a Plaid error
    /// object (e.g. a proxy's HTML 502 page).
    #[error("Plaid {endpoint} returned HTTP {status} with an unreadable body: {detail}")]
    Decode {
        /// e.g. `/transactions/sync`.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The parser's message with quoted values removed.
        detail: String,
    },
    /// [`PlaidConfig`](super::PlaidConfig) could not be turned into a client.
    #[error("invalid Plaid client configuration: {reason}")]
    Config {
        /// What is wrong (never the secret's value).
        reason: String,
    },
}

impl PlaidError {
    /// What to do about it; see [`classify`] for API errors. Timeouts and
    /// transport failures are retryable; a body we could not decode is
    /// retryable on 5xx/429 and a developer error otherwise.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api(api) => api.class(),
            Self::Timeout { .. } => ErrorClass::Retryable,
            Self::Transport { source, .. } if source.is_builder() => ErrorClass::Developer,
            Self::Transport { .. } => ErrorClass::Retryable,
            Self::Decode { status, .. } if *status >= 500 || *status == 429 => ErrorClass::Retryable,
            Self::Decode { .. } | Self::Config { .. } => ErrorClass::Developer,
        }
    }

    /// Plaid's error object, if Plaid sent one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(api) => Some(api),
            _ => None,
        }
    }

    /// Plaid's `error_code`, if Plaid sent one.
    pub fn error_code(&self) -> Option<&str> {
        self.api().map(|api| api.error_code.as_str())
    }

    /// A 429 rate limit (retry later, with backoff).
    pub fn is_rate_limit(&self) -> bool {
        self.api().is_some_and(ApiError::is_rate_limit)
    }

    /// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`: restart the whole
    /// page loop from the cursor it started with (PLAID.md §2.5), not just
    /// the failed page.
    pub fn is_mutation_during_pagination(&self) -> bool {
        self.api().is_some_and(ApiError::is_mutation_during_pagination)
    }

    /// The endpoint that failed, e.g. `/transactions/sync`.
    pub fn endpoint(&self) -> Option<&'static str> {
        match self {
            Self::Api(api) => Some(api.endpoint),
            Self::Timeout { endpoint, .. }
            | Self::Transport { endpoint, .. }
            | Self::Decode { endpoint, .. } => Some(endpoint),
            Self::Config { .. } => None,
        }
    }
}

/// Plaid's error object for a failed call, with the HTTP status and the
/// endpoint (PLAID.md §3.1).
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "Plaid {endpoint} failed with HTTP {status} {error_type}/{error_code} (request_id {}): {error_message}",
    request_id.as_deref().unwrap_or("none")
)]
pub struct ApiError {
    /// e.g. `/transactions/sync`.
    pub endpoint: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The broad category.
    pub error_type: ErrorType,
    /// The specific code; branch on this.
    pub error_code: String,
    /// For OAuth Item errors, e.g. `OAUTH_CONSENT_EXPIRED`.
    pub error_code_reason: Option<String>,
    /// For developers; don't parse it, its wording changes.
    pub error_message: String,
    /// Fit to show the user, when present.
    pub display_message: Option<String>,
    /// Plaid's request id, for support.
    pub request_id: Option<String>,
}

impl ApiError {
    pub(crate) fn new(endpoint: &'static str, status: u16, body: ErrorBody) -> Self {
        Self {
            endpoint,
            status,
            error_type: body.error_type,
            error_code: body.error_code,
            error_code_reason: body.error_code_reason,
            error_message: body.error_message,
            display_message: body.display_message,
            request_id: body.request_id,
        }
    }

    /// What to do about it; see [`classify`].
    pub fn class(&self) -> ErrorClass {
        classify(Some(self.status), &self.error_type, &self.error_code)
    }

    /// HTTP 429, type `RATE_LIMIT_EXCEEDED`, or a known rate-limit code.
    pub fn is_rate_limit(&self) -> bool {
        self.status == 429
            || self.error_type == ErrorType::RateLimitExceeded
            || table::RATE_LIMIT.contains(&self.error_code.as_str())
    }

    /// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`.
    pub fn is_mutation_during_pagination(&self) -> bool {
        self.error_code == "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"
    }
}

/// Cuts every `"…"`-quoted value out of a parser message, keeping field
/// names (serde puts those in backticks). serde quotes the offending value
/// in messages like ``invalid type: string "…", expected …``, and that value
/// could be a token.
pub(crate) fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    let mut escaped = false;
    for ch in message.chars() {
        if inside {
            match (escaped, ch) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    inside = false;
                    out.push_str("…\"");
                }
                _ => escaped = false,
            }
        } else {
            out.push(ch);
            inside = ch == '"';
        }
    }
    if inside {
        out.push_str("…\"");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_quoted_removes_values_but_keeps_field_names() {
        let message = r#"invalid type: string "access-sandbox-123", expected `item_id` at line 1"#;
        assert_eq!(
            redact_quoted(message),
            r#"invalid type: string "…", expected `item_id` at line 1"#
        );
        assert_eq!(redact_quoted(r#"a "b\"c" d "e"#), r#"a "…" d "…""#);
    }

    #[test]
    fn unknown_codes_fall_back_on_status_then_type() {
        let item = ErrorType::ItemError;
        assert_eq!(classify(Some(503), &item, "NEW_CODE"), ErrorClass::Retryable);
        assert_eq!(
            classify(Some(400), &ErrorType::RateLimitExceeded, "NEW_LIMIT"),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(Some(400), &ErrorType::InvalidRequest, "NEW_CODE"),
            ErrorClass::Developer
        );
        assert_eq!(classify(Some(400), &item, "NEW_CODE"), ErrorClass::Terminal);
        assert_eq!(
            classify(None, &ErrorType::Unknown("NEW_TYPE".into()), "NEW_CODE"),
            ErrorClass::Terminal
        );
    }
}

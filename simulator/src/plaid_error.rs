//! Plaid's error object and the catalogue of error codes the simulator can produce.
//!
//! Messages, types and HTTP statuses are copied from Plaid's error docs (PLAID.md §3.2) so a
//! client's error classification can be tested against the real values.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Plaid's `PlaidError` object, as returned in error bodies and embedded in webhooks and
/// `/item/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaidError {
    /// Broad category, e.g. `ITEM_ERROR`.
    pub error_type: String,
    /// The specific code, e.g. `ITEM_LOGIN_REQUIRED`; what clients branch on.
    pub error_code: String,
    /// OAuth-only refinement of the code; `null` otherwise.
    #[serde(default)]
    pub error_code_reason: Option<String>,
    /// Developer-facing message.
    pub error_message: String,
    /// User-facing message, `null` when the error is not about user action.
    #[serde(default)]
    pub display_message: Option<String>,
    /// Present in API responses, omitted inside webhooks (as Plaid does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-item breakdown; only used by multi-item products, so always empty here.
    #[serde(default)]
    pub causes: Vec<Value>,
    /// The HTTP status; Plaid fills it only in webhook-embedded errors.
    #[serde(default)]
    pub status: Option<u16>,
    /// Link to Plaid's docs for the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// Plaid's suggested remediation; `null` for every code we produce.
    #[serde(default)]
    pub suggested_action: Option<String>,
}

/// One catalogue entry: HTTP status, `error_type`, `error_message`, `display_message`, docs page.
struct CatalogEntry {
    status: u16,
    error_type: &'static str,
    message: &'static str,
    display: Option<&'static str>,
    docs: &'static str,
}

const RATE_LIMIT_MESSAGE: &str =
    "rate limit exceeded for attempts to access this item. please try again later";
const INSTITUTION_MESSAGE: &str =
    "this institution is not currently responding to this request. please try again soon";
const INSTITUTION_DISPLAY: &str =
    "This financial institution is not currently responding to requests. We apologize for the inconvenience.";

fn catalog(code: &str) -> Option<CatalogEntry> {
    let entry = |status, error_type, message, display, docs| CatalogEntry {
        status,
        error_type,
        message,
        display,
        docs,
    };
    Some(match code {
        "INTERNAL_SERVER_ERROR" => entry(
            500,
            "API_ERROR",
            "an unexpected error occurred",
            Some("Something went wrong. Please try again later."),
            "api",
        ),
        "PLANNED_MAINTENANCE" => entry(
            503,
            "API_ERROR",
            "the Plaid API is temporarily unavailable due to planned maintenance. visit https://status.plaid.com/ for more information",
            None,
            "api",
        ),
        "TRANSACTIONS_SYNC_LIMIT"
        | "RATE_LIMIT"
        | "ITEM_GET_LIMIT"
        | "ACCOUNTS_LIMIT"
        | "TRANSACTIONS_LIMIT"
        | "TRANSACTIONS_REFRESH_LIMIT" => entry(
            429,
            "RATE_LIMIT_EXCEEDED",
            RATE_LIMIT_MESSAGE,
            None,
            "rate-limit-exceeded",
        ),
        "INSTITUTION_RATE_LIMIT" => entry(
            429,
            "RATE_LIMIT_EXCEEDED",
            "The institution is currently receiving too many requests. Please try again later.",
            None,
            "rate-limit-exceeded",
        ),
        "INSTITUTION_DOWN" | "INSTITUTION_NOT_RESPONDING" | "INSTITUTION_NOT_AVAILABLE" => entry(
            400,
            "INSTITUTION_ERROR",
            INSTITUTION_MESSAGE,
            Some(INSTITUTION_DISPLAY),
            "institution",
        ),
        "ITEM_LOGIN_REQUIRED" => entry(
            400,
            "ITEM_ERROR",
            "the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information. use Link's update mode to restore the item to a good state",
            None,
            "item",
        ),
        "ITEM_NOT_FOUND" => entry(
            400,
            "ITEM_ERROR",
            "The Item you requested cannot be found. This Item does not exist, has been previously removed via /item/remove, or has had access removed by the user.",
            None,
            "item",
        ),
        "PRODUCT_NOT_READY" => entry(
            400,
            "ITEM_ERROR",
            "the requested product is not yet ready. please provide a webhook or try the request again later",
            None,
            "item",
        ),
        "NO_ACCOUNTS" => entry(
            400,
            "ITEM_ERROR",
            "no valid accounts were found for this item",
            Some(
                "No valid accounts were found at the financial institution. Please visit your financial institution's website to confirm accounts are available.",
            ),
            "item",
        ),
        "ACCESS_NOT_GRANTED" => entry(
            400,
            "ITEM_ERROR",
            "access to this product was not granted for the account",
            Some("The user did not grant the necessary permissions for this product on their account."),
            "item",
        ),
        "PRODUCTS_NOT_SUPPORTED" => entry(400, "ITEM_ERROR", "", None, "item"),
        "ITEM_CONCURRENTLY_DELETED" => entry(
            400,
            "ITEM_ERROR",
            "This item was deleted while the operation was in progress",
            None,
            "item",
        ),
        "USER_PERMISSION_REVOKED" => entry(
            400,
            "INVALID_INPUT",
            "the holder of this account has revoked their permission for your application to access it",
            None,
            "invalid-input",
        ),
        "INVALID_ACCESS_TOKEN" => entry(
            400,
            "INVALID_INPUT",
            "could not find matching access token",
            None,
            "invalid-input",
        ),
        "INVALID_PUBLIC_TOKEN" => entry(
            400,
            "INVALID_INPUT",
            "could not find matching public token",
            None,
            "invalid-input",
        ),
        "INVALID_LINK_TOKEN" => entry(
            400,
            "INVALID_INPUT",
            "could not find matching link token",
            None,
            "invalid-input",
        ),
        "INVALID_API_KEYS" => entry(
            400,
            "INVALID_INPUT",
            "invalid client_id or secret provided",
            None,
            "invalid-input",
        ),
        "INVALID_ACCOUNT_ID" => entry(
            400,
            "INVALID_INPUT",
            "one or more of the account IDs is invalid",
            None,
            "invalid-input",
        ),
        "INVALID_WEBHOOK_VERIFICATION_KEY_ID" => entry(
            400,
            "INVALID_INPUT",
            "invalid key_id provided. note that key_ids are specific to Plaid environments, and verification requests must be made to the same environment that the webhook was sent from",
            None,
            "invalid-input",
        ),
        "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION" => entry(
            400,
            "TRANSACTIONS_ERROR",
            "Underlying transaction data changed since last page was fetched. Please restart pagination from last update.",
            None,
            "transactions",
        ),
        "INVALID_BODY" => entry(
            400,
            "INVALID_REQUEST",
            "body could not be parsed as JSON",
            None,
            "invalid-request",
        ),
        "NOT_FOUND" => entry(404, "INVALID_REQUEST", "not found", None, "invalid-request"),
        "SANDBOX_WEBHOOK_INVALID" => entry(
            400,
            "SANDBOX_ERROR",
            "the webhook for this item is either not set or invalid",
            None,
            "sandbox",
        ),
        _ => return None,
    })
}

impl PlaidError {
    /// The error (and its HTTP status) for a catalogued code such as `INSTITUTION_DOWN`; `None`
    /// for codes the simulator does not know (use [`PlaidError::custom`] for those).
    pub fn from_code(code: &str) -> Option<(u16, PlaidError)> {
        let entry = catalog(code)?;
        let error = PlaidError {
            error_type: entry.error_type.to_owned(),
            error_code: code.to_owned(),
            error_code_reason: None,
            error_message: entry.message.to_owned(),
            display_message: entry.display.map(str::to_owned),
            request_id: None,
            causes: Vec::new(),
            status: None,
            documentation_url: Some(format!(
                "https://plaid.com/docs/errors/{}/#{}",
                entry.docs,
                code.to_ascii_lowercase().replace('_', "-")
            )),
            suggested_action: None,
        };
        Some((entry.status, error))
    }

    /// An arbitrary error object, for codes outside the catalogue.
    pub fn custom(error_type: &str, error_code: &str, error_message: &str) -> PlaidError {
        PlaidError {
            error_type: error_type.to_owned(),
            error_code: error_code.to_owned(),
            error_code_reason: None,
            error_message: error_message.to_owned(),
            display_message: None,
            request_id: None,
            causes: Vec::new(),
            status: None,
            documentation_url: Some("https://plaid.com/docs/errors/".to_owned()),
            suggested_action: None,
        }
    }

    /// The form Plaid embeds in webhooks: `status` filled in, no `request_id`.
    pub(crate) fn for_webhook(&self, status: u16) -> PlaidError {
        PlaidError {
            status: Some(status),
            request_id: None,
            ..self.clone()
        }
    }
}

/// An error answer to an API request: the HTTP status plus the body.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    /// Boxed: errors travel through every `Result` in the request pipeline.
    pub(crate) error: Box<PlaidError>,
}

impl ApiError {
    /// A catalogued code. Panics on an unknown code: every call site names a literal from the
    /// catalogue, so a typo is a programming error caught by the tests.
    pub(crate) fn code(code: &str) -> ApiError {
        let (status, error) =
            PlaidError::from_code(code).unwrap_or_else(|| panic!("uncatalogued code {code}"));
        ApiError {
            status,
            error: Box::new(error),
        }
    }

    /// 400 `INVALID_REQUEST`/`MISSING_FIELDS` naming every missing field.
    pub(crate) fn missing_fields(fields: &[&str]) -> ApiError {
        ApiError::invalid_request(
            "MISSING_FIELDS",
            format!("the following required fields are missing: {}", fields.join(", ")),
        )
    }

    /// 400 `INVALID_REQUEST`/`INVALID_FIELD`.
    pub(crate) fn invalid_field(message: impl Into<String>) -> ApiError {
        ApiError::invalid_request("INVALID_FIELD", message.into())
    }

    fn invalid_request(code: &str, message: String) -> ApiError {
        let mut error = PlaidError::custom("INVALID_REQUEST", code, &message);
        error.documentation_url = Some(format!(
            "https://plaid.com/docs/errors/invalid-request/#{}",
            code.to_ascii_lowercase().replace('_', "-")
        ));
        ApiError {
            status: 400,
            error: Box::new(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_matches_documented_statuses() {
        for (code, status, kind) in [
            ("INTERNAL_SERVER_ERROR", 500, "API_ERROR"),
            ("TRANSACTIONS_SYNC_LIMIT", 429, "RATE_LIMIT_EXCEEDED"),
            ("INSTITUTION_DOWN", 400, "INSTITUTION_ERROR"),
            ("ITEM_LOGIN_REQUIRED", 400, "ITEM_ERROR"),
            (
                "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
                400,
                "TRANSACTIONS_ERROR",
            ),
            ("NOT_FOUND", 404, "INVALID_REQUEST"),
        ] {
            let (got_status, err) = PlaidError::from_code(code).unwrap();
            assert_eq!((got_status, err.error_type.as_str()), (status, kind), "{code}");
        }
        assert!(PlaidError::from_code("NO_SUCH_CODE").is_none());
    }
}

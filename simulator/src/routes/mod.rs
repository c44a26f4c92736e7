//! The Plaid API endpoints. Each handler runs under the state lock after the common pipeline
//! in `server.rs` (body, credentials, required fields, access token, rate limit, faults) and
//! returns the response body without `request_id`, which the pipeline adds.

use serde_json::{Value, json};

use crate::model::Account;
use crate::plaid_error::ApiError;
use crate::request::ApiRequest;
use crate::state::{Item, SimState};

mod accounts;
mod item;
mod link;
mod sandbox;
mod transactions;
mod webhook_keys;

/// The request being handled.
pub(crate) struct Ctx {
    pub(crate) req: ApiRequest,
    /// The item the access token resolved to (item-scoped endpoints only).
    pub(crate) item_id: Option<String>,
}

impl Ctx {
    pub(crate) fn item_id(&self) -> String {
        self.item_id
            .clone()
            .expect("item-scoped endpoints always resolve the access token first")
    }
}

pub(crate) type Handler = fn(&mut SimState, &Ctx) -> Result<Value, ApiError>;

/// One endpoint: its path, required fields, whether it takes an access token, its handler.
pub(crate) struct Endpoint {
    pub(crate) path: &'static str,
    pub(crate) required: &'static [&'static str],
    pub(crate) item_scoped: bool,
    pub(crate) handler: Handler,
}

/// Path of the rate-limited endpoint.
pub(crate) const TRANSACTIONS_SYNC: &str = "/transactions/sync";

pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/link/token/create",
        required: &["client_name", "language", "country_codes"],
        item_scoped: false,
        handler: link::link_token_create,
    },
    Endpoint {
        path: "/item/public_token/exchange",
        required: &["public_token"],
        item_scoped: false,
        handler: link::public_token_exchange,
    },
    Endpoint {
        path: "/accounts/get",
        required: &["access_token"],
        item_scoped: true,
        handler: accounts::accounts_get,
    },
    Endpoint {
        path: "/item/get",
        required: &["access_token"],
        item_scoped: true,
        handler: item::item_get,
    },
    Endpoint {
        path: "/item/remove",
        required: &["access_token"],
        item_scoped: true,
        handler: item::item_remove,
    },
    Endpoint {
        path: "/item/webhook/update",
        required: &["access_token"],
        item_scoped: true,
        handler: item::item_webhook_update,
    },
    Endpoint {
        path: TRANSACTIONS_SYNC,
        required: &["access_token"],
        item_scoped: true,
        handler: transactions::transactions_sync,
    },
    Endpoint {
        path: "/webhook_verification_key/get",
        required: &["key_id"],
        item_scoped: false,
        handler: webhook_keys::webhook_verification_key_get,
    },
    Endpoint {
        path: "/sandbox/public_token/create",
        required: &["institution_id", "initial_products"],
        item_scoped: false,
        handler: sandbox::public_token_create,
    },
    Endpoint {
        path: "/sandbox/item/fire_webhook",
        required: &["access_token", "webhook_code"],
        item_scoped: true,
        handler: sandbox::fire_webhook,
    },
    Endpoint {
        path: "/sandbox/item/reset_login",
        required: &["access_token"],
        item_scoped: true,
        handler: sandbox::reset_login,
    },
];

/// Plaid's `Products` enum (SPEC), to reject products the schema would not allow.
const PRODUCTS: &[&str] = &[
    "assets",
    "auth",
    "balance",
    "balance_plus",
    "beacon",
    "identity",
    "identity_match",
    "investments",
    "investments_auth",
    "liabilities",
    "payment_initiation",
    "identity_verification",
    "transactions",
    "credit_details",
    "income",
    "income_verification",
    "standing_orders",
    "transfer",
    "employment",
    "recurring_transactions",
    "transactions_refresh",
    "signal",
    "statements",
    "processor_payments",
    "processor_identity",
    "profile",
    "cra_base_report",
    "cra_income_insights",
    "cra_partner_insights",
    "cra_network_insights",
    "cra_cashflow_insights",
    "cra_monitoring",
    "cra_lend_score",
    "cra_plaid_credit_score",
    "layer",
    "pay_by_bank",
    "protect_linked_bank",
    "protect_transactions",
];

/// A non-empty list of known products, or `INVALID_FIELD`.
pub(crate) fn validate_products(field: &str, products: &[String]) -> Result<(), ApiError> {
    if products.is_empty() {
        return Err(ApiError::invalid_field(format!(
            "{field} must contain at least one product"
        )));
    }
    match products.iter().find(|p| !PRODUCTS.contains(&p.as_str())) {
        Some(bad) => Err(ApiError::invalid_field(format!(
            "{field} contains an unknown product: {bad}"
        ))),
        None => Ok(()),
    }
}

/// Webhook URLs must be http(s) (PLAID.md §4.4).
pub(crate) fn validate_webhook_url(field: &str, url: &str) -> Result<(), ApiError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::invalid_field(format!(
            "{field} must be an http or https URL"
        )))
    }
}

pub(crate) fn account_json(account: &Account) -> Value {
    serde_json::to_value(account).expect("accounts serialize")
}

/// The `Item` object; `with_consent_fields` adds the `ItemWithConsentFields` extras that
/// `/item/get` returns.
pub(crate) fn item_json(item: &Item, with_consent_fields: bool) -> Value {
    let error = item
        .error
        .as_ref()
        .map(|(_, e)| serde_json::to_value(e).expect("errors serialize"));
    let mut value = json!({
        "item_id": item.item_id,
        "institution_id": item.institution_id,
        "institution_name": item.institution_name,
        "webhook": item.webhook,
        "auth_method": null,
        "error": error,
        "available_products": ["balance"],
        "billed_products": item.products,
        "products": item.products,
        "consented_products": item.products,
        "consent_expiration_time": null,
        "update_type": "background",
    });
    if with_consent_fields {
        value["created_at"] = json!(item.created_at);
        value["consented_use_cases"] = json!(["Track and manage your finances"]);
        value["consented_data_scopes"] = json!(["account_balance_info", "transactions"]);
    }
    value
}

/// The item's lasting error as an API error (for endpoints that read item data).
pub(crate) fn item_error(item: &Item) -> Result<(), ApiError> {
    match &item.error {
        Some((status, error)) => Err(ApiError {
            status: *status,
            error: Box::new(error.clone()),
        }),
        None => Ok(()),
    }
}

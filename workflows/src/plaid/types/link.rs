//! `/link/token/create` (SPEC `LinkTokenCreateRequest`, PLAID.md §6).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AccessToken, Product};

/// Body of `/link/token/create`.
///
/// For a new Item set `products` (and usually `webhook`); for update mode set
/// `access_token` and leave `products` empty (PLAID.md §6).
#[derive(Debug, Clone, Serialize)]
pub struct LinkTokenCreateRequest {
    /// Shown in Link; over 30 characters is replaced by "This Application".
    pub client_name: String,
    /// Link's language, e.g. `en`.
    pub language: String,
    /// At least one, e.g. `["US"]`.
    pub country_codes: Vec<String>,
    /// Identifies our end user (no PII).
    pub user: LinkTokenUser,
    /// Products to initialise; empty (and omitted) in update mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<Product>,
    /// Where Plaid sends this Item's webhooks. No effect in update mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Set to open Link in update mode for this Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    /// OAuth redirect URI, registered in the Plaid Dashboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Transactions settings, e.g. how much history to request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<LinkTokenTransactions>,
    /// Update-mode settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<LinkTokenUpdate>,
    /// A Link customization from the Dashboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_customization_name: Option<String>,
}

impl LinkTokenCreateRequest {
    /// A request for a new Item with the given products, in English for the
    /// US; adjust the public fields for anything else.
    pub fn new(
        client_name: impl Into<String>,
        client_user_id: impl Into<String>,
        products: Vec<Product>,
    ) -> Self {
        Self {
            client_name: client_name.into(),
            language: "en".to_owned(),
            country_codes: vec!["US".to_owned()],
            user: LinkTokenUser {
                client_user_id: client_user_id.into(),
            },
            products,
            webhook: None,
            access_token: None,
            redirect_uri: None,
            transactions: None,
            update: None,
            link_customization_name: None,
        }
    }

    /// A request that opens Link in update mode for an existing Item.
    pub fn update_mode(
        client_name: impl Into<String>,
        client_user_id: impl Into<String>,
        access_token: AccessToken,
    ) -> Self {
        Self {
            access_token: Some(access_token),
            ..Self::new(client_name, client_user_id, Vec::new())
        }
    }
}

/// `user` in `/link/token/create`.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTokenUser {
    /// Our stable, non-PII id for the end user.
    pub client_user_id: String,
}

/// `transactions` in `/link/token/create`.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTokenTransactions {
    /// Days of history, 1–730 (default 90).
    pub days_requested: u32,
}

/// `update` in `/link/token/create`.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTokenUpdate {
    /// Let the user add or remove accounts in update mode.
    pub account_selection_enabled: bool,
}

/// Response of `/link/token/create`.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkTokenCreateResponse {
    /// Passed to Link in the browser; not a credential on its own.
    pub link_token: String,
    /// 4 h for new Items, 30 min in update mode.
    pub expiration: DateTime<Utc>,
    /// Present for Hosted Link sessions only.
    #[serde(default)]
    pub hosted_link_url: Option<String>,
    /// Plaid's request id.
    pub request_id: String,
}

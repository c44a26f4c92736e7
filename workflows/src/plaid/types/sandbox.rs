//! Sandbox-only endpoints, for demos and tests (PLAID.md §6). Production
//! answers them with `SANDBOX_ONLY`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{AccessToken, Product, PublicToken, WebhookType};

/// Body of `/sandbox/public_token/create`: makes an Item without Link.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxPublicTokenCreateRequest {
    /// e.g. `ins_109508` (First Platypus Bank).
    pub institution_id: String,
    /// At least one product.
    pub initial_products: Vec<Product>,
    /// Webhook, test user and history settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<SandboxPublicTokenCreateOptions>,
}

impl SandboxPublicTokenCreateRequest {
    /// A Transactions Item at `institution_id`, with the default user.
    pub fn transactions(institution_id: impl Into<String>) -> Self {
        Self {
            institution_id: institution_id.into(),
            initial_products: vec![Product::Transactions],
            options: None,
        }
    }
}

/// `options` of `/sandbox/public_token/create`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxPublicTokenCreateOptions {
    /// The Item's webhook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Test user, e.g. `user_transactions_dynamic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_username: Option<String>,
    /// Test password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_password: Option<String>,
    /// History settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<SandboxPublicTokenTransactionsOptions>,
}

/// `options.transactions` of `/sandbox/public_token/create`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxPublicTokenTransactionsOptions {
    /// Earliest transaction date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// Latest transaction date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    /// Days of history, 1–730.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
}

/// Response of `/sandbox/public_token/create`.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxPublicTokenCreateResponse {
    /// Exchange it with `/item/public_token/exchange`.
    pub public_token: PublicToken,
    /// Plaid's request id.
    pub request_id: String,
}

/// Body of `/sandbox/item/fire_webhook`.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxItemFireWebhookRequest {
    /// The Item's access token.
    pub access_token: AccessToken,
    /// Needed where a code exists for several types (`DEFAULT_UPDATE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_type: Option<WebhookType>,
    /// Which webhook to fire.
    pub webhook_code: SandboxWebhookCode,
}

open_enum! {
    /// `webhook_code` of `/sandbox/item/fire_webhook`.
    pub enum SandboxWebhookCode {
        /// `SYNC_UPDATES_AVAILABLE` (TRANSACTIONS).
        SyncUpdatesAvailable = "SYNC_UPDATES_AVAILABLE",
        /// `DEFAULT_UPDATE` (TRANSACTIONS and others; set `webhook_type`).
        DefaultUpdate = "DEFAULT_UPDATE",
        /// `NEW_ACCOUNTS_AVAILABLE` (ITEM).
        NewAccountsAvailable = "NEW_ACCOUNTS_AVAILABLE",
        /// `USER_PERMISSION_REVOKED` (ITEM).
        UserPermissionRevoked = "USER_PERMISSION_REVOKED",
        /// `USER_ACCOUNT_REVOKED` (ITEM).
        UserAccountRevoked = "USER_ACCOUNT_REVOKED",
        /// `PENDING_DISCONNECT` (ITEM).
        PendingDisconnect = "PENDING_DISCONNECT",
        /// `LOGIN_REPAIRED` (ITEM).
        LoginRepaired = "LOGIN_REPAIRED",
        /// `RECURRING_TRANSACTIONS_UPDATE`
        RecurringTransactionsUpdate = "RECURRING_TRANSACTIONS_UPDATE",
        /// `SMS_MICRODEPOSITS_VERIFICATION` (AUTH).
        SmsMicrodepositsVerification = "SMS_MICRODEPOSITS_VERIFICATION",
        /// `PRODUCT_READY` (ASSETS).
        ProductReady = "PRODUCT_READY",
        /// `ERROR` (ASSETS).
        Error = "ERROR",
    }
}

/// Response of `/sandbox/item/fire_webhook`.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxItemFireWebhookResponse {
    /// Whether Plaid sent it.
    pub webhook_fired: bool,
    /// Plaid's request id.
    pub request_id: String,
}

/// Body of `/sandbox/item/reset_login`: forces `ITEM_LOGIN_REQUIRED`.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxItemResetLoginRequest {
    /// The Item's access token.
    pub access_token: AccessToken,
}

/// Response of `/sandbox/item/reset_login`.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxItemResetLoginResponse {
    /// `true` on success.
    pub reset_login: bool,
    /// Plaid's request id.
    pub request_id: String,
}

//! `/item/public_token/exchange`, `/item/get`, `/item/remove`,
//! `/item/webhook/update` and the `Item` object (PLAID.md §6).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    AccessToken, ErrorBody, Product, PublicToken,
    common::{lenient_datetime, null_as_empty},
};

/// Body of `/item/public_token/exchange`.
#[derive(Debug, Clone, Serialize)]
pub struct ItemPublicTokenExchangeRequest {
    /// The token Link handed the front end; valid for 30 minutes.
    pub public_token: PublicToken,
}

/// Response of `/item/public_token/exchange`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemPublicTokenExchangeResponse {
    /// Never expires; store it encrypted.
    pub access_token: AccessToken,
    /// Webhooks name Items by this id, so store it next to the token.
    pub item_id: String,
    /// Plaid's request id.
    pub request_id: String,
}

/// Body of `/item/get`.
#[derive(Debug, Clone, Serialize)]
pub struct ItemGetRequest {
    /// The Item's access token.
    pub access_token: AccessToken,
}

/// Response of `/item/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemGetResponse {
    /// The Item, with its current error if any.
    pub item: Item,
    /// Last update and webhook times; nullable.
    #[serde(default)]
    pub status: Option<ItemStatus>,
    /// Plaid's request id.
    pub request_id: String,
}

/// Body of `/item/remove`. Removing ends the Item's billing (PLAID.md §7.1).
#[derive(Debug, Clone, Serialize)]
pub struct ItemRemoveRequest {
    /// The Item's access token; invalid afterwards.
    pub access_token: AccessToken,
    /// Why, for Plaid's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ItemRemoveReasonCode>,
    /// Free text, at most 512 characters, no PII.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_note: Option<String>,
}

impl ItemRemoveRequest {
    /// A removal with no reason given.
    pub fn new(access_token: AccessToken) -> Self {
        Self {
            access_token,
            reason_code: None,
            reason_note: None,
        }
    }
}

open_enum! {
    /// `reason_code` of `/item/remove` (SPEC `ItemRemoveReasonCode`).
    pub enum ItemRemoveReasonCode {
        /// `FRAUD_FIRST_PARTY`
        FraudFirstParty = "FRAUD_FIRST_PARTY",
        /// `FRAUD_FALSE_IDENTITY`
        FraudFalseIdentity = "FRAUD_FALSE_IDENTITY",
        /// `FRAUD_ABUSE`
        FraudAbuse = "FRAUD_ABUSE",
        /// `FRAUD_OTHER`
        FraudOther = "FRAUD_OTHER",
        /// `CONNECTION_IS_NON_FUNCTIONAL`
        ConnectionIsNonFunctional = "CONNECTION_IS_NON_FUNCTIONAL",
        /// `OTHER`: e.g. the user asked us to unlink the bank.
        Other = "OTHER",
    }
}

/// Response of `/item/remove`: only a request id since 2020-09-14.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemRemoveResponse {
    /// Plaid's request id.
    pub request_id: String,
}

/// Body of `/item/webhook/update`.
#[derive(Debug, Clone, Serialize)]
pub struct ItemWebhookUpdateRequest {
    /// The Item's access token.
    pub access_token: AccessToken,
    /// The new URL; `None` is sent as `null`, which removes the webhook.
    pub webhook: Option<String>,
}

/// Response of `/item/webhook/update`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemWebhookUpdateResponse {
    /// The Item after the change.
    pub item: Item,
    /// Plaid's request id.
    pub request_id: String,
}

/// An Item: one login at one institution (SPEC `Item` /
/// `ItemWithConsentFields`).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// Stable id; webhooks refer to Items by it.
    pub item_id: String,
    /// e.g. `ins_109508`.
    #[serde(default)]
    pub institution_id: Option<String>,
    /// e.g. "First Platypus Bank".
    #[serde(default)]
    pub institution_name: Option<String>,
    /// The Item's webhook URL, if any.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The Item's current error (`/item/get` only; other endpoints return
    /// the error itself).
    #[serde(default)]
    pub error: Option<ErrorBody>,
    /// Products that could still be added.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub available_products: Vec<Product>,
    /// Products being billed.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub billed_products: Vec<Product>,
    /// Billed products plus ones added without billing.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub products: Vec<Product>,
    /// Products the user consented to.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub consented_products: Vec<Product>,
    /// When consent lapses (UK/EU), if it does.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub consent_expiration_time: Option<DateTime<Utc>>,
    /// Whether Plaid can refresh the Item in the background.
    #[serde(default)]
    pub update_type: Option<ItemUpdateType>,
    /// How Auth was verified; `null` for most Items.
    #[serde(default)]
    pub auth_method: Option<String>,
    /// When the Item was created (`/item/get` only).
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_at: Option<DateTime<Utc>>,
}

open_enum! {
    /// `item.update_type`.
    pub enum ItemUpdateType {
        /// `background`: Plaid refreshes the Item on its own.
        Background = "background",
        /// `user_present_required`: refreshes need the user (MFA each time).
        UserPresentRequired = "user_present_required",
    }
}

/// `status` in `/item/get` (SPEC `ItemStatus`).
#[derive(Debug, Clone, Deserialize)]
pub struct ItemStatus {
    /// Last successful and failed transaction pulls.
    #[serde(default)]
    pub transactions: Option<ItemStatusTransactions>,
    /// The most recent webhook Plaid sent for this Item.
    #[serde(default)]
    pub last_webhook: Option<ItemStatusLastWebhook>,
}

/// `status.transactions` in `/item/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemStatusTransactions {
    /// Last time Plaid pulled transactions successfully.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub last_successful_update: Option<DateTime<Utc>>,
    /// Last time a pull failed.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub last_failed_update: Option<DateTime<Utc>>,
}

/// `status.last_webhook` in `/item/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemStatusLastWebhook {
    /// When it was sent.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Its `webhook_code`, e.g. `DEFAULT_UPDATE`.
    #[serde(default)]
    pub code_sent: Option<String>,
}

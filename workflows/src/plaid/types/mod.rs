//! Request and response bodies, one module per endpoint group.
//!
//! Conventions, all because Plaid may add fields and enum values at any time
//! (PLAID.md §1, "non-breaking changes"; every SPEC schema sets
//! `additionalProperties: true`):
//!
//! * responses ignore unknown fields (serde's default; never
//!   `deny_unknown_fields`);
//! * enums are "open": a value we don't know becomes `Unknown(String)`,
//!   keeping the original text, instead of failing the whole response;
//! * fields that are required-but-nullable in the SPEC are `Option`s, and
//!   arrays default to empty when missing, so a slimmer body still parses;
//! * requests leave out optional fields rather than sending `null`, except
//!   where `null` means something (`/item/webhook/update`'s `webhook`).
//!
//! Credentials (`client_id`, `secret`) are never in request bodies: the
//! client sends them as headers.

/// Declares an open string enum: known variants plus `Unknown(String)`.
///
/// Serialized as the wire string; deserialized from any string, so a new
/// Plaid value never breaks parsing (PLAID.md §1).
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this client does not know yet; the original string is kept.
            Unknown(String),
        }

        impl $name {
            /// The value as Plaid spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Unknown(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::from(value.as_ref()))
            }
        }
    };
}

mod accounts;
mod amount;
mod common;
mod error_body;
mod item;
mod link;
mod sandbox;
mod secret;
mod transactions;
mod webhook_verification;

pub use accounts::{Account, AccountBalances, AccountsGetOptions, AccountsGetRequest, AccountsGetResponse};
pub use amount::{Amount, InvalidAmount};
pub use common::{AccountType, Product, WebhookType};
pub use error_body::{ErrorBody, ErrorType};
pub use item::{
    Item, ItemGetRequest, ItemGetResponse, ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse,
    ItemRemoveReasonCode, ItemRemoveRequest, ItemRemoveResponse, ItemStatus, ItemStatusLastWebhook,
    ItemStatusTransactions, ItemUpdateType, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
};
pub use link::{
    LinkTokenCreateRequest, LinkTokenCreateResponse, LinkTokenTransactions, LinkTokenUpdate, LinkTokenUser,
};
pub use sandbox::{
    SandboxItemFireWebhookRequest, SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest,
    SandboxItemResetLoginResponse, SandboxPublicTokenCreateOptions, SandboxPublicTokenCreateRequest,
    SandboxPublicTokenCreateResponse, SandboxPublicTokenTransactionsOptions, SandboxWebhookCode,
};
pub use secret::{AccessToken, PublicToken};
pub use transactions::{
    PaymentChannel, PersonalFinanceCategory, RemovedTransaction, Transaction, TransactionsSyncOptions,
    TransactionsSyncRequest, TransactionsSyncResponse, TransactionsUpdateStatus,
};
pub use webhook_verification::{
    JwkPublicKey, WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse,
};

/// Every response body carries a `request_id` (PLAID.md §1); the client
/// records it on the call's tracing span.
pub trait PlaidResponse {
    /// Plaid's id for this request, for support tickets and log correlation.
    fn request_id(&self) -> &str;
}

macro_rules! impl_plaid_response {
    ($($ty:ty),+ $(,)?) => {
        $(impl PlaidResponse for $ty {
            fn request_id(&self) -> &str {
                &self.request_id
            }
        })+
    };
}

impl_plaid_response!(
    AccountsGetResponse,
    ItemGetResponse,
    ItemPublicTokenExchangeResponse,
    ItemRemoveResponse,
    ItemWebhookUpdateResponse,
    LinkTokenCreateResponse,
    SandboxItemFireWebhookResponse,
    SandboxItemResetLoginResponse,
    SandboxPublicTokenCreateResponse,
    TransactionsSyncResponse,
    WebhookVerificationKeyGetResponse,
);

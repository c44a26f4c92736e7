//! Errors from starting the simulator and from its in-process controls.

use std::net::SocketAddr;

use crate::keys::KeyError;

/// Why a control operation (or startup) failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No item with that id.
    #[error("unknown item {0}")]
    UnknownItem(String),
    /// The item was removed with `/item/remove`.
    #[error("item {0} has been removed")]
    ItemRemoved(String),
    /// The account does not belong to the item.
    #[error("account {0} does not belong to the item")]
    UnknownAccount(String),
    /// No live transaction with that id on the item.
    #[error("unknown transaction {0}")]
    UnknownTransaction(String),
    /// The transaction id is already in use.
    #[error("transaction id {0} is already used")]
    DuplicateTransaction(String),
    /// `post_pending` on a posted transaction.
    #[error("transaction {0} is not pending")]
    NotPending(String),
    /// The item has no webhook URL to send to.
    #[error("item {0} has no webhook URL")]
    NoWebhookUrl(String),
    /// Unknown or expired link token.
    #[error("unknown or expired link token")]
    InvalidLinkToken,
    /// A fault named an error code the simulator does not know.
    #[error("unknown error code {0}; pass a full error object instead")]
    UnknownErrorCode(String),
    /// Any other invalid control input.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Key generation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The listen address could not be bound.
    #[error("could not bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("simulator server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl SimError {
    /// Whether the error means "no such thing" (HTTP 404 on the control API).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            SimError::UnknownItem(_) | SimError::UnknownTransaction(_) | SimError::InvalidLinkToken
        )
    }
}

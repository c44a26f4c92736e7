//! Unlinking one account (`DELETE /api/accounts/{id}`).
//!
//! In one transaction: the account's mapping is deactivated and the account
//! archived (its transactions are kept); sibling accounts of the same item keep
//! syncing (the sync engine applies only active mappings). Only when that was
//! the item's **last active mapped account** is the item's removal at Plaid
//! requested: an `unlink` removal and its [`RemoveItem`](crate::jobs::cleanup::RemoveItem)
//! job, committed together ([`super::removal`] does the rest, durably).
//!
//! The item's row is locked first, so concurrent unlinks of an item's accounts
//! run one after the other: exactly one of them sees the last account go.
//!
//! Unlinking an account that is already unlinked changes nothing and answers
//! like the first time (DELETE is idempotent: a client retrying after a lost
//! response gets 204, not 404). Accounts of another user, of another
//! provider, or without a Plaid mapping are "not found".

use sqlx::PgPool;

use super::removal::{self, RemovalError};

/// What unlinking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    /// Not the user's linked Plaid account.
    NotFound,
    /// It was already unlinked; nothing changed.
    AlreadyUnlinked,
    /// Unlinked now.
    Unlinked {
        /// It was the item's last active mapped account: its removal at Plaid was requested.
        item_removal_requested: bool,
    },
}

/// Unlinks `account_id` of `user_id`.
pub async fn unlink_account(pool: &PgPool, user_id: i64, account_id: i64) -> Result<Unlink, RemovalError> {
    let mut tx = pool.begin().await?;
    let item: Option<i64> = sqlx::query_scalar(
        "select m.plaid_item_id from plaid_item_accounts m join accounts a on a.id = m.account_id
         where a.id = $1 and a.user_id = $2 and a.provider = 'plaid'",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(plaid_item_id) = item else {
        return Ok(Unlink::NotFound);
    };
    let lifecycle: String = sqlx::query_scalar("select lifecycle from plaid_items where id = $1 for update")
        .bind(plaid_item_id)
        .fetch_one(&mut *tx)
        .await?;
    let deactivated =
        sqlx::query("update plaid_item_accounts set active = false where account_id = $1 and active")
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    sqlx::query("update accounts set archived = true where id = $1 and not archived")
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    if deactivated == 0 {
        tx.commit().await?;
        return Ok(Unlink::AlreadyUnlinked);
    }
    let others: bool = sqlx::query_scalar(
        "select exists (select 1 from plaid_item_accounts where plaid_item_id = $1 and active)",
    )
    .bind(plaid_item_id)
    .fetch_one(&mut *tx)
    .await?;
    let requested = if others || lifecycle == "removed" {
        false
    } else {
        removal::request_now(&mut tx, plaid_item_id).await?
    };
    tx.commit().await?;
    tracing::info!(
        account_id,
        plaid_item_id,
        item_removal_requested = requested,
        "account unlinked"
    );
    Ok(Unlink::Unlinked {
        item_removal_requested: requested,
    })
}

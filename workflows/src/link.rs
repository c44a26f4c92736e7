//! Linking an item: exchange the public token, store the access token
//! encrypted, record the item and its accounts, request the first sync.
//!
//! The Plaid calls come first; everything we write then happens in one
//! transaction, so a failure leaves nothing half-written. If that transaction
//! fails for a *new* item, the fresh access token is removed at Plaid (best
//! effort): an access token we do not store is one we could never remove, and
//! Plaid bills every Item while its token is valid.

use serde_json::{Map, Value, json};
use sqlx::PgPool;

use crate::{
    db::items::{self, PlaidAccountRow},
    jobs::{
        EnqueueError,
        sync_item::{ItemRef, request_sync},
    },
    plaid::{
        AccessToken, Amount, PlaidClient, PlaidError, PublicToken,
        types::{
            Account, AccountBalances, AccountsGetRequest, ItemPublicTokenExchangeRequest, ItemRemoveRequest,
        },
    },
    redact::Secret,
    secrets::{SecretError, SecretStore},
};

/// A linked item.
#[derive(Debug, Clone)]
pub struct LinkedItem {
    /// Plaid's item id.
    pub item_id: String,
    /// `plaid_items.id`.
    pub plaid_item_id: i64,
    /// True for a new item (201), false for a relink/reauth of one we had (200).
    pub created: bool,
    /// The item's accounts: internal id and Plaid's view.
    pub accounts: Vec<(i64, Account)>,
}

/// Why linking failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Plaid refused or failed.
    #[error("Plaid call failed: {0}")]
    Plaid(#[from] PlaidError),
    /// The item belongs to another user.
    #[error("the item belongs to another user")]
    NotYours,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The secret store failed.
    #[error("secret store error: {0}")]
    Secret(#[from] SecretError),
    /// The first sync could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

/// Exchanges `public_token` for `user_id` and records everything.
pub async fn exchange_public_token(
    pool: &PgPool,
    plaid: &PlaidClient,
    secrets: &SecretStore,
    user_id: i64,
    public_token: &str,
) -> Result<LinkedItem, LinkError> {
    let exchanged = plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest {
            public_token: PublicToken::new(public_token),
        })
        .await?;
    let item_id = exchanged.item_id.clone();
    let access_token = exchanged.access_token;

    // Refuse another user's item before writing anything (and never remove it:
    // it is theirs and in use).
    let owner = items::owner_of(&mut *pool.acquire().await?, &item_id).await?;
    if owner.is_some_and(|owner| owner != user_id) {
        return Err(LinkError::NotYours);
    }
    let known_before = owner.is_some();

    let accounts = match plaid
        .accounts_get(&AccountsGetRequest::new(access_token.clone()))
        .await
    {
        Ok(response) => response,
        Err(e) => {
            if !known_before {
                remove_orphan(plaid, &access_token, &item_id).await;
            }
            return Err(e.into());
        }
    };
    let institution_id = accounts.item.institution_id.clone();

    match record(
        pool,
        secrets,
        user_id,
        &item_id,
        &access_token,
        institution_id.as_deref(),
        &accounts.accounts,
    )
    .await
    {
        Ok((plaid_item_id, created, ids)) => Ok(LinkedItem {
            item_id,
            plaid_item_id,
            created,
            accounts: ids.into_iter().zip(accounts.accounts).collect(),
        }),
        Err(e) => {
            if !known_before && !matches!(e, LinkError::NotYours) {
                remove_orphan(plaid, &access_token, &item_id).await;
            }
            Err(e)
        }
    }
}

/// The one transaction: secret, item, accounts, pending events, first sync.
async fn record(
    pool: &PgPool,
    secrets: &SecretStore,
    user_id: i64,
    item_id: &str,
    access_token: &AccessToken,
    institution_id: Option<&str>,
    accounts: &[Account],
) -> Result<(i64, bool, Vec<i64>), LinkError> {
    let mut tx = pool.begin().await?;
    let secret_ref = secrets
        .put(&mut tx, &Secret::new(access_token.expose_secret()))
        .await?;
    let item = items::upsert_for_user(&mut tx, user_id, item_id, &secret_ref, institution_id)
        .await?
        .ok_or(LinkError::NotYours)?;
    if let Some(old) = item.old_secret_ref.as_deref().filter(|old| *old != secret_ref) {
        secrets.delete(&mut tx, old).await?;
    }
    let rows: Vec<PlaidAccountRow> = accounts.iter().map(account_row).collect();
    let ids = items::sync_accounts(&mut tx, user_id, item.id, &rows).await?;
    // A reauth or relink during a removal's grace window cancels it.
    crate::lifecycle::removal::revive(&mut tx, item.id).await?;
    items::absorb_pending_events(&mut tx, item_id).await?;
    request_sync(&mut tx, ItemRef::Id(item.id)).await?;
    tx.commit().await?;
    Ok((item.id, item.inserted, ids))
}

async fn remove_orphan(plaid: &PlaidClient, access_token: &AccessToken, item_id: &str) {
    match plaid
        .item_remove(&ItemRemoveRequest::new(access_token.clone()))
        .await
    {
        Ok(_) => tracing::warn!(
            item_id,
            "link failed after the exchange; removed the new item at Plaid"
        ),
        Err(e) => {
            tracing::error!(item_id, error = %e, "link failed after the exchange and the new item could not be removed at Plaid")
        }
    }
}

fn account_row(account: &Account) -> PlaidAccountRow {
    PlaidAccountRow {
        plaid_account_id: account.account_id.clone(),
        name: account.name.clone(),
        mask: account.mask.clone(),
        kind: account.account_type.as_str().to_owned(),
        subtype: account.subtype.clone(),
        balances: balances_json(&account.balances),
    }
}

/// Balances as JSON, amounts as exact numbers.
pub fn balances_json(balances: &AccountBalances) -> Value {
    let number = |amount: &Option<Amount>| {
        amount
            .as_ref()
            .and_then(|a| a.as_str().parse::<serde_json::Number>().ok())
            .map_or(Value::Null, Value::Number)
    };
    let mut map = Map::new();
    map.insert("available".into(), number(&balances.available));
    map.insert("current".into(), number(&balances.current));
    map.insert("limit".into(), number(&balances.limit));
    map.insert("iso_currency_code".into(), json!(balances.iso_currency_code));
    map.insert(
        "unofficial_currency_code".into(),
        json!(balances.unofficial_currency_code),
    );
    Value::Object(map)
}

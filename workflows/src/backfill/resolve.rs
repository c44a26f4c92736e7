//! Resolving one legacy secret: Plaid first, then one transaction.
//!
//! The Plaid calls happen with no transaction open and no row locked (they
//! can take seconds). The transaction then locks the backfill row and
//! re-checks that it is still pending, so two runs racing on one secret write
//! it once, and a failure anywhere leaves nothing half-written.

use sqlx::PgConnection;

use super::{
    BackfillError, Env,
    matching::{LegacySide, PlaidSide, match_accounts},
};
use crate::{
    db::legacy_backfill::{self as db, ExistingItem},
    jobs::sync_item::{ItemRef, request_sync},
    plaid::{
        AccessToken, ErrorClass, PlaidError,
        types::{Account, AccountsGetRequest, ItemGetRequest},
    },
    secrets::SecretError,
};

/// What happened to one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mapped onto an item.
    Resolved {
        /// `plaid_items.id` (`None` when no legacy account was left to map).
        plaid_item_id: Option<i64>,
        /// Legacy accounts mapped now.
        mapped: u32,
        /// Legacy accounts left without a partner.
        unmatched: u32,
    },
    /// Failed for good; the accounts are untouched.
    Failed {
        /// The recorded error code.
        code: String,
    },
    /// Left pending after a passing error.
    RetryLater {
        /// The recorded error code.
        code: String,
    },
    /// No longer pending (another run finished it).
    Skipped,
}

/// What Plaid told us about the Item behind a secret.
struct PlaidView {
    item_id: String,
    institution_id: Option<String>,
    accounts: Vec<Account>,
}

/// Resolves `secret_ref` (see the module docs of [`super`]).
pub(super) async fn resolve(env: Env<'_>, secret_ref: &str) -> Result<Outcome, BackfillError> {
    let mut conn = env.pool.acquire().await?;
    let owners = db::legacy_owners(&mut conn, secret_ref).await?;
    let user_id = match owners.as_slice() {
        // Every legacy account of it is gone: nothing left to map.
        [] => return finish_empty(&mut conn, secret_ref).await,
        [user_id] => *user_id,
        _ => {
            let message = format!(
                "the legacy accounts of this secret belong to {} users; map them by hand",
                owners.len()
            );
            return fail(&mut conn, secret_ref, "several_users", &message).await;
        }
    };
    let token = match env.secrets.get(&mut conn, secret_ref).await {
        Ok(secret) => AccessToken::new(secret.expose()),
        Err(SecretError::Database(e)) => return Err(e.into()),
        Err(e @ SecretError::NotFound(_)) => {
            return fail(&mut conn, secret_ref, "secret_missing", &e.to_string()).await;
        }
        Err(e @ (SecretError::UnknownKey { .. } | SecretError::Decrypt(_))) => {
            return fail(&mut conn, secret_ref, "secret_unreadable", &e.to_string()).await;
        }
    };
    // No pooled connection is held across Plaid calls.
    drop(conn);

    let view = match ask_plaid(env, token).await {
        Ok(view) => view,
        Err(e) => return plaid_failure(env, secret_ref, &e).await,
    };
    let mut tx = env.pool.begin().await?;
    let outcome = record(&mut tx, secret_ref, user_id, &view).await?;
    tx.commit().await?;
    match &outcome {
        Outcome::Resolved {
            plaid_item_id,
            mapped,
            unmatched,
        } => tracing::info!(
            secret_ref,
            ?plaid_item_id,
            mapped,
            unmatched,
            "legacy secret resolved"
        ),
        Outcome::Failed { code } => tracing::warn!(secret_ref, code, "legacy secret failed"),
        Outcome::RetryLater { .. } | Outcome::Skipped => {}
    }
    Ok(outcome)
}

async fn ask_plaid(env: Env<'_>, token: AccessToken) -> Result<PlaidView, PlaidError> {
    let item = env
        .plaid
        .item_get(&ItemGetRequest {
            access_token: token.clone(),
        })
        .await?
        .item;
    let accounts = env.plaid.accounts_get(&AccountsGetRequest::new(token)).await?;
    Ok(PlaidView {
        item_id: item.item_id,
        institution_id: item.institution_id.or(accounts.item.institution_id),
        accounts: accounts.accounts,
    })
}

/// Terminal and needs-reauth errors fail the secret; passing errors and our
/// own (developer) errors leave it pending: a developer error says nothing
/// about the Item, so it must not condemn it.
async fn plaid_failure(env: Env<'_>, secret_ref: &str, e: &PlaidError) -> Result<Outcome, BackfillError> {
    let mut conn = env.pool.acquire().await?;
    let class = e.class();
    let code = e.error_code().map(str::to_owned).unwrap_or_else(|| match class {
        ErrorClass::Developer => "plaid_request_error".to_owned(),
        _ => "plaid_unavailable".to_owned(),
    });
    let message = e.to_string();
    match class {
        ErrorClass::NeedsReauth | ErrorClass::Terminal => fail(&mut conn, secret_ref, &code, &message).await,
        ErrorClass::Retryable | ErrorClass::Developer => {
            if class == ErrorClass::Developer {
                tracing::error!(secret_ref, error = %e, "legacy backfill: Plaid refused our request; will retry");
            } else {
                tracing::warn!(secret_ref, error = %e, "legacy backfill: passing Plaid error; will retry");
            }
            db::note_passing_error(&mut conn, secret_ref, &code, &message).await?;
            Ok(Outcome::RetryLater { code })
        }
    }
}

async fn fail(
    conn: &mut PgConnection,
    secret_ref: &str,
    code: &str,
    message: &str,
) -> Result<Outcome, BackfillError> {
    if db::mark_failed(conn, secret_ref, code, message).await? == 0 {
        return Ok(Outcome::Skipped);
    }
    tracing::warn!(
        secret_ref,
        code,
        "legacy secret failed; its accounts are kept as they are"
    );
    Ok(Outcome::Failed {
        code: code.to_owned(),
    })
}

async fn finish_empty(conn: &mut PgConnection, secret_ref: &str) -> Result<Outcome, BackfillError> {
    if db::mark_resolved(conn, secret_ref, None, 0).await? == 0 {
        return Ok(Outcome::Skipped);
    }
    Ok(Outcome::Resolved {
        plaid_item_id: None,
        mapped: 0,
        unmatched: 0,
    })
}

/// The one transaction: item, mappings, verdict, sync request.
async fn record(
    tx: &mut PgConnection,
    secret_ref: &str,
    user_id: i64,
    view: &PlaidView,
) -> Result<Outcome, BackfillError> {
    if !db::lock_pending(tx, secret_ref).await? {
        return Ok(Outcome::Skipped);
    }
    let legacy = db::lock_legacy_accounts(tx, secret_ref).await?;
    if legacy.iter().any(|a| a.user_id != user_id) {
        // An owner changed between the pre-check and now; the next run decides.
        return Ok(Outcome::RetryLater {
            code: "owners_changed".to_owned(),
        });
    }
    let (item, inserted) = match db::lock_item(tx, &view.item_id).await? {
        Some(item) => (item, false),
        None => {
            let institution_id = view.institution_id.as_deref();
            match db::insert_item(tx, user_id, &view.item_id, secret_ref, institution_id).await? {
                Some(id) => (ExistingItem { id, user_id }, true),
                // Inserted by someone else since our lookup: use theirs.
                None => (
                    db::lock_item(tx, &view.item_id)
                        .await?
                        .ok_or(sqlx::Error::RowNotFound)?,
                    false,
                ),
            }
        }
    };
    if item.user_id != user_id {
        let message = format!(
            "Plaid item {} is already linked by another user; the legacy accounts are left as they are",
            view.item_id
        );
        return fail(tx, secret_ref, "item_owned_by_another_user", &message).await;
    }
    let plaid_item_id = item.id;
    if !inserted {
        // Relinked under the new flow already: reuse it, keep its own secret.
        db::adopt_secret_if_none(tx, plaid_item_id, secret_ref).await?;
    }

    let taken = db::mapped_plaid_accounts(tx, plaid_item_id).await?;
    let unmapped: Vec<_> = legacy.iter().filter(|a| !a.mapped).collect();
    let legacy_sides: Vec<LegacySide<'_>> = unmapped
        .iter()
        .map(|a| LegacySide {
            id: a.id,
            name: &a.name,
            mask: a.mask.as_deref(),
        })
        .collect();
    let plaid_sides: Vec<PlaidSide<'_>> = view
        .accounts
        .iter()
        .filter(|p| !taken.contains(&p.account_id))
        .map(|p| PlaidSide {
            account_id: &p.account_id,
            name: &p.name,
            mask: p.mask.as_deref(),
        })
        .collect();
    let matches = match_accounts(&legacy_sides, &plaid_sides);
    let mut mapped = 0u32;
    for (account_id, plaid_account_id) in &matches.pairs {
        let archived = unmapped.iter().any(|a| a.id == *account_id && a.archived);
        if db::insert_mapping(tx, *account_id, plaid_item_id, plaid_account_id, !archived).await? {
            mapped += 1;
        }
    }
    let unmatched = u32::try_from(unmapped.len()).unwrap_or(u32::MAX) - mapped;
    if unmatched > 0 {
        tracing::warn!(
            secret_ref,
            plaid_item_id,
            unmatched,
            "legacy accounts without a unique Plaid account stay unmapped"
        );
    }
    db::mark_resolved(
        tx,
        secret_ref,
        Some(plaid_item_id),
        i32::try_from(unmatched).unwrap_or(i32::MAX),
    )
    .await?;
    request_sync(tx, ItemRef::Id(plaid_item_id)).await?;
    Ok(Outcome::Resolved {
        plaid_item_id: Some(plaid_item_id),
        mapped,
        unmatched,
    })
}

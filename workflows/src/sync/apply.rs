//! Applying a fetched update: one transaction, set-based.
//!
//! Within the update, the latest staged entry of each transaction wins.
//! `added`/`modified` are upserted by (account, external_id) with one
//! `INSERT … SELECT … ON CONFLICT`; `removed` become tombstones (`archived`,
//! `raw_json.source_removed = true`, the original payload kept); a posted
//! transaction records `pending_external_id` and tombstones its pending row;
//! transactions of accounts we no longer map are skipped; balances and the new
//! cursor are stored; the item and its accounts become `active` (or
//! `sync_needed` when a webhook arrived during the sync, with its job queued;
//! or stay `needs_reauth` when an ITEM webhook said so during the sync: that
//! news is newer than the pages this run fetched).
//! The lease is checked under a row lock first, so a sync that lost its lease
//! applies nothing.

use serde_json::{Map, Value};
use sqlx::PgPool;

use super::{SyncError, fetch::Fetched, lease::Lease};
use crate::{jobs::sync_item::ensure_job_now, link::balances_json};

/// What an apply changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rows inserted or updated from `added`/`modified`.
    pub upserted: u64,
    /// Rows tombstoned (removed, or pending rows replaced by their posted row).
    pub tombstoned: u64,
    /// The item ended `sync_needed` (a webhook arrived during the sync).
    pub due_again: bool,
}

/// Applies the staged update of `lease` and releases the lease.
pub async fn apply(pool: &PgPool, lease: &Lease, fetched: &Fetched) -> Result<Applied, SyncError> {
    let mut tx = pool.begin().await?;
    let owner: Option<String> =
        sqlx::query_scalar("select sync_lease_owner from plaid_items where id = $1 for update")
            .bind(lease.plaid_item_id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    if owner.as_deref() != Some(lease.run_id.as_str()) {
        return Err(SyncError::LeaseLost);
    }

    let upserted = sqlx::query(
        "with latest as (
             select distinct on (transaction_id) kind, plaid_account_id, transaction_id, payload
             from sync_staging where run_id = $2
             order by transaction_id, seq desc)
         insert into transactions as t (account_id, external_id, amount, iso_currency_code, unofficial_currency_code,
                                        date, authorized_date, name, merchant_name, pending, pending_external_id,
                                        archived, raw_json)
         select m.account_id, l.transaction_id, (l.payload ->> 'amount')::numeric,
                l.payload ->> 'iso_currency_code', l.payload ->> 'unofficial_currency_code',
                (l.payload ->> 'date')::date, (l.payload ->> 'authorized_date')::date,
                l.payload ->> 'name', l.payload ->> 'merchant_name',
                coalesce((l.payload ->> 'pending')::boolean, false), l.payload ->> 'pending_transaction_id',
                false, l.payload
         from latest l
         join plaid_item_accounts m
           on m.plaid_item_id = $1 and m.plaid_account_id = l.plaid_account_id and m.active
         where l.kind <> 'r'
         on conflict (account_id, external_id) do update set
             amount = excluded.amount, iso_currency_code = excluded.iso_currency_code,
             unofficial_currency_code = excluded.unofficial_currency_code, date = excluded.date,
             authorized_date = excluded.authorized_date, name = excluded.name,
             merchant_name = excluded.merchant_name, pending = excluded.pending,
             pending_external_id = excluded.pending_external_id,
             archived = false, raw_json = excluded.raw_json, updated_at = now()
           -- An identical re-delivery writes nothing.
           where t.archived or t.raw_json is distinct from excluded.raw_json",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    // Removals, and pending rows replaced by a posted row of this update.
    let tombstoned = sqlx::query(
        "with latest as (
             select distinct on (transaction_id) kind, plaid_account_id, transaction_id, payload
             from sync_staging where run_id = $2
             order by transaction_id, seq desc),
         gone as (
             select m.account_id, l.transaction_id as external_id
             from latest l
             join plaid_item_accounts m
               on m.plaid_item_id = $1 and m.plaid_account_id = l.plaid_account_id and m.active
             where l.kind = 'r'
             union
             select m.account_id, l.payload ->> 'pending_transaction_id'
             from latest l
             join plaid_item_accounts m
               on m.plaid_item_id = $1 and m.plaid_account_id = l.plaid_account_id and m.active
             where l.kind <> 'r' and l.payload ->> 'pending_transaction_id' is not null)
         update transactions t
         set archived = true, raw_json = t.raw_json || '{\"source_removed\": true}'::jsonb, updated_at = now()
         from gone g
         where t.account_id = g.account_id and t.external_id = g.external_id
           and not (t.archived and coalesce((t.raw_json ->> 'source_removed')::boolean, false))",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    if !fetched.balances.is_empty() {
        let balances: Map<String, Value> = fetched
            .balances
            .iter()
            .map(|(id, account)| (id.clone(), balances_json(&account.balances)))
            .collect();
        sqlx::query(
            "update accounts a set balances = b.value
             from jsonb_each($2::jsonb) b
             join plaid_item_accounts m on m.plaid_item_id = $1 and m.plaid_account_id = b.key and m.active
             where a.id = m.account_id",
        )
        .bind(lease.plaid_item_id)
        .bind(Value::Object(balances))
        .execute(&mut *tx)
        .await?;
    }

    let status: String = sqlx::query_scalar(
        "update plaid_items set
             cursor = $3,
             sync_status = case
                 when reauth_entered then 'needs_reauth'
                 when sync_requested_at > sync_started_at then 'sync_needed'
                 else 'active' end,
             last_synced_at = now(),
             last_sync_error = case when reauth_entered then last_sync_error end,
             last_error_code = case when reauth_entered then last_error_code end,
             reauth_needed_at = case when reauth_entered then reauth_needed_at end,
             sync_attempts = 0, next_retry_at = null,
             sync_lease_owner = null, sync_lease_worker = null, sync_lease_until = null
         from (select sync_status = 'needs_reauth' and reauth_needed_at >= sync_started_at as reauth_entered
               from plaid_items where id = $1) as run
         where id = $1 and sync_lease_owner = $2
         returning sync_status",
    )
    .bind(lease.plaid_item_id)
    .bind(&lease.run_id)
    .bind(&fetched.next_cursor)
    .fetch_one(&mut *tx)
    .await?;
    super::outcome::accounts_follow(&mut tx, lease.plaid_item_id, &status, true).await?;
    let due_again = status == "sync_needed";
    if due_again {
        ensure_job_now(&mut tx, lease.plaid_item_id).await?;
    }
    sqlx::query("delete from sync_staging where run_id = $1")
        .bind(&lease.run_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Applied {
        upserted,
        tombstoned,
        due_again,
    })
}

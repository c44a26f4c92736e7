//! Applying an update: every page on the run's one transaction, set-based.
//!
//! Each page is applied as it arrives ([`apply_page`]), inside the run's
//! transaction, so nothing is visible until the last page is in and
//! [`finish`] commits; a restart (mutation during pagination), a crash or a
//! lost lease rolls the whole update back. Each row is written once, straight
//! from Plaid's JSON: no staging copy.
//! Within the update, the latest entry of each transaction wins.
//! `added`/`modified` are upserted by (account, external_id) with one
//! `INSERT … SELECT … ON CONFLICT`; `removed` become tombstones (`archived`,
//! `raw_json.source_removed = true`, the original payload kept); a posted
//! transaction records `pending_external_id` and tombstones its pending row;
//! transactions of accounts we no longer map are skipped; balances and the new
//! cursor are stored; the item and its accounts become `active` (or
//! `sync_needed` when a webhook arrived during the sync, with its job queued;
//! or stay `needs_reauth` when an ITEM webhook said so during the sync: that
//! news is newer than the pages this run fetched).
//! The lease is checked under a row lock at the end, so a sync that lost its
//! lease applies nothing. (Not at the start: the item's row lock would stop
//! the lease keeper from renewing the lease while pages are fetched.)

use serde_json::{Map, Value};
use sqlx::{PgConnection, Postgres, Transaction};

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

/// Applies one page, exactly as Plaid sent it (`page`: its JSON text), on the
/// run's open transaction. Set-based, one statement: PostgreSQL unpacks the
/// page's `added`, `modified` and `removed` arrays; within the page the latest
/// entry of a transaction wins (removed > modified > added, then position),
/// as later pages win over earlier ones by running later. A pending row
/// replaced by a posted row of the same page is written as its tombstone
/// directly: the statement's tombstone step cannot see rows its own insert
/// step wrote (one snapshot), while rows of earlier pages and earlier syncs
/// are tombstoned by that step.
pub async fn apply_page(
    conn: &mut PgConnection,
    plaid_item_id: i64,
    page: &str,
) -> Result<(u64, u64), sqlx::Error> {
    let (upserted, tombstoned): (i64, i64) = sqlx::query_as(
        "with page as (select $2::text::jsonb as body),
         entries as (
             select k.kind, k.ord as kind_ord, e.ord as position, e.value
             from page p
             cross join (values ('a', 'added', 0), ('m', 'modified', 1), ('r', 'removed', 2)) as k(kind, field, ord)
             cross join lateral jsonb_array_elements(
                 case when jsonb_typeof(p.body -> k.field) = 'array' then p.body -> k.field else '[]' end
             ) with ordinality as e(value, ord)
         ),
         latest as (
             select distinct on (value ->> 'transaction_id')
                    kind, value ->> 'account_id' as plaid_account_id, value ->> 'transaction_id' as transaction_id,
                    value as payload
             from entries
             order by value ->> 'transaction_id', kind_ord desc, position desc
         ),
         mapped as (
             select l.*, m.account_id
             from latest l
             join plaid_item_accounts m
               on m.plaid_item_id = $1 and m.plaid_account_id = l.plaid_account_id and m.active
         ),
         posted_here as (
             select account_id, payload ->> 'pending_transaction_id' as pending_id
             from mapped where kind <> 'r' and payload ->> 'pending_transaction_id' is not null
         ),
         upserted as (
             insert into transactions as t (account_id, external_id, amount, iso_currency_code,
                                            unofficial_currency_code, date, authorized_date, name, merchant_name,
                                            pending, pending_external_id, archived, raw_json)
             select m.account_id, m.transaction_id, (m.payload ->> 'amount')::numeric,
                    m.payload ->> 'iso_currency_code', m.payload ->> 'unofficial_currency_code',
                    (m.payload ->> 'date')::date, (m.payload ->> 'authorized_date')::date,
                    m.payload ->> 'name', m.payload ->> 'merchant_name',
                    coalesce((m.payload ->> 'pending')::boolean, false), m.payload ->> 'pending_transaction_id',
                    r.pending_id is not null,
                    case when r.pending_id is not null then m.payload || '{\"source_removed\": true}'::jsonb
                         else m.payload end
             from mapped m
             left join (select distinct account_id, pending_id from posted_here) r
               on r.account_id = m.account_id and r.pending_id = m.transaction_id
             where m.kind <> 'r'
             on conflict (account_id, external_id) do update set
                 amount = excluded.amount, iso_currency_code = excluded.iso_currency_code,
                 unofficial_currency_code = excluded.unofficial_currency_code, date = excluded.date,
                 authorized_date = excluded.authorized_date, name = excluded.name,
                 merchant_name = excluded.merchant_name, pending = excluded.pending,
                 pending_external_id = excluded.pending_external_id,
                 archived = excluded.archived, raw_json = excluded.raw_json, updated_at = now()
               -- An identical re-delivery writes nothing.
               where t.archived is distinct from excluded.archived or t.raw_json is distinct from excluded.raw_json
             returning 1
         ),
         gone as (
             select account_id, transaction_id as external_id from mapped where kind = 'r'
             union
             select account_id, pending_id from posted_here
         ),
         tombstoned as (
             update transactions t
             set archived = true, raw_json = t.raw_json || '{\"source_removed\": true}'::jsonb, updated_at = now()
             from gone g
             where t.account_id = g.account_id and t.external_id = g.external_id
               and not (t.archived and coalesce((t.raw_json ->> 'source_removed')::boolean, false))
             returning 1
         )
         select (select count(*) from upserted), (select count(*) from tombstoned)",
    )
    .bind(plaid_item_id)
    .bind(page)
    .fetch_one(conn)
    .await?;
    Ok((upserted as u64, tombstoned as u64))
}

/// Finishes a run on its transaction, where every page was applied: checks
/// the lease under the item's row lock (a run that lost its lease applies
/// nothing: dropping `tx` rolls its pages back), stores balances and the new
/// cursor, sets the item's status, and commits.
pub async fn finish(
    mut tx: Transaction<'_, Postgres>,
    lease: &Lease,
    fetched: &Fetched,
) -> Result<Applied, SyncError> {
    let owner: Option<String> =
        sqlx::query_scalar("select sync_lease_owner from plaid_items where id = $1 for update")
            .bind(lease.plaid_item_id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    if owner.as_deref() != Some(lease.run_id.as_str()) {
        return Err(SyncError::LeaseLost);
    }

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
    tx.commit().await?;
    Ok(Applied {
        upserted: fetched.upserted,
        tombstoned: fetched.tombstoned,
        due_again,
    })
}

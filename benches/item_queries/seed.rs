//! A million Plaid items as a mature installation has them, generated in SQL
//! (foreign keys and CHECK constraints enforced: nothing is disabled).
//!
//! Per item `g` (ids are explicit, so the item, its one account and its
//! mapping share `g`): `g % 10000` picks the population, a hash of `g` picks
//! the timestamps and the rare anomalies (1 in 1,024):
//!
//! | share | lifecycle / sync_status | what it looks like |
//! | --- | --- | --- |
//! | 4 % | `removed` (active, needs_reauth or failed before) | removed 1 to 300 days ago, no secret, removal `done` |
//! | 0.5 % | `pending_cleanup` (needs_reauth or failed 35 to 60 days) | in the grace window: removal `grace`, its `CleanupDue` job pending |
//! | 2 % | `active` / `needs_reauth` | for 0 to 29 days; rare: 31 to 40 days (dormant: cleanup starts them) |
//! | 1 % | `active` / `failed` | for 0 to 29 days, a retry job due in 1 to 2 h; rare: retry overdue and no job |
//! | 2 % | `active` / `sync_needed` | a webhook 0 to 4 min ago, its sync job pending; rare: 10 min ago and no job |
//! | 0.5 % | `active` / `syncing` | lease held for another hour; rare: lease expired 5 min ago |
//! | 90 % | `active` / `active` | synced 0 to 23 h ago; rare: 25 to 49 h ago (stale: the safety net syncs them) |
//!
//! 2/5 as many users as items own 2 to 3 items each; items were created 40 to 734 days ago, in id
//! order. Every item has one account and its mapping (inactive once removed);
//! every item not removed has a row in `secrets`. 200,000 webhook events
//! spread over the last 24 h; the metrics rollup holds its whole 7-day
//! retention (counters in 8 shards, gauges in one). Times are relative to
//! the seeding's `now()` with margins (an hour, or minutes where the code's
//! thresholds are minutes) so the data means the same when the cases run,
//! minutes later: only the "rare" rows are due for the safety net or cleanup.

use std::time::{Duration, Instant};

use sqlx::PgPool;

/// One generation step: what it fills, and its statement (`$1`, where used:
/// the number of items; users are 2/5 of it).
const STEPS: &[(&str, &str)] = &[
    (
        "users",
        "insert into users (id, email) overriding system value
         select u, 'user' || u || '@bench.local' from generate_series(1, $1 * 2 / 5) u",
    ),
    (
        "secrets",
        "insert into secrets (secret_ref, key_id, nonce, ciphertext)
         select 'sec-' || g, 'bench', substring(decode(md5(g::text), 'hex') from 1 for 12),
                decode(md5('c' || g) || md5('d' || g), 'hex')
         from generate_series(1, $1) g where g % 10000 >= 400",
    ),
    ("plaid_items", ITEMS),
    (
        "accounts",
        "insert into accounts (id, user_id, provider, name, mask, type, subtype, sync_status, last_synced_at,
                               balances, archived, created_at)
         overriding system value
         select i.id, i.user_id, 'plaid', 'Checking ' || (i.id % 10000), lpad((i.id % 10000)::text, 4, '0'),
                'depository', 'checking', i.sync_status, i.last_synced_at,
                jsonb_build_object('current', i.id % 5000, 'iso_currency_code', 'USD'),
                i.lifecycle = 'removed', i.created_at
         from plaid_items i",
    ),
    (
        "plaid_item_accounts",
        "insert into plaid_item_accounts (account_id, plaid_item_id, plaid_account_id, active, created_at, updated_at)
         select i.id, i.id, md5('account' || i.id), i.lifecycle <> 'removed', i.created_at,
                coalesce(i.removed_at, i.created_at)
         from plaid_items i",
    ),
    (
        "item_removals",
        "insert into item_removals (plaid_item_id, reason, state, due_at, next_step_at, task_id, attempts,
                                    created_at, finished_at)
         select i.id, 'dormant', case when i.lifecycle = 'removed' then 'done' else 'grace' end,
                i.cleanup_due_at, case when i.lifecycle = 'pending_cleanup' then i.cleanup_due_at end,
                'due-' || i.id, case when i.lifecycle = 'removed' then 1 else 0 end,
                i.cleanup_notified_at, i.removed_at
         from plaid_items i where i.lifecycle in ('removed', 'pending_cleanup')",
    ),
    (
        "sync_pending",
        "insert into sync_pending (plaid_item_id, task_id, created_at)
         select i.id, 'sync-' || i.id, coalesce(i.sync_requested_at, i.sync_status_changed_at)
         from plaid_items i
         where i.lifecycle = 'active'
           and ((i.sync_status = 'sync_needed' and i.sync_requested_at > now() - interval '9 minutes')
             or (i.sync_status = 'failed' and i.next_retry_at > now()))",
    ),
    (
        "apalis.jobs",
        "insert into apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at)
         select '\\x7b7d'::bytea, p.task_id, 'plaid-sync.sync-item', 'Pending', 0, 5,
                coalesce(case when i.sync_status = 'failed' then i.next_retry_at end, p.created_at)
         from sync_pending p join plaid_items i on i.id = p.plaid_item_id
         union all
         select '\\x7b7d'::bytea, r.task_id, 'plaid-sync.cleanup-due', 'Pending', 0, 5, r.due_at
         from item_removals r where r.state = 'grace'",
    ),
    (
        "plaid_webhook_events",
        "insert into plaid_webhook_events (dedupe_key, item_id, webhook_type, webhook_code, body, received_at,
                                           processed_at)
         select 'v1:' || md5('event' || e), x.item_id, 'TRANSACTIONS', 'SYNC_UPDATES_AVAILABLE',
                jsonb_build_object('webhook_type', 'TRANSACTIONS', 'webhook_code', 'SYNC_UPDATES_AVAILABLE',
                                   'item_id', x.item_id, 'initial_update_complete', true,
                                   'historical_update_complete', true, 'environment', 'production'),
                x.at, x.at
         from generate_series(1, 200000) e,
              lateral (select md5('item' || (1 + (hashint8(e) & 2147483647) % $1)) as item_id,
                              now() - make_interval(secs => e * 0.432) as at) x",
    ),
    (
        "metrics_minutely",
        "insert into metrics_minutely (minute, kind, shard, value)
         select date_trunc('minute', now()) - make_interval(mins => m), k, sh, (m + sh) % 7
         from generate_series(0, 7 * 1440 - 1) m,
              unnest(array['webhook', 'webhook_duplicate', 'sync_synced', 'sync_retry', 'sync_failed',
                           'sync_needs_reauth', 'sync_error', 'sync_not_ready', 'sync_deferred', 'sync_skipped',
                           'lag_max_seconds', 'lag_p95_seconds']) k,
              generate_series(0, 7) sh
         where sh = 0 or k not like 'lag%'",
    ),
];

/// The items (see the module doc for the mix). `c` is when the item entered
/// its current status, `ls` its last successful sync.
const ITEMS: &str = "
with base as (
    select g, (h % 1024) = 0 as rare, (h / 1024) as s,
           now() - interval '40 days' - make_interval(secs => ($1 - g) * 60.0) as created,
           case when r < 400 then 'removed' when r < 450 then 'pending_cleanup' else 'active' end as lifecycle,
           case when r < 100 then 'active' when r < 250 then 'needs_reauth' when r < 400 then 'failed'
                when r < 425 then 'needs_reauth' when r < 450 then 'failed'
                when r < 650 then 'needs_reauth' when r < 750 then 'failed' when r < 950 then 'sync_needed'
                when r < 1000 then 'syncing' else 'active' end as status,
           case when r < 400 then 'removed' when r < 450 then 'pending_cleanup'
                when r < 650 then 'needs_reauth' when r < 750 then 'failed' when r < 950 then 'sync_needed'
                when r < 1000 then 'syncing' else 'active' end as kind
    from generate_series(1, $1) g,
         lateral (select g % 10000 as r, hashint8(g) & 2147483647 as h) x
), anchored as (
    select b.*,
           case b.kind
               when 'removed' then now() - interval '1 day' - make_interval(secs => b.s % 25920000)
           end as removed_at,
           case b.kind
               when 'removed' then now() - interval '41 days' - make_interval(secs => b.s % 25920000)
               when 'pending_cleanup' then now() - interval '35 days' - make_interval(secs => b.s % 2160000)
               when 'needs_reauth' then now() - case when b.rare
                   then interval '31 days' + make_interval(secs => b.s % 777600)
                   else make_interval(secs => b.s % 2505600) end
               when 'failed' then now() - make_interval(secs => b.s % 2505600)
               when 'sync_needed' then now() - case when b.rare
                   then interval '10 minutes' else make_interval(secs => b.s % 240) end
               when 'syncing' then now() - case when b.rare then interval '10 minutes' else interval '30 seconds' end
               else now() - case when b.rare
                   then interval '25 hours' + make_interval(secs => b.s % 86400)
                   else make_interval(secs => b.s % 82800) end
           end as c
    from base b
), timed as (
    select a.*,
           case when a.kind in ('sync_needed', 'syncing')
                then now() - interval '1 hour' - make_interval(secs => a.s % 79200)
                when a.kind = 'active' then a.c
                else a.c - interval '1 hour' end as ls,
           case when a.kind = 'pending_cleanup' then now() - make_interval(secs => a.s % 604800)
                when a.kind = 'removed' then a.removed_at - interval '7 days' end as notified
    from anchored a
)
insert into plaid_items (id, user_id, item_id, secret_ref, cursor, institution_id, sync_status, lifecycle,
                         sync_status_changed_at, sync_requested_at, last_synced_at, reauth_needed_at,
                         last_sync_error, next_retry_at, cleanup_notified_at, cleanup_due_at, removed_at,
                         created_at, updated_at, sync_lease_owner, sync_lease_worker, sync_lease_until,
                         sync_started_at, sync_attempts, last_error_code)
overriding system value
select t.g, 1 + (t.g - 1) % ($1 * 2 / 5), md5('item' || t.g),
       case when t.lifecycle <> 'removed' then 'sec-' || t.g end,
       case when t.lifecycle <> 'removed' then 'cursor-' || md5('cursor' || t.g) end,
       'ins_' || (t.g % 500), t.status, t.lifecycle,
       t.c,
       case when t.kind = 'syncing' then t.c - interval '1 second'
            when t.kind = 'sync_needed' then t.c
            when t.kind = 'active' then t.c - interval '2 seconds' end,
       t.ls,
       case when t.status = 'needs_reauth' then t.c end,
       case when t.status = 'failed' then 'the institution is not responding' end,
       case when t.kind = 'failed' then case when t.rare then now() - interval '10 minutes'
                                             else now() + make_interval(secs => 3600 + t.s % 3600) end end,
       t.notified,
       case when t.kind = 'pending_cleanup' then t.notified + interval '7 days'
            when t.kind = 'removed' then t.removed_at end,
       t.removed_at,
       t.created, greatest(t.c, t.created),
       case when t.kind = 'syncing' then 'run-' || t.g end,
       case when t.kind = 'syncing' then 'plaid-sync.sync-item-bench' end,
       case when t.kind = 'syncing' then case when t.rare then now() - interval '5 minutes'
                                             else now() + interval '1 hour' end end,
       case when t.kind = 'syncing' then t.c end,
       case when t.status = 'failed' then 3 else 0 end,
       case when t.status = 'failed' then 'INSTITUTION_NOT_RESPONDING'
            when t.status = 'needs_reauth' then 'ITEM_LOGIN_REQUIRED' end
from timed t";

/// Fills the database with `items` items; prints each step's time and returns the total.
pub async fn seed(pool: &PgPool, items: i64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for (table, sql) in STEPS {
        let step = Instant::now();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(*sql));
        if sql.contains("$1") {
            query = query.bind(items);
        }
        let rows = query.execute(pool).await?.rows_affected();
        println!(
            "  {table:<20} {rows:>8} rows  {:>5.1} s",
            step.elapsed().as_secs_f64()
        );
    }
    for table in ["users", "plaid_items", "accounts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "select setval(pg_get_serial_sequence('{table}', 'id'), (select max(id) from {table}))"
        )))
        .execute(pool)
        .await?;
    }
    let step = Instant::now();
    // Autovacuum is off on the bench server; in production it would have
    // analyzed and vacuumed these tables (statistics, visibility map).
    sqlx::query("vacuum analyze").execute(pool).await?;
    println!(
        "  {:<20} {:>8}       {:>5.1} s",
        "vacuum analyze",
        "",
        step.elapsed().as_secs_f64()
    );
    Ok(started.elapsed())
}

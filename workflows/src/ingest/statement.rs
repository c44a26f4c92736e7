//! The one statement that stores a batch of webhooks and acts on it.
//!
//! For the batch's transactions webhooks it marks their items (unless already
//! covered), claims each item's pending-job guard, enqueues the jobs it
//! claimed, and brings deferred jobs forward; it writes each distinct event
//! once (duplicates counted on the stored row) and counts the batch in the
//! dashboard's rollup. One statement is one round trip, and alone (a batch
//! without ITEM webhooks) it needs no `BEGIN`/`COMMIT` either: PostgreSQL runs
//! it in its own transaction, all or nothing. Measured on the 2-core machine,
//! the four round trips of the earlier three-statement transaction were most
//! of a small batch's time (BENCHMARKS.md W5).
//!
//! Why each part is as it is:
//! - An item whose request is already outstanding (requested after its last
//!   sync started, and `sync_needed` or `syncing`) is not written again: a
//!   sync starting after now is already certain (the pending job, or the
//!   running sync re-queues itself when it ends and sees the newer request),
//!   so a second write would only cost a non-HOT row version per webhook.
//! - Guards are claimed with task ids generated here, and the jobs for them
//!   are inserted into `apalis.jobs` by this statement, as apalis-postgres
//!   1.0's `push_tasks` writes them (its `queries/task/sink.sql`; a test
//!   compares the two rows), so a guard never exists without its job.
//! - Deferred jobs are brought forward unless they are backoff retries, whose
//!   delay protects Plaid. `forward` cannot see the guards `claimed` inserts
//!   (one snapshot), so it touches pre-existing jobs only.
//! - Items are taken in id order and events in key order, so concurrent
//!   batches that share rows queue instead of deadlocking; the rollup row is
//!   written last. Its row lock is held until the commit, so two batches
//!   counting on one row run one after the other: the ingest queue gives each
//!   of its writers its own shard ([`Rollup::shard`]; BENCHMARKS.md W8).

use std::collections::HashMap;

use serde_json::Value;
use sqlx::PgConnection;

use crate::jobs::{
    JobSpec,
    sync_item::{SyncItem, SyncRequest},
};

/// One distinct event of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchEvent<'a> {
    /// `webhook_events::dedupe_key` of the body.
    pub dedupe_key: &'a str,
    /// The body (a JSON object).
    pub body: &'a Value,
    /// The Plaid item id a transactions webhook asks to sync.
    pub sync_item: Option<&'a str>,
    /// Already acted on in this transaction (an ITEM webhook).
    pub processed: bool,
    /// Copies beyond the first in this batch (counted as duplicates).
    pub extra_copies: i32,
}

/// The row an event landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent {
    /// `plaid_webhook_events.id`.
    pub id: i64,
    /// True when this batch inserted it; false when it counted a duplicate.
    pub inserted: bool,
}

/// What the statement did: an answer per item to sync (Plaid id → request;
/// unknown and removed items are `UnknownItem`), and the row of each event,
/// in input order.
#[derive(Debug)]
pub struct Stored {
    /// Per Plaid item id asked to sync.
    pub requests: HashMap<String, SyncRequest>,
    /// Per input event.
    pub events: Vec<StoredEvent>,
}

/// A row of the statement's answer: an item row (`true`, Plaid item id,
/// `plaid_items.id`, status, the task id it claimed) or an event row (`false`,
/// dedupe key, event id, -, -, inserted).
type ResultRow = (bool, String, i64, Option<String>, Option<String>, Option<bool>);

/// Where a batch is counted in the dashboard's rollup (`metrics_minutely`).
#[derive(Debug, Clone, Copy)]
pub struct Rollup<'a> {
    /// Kind counting new events (see `monitoring::rollup`).
    pub fresh: &'a str,
    /// Kind counting duplicate deliveries.
    pub duplicates: &'a str,
    /// The shard row (0..[`ROLLUP_SHARDS`]); `None`: the backend pid modulo 8.
    pub shard: Option<i16>,
}

/// Shards the webhook counters may use (the table's check constraint).
pub const ROLLUP_SHARDS: i16 = 64;

/// Runs the statement for `events` (distinct keys) on `conn`: alone it is
/// its own transaction; inside one, it joins it.
pub async fn store_and_act<'a>(
    conn: &mut PgConnection,
    events: &[BatchEvent<'a>],
    rollup: Rollup<'_>,
) -> Result<Stored, sqlx::Error> {
    let text = |body: &'a Value, field: &str| body.get(field).and_then(Value::as_str);
    let mut sync_items: Vec<&str> = events.iter().filter_map(|e| e.sync_item).collect();
    sync_items.sort_unstable();
    sync_items.dedup();
    let task_ids: Vec<String> = sync_items
        .iter()
        .map(|_| ulid::Ulid::generate().to_string())
        .collect();
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key).collect();
    let item_ids: Vec<Option<&str>> = events.iter().map(|e| text(e.body, "item_id")).collect();
    let types: Vec<Option<&str>> = events.iter().map(|e| text(e.body, "webhook_type")).collect();
    let codes: Vec<Option<&str>> = events.iter().map(|e| text(e.body, "webhook_code")).collect();
    let bodies: Vec<&Value> = events.iter().map(|e| e.body).collect();
    let syncs: Vec<Option<&str>> = events.iter().map(|e| e.sync_item).collect();
    let processed: Vec<bool> = events.iter().map(|e| e.processed).collect();
    let extra: Vec<i32> = events.iter().map(|e| e.extra_copies).collect();
    let extra_total: i64 = extra.iter().map(|&n| i64::from(n)).sum();

    let rows: Vec<ResultRow> = sqlx::query_as(
        "with target as (
             select id, item_id, sync_status,
                    sync_status in ('sync_needed', 'syncing')
                        and sync_requested_at > coalesce(sync_started_at, '-infinity') as covered,
                    coalesce(next_retry_at > now(), false) as in_backoff
             from plaid_items
             where item_id = any($1) and lifecycle <> 'removed'
         ),
         marked as (
             update plaid_items p
             set sync_requested_at = now(),
                 sync_status = case when p.sync_status in ('active', 'failed') then 'sync_needed'
                                    else p.sync_status end
             from (select id from target where not covered order by id) t
             where p.id = t.id and p.lifecycle <> 'removed'
             returning p.id, p.sync_status
         ),
         state as (
             select t.id, t.item_id, coalesce(m.sync_status, t.sync_status) as status, t.in_backoff
             from target t left join marked m on m.id = t.id
         ),
         claimed as (
             insert into sync_pending (plaid_item_id, task_id)
             select s.id, n.task_id
             from state s join unnest($1::text[], $2::text[]) as n(item_id, task_id) on n.item_id = s.item_id
             where s.status <> 'needs_reauth'
             order by s.id
             on conflict (plaid_item_id) do nothing
             returning plaid_item_id, task_id
         ),
         pushed as (
             insert into apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata)
             select c.task_id, $3, convert_to(json_build_object('plaid_item_id', c.plaid_item_id)::text, 'UTF8'),
                    'Pending', 0, $4, now(), 0, ''::hstore
             from claimed c
         ),
         forward as (
             update apalis.jobs j set run_at = now()
             from sync_pending p join state s on s.id = p.plaid_item_id
             where s.status <> 'needs_reauth' and not s.in_backoff
               and j.id = p.task_id and j.status = 'Pending' and j.run_at > now()
         ),
         stored as (
             insert into plaid_webhook_events
                 (dedupe_key, item_id, webhook_type, webhook_code, body, processed_at,
                  duplicate_count, last_duplicate_at)
             select u.k, u.i, u.t, u.c, u.b,
                    case when u.p or exists (select 1 from state s where s.item_id = u.s) then now() end,
                    u.d, case when u.d > 0 then now() end
             from unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::bool[],
                         $12::int[]) as u(k, i, t, c, b, s, p, d)
             order by u.k
             on conflict (dedupe_key) do update
               set duplicate_count = plaid_webhook_events.duplicate_count + 1 + excluded.duplicate_count,
                   last_duplicate_at = now(),
                   processed_at = coalesce(plaid_webhook_events.processed_at, excluded.processed_at)
             returning dedupe_key, id, (xmax = 0) as inserted
         ),
         counted as (
             insert into metrics_minutely (minute, kind, shard, value)
             select date_trunc('minute', now()), v.kind, coalesce($16, (pg_backend_pid() % 8)::smallint), v.n
             from (select count(*) filter (where inserted) as fresh,
                          count(*) filter (where not inserted) + $13::bigint as copies
                   from stored) c,
                  lateral (values ($14::text, c.fresh), ($15::text, c.copies)) as v(kind, n)
             where v.n > 0
             on conflict (minute, kind, shard) do update set value = metrics_minutely.value + excluded.value
         )
         select true, s.item_id, s.id, s.status, c.task_id, null::bool
         from state s left join claimed c on c.plaid_item_id = s.id
         union all
         select false, dedupe_key, id, null, null, inserted from stored",
    )
    .bind(&sync_items)
    .bind(&task_ids)
    .bind(SyncItem::QUEUE)
    .bind(SyncItem::MAX_ATTEMPTS as i32)
    .bind(&keys)
    .bind(&item_ids)
    .bind(&types)
    .bind(&codes)
    .bind(&bodies)
    .bind(&syncs)
    .bind(&processed)
    .bind(&extra)
    .bind(extra_total)
    .bind(rollup.fresh)
    .bind(rollup.duplicates)
    .bind(rollup.shard)
    .fetch_all(conn)
    .await?;

    let mut requests = HashMap::with_capacity(sync_items.len());
    let mut by_key = HashMap::with_capacity(events.len());
    for (is_item, key, id, status, task_id, inserted) in rows {
        if !is_item {
            by_key.insert(
                key,
                StoredEvent {
                    id,
                    inserted: inserted.unwrap_or(false),
                },
            );
            continue;
        }
        let answer = match task_id {
            _ if status.as_deref() == Some("needs_reauth") => {
                SyncRequest::AwaitingReauth { plaid_item_id: id }
            }
            Some(_) => SyncRequest::Enqueued { plaid_item_id: id },
            None => SyncRequest::AlreadyQueued { plaid_item_id: id },
        };
        requests.insert(key, answer);
    }
    for item in sync_items {
        requests
            .entry(item.to_owned())
            .or_insert(SyncRequest::UnknownItem);
    }
    let events = events
        .iter()
        .map(|e| {
            by_key
                .get(e.dedupe_key)
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol(format!("no row returned for event {}", e.dedupe_key)))
        })
        .collect::<Result<_, _>>()?;
    Ok(Stored { requests, events })
}

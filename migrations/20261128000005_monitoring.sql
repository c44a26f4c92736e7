-- Monitoring (README "Operator surface"; workflows/src/monitoring/).

-- Per-minute rollup the dashboard charts read (24 h = at most 1,440 minutes
-- per kind), so a chart never scans the event tables. Counters (`webhook`,
-- `webhook_duplicate`, `sync_<outcome>`) are incremented by an upsert in the
-- transaction that records the event; gauges (`lag_max_seconds`,
-- `lag_p95_seconds`) are sampled once a minute by the workers' sampler.
--
-- `shard` spreads concurrent increments of one (minute, kind) over several
-- rows (the writer's backend pid modulo 8), so webhook transactions do not
-- queue on a single row lock until they commit; readers sum the shards.
-- Gauges use shard 0 only. Rows older than 7 days are deleted by the pruner.
create table metrics_minutely (
    minute  timestamptz not null check (minute = date_trunc('minute', minute)),
    kind    text not null check (kind ~ '^[a-z0-9_]+$'),
    shard   smallint not null default 0 check (shard between 0 and 7),
    value   bigint not null default 0,
    primary key (minute, kind, shard)
);

-- Serves the sync-lag figures (max and p95 of now - last sync, over items that
-- are expected to be fresh: not removed, not waiting for the user, not
-- failed). A never-synced item counts from its creation. The key is the
-- expression the status queries order by; the two columns are included so the
-- scan is index-only (PostgreSQL cannot rebuild an expression from its key).
create index plaid_items_sync_lag on plaid_items ((coalesce(last_synced_at, created_at)))
    include (last_synced_at, created_at)
    where lifecycle = 'active' and sync_status in ('active', 'sync_needed', 'syncing');

-- Serves the dashboard's attention list: failed items, oldest failure first.
-- (plaid_items_dormant_status holds them too, but behind every needs_reauth
-- item; a failed-only list is read in order without filtering.)
create index plaid_items_failed_since on plaid_items (sync_status_changed_at)
    where sync_status = 'failed' and lifecycle = 'active';

-- Serves the job gauges of /metrics (queue depth, oldest pending, failed,
-- killed per queue). apalis 1.0 indexes only fetchable rows; without this,
-- counting Failed/Killed/Running would scan every Done row kept for
-- JOB_RETENTION. Done rows (the bulk) are outside the predicate.
do $$
begin
    if to_regclass('apalis.jobs') is not null then
        create index if not exists plaid_sync_jobs_open on apalis.jobs (job_type, status, run_at)
            where status <> 'Done';
    end if;
end $$;

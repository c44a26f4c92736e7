-- The sync engine: the per-item lease, retry bookkeeping, ITEM webhook facts,
-- and the unlogged staging table that keeps a sync's memory bounded.

alter table plaid_items
    -- The lease: a sync holds the item exclusively while sync_lease_until is in
    -- the future. It survives a crashed worker only until it expires (or until
    -- the owner's apalis heartbeat is stale), so a crash never strands an item.
    -- sync_lease_owner is the run's id (the fencing token every write checks);
    -- sync_lease_worker the apalis worker running it (a dead worker's lease is void).
    add column sync_lease_owner text,
    add column sync_lease_worker text,
    add column sync_lease_until timestamptz,
    -- When the current/last sync took the lease: a webhook received after it
    -- means the item is due again when this sync ends.
    add column sync_started_at timestamptz,
    -- Consecutive failed or not-ready attempts: drives exponential backoff.
    add column sync_attempts integer not null default 0 check (sync_attempts >= 0),
    -- The Plaid error_code of the last failure (last_sync_error holds the sentence).
    add column last_error_code text,
    -- ITEM webhooks: PENDING_EXPIRATION / PENDING_DISCONNECT deadlines, NEW_ACCOUNTS_AVAILABLE.
    add column consent_expires_at timestamptz,
    add column pending_disconnect_at timestamptz,
    add column new_accounts_available boolean not null default false;

-- Pages of one sync, staged until the last page arrives (nothing is applied
-- before that). Unlogged: it is scratch space, rebuilt by re-fetching after a
-- crash, so it skips the WAL. One run at a time per item (the lease).
create unlogged table sync_staging (
    plaid_item_id     bigint not null,
    run_id            text not null,
    -- Order of arrival: the latest entry of a transaction wins.
    seq               bigint not null,
    kind              char(1) not null check (kind in ('a', 'm', 'r')),
    plaid_account_id  text not null,
    transaction_id    text not null,
    -- The full transaction JSON ('a'/'m'); null for removals.
    payload           jsonb
);
-- Serves the apply (latest entry per transaction of a run) and run cleanup.
create index sync_staging_run on sync_staging (run_id, transaction_id, seq desc);
create index sync_staging_item on sync_staging (plaid_item_id);

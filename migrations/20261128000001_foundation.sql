-- Foundation schema for plaid-sync. Names are part of the external contract
-- (shared/design/CONTRACT.md): operators query these tables by hand.
-- Every enum-like column has a CHECK; every timestamp is timestamptz; money is numeric.

-- updated_at is maintained by the database so no code path can forget it.
create function set_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at = now();
    return new;
end $$;

create table users (
    id          bigint generated always as identity primary key,
    email       text not null unique check (email <> ''),
    created_at  timestamptz not null default now()
);

-- API tokens are random 256-bit strings; only their SHA-256 is stored. A fast
-- hash is enough for high-entropy tokens (no dictionary to attack), and it lets
-- the lookup be an index probe on the digest.
create table api_tokens (
    id            bigint generated always as identity primary key,
    user_id       bigint not null references users(id) on delete cascade,
    token_sha256  bytea not null unique check (length(token_sha256) = 32),
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
create index api_tokens_user_id on api_tokens (user_id);

-- The secret store: AES-256-GCM ciphertexts. key_id names the key that sealed
-- the row so keys can be rotated; the secret_ref is bound in as associated
-- data, so a ciphertext moved to another row does not decrypt.
create table secrets (
    secret_ref  text primary key check (secret_ref <> ''),
    key_id      text not null,
    nonce       bytea not null check (length(nonce) = 12),
    ciphertext  bytea not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create trigger secrets_updated_at before update on secrets
    for each row execute function set_updated_at();

-- Accounts of every provider. For Plaid accounts the runtime truth about the
-- link lives in plaid_items / plaid_item_accounts; secret_ref here is the
-- legacy per-account reference kept for backward compatibility (backfill).
create table accounts (
    id              bigint generated always as identity primary key,
    user_id         bigint not null references users(id) on delete cascade,
    provider        text not null check (provider ~ '^[a-z0-9_]+$'),
    name            text not null,
    mask            text,
    type            text,
    subtype         text,
    sync_status     text check (sync_status in ('sync_needed', 'syncing', 'active', 'needs_reauth', 'failed')),
    last_synced_at  timestamptz,
    balances        jsonb,
    archived        boolean not null default false,
    secret_ref      text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
-- Serves GET /api/accounts (a user's accounts).
create index accounts_user_id on accounts (user_id);
-- Serves the legacy backfill (distinct legacy secrets of Plaid accounts).
create index accounts_legacy_plaid_secret on accounts (secret_ref) where provider = 'plaid' and secret_ref is not null;
create trigger accounts_updated_at before update on accounts
    for each row execute function set_updated_at();

-- The truth about each Plaid Item.
create table plaid_items (
    id                      bigint generated always as identity primary key,
    user_id                 bigint not null references users(id) on delete cascade,
    item_id                 text not null unique,
    -- Null once the item is removed and its secret deleted.
    secret_ref              text references secrets(secret_ref) on delete set null,
    cursor                  text,
    institution_id          text,
    sync_status             text not null default 'sync_needed'
                            check (sync_status in ('sync_needed', 'syncing', 'active', 'needs_reauth', 'failed')),
    lifecycle               text not null default 'active'
                            check (lifecycle in ('active', 'pending_cleanup', 'removed')),
    -- Set by the database whenever sync_status changes: "failed for DORMANT_AFTER".
    sync_status_changed_at  timestamptz not null default now(),
    sync_requested_at       timestamptz,
    last_synced_at          timestamptz,
    reauth_needed_at        timestamptz,
    last_sync_error         text,
    -- When a failed item's durable retry is due (safety net picks up overdue ones).
    next_retry_at           timestamptz,
    cleanup_notified_at     timestamptz,
    cleanup_due_at          timestamptz,
    removed_at              timestamptz,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    check (lifecycle <> 'pending_cleanup' or cleanup_due_at is not null),
    check (lifecycle <> 'removed' or removed_at is not null)
);
-- Serves GET /api/plaid/items (a user's items).
create index plaid_items_user_id on plaid_items (user_id);
-- Serves the safety net: active items not synced for SAFETY_NET_STALE_AFTER.
create index plaid_items_stale_active on plaid_items (last_synced_at nulls first)
    where lifecycle = 'active' and sync_status = 'active';
-- Serves the safety net: items stuck sync_needed/syncing past their lease.
create index plaid_items_stuck on plaid_items (sync_status, sync_requested_at)
    where sync_status in ('sync_needed', 'syncing') and lifecycle <> 'removed';
-- Serves the safety net: failed items whose retry is due.
create index plaid_items_retry_due on plaid_items (next_retry_at)
    where sync_status = 'failed' and lifecycle <> 'removed';
-- Serves dormant-item cleanup: needs_reauth/failed for DORMANT_AFTER.
create index plaid_items_dormant_status on plaid_items (sync_status_changed_at)
    where sync_status in ('needs_reauth', 'failed') and lifecycle = 'active';
-- Serves the cleanup workflow and the "next cleanup_due_at" status figure.
create index plaid_items_cleanup_due on plaid_items (cleanup_due_at)
    where lifecycle = 'pending_cleanup';
-- Serves monitoring: items by sync_status and by lifecycle (index-only counts).
create index plaid_items_status_lifecycle on plaid_items (lifecycle, sync_status);
-- Serves monitoring: the reauth queue and its oldest reauth_needed_at.
create index plaid_items_reauth_queue on plaid_items (reauth_needed_at)
    where sync_status = 'needs_reauth';
create trigger plaid_items_updated_at before update on plaid_items
    for each row execute function set_updated_at();

create function set_sync_status_changed_at() returns trigger language plpgsql as $$
begin
    if new.sync_status is distinct from old.sync_status then
        new.sync_status_changed_at = now();
    end if;
    return new;
end $$;
create trigger plaid_items_sync_status_changed before update of sync_status on plaid_items
    for each row execute function set_sync_status_changed_at();

-- Our accounts mapped to the Plaid Item they come from.
create table plaid_item_accounts (
    account_id        bigint not null unique references accounts(id) on delete cascade,
    plaid_item_id     bigint not null references plaid_items(id) on delete cascade,
    plaid_account_id  text not null,
    active            boolean not null default true,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    unique (plaid_item_id, plaid_account_id)
);
-- Serves cleanup and unlink: "does this item still have an active mapped account?"
create index plaid_item_accounts_active on plaid_item_accounts (plaid_item_id) where active;
create trigger plaid_item_accounts_updated_at before update on plaid_item_accounts
    for each row execute function set_updated_at();

-- A durable, deduplicated log of every verified webhook.
create table plaid_webhook_events (
    id                 bigint generated always as identity primary key,
    dedupe_key         text not null unique,
    item_id            text,
    webhook_type       text,
    webhook_code       text,
    body               jsonb not null,
    received_at        timestamptz not null default now(),
    duplicate_count    integer not null default 0 check (duplicate_count >= 0),
    last_duplicate_at  timestamptz,
    processed_at       timestamptz
);
-- Serves replay of an item's events (e.g. a webhook that arrived before its item).
create index plaid_webhook_events_item on plaid_webhook_events (item_id, received_at);
-- Serves monitoring: events in the last 1 h / 24 h and the per-minute rollup.
create index plaid_webhook_events_received_at on plaid_webhook_events (received_at);
-- Serves processing of events not yet acted upon.
create index plaid_webhook_events_unprocessed on plaid_webhook_events (received_at) where processed_at is null;

create table transactions (
    id                        bigint generated always as identity primary key,
    account_id                bigint not null references accounts(id) on delete cascade,
    external_id               text not null,
    amount                    numeric not null,
    iso_currency_code         text,
    unofficial_currency_code  text,
    date                      date not null,
    authorized_date           date,
    name                      text,
    merchant_name             text,
    pending                   boolean not null default false,
    pending_external_id       text,
    archived                  boolean not null default false,
    raw_json                  jsonb not null default '{}'::jsonb,
    created_at                timestamptz not null default now(),
    updated_at                timestamptz not null default now(),
    unique (account_id, external_id)
);
-- Serves GET /api/accounts/{id}/transactions: newest first, keyset pagination.
create index transactions_account_date on transactions (account_id, date desc, id desc);

-- Local notifications to a user. dedupe_key makes "write the notification once"
-- a guarded insert, so a repeated workflow step writes nothing new.
create table notifications (
    id             bigint generated always as identity primary key,
    user_id        bigint not null references users(id) on delete cascade,
    plaid_item_id  bigint references plaid_items(id) on delete set null,
    kind           text not null check (kind ~ '^[a-z0-9_]+$'),
    payload        jsonb not null default '{}'::jsonb,
    dedupe_key     text unique,
    created_at     timestamptz not null default now(),
    read_at        timestamptz
);
-- Serves a user's unread notifications.
create index notifications_user on notifications (user_id, created_at desc);

-- Guard: at most one not-yet-started sync job per item. Filled in the same
-- transaction that pushes the job; the job deletes its own row as it starts,
-- so a webhook arriving during a sync queues the next one.
create table sync_pending (
    plaid_item_id  bigint primary key references plaid_items(id) on delete cascade,
    task_id        text not null,
    created_at     timestamptz not null default now()
);

-- Guard: one run per cron tick, whatever the number of processes.
create table cron_runs (
    schedule    text not null,
    tick        timestamptz not null,
    claimed_by  text not null,
    claimed_at  timestamptz not null default now(),
    primary key (schedule, tick)
);

-- Runs of the canary job (`plaid-sync check jobs`): proof that workers pick up work.
create table job_canary_runs (
    id          bigint generated always as identity primary key,
    token       text not null,
    worker      text not null,
    attempt     integer not null,
    started_at  timestamptz not null default now(),
    finished_at timestamptz
);
create index job_canary_runs_token on job_canary_runs (token);

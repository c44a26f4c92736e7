-- The legacy backfill (README "Legacy backfill").
--
-- Before plaid_items existed, a Plaid account lived only in `accounts`
-- (provider = 'plaid') with a per-account `secret_ref`; the accounts of one
-- Item shared that secret. Discovering those secrets cannot be done here:
-- SQL migrations run once, often before any legacy row exists (tests seed
-- them afterwards, and an operator may restore them later). So this file only
-- creates the state; the idempotent step that fills it runs in Rust right
-- after the migrators (workflows::backfill::discover, called by
-- workflows::db::migrate_all on `plaid-sync migrate` and `serve`), and the
-- resolver job (queue `plaid-sync.legacy-backfill`) does the Plaid calls.

-- One row per distinct legacy secret that had an unmapped legacy account when
-- it was discovered. A row is never re-opened automatically: `resolved` and
-- `failed` are final until an operator sets `status = 'pending'` again (and
-- runs `plaid-sync migrate`), which is what makes a second run a no-op.
create table legacy_backfill (
    -- The legacy accounts.secret_ref (a row of `secrets`, normally). No foreign
    -- key: a legacy reference whose secret row is gone must still be recorded,
    -- and reported as failed (`secret_missing`).
    secret_ref     text primary key check (secret_ref <> ''),
    status         text not null default 'pending'
                   check (status in ('pending', 'resolved', 'failed')),
    -- The item the secret resolved to (null until resolved, or when it had no
    -- legacy accounts left to map).
    plaid_item_id  bigint references plaid_items(id) on delete set null,
    -- Plaid's error_code (e.g. INVALID_ACCESS_TOKEN, ITEM_LOGIN_REQUIRED) or
    -- one of ours (secret_missing, secret_unreadable, several_users,
    -- item_owned_by_another_user); for `pending` rows, the last passing error.
    error_code     text,
    -- A sentence for the operator; never a token.
    last_error     text,
    -- Resolution attempts that reached a verdict or a passing error.
    attempts       integer not null default 0 check (attempts >= 0),
    -- Legacy accounts of this secret left without a mapping when it resolved.
    unmatched_accounts integer not null default 0 check (unmatched_accounts >= 0),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    -- When the row became resolved or failed.
    finished_at    timestamptz,
    check ((status = 'pending') = (finished_at is null)),
    check (status <> 'failed' or error_code is not null),
    check (status <> 'resolved' or error_code is null)
);
-- Serves the resolver's work list and the "anything pending?" probe of the
-- discovery step (which runs at every start, so it must stay an index probe).
create index legacy_backfill_pending on legacy_backfill (attempts, secret_ref) where status = 'pending';
-- The discovery step's "already recorded?" test and the joins of
-- `plaid-sync check backfill` use the primary key; the check's per-status
-- counts scan this table, which holds one row per legacy secret.
create trigger legacy_backfill_updated_at before update on legacy_backfill
    for each row execute function set_updated_at();

-- Guard: at most one not-yet-started resolver job. Like sync_pending: filled
-- in the same transaction that pushes the job, deleted by the job as it
-- starts. A guard whose job is finished or dead (Done, Killed, Failed for
-- good, or gone) is stale and is replaced, so a crashed run never blocks the
-- backfill forever.
create table legacy_backfill_job (
    singleton   boolean primary key default true check (singleton),
    task_id     text not null,
    created_at  timestamptz not null default now()
);

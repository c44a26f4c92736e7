-- Unlink and dormant-item cleanup (README "Unlink and dormant-item cleanup";
-- workflows/src/lifecycle/removal.rs has the state machine).
--
-- Plaid bills an Item every month while its access token is valid, so an Item
-- nobody uses must be removed at Plaid (/item/remove). Each attempt to remove
-- one is a row here: the workflow's state lives in our table, and the apalis
-- jobs that drive it are only timers and step executors. Every step is a
-- compare-and-set on `state` committed together with the job that follows it.

create table item_removals (
    id               bigint generated always as identity primary key,
    plaid_item_id    bigint not null references plaid_items(id) on delete cascade,
    -- `unlink`: the user deleted the item's last active mapped account (no
    -- grace); `dormant`: the cleanup run found the item dormant (notified
    -- first, removed after CLEANUP_GRACE unless it came back to life).
    reason           text not null check (reason in ('unlink', 'dormant')),
    -- grace -> pending -> removing -> done
    --   grace/pending -> cancelled (the item came back to life)
    --   removing -> pending (a failed attempt, retried later) -> ... -> failed
    state            text not null check (state in ('grace', 'pending', 'removing', 'done', 'failed', 'cancelled')),
    -- Dormant removals: the end of the grace window (the item's cleanup_due_at).
    due_at           timestamptz,
    -- When the next step may act: the end of the grace window (grace), the
    -- next attempt (pending), or the expiry of the claim on the Plaid call
    -- (removing). An open removal far past it lost its job; the cleanup run
    -- re-enqueues it.
    next_step_at     timestamptz,
    -- The apalis task that drives this removal next. A job carrying another
    -- task id is stale (superseded) and does nothing.
    task_id          text,
    -- The claim on the Plaid call: set (with next_step_at = claim expiry) when
    -- an attempt starts, checked by the write that records its result.
    claim_token      text,
    -- /item/remove calls started.
    attempts         integer not null default 0 check (attempts >= 0),
    -- Plaid's error_code (or ours) and a sentence, for the last failed attempt.
    last_error_code  text,
    last_error       text,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    -- When the row reached done, failed or cancelled.
    finished_at      timestamptz,
    check ((state in ('done', 'failed', 'cancelled')) = (finished_at is not null)),
    check ((state in ('grace', 'pending', 'removing')) = (next_step_at is not null)),
    check (state <> 'grace' or due_at is not null),
    check (state <> 'removing' or claim_token is not null)
);
-- One open removal per item: a second unlink, a concurrent cleanup run or a
-- duplicated step cannot start another.
create unique index item_removals_open on item_removals (plaid_item_id)
    where state in ('grace', 'pending', 'removing');
-- Serves the cleanup run's "open removals whose job went missing".
create index item_removals_next_step on item_removals (next_step_at)
    where state in ('grace', 'pending', 'removing');
-- Serves the cleanup run's retry of failed removals and monitoring ("removals
-- failing at Plaid"): an item's removals, newest first.
create index item_removals_item on item_removals (plaid_item_id, id desc);
create index item_removals_failed on item_removals (finished_at) where state = 'failed';
create trigger item_removals_updated_at before update on item_removals
    for each row execute function set_updated_at();

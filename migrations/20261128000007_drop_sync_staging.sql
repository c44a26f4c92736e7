-- The sync engine no longer stages pages: each page is applied on the run's
-- own transaction as it arrives (workflows/src/sync/apply.rs), so every row
-- is written once and an interrupted run leaves nothing behind. The staging
-- table and its indexes go.
drop table if exists sync_staging;

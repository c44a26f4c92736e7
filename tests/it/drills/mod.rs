//! Failure drills (issue #7): each one breaks something on purpose, at scale,
//! with real processes, real PostgreSQL and the simulator over real HTTP, and
//! ends in a pass/fail verdict plus a one-line summary of its numbers on
//! stderr. They are `#[ignore]`d in the ordinary run and `.ci/run` runs them
//! right after it, alone and one at a time (each loads the 2-core machine on
//! purpose, and timing verdicts must not depend on what test runs beside it):
//! `cargo test --test it drills -- --ignored --test-threads=1 --nocapture`.
//! `docs/drills.md` says what each proves and records the numbers of a run.
//!
//! 1. [`flood_outage`]: a webhook flood while the database is cut for 10 s.
//! 2. [`worker_crashes`]: workers SIGKILLed at random while histories change.
//! 3. [`plaid_misbehaving`]: Plaid errors, 429s and mutations during pagination.
//! 4. [`cron_replicas`]: three replicas, ten cron ticks, ten runs.
//! 5. [`deploys`]: grace windows survive two restarts of every worker process.

mod churn;
mod cron_replicas;
mod deploys;
mod fleet;
mod flood_outage;
mod items;
mod plaid_misbehaving;
mod sync_calls;
mod webhook_deliveries;
mod worker_crashes;

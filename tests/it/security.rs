//! The security test list (issue #7, "Hostile input"): what an attacker can send,
//! and what must hold whatever they send.
//!
//! - [`cross_site`]: state changes on the operator listener from another origin, or
//!   without a JSON body, are refused (403/415) and change nothing.
//! - [`cross_user`]: user A's API token on user B's rows is a 404 on every
//!   user-scoped route, indistinguishable from an id that does not exist, and B's
//!   rows stay exactly as they were.
//! - [`secrets_required`]: the jobs routes (`JOBS_SECRET`) and every operator
//!   route (`ADMIN_TOKEN`) refuse missing and wrong secrets with 401 and change nothing.
//! - [`oversized`]: an oversized body on every POST route is a JSON 413, nothing stored.
//! - [`malformed_json`]: deeply nested and malformed JSON on every JSON route is a
//!   clear 4xx (never a 5xx) and the process stays healthy.
//! - [`sql_metachars`]: SQL metacharacters and odd unicode in every string a client
//!   controls (bodies, path segments, query strings, webhook fields, names Plaid
//!   sends) are stored verbatim or refused cleanly, never a 5xx; the tables stay intact.
//! - [`plaid_strings`]: the same strings as account, institution, transaction and
//!   merchant names coming from Plaid (the simulator's control API) are stored verbatim.
//! - [`log_leaks`]: a real `serve` process at `RUST_LOG=trace` through link, sync,
//!   webhooks and Plaid errors: no access token or secret in its output or in any
//!   error body.
//! - [`webhook_mutations`]: thousands of seeded mutations of validly signed webhooks
//!   (HMAC and Plaid's JWT): none is accepted, none stored (the fuzz target's
//!   property, cheap enough for every CI run).
//! - [`schemathesis_findings`]: regressions for what `scripts/schemathesis.sh` found.
//!
//! `docs/hostile-input.md` says how to run these, the fuzz target and schemathesis.

mod cross_site;
mod cross_user;
mod fixtures;
mod log_leaks;
mod malformed_json;
mod oversized;
mod plaid_strings;
mod schemathesis_findings;
mod secrets_required;
mod sql_metachars;
mod webhook_mutations;

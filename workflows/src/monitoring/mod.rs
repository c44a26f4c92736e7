//! Monitoring: what the operator listener shows (README "Operator surface").
//!
//! - [`status`]: the monitoring checklist (`GET /api/admin/status`), each
//!   figure one index-backed query with a green/amber/red state;
//! - [`rollup`]: the per-minute rollup the dashboard charts read;
//! - [`gauges`]: database-state gauges rendered at `/metrics` scrape time;
//! - [`attention`]: items an operator should look at;
//! - [`sampler`]: samples sync lag into the rollup once a minute.

pub mod attention;
pub mod gauges;
pub mod rollup;
pub mod sampler;
pub mod status;

use serde::Serialize;

/// The colour of a checklist figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Nothing to do.
    Green,
    /// Look soon.
    Amber,
    /// Act now.
    Red,
}

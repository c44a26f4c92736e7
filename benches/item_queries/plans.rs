//! The plans of the statements the app's own functions run, with no copy of
//! their SQL: a second pool whose sessions load `auto_explain` (every
//! statement is logged as `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` would show
//! it, at level NOTICE, so the server sends it to this client), and a tracing
//! layer that collects those notices as sqlx reports them.

use std::{collections::BTreeMap, fmt::Debug, sync::Mutex};

use serde_json::Value;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{Layer, layer::Context};

/// Notices received since the last [`take`].
static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The tracing target sqlx reports server notices under.
pub const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// Session settings of the explaining pool. Superuser only (`LOAD`): the
/// bench server's `postgres` user is one.
const AUTO_EXPLAIN: &str = "load 'auto_explain';
    set auto_explain.log_min_duration = 0;
    set auto_explain.log_analyze = on;
    set auto_explain.log_buffers = on;
    set auto_explain.log_timing = on;
    set auto_explain.log_format = 'json';
    set auto_explain.log_level = 'notice'";

/// Collects the `message` of every event it sees (filter it to [`NOTICE_TARGET`]).
pub struct NoticeCapture;

impl<S: Subscriber> Layer<S> for NoticeCapture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message(None);
        event.record(&mut message);
        if let Some(text) = message.0 {
            NOTICES.lock().expect("notice list").push(text);
        }
    }
}

struct Message(Option<String>);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// A pool on `url` whose every session logs every statement's plan.
pub async fn explaining_pool(url: &str) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(AUTO_EXPLAIN).execute(conn).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// Forgets the notices received so far.
pub fn clear() {
    NOTICES.lock().expect("notice list").clear();
}

/// One statement's plan, as run.
pub struct Plan {
    /// The statement, on one line.
    pub query: String,
    /// Its execution time with instrumentation (ms).
    pub ms: f64,
    /// Node shape: node type, index or relation, rows (and the planner's
    /// estimate), rows removed by filter.
    pub shape: String,
    /// Shared buffers hit and read, whole plan.
    pub hit: i64,
    /// See `hit`.
    pub read: i64,
    /// Why this plan does not scale (a big sequential scan or filter), if it does not.
    pub warnings: Vec<String>,
    /// How many times this statement ran during the call.
    pub times: usize,
}

/// A scan reading more rows than this (returned plus filtered out) is flagged.
const BIG_SCAN: f64 = 50_000.0;

/// The plans received since [`clear`], one per distinct statement, in order.
pub fn take() -> Vec<Plan> {
    let notices = std::mem::take(&mut *NOTICES.lock().expect("notice list"));
    let mut plans: Vec<Plan> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for notice in notices {
        let Some(plan) = parse(&notice) else { continue };
        // sqlx's own type lookups on a fresh connection, not the app's.
        if plan.query.contains("pg_type.oid") {
            continue;
        }
        match seen.get(&plan.query) {
            Some(&i) => {
                plans[i].times += 1;
                // Keep the slowest run of a repeated statement.
                if plan.ms > plans[i].ms {
                    let times = plans[i].times;
                    plans[i] = Plan { times, ..plan };
                }
            }
            None => {
                seen.insert(plan.query.clone(), plans.len());
                plans.push(plan);
            }
        }
    }
    plans
}

/// `duration: 1.234 ms  plan:\n{json}` → a [`Plan`].
fn parse(notice: &str) -> Option<Plan> {
    let ms: f64 = notice
        .strip_prefix("duration: ")?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let json: Value = serde_json::from_str(&notice[notice.find('{')?..]).ok()?;
    let root = &json["Plan"];
    let mut warnings = Vec::new();
    let shape = shape(root, &mut warnings);
    Some(Plan {
        query: one_line(json["Query Text"].as_str().unwrap_or("?")),
        ms,
        shape,
        hit: root["Shared Hit Blocks"].as_i64().unwrap_or(0),
        read: root["Shared Read Blocks"].as_i64().unwrap_or(0),
        warnings,
        times: 1,
    })
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Limit > Index Scan plaid_items_pkey on plaid_items [rows 0 (est. 1000), removed by filter 999000]`;
/// several children are listed in parentheses.
fn shape(node: &Value, warnings: &mut Vec<String>) -> String {
    let kind = node["Node Type"].as_str().unwrap_or("?");
    let mut label = kind.to_owned();
    if let Some(index) = node["Index Name"].as_str() {
        label.push(' ');
        label.push_str(index);
    }
    if let Some(relation) = node["Relation Name"].as_str() {
        let loops = node["Actual Loops"].as_f64().unwrap_or(1.0);
        let rows = node["Actual Rows"].as_f64().unwrap_or(0.0) * loops;
        let removed = node["Rows Removed by Filter"].as_f64().unwrap_or(0.0) * loops;
        let estimate = node["Plan Rows"].as_f64().unwrap_or(0.0) * loops;
        label.push_str(&format!(" on {relation} [rows {rows:.0} (est. {estimate:.0})"));
        if removed > 0.0 {
            label.push_str(&format!(", removed by filter {removed:.0}"));
        }
        if let Some(fetches) = node["Heap Fetches"].as_f64() {
            label.push_str(&format!(", heap fetches {fetches:.0}"));
        }
        label.push(']');
        if rows + removed > BIG_SCAN && (kind.contains("Seq Scan") || removed > BIG_SCAN) {
            warnings.push(format!(
                "{kind} on {relation} reads {:.0} rows to return {rows:.0}",
                rows + removed
            ));
        }
    }
    let children: Vec<String> = node["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|child| shape(child, warnings))
        .collect();
    match children.len() {
        0 => label,
        1 => format!("{label} > {}", children[0]),
        _ => format!("{label} ({})", children.join("; ")),
    }
}

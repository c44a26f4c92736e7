//! `plaid_webhook_events`: the durable, deduplicated log of verified webhooks.
//!
//! ## The dedupe key
//! Plaid webhooks carry no event id, a retried delivery repeats the same body,
//! and two genuinely different `SYNC_UPDATES_AVAILABLE` events can have
//! identical bodies too. No key can tell the last two cases apart, so the key
//! only decides what the *log* merges, never whether a sync happens:
//!
//! - key = `v1:` + SHA-256 of the body in canonical JSON (keys sorted, no
//!   whitespace). Retries of one delivery (even re-serialised with other
//!   whitespace) land on the stored row, counted in `duplicate_count` /
//!   `last_duplicate_at`; the log never grows from retries.
//! - every verified transactions webhook, duplicate or not, requests a sync of
//!   its item (see `jobs::sync_item`): if a sync job has not started yet it
//!   already covers this webhook; otherwise a new one is queued. So a duplicate
//!   body arriving after the item's last sync started still leaves the item due
//!   for a sync that starts after it arrived, at the cost of at most one extra
//!   (cheap, cursor-based) sync per retried delivery.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// The dedupe key of a webhook body (see the module docs).
pub fn dedupe_key(body: &Value) -> String {
    let mut canonical = Vec::with_capacity(256);
    write_canonical(body, &mut canonical);
    format!("v1:{}", hex::encode(Sha256::digest(&canonical)))
}

/// Canonical JSON: object keys sorted, no whitespace. Written by hand rather
/// than relying on `serde_json::Map` ordering, which a dependency's
/// `preserve_order` feature can change.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("a string serialises"));
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("a scalar serialises")),
    }
}

/// The row an event landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredEvent {
    /// `plaid_webhook_events.id`.
    pub id: i64,
    /// True when this call inserted it; false when it counted a duplicate.
    pub inserted: bool,
}

/// One distinct event of a batch: its key, body, whether it was acted on, and
/// how many more copies of it arrived in the same batch.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// [`dedupe_key`] of the body.
    pub dedupe_key: &'a str,
    /// The body (a JSON object).
    pub body: &'a Value,
    /// Stamp `processed_at`.
    pub processed: bool,
    /// Copies beyond the first in this batch (counted as duplicates).
    pub extra_copies: i32,
}

/// Inserts a batch of events with distinct keys, or counts each as a duplicate
/// on the stored row with the same key (`processed` stamps `processed_at`,
/// kept if the stored row already has one), in one statement that also
/// counts the batch in the dashboard's rollup
/// (`counters`: the kinds for new events and for duplicates; see
/// `monitoring::rollup`). Rows are written in key order so concurrent batches
/// that share keys take the unique index's locks in the same order; the
/// rollup row is written last in the statement. Returns one [`StoredEvent`]
/// per input, in input order.
pub async fn insert_or_count_duplicates(
    conn: &mut PgConnection,
    events: &[NewEvent<'_>],
    counters: (&str, &str),
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let text = |body: &Value, field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key).collect();
    let item_ids: Vec<Option<String>> = events.iter().map(|e| text(e.body, "item_id")).collect();
    let types: Vec<Option<String>> = events.iter().map(|e| text(e.body, "webhook_type")).collect();
    let codes: Vec<Option<String>> = events.iter().map(|e| text(e.body, "webhook_code")).collect();
    let bodies: Vec<&Value> = events.iter().map(|e| e.body).collect();
    let processed: Vec<bool> = events.iter().map(|e| e.processed).collect();
    let extra: Vec<i32> = events.iter().map(|e| e.extra_copies).collect();
    let extra_total: i64 = extra.iter().map(|&n| i64::from(n)).sum();
    let rows: Vec<(String, i64, bool)> = sqlx::query_as(
        "with stored as (
             insert into plaid_webhook_events
                 (dedupe_key, item_id, webhook_type, webhook_code, body, processed_at,
                  duplicate_count, last_duplicate_at)
             select k, i, t, c, b, case when p then now() end, d, case when d > 0 then now() end
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bool[], $7::int[])
                  as u(k, i, t, c, b, p, d)
             order by k
             on conflict (dedupe_key) do update
               set duplicate_count = plaid_webhook_events.duplicate_count + 1 + excluded.duplicate_count,
                   last_duplicate_at = now(),
                   processed_at = coalesce(plaid_webhook_events.processed_at, excluded.processed_at)
             returning dedupe_key, id, (xmax = 0) as inserted
         ),
         counted as (
             insert into metrics_minutely (minute, kind, shard, value)
             select date_trunc('minute', now()), v.kind, (pg_backend_pid() % 8)::smallint, v.n
             from (select count(*) filter (where inserted) as fresh,
                          count(*) filter (where not inserted) + $8::bigint as copies
                   from stored) c,
                  lateral (values ($9::text, c.fresh), ($10::text, c.copies)) as v(kind, n)
             where v.n > 0
             on conflict (minute, kind, shard) do update set value = metrics_minutely.value + excluded.value
         )
         select dedupe_key, id, inserted from stored",
    )
    .bind(&keys)
    .bind(&item_ids)
    .bind(&types)
    .bind(&codes)
    .bind(&bodies)
    .bind(&processed)
    .bind(&extra)
    .bind(extra_total)
    .bind(counters.0)
    .bind(counters.1)
    .fetch_all(conn)
    .await?;
    let by_key: std::collections::HashMap<String, StoredEvent> = rows
        .into_iter()
        .map(|(key, id, inserted)| (key, StoredEvent { id, inserted }))
        .collect();
    events
        .iter()
        .map(|e| {
            by_key
                .get(e.dedupe_key)
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol(format!("no row returned for event {}", e.dedupe_key)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ignores_whitespace_and_key_order_but_not_content() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[2,1]},"b":1}"#).unwrap();
        assert_eq!(dedupe_key(&a), dedupe_key(&b));
        assert_ne!(dedupe_key(&a), dedupe_key(&c));
        assert!(dedupe_key(&a).starts_with("v1:"));
    }
}

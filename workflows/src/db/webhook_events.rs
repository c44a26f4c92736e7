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

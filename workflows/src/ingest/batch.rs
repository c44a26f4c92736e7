//! The transaction behind a batch of webhooks.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::PgPool;

use super::{IngestError, Ingested, SYNC_CODES};
use crate::{
    db::webhook_events::{self, NewEvent},
    jobs::sync_item::{SyncRequest, request_syncs_by_plaid_id},
    lifecycle::item_webhooks,
    monitoring::rollup,
};

/// How long a batch waits for a connection before its deliveries are told
/// "unavailable" (503, Plaid retries). Shorter than the pool's own 5 s: while
/// the database is down, deliveries queue behind the batch that is waiting,
/// and Plaid gives each delivery 10 s.
const BEGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a webhook asks of us.
enum Action<'a> {
    /// A transactions webhook that means "sync this item".
    Sync(&'a str),
    /// An ITEM webhook: the state machine acts on it.
    Item,
    /// Stored only (unknown types and codes included).
    Store,
}

fn action(body: &Value) -> Action<'_> {
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    match (field("webhook_type"), field("webhook_code"), field("item_id")) {
        (Some("TRANSACTIONS"), Some(code), Some(item_id)) if SYNC_CODES.contains(&code) => {
            Action::Sync(item_id)
        }
        (Some("ITEM"), ..) => Action::Item,
        _ => Action::Store,
    }
}

/// Stores every body (JSON objects) and acts on them, in one transaction.
/// Returns one [`Ingested`] per body, in order. Bodies with the same dedupe
/// key (a retried delivery in the same batch) land on one row: the first is
/// the insert, the others count as duplicates, as if they came one by one.
///
/// Statement order is fixed (items, then events and the rollup row) and each
/// statement touches its rows in key order, so concurrent batches queue on
/// shared rows instead of deadlocking. Three round trips for a batch of
/// transactions webhooks in the steady state (the items statement, the
/// events statement, the commit), whatever its size.
pub async fn ingest_batch(pool: &PgPool, bodies: &[Value]) -> Result<Vec<Ingested>, IngestError> {
    let keys: Vec<String> = bodies.iter().map(webhook_events::dedupe_key).collect();
    let actions: Vec<Action<'_>> = bodies.iter().map(action).collect();
    let mut tx = tokio::time::timeout(BEGIN_TIMEOUT, pool.begin())
        .await
        .map_err(|_| IngestError::Unavailable("no database connection within 2 s".into()))?
        .map_err(|e| IngestError::Unavailable(e.to_string()))?;

    // Act first, then write each event once, already marked processed (or
    // not: unknown items keep `processed_at` null and are replayed when the
    // item appears).
    let sync_items: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Sync(item_id) => Some(*item_id),
            _ => None,
        })
        .collect();
    let requests = request_syncs_by_plaid_id(&mut tx, &sync_items).await?;
    let mut sync = Vec::with_capacity(bodies.len());
    let mut processed = Vec::with_capacity(bodies.len());
    for (body, action) in bodies.iter().zip(&actions) {
        let (request, done) = match action {
            Action::Sync(item_id) => {
                let request = requests
                    .get(*item_id)
                    .copied()
                    .unwrap_or(SyncRequest::UnknownItem);
                (Some(request), request != SyncRequest::UnknownItem)
            }
            Action::Item => (None, item_webhooks::act(&mut tx, body).await?),
            Action::Store => (None, false),
        };
        sync.push(request);
        processed.push(done);
    }

    // One row per distinct key, with the batch's extra copies counted on it.
    let mut first_of_key: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    let mut distinct: Vec<NewEvent<'_>> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        match first_of_key.get(key.as_str()) {
            Some(&slot) => {
                distinct[slot].extra_copies += 1;
                distinct[slot].processed |= processed[i];
            }
            None => {
                first_of_key.insert(key, distinct.len());
                distinct.push(NewEvent {
                    dedupe_key: key,
                    body: &bodies[i],
                    processed: processed[i],
                    extra_copies: 0,
                });
            }
        }
    }
    let stored = webhook_events::insert_or_count_duplicates(
        &mut tx,
        &distinct,
        (rollup::WEBHOOK, rollup::WEBHOOK_DUPLICATE),
    )
    .await?;

    let mut seen = vec![false; distinct.len()];
    let mut results = Vec::with_capacity(bodies.len());
    for (i, key) in keys.iter().enumerate() {
        let slot = first_of_key[key.as_str()];
        let row = stored[slot];
        // Only the first copy of a newly inserted key is "the insert".
        let duplicate = !row.inserted || seen[slot];
        seen[slot] = true;
        results.push(Ingested {
            event_id: row.id,
            duplicate,
            sync: sync[i],
        });
    }
    tx.commit().await?;
    Ok(results)
}

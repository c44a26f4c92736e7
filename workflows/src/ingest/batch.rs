//! Storing a batch of webhooks and acting on it, all or nothing.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, pool::PoolConnection};

use super::{
    IngestError, Ingested, SYNC_CODES,
    statement::{BatchEvent, Rollup, store_and_act},
};
use crate::{db::webhook_events, jobs::sync_item::SyncRequest, lifecycle::item_webhooks, monitoring::rollup};

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

/// Stores every body (JSON objects) and acts on them, all or nothing.
/// Returns one [`Ingested`] per body, in order. Bodies with the same dedupe
/// key (a retried delivery in the same batch) land on one row: the first is
/// the insert, the others count as duplicates, as if they came one by one.
///
/// A batch of transactions webhooks (and stored-only ones) is one statement
/// ([`store_and_act`]) in its own transaction: one round trip. A batch with
/// ITEM webhooks runs them through the item state machine first, then the
/// statement, in one transaction.
pub async fn ingest_batch(pool: &PgPool, bodies: &[Value]) -> Result<Vec<Ingested>, IngestError> {
    ingest_batch_on(&mut *acquire(pool).await?, bodies, None).await
}

/// Takes a connection for a batch within [`BEGIN_TIMEOUT`], or says the
/// database is unavailable.
pub(super) async fn acquire(pool: &PgPool) -> Result<PoolConnection<Postgres>, IngestError> {
    tokio::time::timeout(BEGIN_TIMEOUT, pool.acquire())
        .await
        .map_err(|_| IngestError::Unavailable("no database connection within 2 s".into()))?
        .map_err(|e| IngestError::Unavailable(e.to_string()))
}

/// [`ingest_batch`] on a connection of the caller's, counting the batch on
/// rollup shard `shard` (see [`Rollup::shard`]): concurrent writers on
/// distinct shards never wait for each other's commit.
pub(super) async fn ingest_batch_on(
    conn: &mut PgConnection,
    bodies: &[Value],
    shard: Option<i16>,
) -> Result<Vec<Ingested>, IngestError> {
    let keys: Vec<String> = bodies.iter().map(webhook_events::dedupe_key).collect();
    let actions: Vec<Action<'_>> = bodies.iter().map(action).collect();

    // One event per distinct key, with the batch's extra copies counted on it.
    let mut slot_of: Vec<usize> = Vec::with_capacity(bodies.len());
    let mut first_of_key: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    let mut distinct: Vec<BatchEvent<'_>> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let slot = *first_of_key.entry(key).or_insert_with(|| {
            distinct.push(BatchEvent {
                dedupe_key: key,
                body: &bodies[i],
                sync_item: match actions[i] {
                    Action::Sync(item_id) => Some(item_id),
                    _ => None,
                },
                processed: false,
                extra_copies: -1,
            });
            distinct.len() - 1
        });
        distinct[slot].extra_copies += 1;
        slot_of.push(slot);
    }

    let counters = Rollup {
        fresh: rollup::WEBHOOK,
        duplicates: rollup::WEBHOOK_DUPLICATE,
        shard,
    };
    let stored = if actions.iter().any(|a| matches!(a, Action::Item)) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Every copy acts (a repeated ITEM step is a guarded no-op); an event
        // is processed if any copy was.
        for (i, body) in bodies.iter().enumerate() {
            if matches!(actions[i], Action::Item) && item_webhooks::act(&mut tx, body).await? {
                distinct[slot_of[i]].processed = true;
            }
        }
        let stored = store_and_act(&mut tx, &distinct, counters).await?;
        tx.commit().await?;
        stored
    } else {
        store_and_act(conn, &distinct, counters).await?
    };

    let mut seen = vec![false; distinct.len()];
    let mut results = Vec::with_capacity(bodies.len());
    for &slot in &slot_of {
        let row = stored.events[slot];
        // Only the first copy of a newly inserted key is "the insert".
        let duplicate = !row.inserted || seen[slot];
        seen[slot] = true;
        let sync = distinct[slot].sync_item.map(|item_id| {
            stored
                .requests
                .get(item_id)
                .copied()
                .unwrap_or(SyncRequest::UnknownItem)
        });
        results.push(Ingested {
            event_id: row.id,
            duplicate,
            sync,
        });
    }
    Ok(results)
}

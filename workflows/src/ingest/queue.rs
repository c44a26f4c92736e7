//! Group commit for webhooks: concurrent deliveries share one transaction.
//!
//! Each delivery is handed to a writer task with a reply channel; a writer
//! takes everything waiting for it (up to [`QueueSettings::max_batch`]) and
//! runs [`ingest_batch`] on it, then answers each delivery. While one batch
//! commits, the next one gathers, so under load batches grow by themselves
//! and a commit's cost is shared; alone, a delivery is a batch of one and
//! waits for nobody (no timer).
//!
//! Deliveries are routed to writers by item id, so two writers never work on
//! the same item (no lock waits or deadlocks between them in one process),
//! and retries of one delivery meet in the same batch or queue. Each writer
//! counts its batches on its own rollup shard, so neither waits for the
//! other's commit on that row (with the backend's shard, two batches met on
//! one row about one time in eight and ran one after the other).
//!
//! A batch that fails because the database is unavailable fails every
//! delivery in it (503, Plaid retries). A batch that fails for any other
//! reason is retried one delivery at a time, so one poisonous body cannot
//! take its neighbours down with it.

use std::hash::BuildHasher;

use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{IngestError, Ingested, batch::ingest_batch_counted_on, statement::ROLLUP_SHARDS};

/// How the queue is sized.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Writer tasks (each holds at most one pool connection at a time).
    pub writers: usize,
    /// Most deliveries in one transaction.
    pub max_batch: usize,
    /// Deliveries waiting per writer before senders wait (backpressure).
    pub capacity: usize,
}

impl Default for QueueSettings {
    /// Two writers: one can commit while the other gathers, and each batch
    /// holds about half of what is in flight. More writers make smaller
    /// batches (each paying its round trips) without more cores to use them.
    fn default() -> Self {
        Self {
            writers: 2,
            max_batch: 128,
            capacity: 1024,
        }
    }
}

struct Delivery {
    body: Value,
    reply: oneshot::Sender<Result<Ingested, IngestError>>,
}

/// The handle the HTTP edge holds; cheap to clone. Writers stop when every
/// handle is dropped, after answering what they hold.
#[derive(Debug, Clone)]
pub struct IngestQueue {
    writers: std::sync::Arc<Vec<mpsc::Sender<Delivery>>>,
    hasher: std::hash::RandomState,
}

impl IngestQueue {
    /// Starts the writer tasks on the current runtime.
    pub fn start(pool: PgPool, settings: QueueSettings) -> Self {
        // Consecutive shards from a random start: distinct within this
        // process, and rarely shared with another process's writers.
        let first_shard = rand::thread_rng().gen_range(0..ROLLUP_SHARDS);
        let writers = (0..settings.writers.max(1))
            .map(|writer| {
                let (sender, receiver) = mpsc::channel(settings.capacity.max(1));
                let shard = (first_shard + writer as i16) % ROLLUP_SHARDS;
                tokio::spawn(write_batches(
                    pool.clone(),
                    receiver,
                    settings.max_batch.max(1),
                    shard,
                ));
                sender
            })
            .collect();
        Self {
            writers: std::sync::Arc::new(writers),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Ingests one verified body; answers once its batch has committed.
    pub async fn ingest(&self, body: Value) -> Result<Ingested, IngestError> {
        let writer = &self.writers[self.writer_for(&body)];
        let (reply, answer) = oneshot::channel();
        writer
            .send(Delivery { body, reply })
            .await
            .map_err(|_| IngestError::Closed)?;
        answer.await.map_err(|_| IngestError::Closed)?
    }

    fn writer_for(&self, body: &Value) -> usize {
        let item_id = body.get("item_id").and_then(Value::as_str);
        (self.hasher.hash_one(item_id) % self.writers.len() as u64) as usize
    }
}

async fn write_batches(pool: PgPool, mut receiver: mpsc::Receiver<Delivery>, max_batch: usize, shard: i16) {
    let mut batch = Vec::with_capacity(max_batch);
    while receiver.recv_many(&mut batch, max_batch).await > 0 {
        join_deliveries_on_their_way(&mut receiver, &mut batch, max_batch).await;
        let (bodies, replies): (Vec<Value>, Vec<_>) = batch.drain(..).map(|d| (d.body, d.reply)).unzip();
        match ingest_batch_counted_on(&pool, &bodies, Some(shard)).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that went away (client disconnected) needs no answer.
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) if bodies.len() == 1 => {
                tracing::warn!(error = %error, "webhook batch of one failed");
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
            }
            Err(error) if error.is_unavailable() => {
                tracing::warn!(error = %error, webhooks = bodies.len(), "webhook batch failed");
                for reply in replies {
                    let _ = reply.send(Err(error.shared()));
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, webhooks = bodies.len(), "webhook batch failed; retrying one by one");
                for (body, reply) in bodies.iter().zip(replies) {
                    let result = ingest_batch_counted_on(&pool, std::slice::from_ref(body), Some(shard))
                        .await
                        .map(|mut done| done.remove(0));
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Lets deliveries already on their way join `batch`: one yield gives every
/// task this runtime has ready to run (handlers a moment from calling
/// [`IngestQueue::ingest`], typically) its turn, then whatever they queued
/// is taken too. No timer: when nothing else is ready, the yield returns at
/// once, so a lone delivery waits for nobody. Under a flood it grows batches
/// (fewer statements for the same webhooks; BENCHMARKS.md W8).
async fn join_deliveries_on_their_way(
    receiver: &mut mpsc::Receiver<Delivery>,
    batch: &mut Vec<Delivery>,
    max_batch: usize,
) {
    if batch.len() >= max_batch {
        return;
    }
    tokio::task::yield_now().await;
    while batch.len() < max_batch {
        match receiver.try_recv() {
            Ok(delivery) => batch.push(delivery),
            Err(_) => break,
        }
    }
}

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
//! A writer keeps its pool connection from batch to batch while deliveries
//! keep coming, and gives it back after [`IDLE_RELEASE`] without any. Taking
//! one per batch cost a round trip (sqlx pings a pooled connection on every
//! acquire), and sqlx returns a released connection to the pool on a task of
//! its own, so a writer asking again at once found none idle and opened a new
//! one: 85–100 ms under load, the stalls of BENCHMARKS.md W7 (W10). Given
//! back when idle, a connection is pinged by the pool before its next use,
//! and closing the pool waits at most that long for the writers. One that
//! failed with the database unavailable is closed, not kept.
//!
//! A batch that fails because the database is unavailable fails every
//! delivery in it (503, Plaid retries). A batch that fails for any other
//! reason is retried one delivery at a time, so one poisonous body cannot
//! take its neighbours down with it.

use std::hash::BuildHasher;

use rand::Rng;
use serde_json::Value;
use sqlx::{PgPool, Postgres, pool::PoolConnection};
use tokio::sync::{mpsc, oneshot};

use super::{
    IngestError, Ingested,
    batch::{acquire, ingest_batch_on},
    statement::ROLLUP_SHARDS,
};

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

/// How long a writer keeps its connection without deliveries before giving
/// it back to the pool.
pub const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

/// A writer's connection, kept between batches while it is busy.
struct WriterConnection {
    pool: PgPool,
    conn: Option<PoolConnection<Postgres>>,
}

impl WriterConnection {
    /// Runs one batch on the kept connection, or on one taken from the pool.
    /// Keeps it afterwards unless the database failed under it.
    async fn ingest(&mut self, bodies: &[Value], shard: i16) -> Result<Vec<Ingested>, IngestError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => acquire(&self.pool).await?,
        };
        let conn = self.conn.insert(conn);
        let result = ingest_batch_on(conn, bodies, Some(shard)).await;
        if result.as_ref().is_err_and(IngestError::is_unavailable)
            && let Some(mut broken) = self.conn.take()
        {
            broken.close_on_drop();
        }
        result
    }

    /// Whether a connection is kept.
    fn is_held(&self) -> bool {
        self.conn.is_some()
    }

    /// Gives the kept connection back to the pool.
    fn release(&mut self) {
        self.conn = None;
    }
}

async fn write_batches(pool: PgPool, mut receiver: mpsc::Receiver<Delivery>, max_batch: usize, shard: i16) {
    let mut conn = WriterConnection { pool, conn: None };
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let received = if conn.is_held() {
            match tokio::time::timeout(IDLE_RELEASE, receiver.recv_many(&mut batch, max_batch)).await {
                Ok(received) => received,
                Err(_idle) => {
                    conn.release();
                    continue;
                }
            }
        } else {
            receiver.recv_many(&mut batch, max_batch).await
        };
        if received == 0 {
            return;
        }
        join_deliveries_on_their_way(&mut receiver, &mut batch, max_batch).await;
        let (bodies, replies): (Vec<Value>, Vec<_>) = batch.drain(..).map(|d| (d.body, d.reply)).unzip();
        match conn.ingest(&bodies, shard).await {
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
                    let result = conn
                        .ingest(std::slice::from_ref(body), shard)
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

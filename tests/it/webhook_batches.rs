//! Group commit of webhooks (`workflows::ingest`): a batch is one transaction
//! with the same outcome as its webhooks arriving one by one.

use futures_util::future::join_all;
use serde_json::{Value, json};
use workflows::{
    ingest::{IngestError, IngestQueue, Ingested, QueueSettings, ingest_batch},
    jobs::sync_item::SyncRequest,
};

use crate::support::{
    TestApp,
    plaid::{event_count, pending_sync_jobs, seed_item},
};

fn sync_body(item_id: &str, n: u32) -> Value {
    json!({
        "webhook_type": "TRANSACTIONS",
        "webhook_code": "DEFAULT_UPDATE",
        "item_id": item_id,
        "new_transactions": n,
        "environment": "sandbox",
    })
}

async fn xmin(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("select xmin::text from plaid_items where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_stores_each_event_once_counts_copies_and_requests_each_item_once() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("batch@example.com").await;
    let (a, a_id) = seed_item(&app, user.id).await;
    let (b, b_id) = seed_item(&app, user.id).await;
    let item_error =
        json!({"webhook_type": "ITEM", "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED", "item_id": a});
    let bodies = vec![
        sync_body(&a, 1),
        sync_body(&b, 1),
        sync_body(&a, 1), // a retry of the first, in the same batch
        sync_body(&a, 2),
        sync_body("unknown-item", 1),
        item_error,
    ];

    let done = ingest_batch(&app.pool, &bodies).await.unwrap();

    let duplicates: Vec<bool> = done.iter().map(|d| d.duplicate).collect();
    assert_eq!(duplicates, [false, false, true, false, false, false]);
    assert_eq!(
        done[0].event_id, done[2].event_id,
        "the retry lands on the stored row"
    );
    assert_eq!(done[0].sync, Some(SyncRequest::Enqueued { plaid_item_id: a_id }));
    assert_eq!(done[3].sync, done[0].sync, "one request per item per batch");
    assert_eq!(done[1].sync, Some(SyncRequest::Enqueued { plaid_item_id: b_id }));
    assert_eq!(done[4].sync, Some(SyncRequest::UnknownItem));
    assert_eq!(done[5].sync, None);

    let rows: Vec<(Option<String>, i32, bool)> = sqlx::query_as(
        "select item_id, duplicate_count, processed_at is not null from plaid_webhook_events order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 5, "{rows:?}");
    let row_of = |event_id: i64| {
        sqlx::query_as::<_, (i32, bool)>(
            "select duplicate_count, processed_at is not null from plaid_webhook_events where id = $1",
        )
        .bind(event_id)
        .fetch_one(&app.pool)
    };
    assert_eq!(row_of(done[0].event_id).await.unwrap(), (1, true));
    assert_eq!(
        row_of(done[4].event_id).await.unwrap(),
        (0, false),
        "an unknown item's event is kept for replay"
    );
    assert_eq!(pending_sync_jobs(&app, a_id).await, 1);
    assert_eq!(pending_sync_jobs(&app, b_id).await, 1);

    let counted: Vec<(String, i64)> = sqlx::query_as(
        "select kind, sum(value)::bigint from metrics_minutely where kind like 'webhook%' group by kind order by kind",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(counted, [("webhook".into(), 5), ("webhook_duplicate".into(), 1)]);
    app.stop().await;
}

#[tokio::test]
async fn while_a_request_is_outstanding_more_webhooks_do_not_rewrite_the_item_row() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("hot@example.com").await;
    let (item_id, id) = seed_item(&app, user.id).await;

    ingest_batch(&app.pool, &[sync_body(&item_id, 1)]).await.unwrap();
    let version = xmin(&app, id).await;
    for n in 2..6 {
        let done = ingest_batch(&app.pool, &[sync_body(&item_id, n)]).await.unwrap();
        assert_eq!(
            done[0].sync,
            Some(SyncRequest::AlreadyQueued { plaid_item_id: id })
        );
    }
    assert_eq!(
        xmin(&app, id).await,
        version,
        "the pending job already covers them"
    );
    assert_eq!(pending_sync_jobs(&app, id).await, 1);

    // Once the sync has started, the next webhook is a new request again.
    sqlx::query("delete from sync_pending where plaid_item_id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update apalis.jobs set status = 'Running' where job_type = 'plaid-sync.sync-item'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update plaid_items set sync_status = 'syncing', sync_started_at = now() where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let started = xmin(&app, id).await;
    let done = ingest_batch(&app.pool, &[sync_body(&item_id, 9)]).await.unwrap();
    assert_eq!(done[0].sync, Some(SyncRequest::Enqueued { plaid_item_id: id }));
    assert_ne!(
        xmin(&app, id).await,
        started,
        "the request is recorded on the item"
    );
    let due: bool =
        sqlx::query_scalar("select sync_requested_at > sync_started_at from plaid_items where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(due);
    app.stop().await;
}

/// An app (role api) and `count` items of one user.
async fn app_with_items(email: &str, count: usize) -> (TestApp, Vec<(String, i64)>) {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token(email).await;
    let mut items = Vec::new();
    for _ in 0..count {
        items.push(seed_item(&app, user.id).await);
    }
    (app, items)
}

/// [`app_with_items`], and a queue on the app's pool of `writers` writers
/// taking at most `max_batch` deliveries per batch.
async fn queue_and_items(
    email: &str,
    count: usize,
    writers: usize,
    max_batch: usize,
) -> (TestApp, Vec<(String, i64)>, IngestQueue) {
    let (app, items) = app_with_items(email, count).await;
    let queue = queue_on(&app.pool, writers, max_batch);
    (app, items, queue)
}

/// A queue of `writers` writers on `pool`, taking at most `max_batch`
/// deliveries per batch.
fn queue_on(pool: &sqlx::PgPool, writers: usize, max_batch: usize) -> IngestQueue {
    IngestQueue::start(
        pool.clone(),
        QueueSettings {
            writers,
            max_batch,
            capacity: 64,
        },
    )
}

/// Every body through the queue at once; the answers in order.
async fn ingest_all(queue: &IngestQueue, bodies: Vec<Value>) -> Vec<Result<Ingested, IngestError>> {
    join_all(bodies.into_iter().map(|body| {
        let queue = queue.clone();
        async move { queue.ingest(body).await }
    }))
    .await
}

#[tokio::test]
async fn concurrent_deliveries_through_the_queue_each_get_their_own_answer() {
    let (app, items, queue) = queue_and_items("queue@example.com", 3, 2, 16).await;
    // 60 distinct bodies and 20 retries of the first 20, all at once.
    let mut bodies: Vec<Value> = (0..60).map(|n| sync_body(&items[n as usize % 3].0, n)).collect();
    bodies.extend(bodies[..20].to_vec());
    // A body PostgreSQL's jsonb cannot hold (a NUL character): its batch fails
    // and is retried one by one, so only this delivery is refused.
    let poison = json!({"webhook_type": "TRANSACTIONS", "webhook_code": "DEFAULT_UPDATE",
                        "item_id": items[0].0, "note": "a\u{0}b"});
    bodies.push(poison);
    let answers = ingest_all(&queue, bodies).await;

    let (poisoned, good) = answers.split_last().unwrap();
    let error = poisoned.as_ref().expect_err("a body jsonb refuses is not stored");
    assert!(!error.is_unavailable(), "{error}: not the database's fault");
    let good: Vec<_> = good.iter().map(|a| a.as_ref().expect("stored")).collect();
    assert_eq!(good.iter().filter(|d| !d.duplicate).count(), 60);
    assert_eq!(good.iter().filter(|d| d.duplicate).count(), 20);
    for retry in 60..80 {
        assert_eq!(good[retry].event_id, good[retry - 60].event_id);
    }
    let (rows, copies): (i64, i64) =
        sqlx::query_as("select count(*), sum(duplicate_count)::bigint from plaid_webhook_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((rows, copies), (60, 20));
    for (_, id) in &items {
        assert_eq!(pending_sync_jobs(&app, *id).await, 1);
    }
    app.stop().await;
}

#[tokio::test]
async fn each_queue_writer_counts_its_batches_on_a_rollup_shard_of_its_own() {
    let (app, items, queue) = queue_and_items("shards@example.com", 4, 3, 8).await;
    // 90 distinct bodies and 10 retries, all at once: many batches on every writer.
    let mut bodies: Vec<Value> = (0..90).map(|n| sync_body(&items[n as usize % 4].0, n)).collect();
    bodies.extend(bodies[..10].to_vec());
    let answers = ingest_all(&queue, bodies).await;
    assert!(answers.iter().all(Result::is_ok));

    // Rows per (minute, kind, shard): a run that straddles a minute has two
    // minutes, never more shards than writers.
    let (shards, fresh, copies): (i64, i64, i64) = sqlx::query_as(
        "select count(distinct shard),
                coalesce(sum(value) filter (where kind = 'webhook'), 0)::bigint,
                coalesce(sum(value) filter (where kind = 'webhook_duplicate'), 0)::bigint
         from metrics_minutely where kind in ('webhook', 'webhook_duplicate')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((fresh, copies), (90, 10), "every delivery counted once");
    assert!(
        (1..=3).contains(&shards),
        "{shards} shards for 3 writers: each writer keeps to its own"
    );
    // The shards run past the backend pid's 0..8 (the range the table accepts).
    sqlx::query("insert into metrics_minutely (minute, kind, shard, value) values (date_trunc('minute', now()), 'probe', 63, 1)")
        .execute(&app.pool)
        .await
        .expect("shard 63 is allowed");
    let refused = sqlx::query("insert into metrics_minutely (minute, kind, shard, value) values (date_trunc('minute', now()), 'probe', 64, 1)")
        .execute(&app.pool)
        .await;
    assert!(refused.is_err(), "shard 64 is outside the range");
    drop(queue);
    app.stop().await;
}

#[tokio::test]
async fn when_the_database_is_gone_every_delivery_of_the_batch_is_told_so() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let pool = workflows::db::connect(&app.db.url, 2).await.unwrap();
    let queue = IngestQueue::start(pool.clone(), QueueSettings::default());
    pool.close().await;
    let answers = join_all((0..10).map(|n| {
        let queue = queue.clone();
        async move { queue.ingest(sync_body("any", n)).await }
    }))
    .await;
    for answer in answers {
        let error = answer.expect_err("nothing can be stored");
        assert!(error.is_unavailable(), "{error}");
    }
    assert_eq!(event_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_writer_keeps_its_connection_while_busy_and_gives_it_back_when_idle() {
    let (app, items) = app_with_items("held@example.com", 3).await;
    // A pool of its own: its size counts the writers' connections only.
    let pool = workflows::db::connect(&app.db.url, 10).await.unwrap();
    let queue = queue_on(&pool, 2, 16);
    // Four waves of 50 concurrent deliveries: many batches on both writers.
    for wave in 0..4 {
        let bodies = (0..50)
            .map(|n| sync_body(&items[n % 3].0, wave * 100 + n as u32))
            .collect();
        assert!(ingest_all(&queue, bodies).await.iter().all(Result::is_ok));
    }
    // Taking a connection per batch opened extra ones (a released connection
    // goes back to the pool on a task of its own); kept, there is one per writer.
    assert!(pool.size() <= 2, "{} connections for 2 writers", pool.size());
    // Idle writers give their connections back: closing the pool does not
    // wait for the queue to go away.
    tokio::time::timeout(std::time::Duration::from_secs(5), pool.close())
        .await
        .expect("the writers gave their connections back within 5 s of going idle");
    assert_eq!(event_count(&app).await, 200);
    drop(queue);
    app.stop().await;
}

#[tokio::test]
async fn a_kept_connection_the_database_dropped_costs_at_most_one_503() {
    let (app, items, queue) = queue_and_items("dropped@example.com", 1, 1, 16).await;
    let item = &items[0].0;
    queue.ingest(sync_body(item, 1)).await.expect("stored");
    // The writer's backend (its last statement was the batch) goes away while
    // the writer keeps the connection.
    let terminated: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and query like 'with target as%'
           and pg_terminate_backend(pid)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(terminated, 1, "the writer's connection was found and closed");

    // Plaid's side: a 503 is retried. The broken connection costs at most
    // that one answer; the retry runs on a fresh connection.
    let mut answers = Vec::new();
    for n in 2..=4 {
        let body = sync_body(item, n);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match queue.ingest(body.clone()).await {
                Ok(done) => {
                    assert!(!done.duplicate);
                    break;
                }
                Err(error) => {
                    assert!(error.is_unavailable(), "{error}");
                    assert!(attempts < 2, "a second attempt failed too: {error}");
                }
            }
        }
        answers.push(attempts);
    }
    assert!(
        answers.iter().sum::<usize>() <= 4,
        "attempts per delivery {answers:?}: one 503 at most"
    );
    assert_eq!(event_count(&app).await, 4);
    drop(queue);
    app.stop().await;
}

/// Every column of a job row but its id, payload and due time, as text.
async fn job_row(
    app: &TestApp,
    plaid_item_id: i64,
) -> (Vec<Option<String>>, workflows::jobs::sync_item::SyncItem) {
    let (columns, job): (Vec<Option<String>>, Vec<u8>) = sqlx::query_as(
        "select array[j.job_type, j.status, j.attempts::text, j.max_attempts::text, j.priority::text,
                      j.metadata::text, j.idempotency_key, j.lock_by, j.lock_at::text, j.done_at::text,
                      j.last_result::text], j.job
         from apalis.jobs j join sync_pending p on p.task_id = j.id
         where p.plaid_item_id = $1",
    )
    .bind(plaid_item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (
        columns,
        serde_json::from_slice(&job).expect("the payload decodes as the job"),
    )
}

#[tokio::test]
async fn the_job_a_webhook_batch_enqueues_is_the_row_apalis_itself_pushes() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let (user, _) = app.user_with_token("jobs@example.com").await;
    let (a, a_id) = seed_item(&app, user.id).await;
    let (_, b_id) = seed_item(&app, user.id).await;

    // a: through the batch statement; b: through apalis-postgres' push_tasks.
    let done = ingest_batch(&app.pool, &[sync_body(&a, 1)]).await.unwrap();
    assert_eq!(done[0].sync, Some(SyncRequest::Enqueued { plaid_item_id: a_id }));
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(
        workflows::jobs::sync_item::ensure_job(&mut conn, b_id, None)
            .await
            .unwrap()
    );
    drop(conn);

    let (ours, our_job) = job_row(&app, a_id).await;
    let (apalis, apalis_job) = job_row(&app, b_id).await;
    assert_eq!(ours, apalis, "same columns as apalis writes");
    assert_eq!(our_job.plaid_item_id, a_id);
    assert_eq!(apalis_job.plaid_item_id, b_id);
    let due_now: bool = sqlx::query_scalar(
        "select run_at <= now() from apalis.jobs j join sync_pending p on p.task_id = j.id where p.plaid_item_id = $1",
    )
    .bind(a_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(due_now, "the job is due at once");
    app.stop().await;
}

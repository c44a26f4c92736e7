//! Database connections of the app's pools (`workflows::db::connect`).

use crate::support::TestApp;

/// sqlx 0.9.0 leaves Nagle's algorithm on; a message over ~16 KiB (a webhook
/// batch of ~40 events, a sync page) then waited 40 ms for PostgreSQL's
/// delayed acknowledgement. The pool turns it off on every connection.
#[tokio::test]
async fn pool_connections_run_with_tcp_nodelay() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let port: i32 = sqlx::query_scalar("select inet_client_port()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let port = u16::try_from(port).expect("a TCP connection");

    assert_eq!(workflows::db::nodelay::is_set_on_local_port(port), Some(true));
    drop(conn);
    app.stop().await;
}

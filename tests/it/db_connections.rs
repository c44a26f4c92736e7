//! Database connections of the app's pools (`workflows::db::connect`).

use crate::support::TestApp;

/// sqlx 0.9.0 left Nagle's algorithm on; a message over ~16 KiB (a webhook
/// batch of ~40 events, a sync page) then waited 40 ms for PostgreSQL's
/// delayed acknowledgement (BENCHMARKS.md W8). sqlx 0.9.1 sets `TCP_NODELAY`
/// again; this guards against a dependency update that drops it once more.
#[tokio::test]
async fn pool_connections_run_with_tcp_nodelay() {
    let app = TestApp::spawn_with(|_| {}, plaid_sync::cli::Role::Api).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let port: i32 = sqlx::query_scalar("select inet_client_port()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let port = u16::try_from(port).expect("a TCP connection");

    assert_eq!(nodelay_of_local_port(port), Some(true));
    drop(conn);
    app.stop().await;
}

/// Whether this process's TCP socket bound to local `port` has `TCP_NODELAY`
/// (`None`: no such socket). A connection's local port is what PostgreSQL's
/// `inet_client_port()` reports; sqlx hands out no socket, so this finds it
/// among the process's descriptors.
#[allow(unsafe_code)]
fn nodelay_of_local_port(port: u16) -> Option<bool> {
    use std::os::fd::BorrowedFd;

    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only read (address, one socket option)
        // while the connection that owns it is held by this test.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        if local.is_some_and(|a| a.port() == port) {
            return socket.tcp_nodelay().ok();
        }
    }
    None
}

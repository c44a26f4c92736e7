//! A TCP proxy in front of PostgreSQL that a test can cut, to give one app a
//! database outage without stopping the shared cluster (other tests run beside
//! it). While cut, every proxied connection is closed and new ones are
//! accepted and closed at once, which the app sees exactly like a server that
//! went away: I/O errors mid-query and failed connects.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// What the proxy did, for a drill's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Connections forwarded to PostgreSQL.
    pub forwarded: u64,
    /// Connections closed by a cut.
    pub severed: u64,
    /// Connections closed on arrival while cut.
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    severed: AtomicU64,
    refused: AtomicU64,
}

/// Whether the proxy forwards, and the token every live connection watches:
/// cancelling it closes them all.
struct Gate {
    open: bool,
    live: CancellationToken,
}

/// A running proxy; stops accepting when dropped.
pub struct PgProxy {
    addr: SocketAddr,
    gate: Arc<Mutex<Gate>>,
    counters: Arc<Counters>,
    accept: JoinHandle<()>,
}

impl PgProxy {
    /// Listens on an ephemeral local port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let gate = Arc::new(Mutex::new(Gate {
            open: true,
            live: CancellationToken::new(),
        }));
        let counters = Arc::new(Counters::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            Arc::clone(&gate),
            Arc::clone(&counters),
        ));
        Self {
            addr,
            gate,
            counters,
            accept,
        }
    }

    /// `url` (a `postgres://` URL) pointed at the proxy instead of its host and port.
    pub fn proxied_url(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).expect("a valid database URL");
        url.set_host(Some(&self.addr.ip().to_string())).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }

    /// The outage begins: closes every proxied connection and refuses new ones.
    pub fn cut(&self) {
        let mut gate = self.gate.lock().unwrap();
        gate.open = false;
        gate.live.cancel();
    }

    /// The outage ends: new connections are forwarded again.
    pub fn restore(&self) {
        let mut gate = self.gate.lock().unwrap();
        gate.open = true;
        gate.live = CancellationToken::new();
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> ProxyCounts {
        ProxyCounts {
            forwarded: self.counters.forwarded.load(Ordering::Relaxed),
            severed: self.counters.severed.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
        }
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.gate.lock().unwrap().live.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    gate: Arc<Mutex<Gate>>,
    counters: Arc<Counters>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let live = {
            let gate = gate.lock().unwrap();
            gate.open.then(|| gate.live.clone())
        };
        let Some(live) = live else {
            // Dropping the socket closes it: the client's connect fails.
            counters.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        counters.forwarded.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(forward(client, upstream, live, Arc::clone(&counters)));
    }
}

/// Copies bytes both ways until either side closes or the connection is cut.
async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    live: CancellationToken,
    counters: Arc<Counters>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = live.cancelled() => {
            counters.severed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The address of the PostgreSQL server tests use (`support::db::server_url`).
pub async fn database_server_addr() -> SocketAddr {
    let url = reqwest::Url::parse(&super::db::server_url()).expect("a valid server URL");
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("the database host resolves")
        .next()
        .expect("the database host has an address")
}

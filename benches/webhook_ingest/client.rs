//! The load generator's HTTP client: one keep-alive HTTP/1.1 connection per
//! simulated client, on hyper's connection-level API.
//!
//! Why not `reqwest`: on these 2 cores the load generator shares the CPU with
//! the app and PostgreSQL, so every microsecond it spends is one the service
//! does not get. reqwest's pool, URL parsing and header building cost about
//! as much again as this client per request (measured in BENCHMARKS.md W8);
//! a webhook sender outside the machine (Plaid) costs us nothing. Requests
//! are built from pre-built `Bytes` (no copy of the body per send).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, body::Bytes, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use plaid_sync::http::webhooks::jwt;

/// A pre-built webhook request: exact body bytes and their `Plaid-Verification` JWT.
pub struct Webhook {
    /// The body, as signed.
    pub body: Bytes,
    /// The JWT over it.
    pub jwt: String,
}

/// One client's connection to the app.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Connection {
    /// Opens a connection to `addr` (its driver runs as a task until either side closes).
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(driver);
        Ok(Self {
            sender,
            authority: addr.to_string(),
        })
    }

    /// `count` connections to `addr`, opened together.
    pub async fn open_many(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Self>> {
        futures_util::future::try_join_all((0..count).map(|_| Self::open(addr))).await
    }

    /// Posts one webhook; true for a 200 whose body says `accepted`.
    pub async fn post(&mut self, hook: &Webhook) -> bool {
        let request = Request::post("/webhook/plaid")
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(jwt::HEADER, &hook.jwt)
            .body(Full::new(hook.body.clone()));
        let Ok(request) = request else { return false };
        if self.sender.ready().await.is_err() {
            return false;
        }
        match self.sender.send_request(request).await {
            Ok(response) if response.status() == StatusCode::OK => response
                .into_body()
                .collect()
                .await
                .is_ok_and(|body| body.to_bytes().windows(8).any(|w| w == b"accepted")),
            _ => false,
        }
    }
}

/// Connections shared by an open loop's requests: each request takes an idle
/// one, or opens one when all are busy, and gives it back when answered.
#[derive(Clone)]
pub struct ConnectionPool {
    addr: SocketAddr,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl ConnectionPool {
    /// A pool with `size` connections already open (none is opened on the clock
    /// unless more than `size` requests are in flight).
    pub async fn open(addr: SocketAddr, size: usize) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            idle: Arc::new(Mutex::new(Connection::open_many(addr, size).await?)),
        })
    }

    /// [`Connection::post`] on an idle connection; a connection that failed is dropped.
    pub async fn post(&self, hook: &Webhook) -> bool {
        let idle = self.idle.lock().expect("pool lock").pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => match Connection::open(self.addr).await {
                Ok(connection) => connection,
                Err(_) => return false,
            },
        };
        let ok = connection.post(hook).await;
        if ok {
            self.idle.lock().expect("pool lock").push(connection);
        }
        ok
    }
}

//! Per-queue worker settings and unique worker names.

use std::time::Duration;

use apalis_postgres::Config;

/// How a worker polls and how fast orphans are rescued.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Heartbeat period. It is also the idle poll period for delayed jobs,
    /// which get no NOTIFY; 2 s keeps a `run_after` job within ~2 s of its time.
    pub heartbeat: Duration,
    /// Heartbeats a worker may miss before its jobs are rescued by another:
    /// orphan timeout = `heartbeat × missed_heartbeats` (10 s by default).
    pub missed_heartbeats: usize,
    /// Jobs fetched per round trip (database round trips bound throughput).
    pub batch_size: usize,
    /// Jobs run at once by one worker.
    pub concurrency: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            missed_heartbeats: 5,
            batch_size: 20,
            concurrency: 8,
        }
    }
}

impl WorkerSettings {
    /// The apalis config for `queue`. Always sets the queue explicitly:
    /// `Config::default()` would silently use `"default"`.
    pub fn config(&self, queue: &str) -> Config {
        Config::default()
            .queue(queue)
            .heartbeat_interval(self.heartbeat)
            .missed_heartbeats(self.missed_heartbeats)
            .batch_size(self.batch_size)
    }

    /// How long a dead worker's jobs stay locked before another worker takes them.
    pub fn orphan_timeout(&self) -> Duration {
        self.heartbeat * self.missed_heartbeats as u32
    }
}

/// A worker name unique to this process run: `{queue}-{host}-{pid}-{ulid}`.
/// apalis never rescues orphans of a worker restarted under the same name.
pub fn unique_worker_name(queue: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{queue}-{host}-{}-{}",
        std::process::id(),
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

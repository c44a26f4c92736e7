//! Where the machine's CPU went during a phase: this process, the PostgreSQL
//! backends connected to the bench database, and everything else (the WAL
//! writer, and other people's builds on a shared machine: a large "other"
//! marks a disturbed phase). Used by `webhook_ingest` and `job_drain`
//! (included by path from each, so the benches that print no CPU split do
//! not compile it).

use std::collections::HashMap;

use sqlx::PgPool;

/// CPU counters at one instant, in clock ticks.
pub struct Sample {
    total: u64,
    busy: u64,
    own: u64,
    backends: HashMap<i32, u64>,
}

/// utime + stime of a `/proc/<pid>/stat` line (fields 14 and 15, counted
/// after the parenthesised command name, which may contain spaces).
fn ticks_of(stat: &str) -> u64 {
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// Reads `/proc/stat`, `/proc/self/stat` and the stat of every backend of
/// `database` (zeros where unreadable).
pub async fn sample(pool: &PgPool, database: &str) -> Sample {
    let pids: Vec<i32> = sqlx::query_scalar("select pid from pg_stat_activity where datname = $1")
        .bind(database)
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    let backends = pids
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, ticks_of(&stat)))
        })
        .collect();
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    Sample {
        total,
        busy: total.saturating_sub(idle),
        own: ticks_of(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default()),
        backends,
    }
}

impl Sample {
    /// Shares of the machine's CPU time since `start`, as one line.
    pub fn since(&self, start: &Sample) -> String {
        let total = self.total.saturating_sub(start.total).max(1) as f64;
        let busy = self.busy.saturating_sub(start.busy);
        let own = self.own.saturating_sub(start.own);
        let backends: u64 = self
            .backends
            .iter()
            .map(|(pid, now)| now.saturating_sub(start.backends.get(pid).copied().unwrap_or(0)))
            .sum();
        let pct = |ticks: u64| 100.0 * ticks as f64 / total;
        format!(
            "CPU {:.0} % = bench process {:.0} % + its PostgreSQL backends {:.0} % + other {:.0} %",
            pct(busy),
            pct(own),
            pct(backends),
            pct(busy.saturating_sub(own + backends))
        )
    }
}

//! What a drain read from `apalis.jobs`: sequential scans and the index
//! entries read through each index (PostgreSQL's cumulative statistics),
//! so a drain that slows down with the table's size shows which access path
//! grew.

use std::{collections::BTreeMap, time::Duration};

use sqlx::PgPool;

/// Counters of `apalis.jobs` at one instant.
pub struct Reads {
    seq_scans: i64,
    seq_rows: i64,
    /// Index name → (scans, index entries read).
    indexes: BTreeMap<String, (i64, i64)>,
}

/// Backends publish their counters at most once a second, and when idle:
/// waiting this long after the work lets them land.
const STATS_DELAY: Duration = Duration::from_millis(1_500);

/// Reads the counters (call it after [`settle`] when work just ended).
pub async fn sample(pool: &PgPool) -> anyhow::Result<Reads> {
    let (seq_scans, seq_rows): (i64, i64) = sqlx::query_as(
        "select coalesce(seq_scan, 0), coalesce(seq_tup_read, 0) from pg_stat_user_tables
         where relid = 'apalis.jobs'::regclass",
    )
    .fetch_one(pool)
    .await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "select indexrelname::text, coalesce(idx_scan, 0), coalesce(idx_tup_read, 0)
         from pg_stat_user_indexes where relid = 'apalis.jobs'::regclass",
    )
    .fetch_all(pool)
    .await?;
    Ok(Reads {
        seq_scans,
        seq_rows,
        indexes: rows
            .into_iter()
            .map(|(name, scans, read)| (name, (scans, read)))
            .collect(),
    })
}

/// Waits until the backends have published what they did.
pub async fn settle() {
    tokio::time::sleep(STATS_DELAY).await;
}

impl Reads {
    /// What was read since `start`, per job: `seq scans 0 (0 rows); idx_a 3.1 scans 250 entries; ...`
    /// (indexes with no scans left out).
    pub fn per_job_since(&self, start: &Reads, jobs: usize) -> String {
        let per = |v: i64| v as f64 / jobs.max(1) as f64;
        let mut parts = vec![format!(
            "seq scans {} ({:.0} rows/job)",
            self.seq_scans - start.seq_scans,
            per(self.seq_rows - start.seq_rows)
        )];
        for (name, (scans, read)) in &self.indexes {
            let (scans0, read0) = start.indexes.get(name).copied().unwrap_or((0, 0));
            if scans - scans0 > 0 {
                parts.push(format!(
                    "{name} {:.2} scans {:.1} entries",
                    per(scans - scans0),
                    per(read - read0)
                ));
            }
        }
        parts.join("; ")
    }
}

//! Repair actions on job rows that the apalis board lacks.

use sqlx::PgConnection;

/// Result of a repair action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The job was changed.
    Done,
    /// No job with this id.
    NotFound,
    /// The job exists but is in a status the action does not apply to.
    WrongStatus,
}

/// Puts a `Failed` or `Killed` job back to `Pending` to run now, with its attempts reset.
pub async fn retry(conn: &mut PgConnection, job_id: &str) -> Result<RepairOutcome, sqlx::Error> {
    let updated = sqlx::query(
        "update apalis.jobs
         set status = 'Pending', attempts = 0, run_at = now(), lock_by = null, lock_at = null, done_at = null
         where id = $1 and status in ('Failed', 'Killed')",
    )
    .bind(job_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    outcome(conn, job_id, updated).await
}

/// Kills a job that has not started (`Pending`), so no worker ever runs it.
pub async fn kill(conn: &mut PgConnection, job_id: &str) -> Result<RepairOutcome, sqlx::Error> {
    let updated = sqlx::query(
        "update apalis.jobs
         set status = 'Killed', done_at = now(), last_result = '{\"Err\": \"killed by an operator\"}'::jsonb
         where id = $1 and status = 'Pending'",
    )
    .bind(job_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    outcome(conn, job_id, updated).await
}

async fn outcome(conn: &mut PgConnection, job_id: &str, updated: u64) -> Result<RepairOutcome, sqlx::Error> {
    if updated == 1 {
        return Ok(RepairOutcome::Done);
    }
    let exists: bool = sqlx::query_scalar("select exists (select 1 from apalis.jobs where id = $1)")
        .bind(job_id)
        .fetch_one(conn)
        .await?;
    Ok(if exists {
        RepairOutcome::WrongStatus
    } else {
        RepairOutcome::NotFound
    })
}

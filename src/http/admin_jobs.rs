//! Operator repair actions on job rows: `POST /api/admin/jobs/{job_id}/retry|kill`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Serialize;
use workflows::jobs::admin::{self, RepairOutcome};

use super::error::{AppError, AppResult};
use crate::state::AppState;

/// Answer of a repair action.
#[derive(Debug, Serialize)]
pub struct Repaired {
    /// The job.
    pub job_id: String,
    /// Its new status.
    pub status: &'static str,
}

fn answer(
    job_id: String,
    outcome: RepairOutcome,
    status: &'static str,
    from: &str,
) -> AppResult<Json<Repaired>> {
    match outcome {
        RepairOutcome::Done => Ok(Json(Repaired { job_id, status })),
        RepairOutcome::NotFound => Err(AppError::NotFound("job")),
        RepairOutcome::WrongStatus => Err(AppError::status(
            StatusCode::CONFLICT,
            "job_wrong_status",
            format!("only {from} jobs can be changed this way"),
        )),
    }
}

/// Retries a failed or killed job now.
pub async fn retry(State(state): State<AppState>, Path(job_id): Path<String>) -> AppResult<Json<Repaired>> {
    let mut conn = state.pool.acquire().await?;
    let outcome = admin::retry(&mut conn, &job_id).await?;
    answer(job_id, outcome, "Pending", "Failed or Killed")
}

/// Kills a job that has not started.
pub async fn kill(State(state): State<AppState>, Path(job_id): Path<String>) -> AppResult<Json<Repaired>> {
    let mut conn = state.pool.acquire().await?;
    let outcome = admin::kill(&mut conn, &job_id).await?;
    answer(job_id, outcome, "Killed", "Pending")
}

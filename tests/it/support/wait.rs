//! Waiting for a condition with a deadline, instead of sleeping a guessed time.

use std::{future::Future, time::Duration};

/// Polls `condition` every 50 ms until it returns `Some`, or panics with
/// `what` after `timeout`. Used where the signal is a database state written by
/// another task or process (a job row finishing, a worker picking up work).
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

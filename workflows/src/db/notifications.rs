//! `notifications`: local notifications to users.

use serde_json::Value;
use sqlx::PgConnection;

/// Writes a notification once: a second call with the same `dedupe_key`
/// writes nothing (a repeated workflow step is harmless). True when written.
pub async fn notify_once(
    conn: &mut PgConnection,
    user_id: i64,
    plaid_item_id: Option<i64>,
    kind: &str,
    payload: &Value,
    dedupe_key: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "insert into notifications (user_id, plaid_item_id, kind, payload, dedupe_key)
         values ($1, $2, $3, $4, $5) on conflict (dedupe_key) do nothing",
    )
    .bind(user_id)
    .bind(plaid_item_id)
    .bind(kind)
    .bind(payload)
    .bind(dedupe_key)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written == 1)
}

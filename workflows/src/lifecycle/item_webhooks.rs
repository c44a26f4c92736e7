//! What ITEM webhooks do to an item (PLAID.md §4.2).
//!
//! | code | effect |
//! | --- | --- |
//! | `ERROR` with a needs-reauth error | `needs_reauth` (+ notification once) |
//! | `ERROR` with another error | recorded as `last_sync_error` |
//! | `USER_PERMISSION_REVOKED` | `needs_reauth`, terminal for sync (+ notification) |
//! | `PENDING_EXPIRATION` | `consent_expires_at` recorded (+ notification once per deadline) |
//! | `PENDING_DISCONNECT` | `pending_disconnect_at` recorded (+ notification once per deadline) |
//! | `LOGIN_REPAIRED` | back to `sync_needed`, catch-up sync queued |
//! | `NEW_ACCOUNTS_AVAILABLE` | `new_accounts_available` flag (+ notification) |
//! | others | stored only |

use serde_json::{Value, json};
use sqlx::PgConnection;

use super::reauth;
use crate::{
    db::notifications::notify_once,
    jobs::EnqueueError,
    plaid::{ErrorClass, types::ErrorBody},
};

/// Acts on an ITEM webhook. `false` when its item is unknown (the event stays
/// unprocessed, for replay) or the code needs no action.
pub async fn act(conn: &mut PgConnection, body: &Value) -> Result<bool, EnqueueError> {
    let db = |e: sqlx::Error| EnqueueError::Push(e.into());
    let text = |field: &str| body.get(field).and_then(Value::as_str);
    let (Some(item_id), Some(code)) = (text("item_id"), text("webhook_code")) else {
        return Ok(false);
    };
    let item: Option<(i64, i64)> =
        sqlx::query_as("select id, user_id from plaid_items where item_id = $1 and lifecycle <> 'removed'")
            .bind(item_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some((id, user_id)) = item else {
        return Ok(false);
    };

    match code {
        "ERROR" => {
            let error = body
                .get("error")
                .cloned()
                .and_then(|e| serde_json::from_value::<ErrorBody>(e).ok());
            let Some(error) = error else { return Ok(false) };
            let message = if error.error_message.is_empty() {
                error.error_code.clone()
            } else {
                error.error_message.clone()
            };
            if error.class() == ErrorClass::NeedsReauth {
                reauth::enter(conn, id, &error.error_code, &message)
                    .await
                    .map_err(db)?;
            } else {
                sqlx::query(
                    "update plaid_items set last_error_code = $2, last_sync_error = $3 where id = $1",
                )
                .bind(id)
                .bind(&error.error_code)
                .bind(&message)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            }
        }
        "USER_PERMISSION_REVOKED" => {
            let message = "the user revoked this application's access at Plaid; link the bank again";
            reauth::enter(conn, id, "USER_PERMISSION_REVOKED", message)
                .await
                .map_err(db)?;
        }
        "PENDING_EXPIRATION" | "PENDING_DISCONNECT" => {
            let (column, field, kind) = if code == "PENDING_EXPIRATION" {
                (
                    "consent_expires_at",
                    "consent_expiration_time",
                    "consent_expiring",
                )
            } else {
                ("pending_disconnect_at", "disconnect_time", "disconnect_pending")
            };
            let deadline = text(field).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let deadline = deadline.map(|d| d.with_timezone(&chrono::Utc));
            // The column name comes from the two literals above, never from input.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "update plaid_items set {column} = $2 where id = $1"
            )))
            .bind(id)
            .bind(deadline)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let when = deadline.map(|d| d.to_rfc3339()).unwrap_or_default();
            notify_once(
                conn,
                user_id,
                Some(id),
                kind,
                &json!({ "item_id": item_id, "deadline": deadline, "reason": text("reason") }),
                &format!("{kind}:{id}:{when}"),
            )
            .await
            .map_err(db)?;
        }
        "LOGIN_REPAIRED" => {
            reauth::leave(conn, id).await?;
        }
        "NEW_ACCOUNTS_AVAILABLE" => {
            let flagged = sqlx::query(
                "update plaid_items set new_accounts_available = true where id = $1 and not new_accounts_available",
            )
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
            if flagged == 1 {
                let key = format!("new_accounts_available:{id}:{}", chrono::Utc::now().timestamp());
                notify_once(
                    conn,
                    user_id,
                    Some(id),
                    "new_accounts_available",
                    &json!({ "item_id": item_id }),
                    &key,
                )
                .await
                .map_err(db)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

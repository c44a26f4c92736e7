//! `users` and `api_tokens`.

use sqlx::PgConnection;

/// A user of the service.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// Internal id; also Plaid's `client_user_id` (no PII leaves us).
    pub id: i64,
    /// The user's email, unique.
    pub email: String,
}

/// Inserts a user; `None` when the email is taken.
pub async fn insert_user(conn: &mut PgConnection, email: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("insert into users (email) values ($1) on conflict (email) do nothing returning id, email")
        .bind(email)
        .fetch_optional(conn)
        .await
}

/// Finds a user by email.
pub async fn find_user_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("select id, email from users where email = $1")
        .bind(email)
        .fetch_optional(conn)
        .await
}

/// Stores the digest of a new API token; returns the token row id.
pub async fn insert_api_token(
    conn: &mut PgConnection,
    user_id: i64,
    token_sha256: &[u8; 32],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("insert into api_tokens (user_id, token_sha256) values ($1, $2) returning id")
        .bind(user_id)
        .bind(&token_sha256[..])
        .fetch_one(conn)
        .await
}

/// The user owning a non-revoked token with this digest, marking it used.
///
/// `last_used_at` is only written when it is more than a minute old, so a busy
/// client does not turn every authenticated read into a write.
pub async fn user_for_token_digest(
    conn: &mut PgConnection,
    token_sha256: &[u8; 32],
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(
        "with token as (
             select id, user_id from api_tokens
             where token_sha256 = $1 and revoked_at is null
         ), touched as (
             update api_tokens set last_used_at = now()
             where id = (select id from token)
               and (last_used_at is null or last_used_at < now() - interval '1 minute')
         )
         select u.id, u.email from users u join token t on t.user_id = u.id",
    )
    .bind(&token_sha256[..])
    .fetch_optional(conn)
    .await
}

/// Revokes a token by id; true when it was active.
pub async fn revoke_api_token(conn: &mut PgConnection, token_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("update api_tokens set revoked_at = now() where id = $1 and revoked_at is null")
        .bind(token_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

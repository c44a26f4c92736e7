//! Link and items: `POST /api/plaid/link-token`, `POST /api/plaid/exchange-token`,
//! `GET /api/plaid/items`.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::{
    db::items,
    link::{self, LinkError},
    plaid::{
        AccessToken, ErrorClass, PlaidError,
        types::{LinkTokenCreateRequest, Product},
    },
};

use super::{
    auth::AuthUser,
    error::{AppError, AppResult},
    json_body,
};
use crate::state::AppState;

/// The name Link shows the user.
const CLIENT_NAME: &str = "plaid-sync";

/// Body of `POST /api/plaid/link-token`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LinkTokenRequest {
    /// An item of the caller: Link in update mode (reauthentication) for it.
    pub item_id: Option<String>,
}

/// A Link token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkToken {
    /// Hand it to Plaid Link.
    pub link_token: String,
    /// When it stops working.
    pub expiration: chrono::DateTime<chrono::Utc>,
}

/// A Plaid failure as an answer: user errors are 4xx, Plaid's troubles 502.
fn plaid_error(e: PlaidError) -> AppError {
    let code = e.error_code().unwrap_or("").to_owned();
    match (e.class(), code.as_str()) {
        (_, "INVALID_PUBLIC_TOKEN") => AppError::status(
            StatusCode::BAD_REQUEST,
            "invalid_public_token",
            "the public token is invalid or expired; run Link again",
        ),
        (ErrorClass::NeedsReauth, _) => AppError::status(
            StatusCode::CONFLICT,
            "item_needs_reauth",
            format!("Plaid says the item needs the user to log in again ({code})"),
        ),
        (ErrorClass::Terminal, _) => AppError::status(
            StatusCode::GONE,
            "item_unusable",
            format!("Plaid says the item can no longer be used ({code})"),
        ),
        (ErrorClass::Retryable, _) => AppError::status(
            StatusCode::BAD_GATEWAY,
            "plaid_unavailable",
            format!(
                "Plaid is unavailable right now ({}); retry later",
                if code.is_empty() { "no answer" } else { &code }
            ),
        ),
        (ErrorClass::Developer, _) => {
            tracing::error!(error = %e, "Plaid refused our request");
            AppError::status(
                StatusCode::BAD_GATEWAY,
                "plaid_error",
                "Plaid refused the request; see the server logs",
            )
        }
    }
}

/// Creates a Link token: a new link, or update mode for one of the caller's items.
#[utoipa::path(post, path = "/api/plaid/link-token", tag = "plaid", security(("api_token" = [])),
    request_body(content = LinkTokenRequest, description = "Optional: item_id for update mode"),
    responses(
        (status = 200, description = "A Link token", body = LinkToken),
        (status = 400, description = "Malformed body", body = super::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody),
        (status = 404, description = "No such item of the caller", body = super::error::ErrorBody),
        (status = 410, description = "The item was removed; link the bank again", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody),
        (status = 502, description = "Plaid failed", body = super::error::ErrorBody)))]
pub async fn link_token(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Result<Option<Json<serde_json::Value>>, JsonRejection>,
) -> AppResult<Json<LinkToken>> {
    let request: LinkTokenRequest = json_body::optional(body)?;
    let client_user_id = user.id.to_string();
    let plaid_request = match request.item_id {
        None => {
            let mut r = LinkTokenCreateRequest::new(CLIENT_NAME, client_user_id, vec![Product::Transactions]);
            r.webhook = state.config.plaid.webhook_url.clone();
            r
        }
        Some(item_id) => {
            let mut conn = state.pool.acquire().await?;
            let item = items::find_owned(&mut conn, user.id, &item_id)
                .await?
                .ok_or(AppError::NotFound("item"))?;
            let secret_ref = item
                .secret_ref
                .filter(|_| item.lifecycle != "removed")
                .ok_or_else(|| {
                    AppError::status(
                        StatusCode::GONE,
                        "item_removed",
                        "this item was removed; link the bank again",
                    )
                })?;
            let token = state
                .secrets
                .get(&mut conn, &secret_ref)
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
            LinkTokenCreateRequest::update_mode(CLIENT_NAME, client_user_id, AccessToken::new(token.expose()))
        }
    };
    let response = state
        .plaid
        .link_token_create(&plaid_request)
        .await
        .map_err(plaid_error)?;
    Ok(Json(LinkToken {
        link_token: response.link_token,
        expiration: response.expiration,
    }))
}

/// Body of `POST /api/plaid/exchange-token`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// The public token Link returned.
    pub public_token: String,
}

/// An account of a linked item.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedAccount {
    /// Internal account id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Last digits.
    pub mask: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Subtype.
    pub subtype: Option<String>,
}

/// A linked item.
#[derive(Debug, Serialize, ToSchema)]
pub struct Exchanged {
    /// Plaid's item id.
    pub item_id: String,
    /// Its accounts.
    pub accounts: Vec<LinkedAccount>,
}

/// Exchanges a public token: 201 for a new item, 200 for one we already had
/// (reauth: the secret is replaced, the item returns to `sync_needed`).
#[utoipa::path(post, path = "/api/plaid/exchange-token", tag = "plaid", security(("api_token" = [])),
    request_body = ExchangeRequest,
    responses(
        (status = 201, description = "New item linked", body = Exchanged),
        (status = 200, description = "Existing item relinked", body = Exchanged),
        (status = 400, description = "Malformed body or invalid public token", body = super::error::ErrorBody),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody),
        (status = 404, description = "The item belongs to another user", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = super::error::ErrorBody),
        (status = 502, description = "Plaid failed; nothing was stored", body = super::error::ErrorBody)))]
pub async fn exchange_token(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> AppResult<(StatusCode, Json<Exchanged>)> {
    let request: ExchangeRequest = json_body::required(body)?;
    if request.public_token.trim().is_empty() {
        return Err(AppError::status(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "public_token must not be empty",
        ));
    }
    let linked = link::exchange_public_token(
        &state.pool,
        &state.plaid,
        &state.secrets,
        user.id,
        request.public_token.trim(),
    )
    .await
    .map_err(|e| match e {
        LinkError::Plaid(e) => plaid_error(e),
        LinkError::NotYours => AppError::NotFound("item"),
        LinkError::Database(e) => AppError::from(e),
        other => AppError::Internal(other.into()),
    })?;
    let status = if linked.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let accounts = linked
        .accounts
        .into_iter()
        .map(|(id, a)| LinkedAccount {
            id,
            name: a.name,
            mask: a.mask,
            kind: a.account_type.as_str().to_owned(),
            subtype: a.subtype,
        })
        .collect();
    tracing::info!(item_id = %linked.item_id, created = linked.created, "item linked");
    Ok((
        status,
        Json(Exchanged {
            item_id: linked.item_id,
            accounts,
        }),
    ))
}

/// The caller's items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    /// Items, oldest first, with their accounts.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<items::ItemView>,
}

/// The caller's items with sync status, lifecycle, timestamps, last error and accounts.
#[utoipa::path(get, path = "/api/plaid/items", tag = "plaid", security(("api_token" = [])),
    responses(
        (status = 200, description = "The caller's items", body = ItemList),
        (status = 401, description = "Missing or invalid API token", body = super::error::ErrorBody)))]
pub async fn list_items(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> AppResult<Json<ItemList>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(ItemList {
        items: items::list_for_user(&mut conn, user.id).await?,
    }))
}

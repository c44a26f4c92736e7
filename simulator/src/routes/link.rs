//! `/link/token/create` and `/item/public_token/exchange`.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Ctx, validate_products, validate_webhook_url};
use crate::plaid_error::ApiError;
use crate::request::str_in;
use crate::state::{LinkToken, SimState};

/// New-item link tokens last 4 hours, update-mode ones 30 minutes (PLAID.md §6).
const NEW_ITEM_TTL: chrono::Duration = chrono::Duration::hours(4);
const UPDATE_MODE_TTL: chrono::Duration = chrono::Duration::minutes(30);

pub(super) fn link_token_create(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let req = &ctx.req;
    req.str("client_name")?;
    req.str("language")?;
    let countries = req.strings("country_codes")?.unwrap_or_default();
    if countries.is_empty() {
        return Err(ApiError::invalid_field(
            "country_codes must contain at least one country",
        ));
    }
    match (req.object("user")?, req.str("user_id")?) {
        (Some(user), _) => {
            if str_in(user, "client_user_id", "user.client_user_id")?.is_none() {
                return Err(ApiError::missing_fields(&["user.client_user_id"]));
            }
        }
        (None, Some(_)) => {}
        (None, None) => return Err(ApiError::missing_fields(&["user"])),
    }
    let webhook = req.str("webhook")?.map(str::to_owned);
    if let Some(url) = &webhook {
        validate_webhook_url("webhook", url)?;
    }
    let update_item = match req.str("access_token")? {
        Some(token) => Some(st.resolve_access_token(token)?),
        None => None,
    };
    let products = req.strings("products")?.unwrap_or_default();
    if update_item.is_none() {
        if !req.has("products") {
            return Err(ApiError::missing_fields(&["products"]));
        }
        validate_products("products", &products)?;
    }
    let ttl = if update_item.is_some() {
        UPDATE_MODE_TTL
    } else {
        NEW_ITEM_TTL
    };
    let expires_at = Utc::now() + ttl;
    let link_token = st.ids.token("link");
    st.link_tokens.insert(
        link_token.clone(),
        LinkToken {
            expires_at,
            // `webhook` has no effect in update mode (PLAID.md §6).
            webhook: if update_item.is_some() { None } else { webhook },
            products,
            update_item,
        },
    );
    Ok(json!({
        "link_token": link_token,
        "expiration": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}

pub(super) fn public_token_exchange(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let token = ctx.req.str("public_token")?.unwrap_or_default();
    let (item_id, access_token) = st
        .exchange_public_token(token)
        .ok_or_else(|| ApiError::code("INVALID_PUBLIC_TOKEN"))?;
    Ok(json!({"access_token": access_token, "item_id": item_id}))
}

//! `/sandbox/public_token/create`, `/sandbox/item/fire_webhook`, `/sandbox/item/reset_login`.

use serde_json::{Value, json};

use super::{Ctx, validate_products, validate_webhook_url};
use crate::plaid_error::ApiError;
use crate::request::str_in;
use crate::state::SimState;
use crate::webhooks::WebhookEvent;

pub(super) fn public_token_create(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let institution_id = ctx.req.str("institution_id")?.map(str::to_owned);
    let products = ctx.req.strings("initial_products")?.unwrap_or_default();
    validate_products("initial_products", &products)?;
    let webhook = match ctx.req.object("options")? {
        Some(options) => str_in(options, "webhook", "options.webhook")?.map(str::to_owned),
        None => None,
    };
    if let Some(url) = &webhook {
        validate_webhook_url("options.webhook", url)?;
    }
    let created = st.create_linked_item(institution_id, products, webhook);
    let public_token = st.issue_public_token(&created.item_id);
    Ok(json!({"public_token": public_token}))
}

/// Maps the sandbox `webhook_code` to the event we send. Codes for products the simulator does
/// not model are rejected rather than silently ignored.
fn event_for(code: &str) -> Option<WebhookEvent> {
    Some(match code {
        "SYNC_UPDATES_AVAILABLE" => WebhookEvent::sync_updates_available(),
        "DEFAULT_UPDATE" => WebhookEvent::DefaultUpdate { new_transactions: 0 },
        "NEW_ACCOUNTS_AVAILABLE" => WebhookEvent::NewAccountsAvailable,
        "USER_PERMISSION_REVOKED" => WebhookEvent::UserPermissionRevoked,
        "USER_ACCOUNT_REVOKED" => WebhookEvent::UserAccountRevoked { account_id: None },
        "PENDING_DISCONNECT" => WebhookEvent::PendingDisconnect {
            reason: None,
            disconnect_time: None,
        },
        "LOGIN_REPAIRED" => WebhookEvent::LoginRepaired,
        "ERROR" => WebhookEvent::ItemError { error: None },
        _ => return None,
    })
}

pub(super) fn fire_webhook(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let item_id = ctx.item_id();
    let code = ctx.req.str("webhook_code")?.unwrap_or_default();
    let event = event_for(code).ok_or_else(|| {
        ApiError::invalid_field(format!("webhook_code {code} is not supported by the simulator"))
    })?;
    let (expected_type, _) = event.type_and_code();
    if let Some(given) = ctx.req.str("webhook_type")?
        && given != expected_type
    {
        return Err(ApiError::invalid_field(format!(
            "webhook_type {given} does not match webhook_code {code}"
        )));
    }
    if st.items[&item_id].webhook.is_none() {
        return Err(ApiError::code("SANDBOX_WEBHOOK_INVALID"));
    }
    st.queue_webhook(&item_id, &event);
    Ok(json!({"webhook_fired": true}))
}

pub(super) fn reset_login(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    st.reset_login(&ctx.item_id())
        .map_err(|_| ApiError::code("INVALID_ACCESS_TOKEN"))?;
    Ok(json!({"reset_login": true}))
}

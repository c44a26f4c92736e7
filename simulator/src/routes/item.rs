//! `/item/get`, `/item/remove` and `/item/webhook/update`.

use serde_json::{Value, json};

use super::{Ctx, item_json, validate_webhook_url};
use crate::plaid_error::ApiError;
use crate::state::SimState;
use crate::webhooks::WebhookEvent;

/// Returns the item even when it is in error: `/item/get` is where Plaid reports
/// `item.error` (PLAID.md §6).
pub(super) fn item_get(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let item = &st.items[&ctx.item_id()];
    let last_webhook = item
        .last_webhook
        .as_ref()
        .map(|(at, code)| json!({"sent_at": at, "code_sent": code}));
    Ok(json!({
        "item": item_json(item, true),
        "status": {
            "transactions": {
                "last_successful_update": item.last_successful_update,
                "last_failed_update": null,
            },
            "last_webhook": last_webhook,
        },
    }))
}

pub(super) fn item_remove(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    st.remove_item(&ctx.item_id())
        .map_err(|_| ApiError::code("INVALID_ACCESS_TOKEN"))?;
    Ok(json!({}))
}

/// A `null` (or absent) `webhook` removes the URL; a new URL gets
/// `WEBHOOK_UPDATE_ACKNOWLEDGED`.
pub(super) fn item_webhook_update(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let item_id = ctx.item_id();
    let url = ctx.req.str("webhook")?.map(str::to_owned);
    if let Some(url) = &url {
        validate_webhook_url("webhook", url)?;
    }
    let item = st.items.get_mut(&item_id).expect("resolved items exist");
    item.webhook.clone_from(&url);
    if let Some(url) = url {
        let event = WebhookEvent::WebhookUpdateAcknowledged {
            new_webhook_url: url.clone(),
        };
        st.queue_webhook_to(&url, &item_id, &event);
    }
    Ok(json!({"item": item_json(&st.items[&item_id], false)}))
}

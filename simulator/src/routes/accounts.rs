//! `/accounts/get`.

use serde_json::{Value, json};

use super::{Ctx, account_json, item_error, item_json};
use crate::plaid_error::ApiError;
use crate::request::strings_in;
use crate::state::SimState;

pub(super) fn accounts_get(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let item = &st.items[&ctx.item_id()];
    item_error(item)?;
    let wanted = match ctx.req.object("options")? {
        Some(options) => strings_in(options, "account_ids", "options.account_ids")?,
        None => None,
    };
    if let Some(ids) = &wanted
        && ids.iter().any(|id| !item.has_account(id))
    {
        return Err(ApiError::code("INVALID_ACCOUNT_ID"));
    }
    let accounts: Vec<Value> = item
        .accounts
        .iter()
        .filter(|a| wanted.as_ref().is_none_or(|ids| ids.contains(&a.account_id)))
        .map(account_json)
        .collect();
    Ok(json!({"accounts": accounts, "item": item_json(item, false)}))
}

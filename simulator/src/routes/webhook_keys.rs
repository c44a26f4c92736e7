//! `/webhook_verification_key/get`.

use serde_json::{Value, json};

use super::Ctx;
use crate::plaid_error::ApiError;
use crate::state::SimState;

/// Serves current and rotated-out keys alike (the latter with `expired_at` set), so verifiers
/// can decide what to do with an expired key.
pub(super) fn webhook_verification_key_get(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let kid = ctx.req.str("key_id")?.unwrap_or_default();
    let jwk = st
        .keys
        .jwk(kid)
        .ok_or_else(|| ApiError::code("INVALID_WEBHOOK_VERIFICATION_KEY_ID"))?;
    Ok(json!({"key": jwk}))
}

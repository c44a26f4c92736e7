//! Item state transitions that are not a sync: the reauth transition and what
//! ITEM webhooks do. Each step is a guarded state change (compare-and-set on
//! the item's status) committed with whatever it enqueues, so a repeated or
//! duplicated step is harmless.

pub mod item_webhooks;
pub mod reauth;

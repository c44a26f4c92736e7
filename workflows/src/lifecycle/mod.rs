//! Item state transitions that are not a sync: the reauth transition and what
//! ITEM webhooks do. Each step is a guarded state change (compare-and-set on
//! the item's status) committed with whatever it enqueues, so a repeated or
//! duplicated step is harmless.
//!
//! Unlink and dormant-item cleanup (removing items at Plaid) follow the same
//! rule with their workflow state in `item_removals`: [`unlink`], [`cleanup`],
//! [`removal`].

pub mod cleanup;
pub mod item_webhooks;
pub mod reauth;
pub mod removal;
pub mod unlink;

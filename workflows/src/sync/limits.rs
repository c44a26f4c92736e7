//! Client-side pacing of `/transactions/sync` under Plaid's limits
//! (PLAID.md §7.2: 50 calls/min per item, 2,500/min per client in
//! production), so a busy process slows itself down instead of collecting
//! 429s. Per process: several processes share Plaid's per-client budget, and
//! a 429 that still happens is retried durably with at least a minute's wait.

use std::{num::NonZeroU32, sync::Arc};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Rate limiters for sync calls.
#[derive(Debug, Clone)]
pub struct SyncLimits {
    per_item: Arc<DefaultKeyedRateLimiter<i64>>,
    per_client: Arc<DefaultDirectRateLimiter>,
}

impl SyncLimits {
    /// Limits of `per_item_per_minute` and `per_client_per_minute` calls.
    pub fn new(per_item_per_minute: u32, per_client_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("non-zero"));
        Self {
            per_item: Arc::new(RateLimiter::keyed(quota(per_item_per_minute))),
            per_client: Arc::new(RateLimiter::direct(quota(per_client_per_minute))),
        }
    }

    /// Plaid production's published limits.
    pub fn plaid_production() -> Self {
        Self::new(50, 2_500)
    }

    /// Waits until a sync call for `plaid_item_id` fits both limits.
    pub async fn wait_for_sync_call(&self, plaid_item_id: i64) {
        self.per_item.until_key_ready(&plaid_item_id).await;
        self.per_client.until_ready().await;
    }
}

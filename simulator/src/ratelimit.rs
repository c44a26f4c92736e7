//! Per-item sliding-window rate limit for `/transactions/sync` (Plaid: 50 calls per item per
//! minute, PLAID.md §7.2). A plain window of timestamps is exact and easy to reason about in
//! tests, which matters more here than memory.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<u32>,
    window: Duration,
    calls: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: Option<u32>, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            calls: HashMap::new(),
        }
    }

    pub(crate) fn set_limit(&mut self, limit: Option<u32>) {
        self.limit = limit;
        self.calls.clear();
    }

    pub(crate) fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// Records a call for `key` if it is within the limit; `false` means "answer 429". Rejected
    /// calls are not counted, so a client that backs off regains access one window after its
    /// earliest accepted call.
    pub(crate) fn try_acquire(&mut self, key: &str, now: Instant) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        let calls = self.calls.entry(key.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            calls.pop_front();
        }
        if calls.len() >= limit as usize {
            return false;
        }
        calls.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let mut rl = RateLimiter::new(Some(2), Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(rl.try_acquire("a", t0));
        assert!(rl.try_acquire("a", t0 + Duration::from_secs(1)));
        assert!(!rl.try_acquire("a", t0 + Duration::from_secs(2)));
        assert!(rl.try_acquire("b", t0 + Duration::from_secs(2)));
        assert!(rl.try_acquire("a", t0 + Duration::from_secs(60)));
        assert!(!rl.try_acquire("a", t0 + Duration::from_secs(60)));
    }
}

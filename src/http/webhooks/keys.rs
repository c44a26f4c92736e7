//! The cache of Plaid's webhook verification keys, by `kid`.
//!
//! The webhook path must not call Plaid in the steady state (Plaid gives us
//! 10 s; we aim for milliseconds), so keys are cached. A key is re-fetched
//! after [`KEY_TTL`] so that an `expired_at` Plaid sets on a rotated key is
//! noticed; a `kid` Plaid does not know is remembered for [`MISS_TTL`], and
//! fetches are rate-limited, so forged tokens with random `kid`s cannot turn
//! our endpoint into a flood of calls to Plaid.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use jsonwebtoken::DecodingKey;
use tokio::sync::RwLock;
use workflows::plaid::{PlaidClient, PlaidError, types::WebhookVerificationKeyGetRequest};

use super::verify::Rejection;

/// How long a valid key is trusted before it is fetched again.
pub const KEY_TTL: Duration = Duration::from_secs(3600);
/// How long an unknown or expired `kid` is answered from the cache.
pub const MISS_TTL: Duration = Duration::from_secs(60);
/// Key fetches allowed per minute (all `kid`s together).
const FETCHES_PER_MINUTE: u32 = 30;

#[derive(Clone)]
enum Entry {
    Valid { key: DecodingKey, fetched: Instant },
    Refused { rejection: Rejection, at: Instant },
}

/// Verification keys by `kid`.
#[derive(Clone)]
pub struct KeyCache {
    plaid: Arc<PlaidClient>,
    entries: Arc<RwLock<HashMap<String, Entry>>>,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl KeyCache {
    /// An empty cache fetching from `plaid`.
    pub fn new(plaid: Arc<PlaidClient>) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(FETCHES_PER_MINUTE).expect("non-zero"));
        Self {
            plaid,
            entries: Arc::new(RwLock::new(HashMap::new())),
            limiter: Arc::new(RateLimiter::direct(quota)),
        }
    }

    /// The key for `kid`, from the cache or from Plaid.
    pub async fn get(&self, kid: &str) -> Result<DecodingKey, Rejection> {
        if let Some(entry) = self.entries.read().await.get(kid) {
            match entry {
                Entry::Valid { key, fetched } if fetched.elapsed() < KEY_TTL => return Ok(key.clone()),
                Entry::Refused { rejection, at } if at.elapsed() < MISS_TTL => return Err(*rejection),
                _ => {}
            }
        }
        if self.limiter.check().is_err() {
            return Err(Rejection::KeyUnavailable);
        }
        let entry = self.fetch(kid).await?;
        self.entries.write().await.insert(kid.to_owned(), entry.clone());
        match entry {
            Entry::Valid { key, .. } => Ok(key),
            Entry::Refused { rejection, .. } => Err(rejection),
        }
    }

    /// Fetches `kid`; transient failures are not cached.
    async fn fetch(&self, kid: &str) -> Result<Entry, Rejection> {
        let request = WebhookVerificationKeyGetRequest {
            key_id: kid.to_owned(),
        };
        let refused = |rejection| {
            Ok(Entry::Refused {
                rejection,
                at: Instant::now(),
            })
        };
        match self.plaid.webhook_verification_key_get(&request).await {
            Ok(response) => {
                let jwk = response.key;
                if jwk.expired_at.is_some() {
                    return refused(Rejection::ExpiredKey);
                }
                if jwk.alg != "ES256" || jwk.kty != "EC" || jwk.crv != "P-256" {
                    return refused(Rejection::BadAlgorithm);
                }
                match DecodingKey::from_ec_components(&jwk.x, &jwk.y) {
                    Ok(key) => Ok(Entry::Valid {
                        key,
                        fetched: Instant::now(),
                    }),
                    Err(_) => refused(Rejection::UnknownKey),
                }
            }
            Err(PlaidError::Api(e)) if e.error_code == "INVALID_WEBHOOK_VERIFICATION_KEY_ID" => {
                refused(Rejection::UnknownKey)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch a webhook verification key");
                Err(Rejection::KeyUnavailable)
            }
        }
    }
}

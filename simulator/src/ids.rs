//! Identifier and token generation.
//!
//! Plaid's ids are opaque, case-sensitive, 37-character alphanumeric strings and its tokens look
//! like `access-sandbox-<uuid>`. We copy those shapes so that a client which accidentally depends
//! on a length or a prefix behaves the same against the simulator as against Sandbox.

use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Length of Plaid's item, account and transaction ids in every example we have seen.
const OPAQUE_ID_LEN: usize = 37;

/// Generates ids from one RNG so that a seeded simulator hands out the same ids for the same
/// sequence of calls (useful for reproducible demos and chaos drills).
pub(crate) struct IdGen {
    rng: StdRng,
}

impl IdGen {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self { rng }
    }

    /// An item, account or transaction id.
    pub(crate) fn opaque(&mut self) -> String {
        (0..OPAQUE_ID_LEN)
            .map(|_| char::from(self.rng.sample(Alphanumeric)))
            .collect()
    }

    /// A random (v4-shaped) UUID drawn from the seeded RNG.
    pub(crate) fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.r#gen()).into_uuid()
    }

    /// A token of the given kind: `access`, `public` or `link`.
    pub(crate) fn token(&mut self, kind: &str) -> String {
        format!("{kind}-sandbox-{}", self.uuid())
    }
}

/// A request id. Plaid's are 15 alphanumeric characters; they never need to be reproducible, so
/// they do not consume the seeded RNG (which keeps seeded ids independent of how many requests
/// a client happened to make).
pub(crate) fn request_id() -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(15)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_generators_repeat_and_ids_have_plaid_shape() {
        let mut a = IdGen::new(Some(7));
        let mut b = IdGen::new(Some(7));
        let id = a.opaque();
        assert_eq!(id, b.opaque());
        assert_eq!(id.len(), 37);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        let token = a.token("access");
        assert!(token.starts_with("access-sandbox-"));
        assert!(Uuid::parse_str(token.trim_start_matches("access-sandbox-")).is_ok());
    }
}

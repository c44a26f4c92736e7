//! Fault injection: queued failures, mutation during pagination, latency and random chaos.
//!
//! Faults are checked after a request has been authenticated and its access token resolved, so
//! "fail the next N calls for item I" can match on the item; they are Plaid-side failures, not
//! request-validation ones. Faults are one-shot per matching call and never change item state
//! (an injected `ITEM_LOGIN_REQUIRED` fails one call; use `reset_login` for the lasting kind).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::plaid_error::{ApiError, PlaidError};

/// The error a fault answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[expect(
    clippy::large_enum_variant,
    reason = "a handful of these exist at a time; an unboxed error keeps the API plain"
)]
pub enum FaultError {
    /// A catalogued error code, e.g. `INTERNAL_SERVER_ERROR`, `TRANSACTIONS_SYNC_LIMIT`,
    /// `INSTITUTION_DOWN`, `ITEM_LOGIN_REQUIRED`, `PLANNED_MAINTENANCE`.
    Code(String),
    /// Any error object with the HTTP status to send it with.
    Custom {
        /// HTTP status.
        status: u16,
        /// The body (its `request_id` is replaced by the request's).
        error: PlaidError,
    },
}

impl FaultError {
    /// 500 `API_ERROR`/`INTERNAL_SERVER_ERROR`.
    pub fn internal_server_error() -> Self {
        FaultError::Code("INTERNAL_SERVER_ERROR".into())
    }
    /// 429 `RATE_LIMIT_EXCEEDED`/`TRANSACTIONS_SYNC_LIMIT`.
    pub fn sync_rate_limit() -> Self {
        FaultError::Code("TRANSACTIONS_SYNC_LIMIT".into())
    }
    /// 400 `INSTITUTION_ERROR`/`INSTITUTION_DOWN`.
    pub fn institution_down() -> Self {
        FaultError::Code("INSTITUTION_DOWN".into())
    }
    /// 400 `ITEM_ERROR`/`ITEM_LOGIN_REQUIRED` (for one call only).
    pub fn item_login_required() -> Self {
        FaultError::Code("ITEM_LOGIN_REQUIRED".into())
    }

    /// Whether the code is one the simulator knows.
    pub(crate) fn is_valid(&self) -> bool {
        match self {
            FaultError::Code(code) => PlaidError::from_code(code).is_some(),
            FaultError::Custom { status, .. } => (400..600).contains(status),
        }
    }

    pub(crate) fn to_api_error(&self) -> ApiError {
        match self {
            FaultError::Code(code) => ApiError::code(code),
            FaultError::Custom { status, error } => ApiError {
                status: *status,
                error: Box::new(error.clone()),
            },
        }
    }
}

/// "The next `times` calls (to `endpoint`, for `item_id`) fail with `error`."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// What to answer.
    pub error: FaultError,
    /// How many matching calls fail (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// Only calls to this path, e.g. `/transactions/sync`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Only calls for this item.
    #[serde(default)]
    pub item_id: Option<String>,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// The next `times` calls to any endpoint fail with `error`.
    pub fn new(error: FaultError, times: u32) -> Self {
        Fault {
            error,
            times,
            endpoint: None,
            item_id: None,
        }
    }

    /// Restricts the fault to one endpoint path.
    pub fn on_endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    /// Restricts the fault to one item.
    pub fn for_item(mut self, item_id: &str) -> Self {
        self.item_id = Some(item_id.to_owned());
        self
    }

    fn matches(&self, endpoint: &str, item_id: Option<&str>) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == endpoint)
            && self.item_id.as_deref().is_none_or(|i| item_id == Some(i))
    }
}

/// "Page `page` of the next pagination run (for `item_id`) fails with
/// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`." Page 1 is the request that starts a run.
/// With `mutate`, a live transaction is really modified at that moment (its amount goes up by
/// 1.00, as Sandbox's refresh does), so the restarted run sees a change; without it the error is
/// spurious. The fault stays armed until a run reaches page `page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutationFault {
    /// Page number within a run (1-based).
    pub page: u32,
    /// Only runs for this item.
    #[serde(default)]
    pub item_id: Option<String>,
    /// Whether to really change a transaction.
    #[serde(default)]
    pub mutate: bool,
}

/// Extra delay before responses (after the request has been processed, so a client that times
/// out cannot tell whether its call took effect — as with the real API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How long to wait, in milliseconds.
    pub millis: u64,
    /// Only for this endpoint path.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// Random failures for chaos drills: each API call (optionally only to `endpoints`) fails with
/// probability `failure_rate`, with an error drawn from `errors`. Seeded, so a drill that makes
/// the same calls in the same order sees the same failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chaos {
    /// Probability in `[0, 1]`.
    pub failure_rate: f64,
    /// RNG seed.
    pub seed: u64,
    /// Errors to draw from (default: `INTERNAL_SERVER_ERROR`, `INSTITUTION_DOWN`).
    #[serde(default = "default_chaos_errors")]
    pub errors: Vec<FaultError>,
    /// Endpoint paths affected (default: all).
    #[serde(default)]
    pub endpoints: Option<Vec<String>>,
}

fn default_chaos_errors() -> Vec<FaultError> {
    vec![
        FaultError::internal_server_error(),
        FaultError::institution_down(),
    ]
}

/// Random mutation during pagination, for chaos drills: each `/transactions/sync` request that
/// reads changes (not a `NOT_READY` answer, not a `"now"` cursor) fails with
/// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` with probability `rate`, at whatever page of
/// its run it is. Rolled after [`Chaos`], so a call failed by chaos never rolls. Armed
/// [`MutationFault`]s are consumed first. Seeded, like [`Chaos`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutationChaos {
    /// Probability in `[0, 1]`.
    pub rate: f64,
    /// RNG seed.
    pub seed: u64,
    /// Whether to really change a transaction each time (as [`MutationFault::mutate`]).
    #[serde(default)]
    pub mutate: bool,
}

/// A snapshot of the configured faults (for `GET /simulator/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultsView {
    /// Queued failures with their remaining counts.
    pub faults: Vec<Fault>,
    /// Armed pagination-mutation faults.
    pub mutations: Vec<MutationFault>,
    /// Response latency.
    pub latency: Option<Latency>,
    /// Chaos settings.
    pub chaos: Option<Chaos>,
    /// Random mutation-during-pagination settings.
    #[serde(default)]
    pub mutation_chaos: Option<MutationChaos>,
}

#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    queued: Vec<Fault>,
    mutations: Vec<MutationFault>,
    latency: Option<Latency>,
    chaos: Option<(Chaos, StdRng)>,
    mutation_chaos: Option<(MutationChaos, StdRng)>,
}

impl FaultBook {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.queued.push(fault);
        }
    }

    pub(crate) fn push_mutation(&mut self, fault: MutationFault) {
        self.mutations.push(fault);
    }

    pub(crate) fn set_latency(&mut self, latency: Option<Latency>) {
        self.latency = latency;
    }

    pub(crate) fn set_chaos(&mut self, chaos: Option<Chaos>) {
        self.chaos = chaos.map(|c| {
            let rng = StdRng::seed_from_u64(c.seed);
            (c, rng)
        });
    }

    pub(crate) fn set_mutation_chaos(&mut self, chaos: Option<MutationChaos>) {
        self.mutation_chaos = chaos.map(|c| {
            let rng = StdRng::seed_from_u64(c.seed);
            (c, rng)
        });
    }

    pub(crate) fn clear(&mut self) {
        *self = FaultBook::default();
    }

    pub(crate) fn view(&self) -> FaultsView {
        FaultsView {
            faults: self.queued.clone(),
            mutations: self.mutations.clone(),
            latency: self.latency.clone(),
            chaos: self.chaos.as_ref().map(|(c, _)| c.clone()),
            mutation_chaos: self.mutation_chaos.as_ref().map(|(c, _)| c.clone()),
        }
    }

    pub(crate) fn latency_for(&self, endpoint: &str) -> Option<Duration> {
        self.latency
            .as_ref()
            .filter(|l| l.endpoint.as_deref().is_none_or(|e| e == endpoint))
            .map(|l| Duration::from_millis(l.millis))
    }

    /// Consumes one matching queued fault (oldest first), else rolls the chaos dice.
    pub(crate) fn take(&mut self, endpoint: &str, item_id: Option<&str>) -> Option<ApiError> {
        if let Some(index) = self.queued.iter().position(|f| f.matches(endpoint, item_id)) {
            let fault = &mut self.queued[index];
            let error = fault.error.to_api_error();
            fault.times -= 1;
            if fault.times == 0 {
                self.queued.remove(index);
            }
            return Some(error);
        }
        let (chaos, rng) = self.chaos.as_mut()?;
        let applies = chaos
            .endpoints
            .as_ref()
            .is_none_or(|eps| eps.iter().any(|e| e == endpoint));
        if !applies || chaos.errors.is_empty() || !rng.gen_bool(chaos.failure_rate.clamp(0.0, 1.0)) {
            return None;
        }
        let pick = rng.gen_range(0..chaos.errors.len());
        Some(chaos.errors[pick].to_api_error())
    }

    /// Consumes an armed mutation fault for this page of a run, if any, else rolls the
    /// mutation-chaos dice.
    pub(crate) fn take_mutation(&mut self, item_id: &str, page: u32) -> Option<MutationFault> {
        if let Some(index) = self
            .mutations
            .iter()
            .position(|m| m.page == page && m.item_id.as_deref().is_none_or(|i| i == item_id))
        {
            return Some(self.mutations.remove(index));
        }
        let (chaos, rng) = self.mutation_chaos.as_mut()?;
        rng.gen_bool(chaos.rate.clamp(0.0, 1.0)).then(|| MutationFault {
            page,
            item_id: Some(item_id.to_owned()),
            mutate: chaos.mutate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_are_consumed_by_matching_calls_only() {
        let mut book = FaultBook::default();
        book.push(
            Fault::new(FaultError::institution_down(), 2)
                .on_endpoint("/transactions/sync")
                .for_item("i1"),
        );
        assert!(book.take("/accounts/get", Some("i1")).is_none());
        assert!(book.take("/transactions/sync", Some("i2")).is_none());
        assert!(book.take("/transactions/sync", Some("i1")).is_some());
        assert!(book.take("/transactions/sync", Some("i1")).is_some());
        assert!(book.take("/transactions/sync", Some("i1")).is_none());
    }

    #[test]
    fn chaos_is_reproducible_for_a_seed() {
        let chaos = Chaos {
            failure_rate: 0.5,
            seed: 42,
            errors: default_chaos_errors(),
            endpoints: None,
        };
        let run = |book: &mut FaultBook| -> Vec<bool> {
            (0..50).map(|_| book.take("/item/get", None).is_some()).collect()
        };
        let (mut a, mut b) = (FaultBook::default(), FaultBook::default());
        a.set_chaos(Some(chaos.clone()));
        b.set_chaos(Some(chaos));
        let (ra, rb) = (run(&mut a), run(&mut b));
        assert_eq!(ra, rb);
        assert!(ra.iter().any(|x| *x) && ra.iter().any(|x| !*x));
    }

    #[test]
    fn mutation_chaos_fires_at_about_its_rate_after_armed_faults() {
        let mut book = FaultBook::default();
        book.push_mutation(MutationFault {
            page: 2,
            item_id: None,
            mutate: false,
        });
        book.set_mutation_chaos(Some(MutationChaos {
            rate: 0.1,
            seed: 7,
            mutate: true,
        }));
        let armed = book.take_mutation("i1", 2).expect("the armed fault comes first");
        assert!(!armed.mutate);
        let fired = (0..2_000)
            .filter_map(|_| book.take_mutation("i1", 1))
            .inspect(|m| assert!(m.mutate && m.page == 1 && m.item_id.as_deref() == Some("i1")))
            .count();
        assert!((150..250).contains(&fired), "{fired} of 2000 at rate 0.1");
        book.clear();
        assert!(book.take_mutation("i1", 1).is_none());
    }
}

//! Histories that keep changing at the simulator: adds, modifications,
//! removals and pending → posted, each one firing `SYNC_UPDATES_AVAILABLE`
//! (the simulator's automatic webhooks, once an item has been synced).

use chrono::{Duration as Days, Utc};
use plaid_simulator::{NewTransaction, PostPending, SimulatorControl, Transaction, TransactionPatch};
use rand::{Rng, rngs::StdRng};

/// What the churn changed, by kind. Each counted change is one simulator call,
/// so one `SYNC_UPDATES_AVAILABLE` webhook.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChurnCounts {
    /// Calls that added 1–3 transactions.
    pub added: u64,
    /// Transactions modified (amount or name).
    pub modified: u64,
    /// Transactions removed.
    pub removed: u64,
    /// Pending transactions posted (a removal plus an add, in one change).
    pub posted: u64,
}

impl ChurnCounts {
    /// Changes made, i.e. webhooks the simulator fires for them.
    pub fn changes(&self) -> u64 {
        self.added + self.modified + self.removed + self.posted
    }
}

/// Makes one random change to `item_id`'s history.
pub fn change_one(sim: &SimulatorControl, item_id: &str, rng: &mut StdRng, counts: &mut ChurnCounts) {
    let truth = sim.truth(item_id).expect("the item exists at the simulator");
    let live: Vec<&Transaction> = truth.accounts.values().flatten().collect();
    let accounts: Vec<&String> = truth.accounts.keys().collect();
    let pending: Vec<&&Transaction> = live.iter().filter(|t| t.pending).collect();
    match rng.gen_range(0..10) {
        0..=1 if !live.is_empty() => {
            let target = live[rng.gen_range(0..live.len())];
            let patch = if rng.gen_bool(0.5) {
                TransactionPatch {
                    amount: Some(cents(rng)),
                    ..TransactionPatch::default()
                }
            } else {
                TransactionPatch {
                    name: Some(format!("Renamed {}", rng.gen_range(0..1_000_000))),
                    ..TransactionPatch::default()
                }
            };
            sim.modify_transaction(item_id, &target.transaction_id, patch)
                .unwrap();
            counts.modified += 1;
        }
        2..=3 if !live.is_empty() => {
            let target = live[rng.gen_range(0..live.len())];
            sim.remove_transactions(item_id, &[target.transaction_id.as_str()])
                .unwrap();
            counts.removed += 1;
        }
        4 if !pending.is_empty() => {
            let target = pending[rng.gen_range(0..pending.len())];
            let post = PostPending {
                amount: Some(cents(rng)),
                ..PostPending::default()
            };
            sim.post_pending(item_id, &target.transaction_id, post).unwrap();
            counts.posted += 1;
        }
        _ => {
            let batch = (0..rng.gen_range(1..=3))
                .map(|_| new_transaction(accounts[rng.gen_range(0..accounts.len())], rng))
                .collect();
            sim.add_transactions(item_id, batch).unwrap();
            counts.added += 1;
        }
    }
}

fn new_transaction(account_id: &str, rng: &mut StdRng) -> NewTransaction {
    let date = Utc::now().date_naive() - Days::days(rng.gen_range(0..10));
    let mut transaction = NewTransaction::new(
        account_id,
        cents(rng),
        date,
        &format!("Drill purchase {}", rng.gen_range(0..1_000_000)),
    );
    transaction.pending = rng.gen_bool(0.3);
    transaction
}

/// An amount in whole cents, as banks report them.
fn cents(rng: &mut StdRng) -> f64 {
    f64::from(rng.gen_range(100..50_000)) / 100.0
}

//! A property test of the sync engine: random histories and random fault
//! sequences, the database checked against the simulator's truth after every
//! round. Seeded (the seed is printed on failure) so any failure replays.

use chrono::NaiveDate;
use plaid_simulator::{
    Fault, FaultError, HistorySpec, MutationFault, NewTransaction, PostPending, ReadyState, TransactionPatch,
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

use crate::support::{
    TestApp,
    oracle::assert_matches_truth,
    plaid::{link_new_item, settle},
};

/// Cases per run (each a fresh item with several rounds). Raise with
/// `SYNC_PROPERTY_CASES` for a longer soak.
fn cases() -> u64 {
    std::env::var("SYNC_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

const ROUNDS: usize = 4;

#[tokio::test]
async fn random_histories_and_fault_sequences_always_converge_to_the_truth() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("prop@example.com").await;
    let base_seed: u64 = std::env::var("SYNC_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261128);
    for case in 0..cases() {
        let seed = base_seed + case;
        run_case(&app, &token, seed).await;
    }
    app.stop().await;
}

async fn run_case(app: &TestApp, token: &str, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let linked = link_new_item(app, token).await;
    let item_id = linked["item_id"].as_str().unwrap().to_owned();
    let id: i64 = sqlx::query_scalar("select id from plaid_items where item_id = $1")
        .bind(&item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.sim
        .generate_history(&item_id, HistorySpec::new(rng.gen_range(0..1_300), seed))
        .unwrap();
    app.sim
        .mark_ready(&item_id, ReadyState::HistoricalUpdateComplete)
        .unwrap();

    for round in 0..ROUNDS {
        let ops = mutate_history(app, &item_id, &mut rng);
        let faults = inject_faults(app, &item_id, &mut rng);
        let mut conn = app.pool.acquire().await.unwrap();
        workflows::jobs::sync_item::request_sync(&mut conn, workflows::jobs::sync_item::ItemRef::Id(id))
            .await
            .unwrap();
        drop(conn);
        settle(app, id).await;
        app.sim.clear_faults();
        eprintln!("seed {seed} round {round}: {ops} history ops, faults {faults:?}");
        assert_matches_truth(app, &item_id).await;
    }
}

/// Random adds, modifies, removes and pending→posted; returns how many.
fn mutate_history(app: &TestApp, item_id: &str, rng: &mut StdRng) -> usize {
    let truth = app.sim.truth(item_id).unwrap();
    let accounts: Vec<String> = truth.accounts.keys().cloned().collect();
    let mut live: Vec<(String, bool)> = truth
        .accounts
        .values()
        .flatten()
        .map(|t| (t.transaction_id.clone(), t.pending))
        .collect();
    live.shuffle(rng);
    let ops = rng.gen_range(0..40);
    for _ in 0..ops {
        match rng.gen_range(0..4) {
            0 => {
                let account = accounts.choose(rng).unwrap().clone();
                let txn = NewTransaction {
                    account_id: account,
                    amount: f64::from(rng.gen_range(-50_000..500_000)) / 100.0,
                    date: NaiveDate::from_ymd_opt(2026, 11, rng.gen_range(1..28)).unwrap(),
                    name: format!("prop {}", rng.r#gen::<u32>()),
                    pending: rng.gen_bool(0.3),
                    merchant_name: None,
                    authorized_date: None,
                    payment_channel: None,
                    personal_finance_category: None,
                    iso_currency_code: None,
                    transaction_id: None,
                    pending_transaction_id: None,
                };
                if let Ok(new_id) = app.sim.add_transaction(item_id, txn.clone()) {
                    live.push((new_id, txn.pending));
                }
            }
            1 => {
                if let Some((id, _)) = live.choose(rng) {
                    let patch = TransactionPatch {
                        amount: Some(f64::from(rng.gen_range(1..100_000)) / 100.0),
                        name: rng
                            .gen_bool(0.5)
                            .then(|| format!("renamed {}", rng.r#gen::<u16>())),
                        ..Default::default()
                    };
                    let _ = app.sim.modify_transaction(item_id, id, patch);
                }
            }
            2 => {
                if let Some((id, _)) = live.pop() {
                    let _ = app.sim.remove_transactions(item_id, &[&id]);
                }
            }
            _ => {
                if let Some(pos) = live.iter().position(|(_, pending)| *pending) {
                    let (pending_id, _) = live.remove(pos);
                    let post = PostPending {
                        amount: rng.gen_bool(0.5).then_some(9.99),
                        ..Default::default()
                    };
                    if let Ok(posted) = app.sim.post_pending(item_id, &pending_id, post) {
                        live.push((posted, false));
                    }
                }
            }
        }
    }
    ops
}

/// Random Plaid failures for the next sync: 500, 429, institution down, and
/// mutation during pagination at a random page.
fn inject_faults(app: &TestApp, item_id: &str, rng: &mut StdRng) -> Vec<String> {
    let mut injected = Vec::new();
    let errors = [
        FaultError::internal_server_error(),
        FaultError::sync_rate_limit(),
        FaultError::institution_down(),
    ];
    for _ in 0..rng.gen_range(0..3) {
        let error = errors.choose(rng).unwrap().clone();
        injected.push(format!("{error:?}"));
        let times = rng.gen_range(1..3);
        app.sim
            .inject_fault(
                Fault::new(error, times)
                    .on_endpoint("/transactions/sync")
                    .for_item(item_id),
            )
            .unwrap();
    }
    if rng.gen_bool(0.4) {
        let page = rng.gen_range(1..4);
        injected.push(format!("mutation at page {page}"));
        app.sim
            .inject_mutation_during_pagination(MutationFault {
                page,
                item_id: Some(item_id.to_owned()),
                mutate: rng.gen_bool(0.5),
            })
            .unwrap();
    }
    injected
}

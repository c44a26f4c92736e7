//! The oracle: the database must equal the simulator's truth.

use std::collections::{BTreeMap, BTreeSet};

use super::TestApp;

/// One live transaction as compared: (plaid account, transaction id) → (amount, pending, name).
type Live = BTreeMap<(String, String), (String, bool, String)>;

/// A stored row: account, id, amount, pending, name, archived, source_removed.
type StoredRow = (String, String, String, bool, Option<String>, bool, bool);

/// Asserts, for every account of `item_id`: the non-archived transactions in
/// the database equal the simulator's current set (ids, amounts exactly,
/// pending flags, names), there are no duplicates, and a stored row is
/// archived exactly when the simulator removed it.
pub async fn assert_matches_truth(app: &TestApp, item_id: &str) {
    let truth = app.sim.truth(item_id).unwrap();
    let mut expected: Live = BTreeMap::new();
    for (account, transactions) in &truth.accounts {
        for t in transactions {
            let amount = format_amount(t.amount);
            let previous = expected.insert(
                (account.clone(), t.transaction_id.clone()),
                (amount, t.pending, t.name.clone()),
            );
            assert!(
                previous.is_none(),
                "simulator truth has a duplicate {}",
                t.transaction_id
            );
        }
    }

    let rows: Vec<StoredRow> = sqlx::query_as(
        "select m.plaid_account_id, t.external_id, t.amount::text, t.pending, t.name, t.archived,
                coalesce((t.raw_json ->> 'source_removed')::boolean, false)
         from transactions t
         join plaid_item_accounts m on m.account_id = t.account_id
         join plaid_items i on i.id = m.plaid_item_id
         where i.item_id = $1",
    )
    .bind(item_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();

    let mut live: Live = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (account, id, amount, pending, name, archived, source_removed) in rows {
        assert!(
            seen.insert(id.clone()),
            "duplicate transaction {id} in the database"
        );
        let removed = truth.removed_transaction_ids.contains(&id);
        assert_eq!(
            archived, removed,
            "{id}: archived={archived} but removed by Plaid={removed}"
        );
        if archived {
            assert!(source_removed, "{id}: a tombstone must say source_removed");
            continue;
        }
        live.insert(
            (account, id),
            (normalise(&amount), pending, name.unwrap_or_default()),
        );
    }
    if live != expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !live.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = live
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .take(5)
            .collect();
        let differing: Vec<_> = expected
            .iter()
            .filter(|(k, v)| live.get(*k).is_some_and(|l| l != *v))
            .take(5)
            .collect();
        panic!(
            "database differs from Plaid's truth for {item_id}: {} live vs {} expected; missing {missing:?}; \
             extra {extra:?}; differing {differing:?}",
            live.len(),
            expected.len()
        );
    }
}

fn format_amount(amount: f64) -> String {
    normalise(&amount.to_string())
}

/// `12.50` and `12.5` are the same amount.
fn normalise(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text.to_owned()
    }
}

/// Live (non-archived) transactions stored for the item.
pub async fn live_count(app: &TestApp, item_id: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from transactions t
         join plaid_item_accounts m on m.account_id = t.account_id
         join plaid_items i on i.id = m.plaid_item_id
         where i.item_id = $1 and not t.archived",
    )
    .bind(item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

//! `/transactions/sync` against the simulator: readiness, pagination, incremental net changes,
//! pending → posted, mutation during pagination, cursor errors, and the truth.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use plaid_simulator::{
    HistorySpec, ItemSpec, MutationFault, NewItemDefaults, NewTransaction, PostPending, ReadyState,
    TransactionPatch,
};
use serde_json::{Value, json};

use crate::simulator_support::{MirrorDb, Sim, start, start_with, webhook_receiver};

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

fn ids(page: &Value, field: &str) -> BTreeSet<String> {
    page[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn ready_item_with(sim: &Sim, count: usize) -> (String, String) {
    let item = sim.handle.create_item(ItemSpec::ready());
    sim.handle
        .generate_history(&item.item_id, HistorySpec::new(count, 11))
        .unwrap();
    (item.item_id, item.access_token)
}

#[tokio::test]
async fn simulator_fresh_item_is_not_ready_until_marked() {
    let sim = start().await;
    let (item_id, token) = sim.sandbox_item(None).await;
    sim.handle
        .generate_history(&item_id, HistorySpec::new(20, 1))
        .unwrap();

    let (status, page) = sim.sync(&token, "", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["transactions_update_status"], "NOT_READY");
    assert_eq!(page["next_cursor"], "");
    assert_eq!(page["has_more"], false);
    for field in ["added", "modified", "removed", "accounts"] {
        assert_eq!(page[field], json!([]), "{field}");
    }
    assert!(sim.handle.item(&item_id).unwrap().sync_called);

    sim.handle
        .mark_ready(&item_id, ReadyState::InitialUpdateComplete)
        .unwrap();
    let (_, page) = sim.sync(&token, "", None).await;
    assert_eq!(page["transactions_update_status"], "INITIAL_UPDATE_COMPLETE");
    assert_eq!(page["added"].as_array().unwrap().len(), 20);
    assert_ne!(page["next_cursor"], "");

    sim.handle
        .mark_ready(&item_id, ReadyState::HistoricalUpdateComplete)
        .unwrap();
    let (_, again) = sim
        .sync(&token, page["next_cursor"].as_str().unwrap(), None)
        .await;
    assert_eq!(again["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");
    assert_eq!(again["added"], json!([]));
    assert_eq!(again["next_cursor"], page["next_cursor"]);
}

#[tokio::test]
async fn simulator_sync_paginates_1234_transactions_by_500() {
    let sim = start().await;
    let (item_id, token) = ready_item_with(&sim, 1_234).await;
    let mut db = MirrorDb::default();

    let pages = sim.sync_all(&token, &mut db, Some(500)).await;

    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["added"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![500, 500, 234]);
    let more: Vec<bool> = pages.iter().map(|p| p["has_more"].as_bool().unwrap()).collect();
    assert_eq!(more, vec![true, true, false]);
    let cursors: BTreeSet<&str> = pages.iter().map(|p| p["next_cursor"].as_str().unwrap()).collect();
    assert_eq!(cursors.len(), 3, "every page has its own cursor");
    for page in &pages {
        // Only accounts with transactions in this page are listed.
        let in_page: BTreeSet<&str> = page["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["account_id"].as_str().unwrap())
            .collect();
        let listed: BTreeSet<&str> = page["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["account_id"].as_str().unwrap())
            .collect();
        assert_eq!(in_page, listed);
    }
    db.assert_matches(&sim.handle.truth(&item_id).unwrap());
}

#[tokio::test]
async fn simulator_sync_default_count_is_100() {
    let sim = start().await;
    let (item_id, token) = ready_item_with(&sim, 1_234).await;
    let mut db = MirrorDb::default();
    let pages = sim.sync_all(&token, &mut db, None).await;
    assert_eq!(pages.len(), 13);
    assert!(
        pages[..12]
            .iter()
            .all(|p| p["added"].as_array().unwrap().len() == 100)
    );
    assert_eq!(pages[12]["added"].as_array().unwrap().len(), 34);
    db.assert_matches(&sim.handle.truth(&item_id).unwrap());
}

#[tokio::test]
async fn simulator_sync_rejects_count_out_of_range() {
    let sim = start().await;
    let (_, token) = ready_item_with(&sim, 3).await;
    for count in [0, 501] {
        // Bypasses request validation on purpose: the request itself is out of spec.
        let response = sim
            .http
            .post(sim.url("/transactions/sync"))
            .header("PLAID-CLIENT-ID", crate::simulator_support::CLIENT_ID)
            .header("PLAID-SECRET", crate::simulator_support::SECRET)
            .json(&json!({"access_token": token, "count": count}))
            .send()
            .await
            .unwrap();
        let (status, err) = crate::simulator_support::read("/transactions/sync", response).await;
        assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_FIELD")));
        assert_eq!(err["error_type"], "INVALID_REQUEST");
    }
    let (status, _) = sim.sync(&token, "", Some(500)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn simulator_incremental_sync_reports_net_changes() {
    let sim = start().await;
    let item = sim.handle.create_item(ItemSpec::ready());
    let (item_id, token) = (item.item_id.as_str(), item.access_token.as_str());
    let acct = &item.account_ids;
    let h = &sim.handle;
    let keep = h
        .add_transaction(item_id, NewTransaction::new(&acct[0], 5.0, date(1), "Keep"))
        .unwrap();
    let edit = h
        .add_transaction(item_id, NewTransaction::new(&acct[0], 9.0, date(2), "Edit"))
        .unwrap();
    let drop = h
        .add_transaction(item_id, NewTransaction::new(&acct[1], 7.0, date(3), "Drop"))
        .unwrap();
    let pend = h
        .add_transaction(
            item_id,
            NewTransaction::new(&acct[2], 20.0, date(4), "Dinner").pending(),
        )
        .unwrap();
    let mut db = MirrorDb::default();
    sim.sync_all(token, &mut db, None).await;
    db.assert_matches(&h.truth(item_id).unwrap());

    // Act: every kind of change after the cursor.
    let new = h
        .add_transaction(item_id, NewTransaction::new(&acct[1], -100.0, date(5), "Refund"))
        .unwrap();
    let patch = TransactionPatch {
        amount: Some(9.5),
        ..TransactionPatch::default()
    };
    h.modify_transaction(item_id, &edit, patch).unwrap();
    h.remove_transactions(item_id, &[&drop]).unwrap();
    let posted = h
        .post_pending(
            item_id,
            &pend,
            PostPending {
                amount: Some(24.0),
                ..PostPending::default()
            },
        )
        .unwrap();
    // Added and removed after the cursor: the client never sees it.
    let ghost = h
        .add_transaction(item_id, NewTransaction::new(&acct[0], 1.0, date(6), "Ghost"))
        .unwrap();
    h.remove_transactions(item_id, &[&ghost]).unwrap();
    // Added then modified after the cursor: one `added` with the latest content.
    let fresh = h
        .add_transaction(item_id, NewTransaction::new(&acct[0], 3.0, date(7), "Fresh"))
        .unwrap();
    h.modify_transaction(
        item_id,
        &fresh,
        TransactionPatch {
            name: Some("Fresher".into()),
            ..TransactionPatch::default()
        },
    )
    .unwrap();

    let pages = sim.sync_all(token, &mut db, None).await;

    assert_eq!(pages.len(), 1);
    let page = &pages[0];
    assert_eq!(
        ids(page, "added"),
        BTreeSet::from([new.clone(), posted.clone(), fresh.clone()])
    );
    assert_eq!(ids(page, "modified"), BTreeSet::from([edit.clone()]));
    assert_eq!(ids(page, "removed"), BTreeSet::from([drop.clone(), pend.clone()]));
    let posted_json = page["added"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transaction_id"] == posted.as_str())
        .unwrap();
    assert_eq!(posted_json["pending_transaction_id"], pend.as_str());
    assert_eq!(posted_json["pending"], false);
    assert_eq!(posted_json["amount"], 24.0);
    let fresh_json = page["added"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transaction_id"] == fresh.as_str())
        .unwrap();
    assert_eq!(fresh_json["name"], "Fresher");
    assert!(!db.transactions.contains_key(&ghost));
    assert!(db.transactions.contains_key(&keep));
    let truth = h.truth(item_id).unwrap();
    db.assert_matches(&truth);
    assert_eq!(truth.removed_transaction_ids, BTreeSet::from([drop, pend, ghost]));

    // Nothing new: same cursor back, empty arrays.
    let (_, quiet) = sim.sync(token, &db.cursor, None).await;
    assert_eq!(
        (
            quiet["added"].clone(),
            quiet["modified"].clone(),
            quiet["removed"].clone()
        ),
        (json!([]), json!([]), json!([]))
    );
    assert_eq!(quiet["next_cursor"], db.cursor.as_str());
}

#[tokio::test]
async fn simulator_real_mutation_during_pagination_forces_a_restart() {
    let sim = start().await;
    let (item_id, token) = ready_item_with(&sim, 250).await;
    let mut db = MirrorDb::default();
    let (_, first) = sim.sync(&token, "", Some(100)).await;
    assert_eq!(first["has_more"], true);

    // The data changes between page 1 and page 2.
    let victim = first["added"][0]["transaction_id"].as_str().unwrap();
    sim.handle
        .modify_transaction(
            &item_id,
            victim,
            TransactionPatch {
                amount: Some(1.23),
                ..TransactionPatch::default()
            },
        )
        .unwrap();
    let (status, err) = sim
        .sync(&token, first["next_cursor"].as_str().unwrap(), Some(100))
        .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"))
    );
    assert_eq!(err["error_type"], "TRANSACTIONS_ERROR");
    // Retrying the failing page keeps failing; restarting from the run's first cursor works.
    let (status, _) = sim
        .sync(&token, first["next_cursor"].as_str().unwrap(), Some(100))
        .await;
    assert_eq!(status, 400);

    let pages = sim.sync_all(&token, &mut db, Some(100)).await;
    assert_eq!(pages.len(), 3);
    db.assert_matches(&sim.handle.truth(&item_id).unwrap());
    assert_eq!(db.transactions[victim]["amount"], 1.23);
}

#[tokio::test]
async fn simulator_injected_mutation_fails_page_k_once() {
    let sim = start().await;
    let (item_id, token) = ready_item_with(&sim, 250).await;
    sim.handle
        .inject_mutation_during_pagination(MutationFault {
            page: 3,
            item_id: Some(item_id.clone()),
            mutate: false,
        })
        .unwrap();
    let version = sim.handle.truth(&item_id).unwrap().version;

    let (s1, p1) = sim.sync(&token, "", Some(100)).await;
    let (s2, p2) = sim
        .sync(&token, p1["next_cursor"].as_str().unwrap(), Some(100))
        .await;
    let (s3, p3) = sim
        .sync(&token, p2["next_cursor"].as_str().unwrap(), Some(100))
        .await;
    assert_eq!((s1, s2, s3), (200, 200, 400));
    assert_eq!(p3["error_code"], "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION");
    assert_eq!(
        sim.handle.truth(&item_id).unwrap().version,
        version,
        "spurious: no real change"
    );

    let mut db = MirrorDb::default();
    assert_eq!(sim.sync_all(&token, &mut db, Some(100)).await.len(), 3);
    db.assert_matches(&sim.handle.truth(&item_id).unwrap());

    // With `mutate`, the fault really changes a transaction, which the next run picks up.
    sim.handle
        .inject_mutation_during_pagination(MutationFault {
            page: 1,
            item_id: None,
            mutate: true,
        })
        .unwrap();
    let (status, _) = sim.sync(&token, &db.cursor, None).await;
    assert_eq!(status, 400);
    let truth = sim.handle.truth(&item_id).unwrap();
    assert_eq!(truth.version, version + 1);
    let pages = sim.sync_all(&token, &mut db, None).await;
    assert_eq!(pages[0]["modified"].as_array().unwrap().len(), 1);
    db.assert_matches(&truth);
}

#[tokio::test]
async fn simulator_rejects_foreign_and_garbage_cursors() {
    let sim = start().await;
    let (_, token_a) = ready_item_with(&sim, 5).await;
    let (_, token_b) = ready_item_with(&sim, 5).await;
    let (_, page) = sim.sync(&token_a, "", None).await;
    let cursor_a = page["next_cursor"].as_str().unwrap();

    let (status, err) = sim.sync(&token_b, cursor_a, None).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_FIELD")));
    assert_eq!(err["error_message"], "cursor not associated with access_token");
    let (status, err) = sim.sync(&token_a, "bm90IGEgY3Vyc29y", None).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_FIELD")));

    // "now": no updates, but a cursor that later sees only newer changes.
    let (_, now) = sim.sync(&token_b, "now", None).await;
    assert_eq!(now["added"], json!([]));
    assert_ne!(now["next_cursor"], "");
}

#[tokio::test]
async fn simulator_account_filter_is_a_separate_stream() {
    let sim = start().await;
    let item = sim.handle.create_item(ItemSpec::ready());
    sim.handle
        .generate_history(&item.item_id, HistorySpec::new(90, 5))
        .unwrap();
    let truth = sim.handle.truth(&item.item_id).unwrap();
    let account = &item.account_ids[1];

    let body = json!({"access_token": item.access_token, "options": {"account_id": account}});
    let page = sim.ok("/transactions/sync", body).await;
    let got: BTreeSet<String> = ids(&page, "added");
    let want: BTreeSet<String> = truth.accounts[account]
        .iter()
        .map(|t| t.transaction_id.clone())
        .collect();
    assert_eq!(got, want);

    // Its cursor cannot be used for the unfiltered stream.
    let (status, err) = sim
        .sync(&item.access_token, page["next_cursor"].as_str().unwrap(), None)
        .await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_FIELD")));
    let bad = json!({"access_token": item.access_token, "options": {"account_id": "nope"}});
    let (_, code) = sim.err("/transactions/sync", bad).await;
    assert_eq!(code, "INVALID_ACCOUNT_ID");
}

#[tokio::test]
async fn simulator_generated_histories_are_deterministic() {
    let sim = start().await;
    let content = |item_id: &str| {
        let mut rows: Vec<(String, String, String)> = sim
            .handle
            .truth(item_id)
            .unwrap()
            .transactions()
            .map(|t| (t.date.to_string(), t.name.clone(), format!("{:.2}", t.amount)))
            .collect();
        rows.sort();
        rows
    };
    let spec = HistorySpec {
        end_date: Some(date(31)),
        ..HistorySpec::new(300, 99)
    };
    let a = sim.handle.create_item(ItemSpec::ready());
    let b = sim.handle.create_item(ItemSpec::ready());
    let c = sim.handle.create_item(ItemSpec::ready());
    sim.handle.generate_history(&a.item_id, spec.clone()).unwrap();
    sim.handle.generate_history(&b.item_id, spec.clone()).unwrap();
    sim.handle
        .generate_history(&c.item_id, HistorySpec { seed: 100, ..spec })
        .unwrap();
    assert_eq!(content(&a.item_id), content(&b.item_id));
    assert_ne!(content(&a.item_id), content(&c.item_id));
    let truth = sim.handle.truth(&a.item_id).unwrap();
    assert!(truth.transactions().any(|t| t.pending));
    assert!(truth.transactions().all(|t| t.date <= date(31)));
}

#[tokio::test]
async fn simulator_linked_items_get_configured_history_and_become_ready() {
    let sim = start_with(|c| {
        c.new_items = NewItemDefaults {
            generated_transactions: 30,
            seed: 4,
            ready_after: Some(std::time::Duration::from_millis(200)),
        }
    })
    .await;
    let mut receiver = webhook_receiver(200).await;
    let (item_id, token) = sim.sandbox_item(Some(&receiver.url)).await;

    // The first sync sees NOT_READY and arms the webhook; readiness then announces itself.
    let (_, page) = sim.sync(&token, "", None).await;
    assert_eq!(page["transactions_update_status"], "NOT_READY");
    let hook = receiver.next().await.json();
    assert_eq!(hook["webhook_code"], "SYNC_UPDATES_AVAILABLE");
    assert_eq!(hook["historical_update_complete"], true);

    let mut db = MirrorDb::default();
    sim.sync_all(&token, &mut db, None).await;
    assert_eq!(db.transactions.len(), 30);
    db.assert_matches(&sim.handle.truth(&item_id).unwrap());
}

//! `/transactions/sync`: cursors, net changes and pagination (PLAID.md §2).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Ctx, account_json, item_error};
use crate::cursor::Cursor;
use crate::history::NetKind;
use crate::model::ReadyState;
use crate::plaid_error::ApiError;
use crate::request::{bool_in, str_in};
use crate::state::{Item, SimState};

const DEFAULT_COUNT: u64 = 100;
const MAX_COUNT: u64 = 500;

struct Params {
    cursor: Option<String>,
    count: usize,
    account_id: Option<String>,
    include_original_description: bool,
}

fn params(ctx: &Ctx) -> Result<Params, ApiError> {
    let count = ctx.req.u64("count")?.unwrap_or(DEFAULT_COUNT);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(ApiError::invalid_field(format!(
            "count must be between 1 and {MAX_COUNT}"
        )));
    }
    let (account_id, include_original_description) = match ctx.req.object("options")? {
        Some(options) => (
            str_in(options, "account_id", "options.account_id")?.map(str::to_owned),
            bool_in(
                options,
                "include_original_description",
                "options.include_original_description",
            )?
            .unwrap_or(false),
        ),
        None => (None, false),
    };
    Ok(Params {
        cursor: ctx.req.str("cursor")?.map(str::to_owned),
        count: count as usize,
        account_id,
        include_original_description,
    })
}

/// Where a request sits in a pagination run.
struct Run {
    base: u64,
    snapshot: u64,
    position: u64,
    page: u32,
}

/// Decodes the cursor and checks it belongs to this item (and account stream) and that a
/// mid-run cursor still matches the item's data.
fn plan(item: &Item, params: &Params) -> Result<Option<Run>, ApiError> {
    let current = item.history.version();
    let text = params.cursor.as_deref().unwrap_or("");
    if text.is_empty() {
        return Ok(Some(Run {
            base: 0,
            snapshot: current,
            position: 0,
            page: 1,
        }));
    }
    if text == "now" {
        // Only for migrating from /transactions/get: no updates, a cursor from "now".
        return Ok(None);
    }
    let cursor = Cursor::decode(text).ok_or_else(|| ApiError::invalid_field("invalid cursor"))?;
    if cursor.item_id != item.item_id {
        return Err(ApiError::invalid_field("cursor not associated with access_token"));
    }
    if cursor.account_id != params.account_id {
        return Err(ApiError::invalid_field(
            "cursor not associated with options.account_id",
        ));
    }
    if cursor.snapshot > current {
        return Err(ApiError::invalid_field("invalid cursor"));
    }
    if cursor.is_mid_run() {
        if cursor.snapshot != current {
            return Err(ApiError::code("TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"));
        }
        return Ok(Some(Run {
            base: cursor.base,
            snapshot: cursor.snapshot,
            position: cursor.position,
            page: cursor.page + 1,
        }));
    }
    Ok(Some(Run {
        base: cursor.base,
        snapshot: current,
        position: cursor.base,
        page: 1,
    }))
}

pub(super) fn transactions_sync(st: &mut SimState, ctx: &Ctx) -> Result<Value, ApiError> {
    let item_id = ctx.item_id();
    let params = params(ctx)?;
    let report_unseen = st.config.report_unseen_removals;
    let item = st.items.get_mut(&item_id).expect("resolved items exist");
    item_error(item)?;
    if let Some(account) = &params.account_id
        && !item.has_account(account)
    {
        return Err(ApiError::code("INVALID_ACCOUNT_ID"));
    }
    // Calling sync arms SYNC_UPDATES_AVAILABLE, even while the item is not ready.
    item.sync_called = true;
    if item.ready == ReadyState::NotReady {
        return Ok(not_ready());
    }
    let Some(run) = plan(item, &params)? else {
        let settled = Cursor::settled(&item_id, params.account_id.as_deref(), item.history.version());
        return Ok(response(
            item,
            &[],
            &[],
            &[],
            &settled.encode(),
            false,
            &BTreeSet::new(),
        ));
    };
    if let Some(fault) = st.faults.take_mutation(&item_id, run.page) {
        if fault.mutate {
            st.mutate_for_fault(&item_id);
        }
        return Err(ApiError::code("TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"));
    }
    let item = st.items.get_mut(&item_id).expect("resolved items exist");
    let changes = item.history.run_changes(
        run.base,
        run.snapshot,
        params.account_id.as_deref(),
        report_unseen,
    );
    let item = &*item;
    // Changes are in `seq` order: the run resumes after its last handed-out one.
    let pending = &changes[changes.partition_point(|c| c.seq <= run.position)..];
    let has_more = pending.len() > params.count;
    let page = &pending[..pending.len().min(params.count)];
    let next_cursor = match page.last() {
        Some(last) if has_more => Cursor {
            item_id: item_id.clone(),
            account_id: params.account_id.clone(),
            base: run.base,
            snapshot: run.snapshot,
            position: last.seq,
            page: run.page,
        },
        _ => Cursor::settled(&item_id, params.account_id.as_deref(), run.snapshot),
    };

    let mut added = Vec::new();
    let mut modified = Vec::new();
    let mut removed = Vec::new();
    let mut account_ids = BTreeSet::new();
    for change in page {
        account_ids.insert(change.account_id.clone());
        match change.kind {
            NetKind::Removed => removed.push(json!({
                "transaction_id": change.transaction_id,
                "account_id": change.account_id,
            })),
            kind => {
                let txn = item
                    .history
                    .get(&change.transaction_id)
                    .expect("added/modified transactions are live at the snapshot");
                let mut value = serde_json::to_value(txn).expect("transactions serialize");
                if !params.include_original_description {
                    value["original_description"] = Value::Null;
                }
                if kind == NetKind::Added {
                    added.push(value);
                } else {
                    modified.push(value);
                }
            }
        }
    }
    Ok(response(
        item,
        &added,
        &modified,
        &removed,
        &next_cursor.encode(),
        has_more,
        &account_ids,
    ))
}

/// A fresh item: nothing yet, an empty cursor, `NOT_READY` (PLAID.md §2.5). `accounts` is
/// empty because the response has no transactions.
fn not_ready() -> Value {
    json!({
        "accounts": [],
        "added": [],
        "modified": [],
        "removed": [],
        "next_cursor": "",
        "has_more": false,
        "transactions_update_status": ReadyState::NotReady.as_str(),
    })
}

fn response(
    item: &Item,
    added: &[Value],
    modified: &[Value],
    removed: &[Value],
    next_cursor: &str,
    has_more: bool,
    account_ids: &BTreeSet<String>,
) -> Value {
    // Only accounts with transactions in this response, in the item's account order.
    let accounts: Vec<Value> = item
        .accounts
        .iter()
        .filter(|a| account_ids.contains(&a.account_id))
        .map(account_json)
        .collect();
    json!({
        "accounts": accounts,
        "added": added,
        "modified": modified,
        "removed": removed,
        "next_cursor": next_cursor,
        "has_more": has_more,
        "transactions_update_status": item.ready.as_str(),
    })
}

//! An item's transaction history as an append-only change log.
//!
//! Every add, modify and remove is one entry; the item's *version* is the number of entries.
//! A sync cursor names a version, and `/transactions/sync` answers with the **net** change
//! between the cursor's version and a snapshot version (see [`History::net_changes`]). Because
//! Plaid never reuses a transaction id (posting a pending transaction creates a new id), each id
//! has a simple lifecycle in the log: `Added`, then any number of `Modified`, then maybe
//! `Removed`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use crate::model::{Transaction, TransactionPatch};

/// What one log entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Removed,
}

#[derive(Debug, Clone)]
struct Change {
    kind: ChangeKind,
    transaction_id: String,
    account_id: String,
}

/// How a transaction appears in a sync response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetKind {
    Added,
    Modified,
    Removed,
}

/// One transaction's net change between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetChange {
    /// Version of the transaction's last change; pages are cut in this order, which is Plaid's
    /// "ascending last modified time".
    pub(crate) seq: u64,
    pub(crate) kind: NetKind,
    pub(crate) transaction_id: String,
    pub(crate) account_id: String,
}

/// Errors from changing the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HistoryError {
    DuplicateId(String),
    UnknownId(String),
}

#[derive(Debug, Default)]
pub(crate) struct History {
    log: Vec<Change>,
    live: BTreeMap<String, Transaction>,
    removed: BTreeMap<String, Transaction>,
    /// The last [`History::net_changes`] answer of a pagination run, by its
    /// arguments: a run pages through one fixed `(base, snapshot]` range of an
    /// append-only log, so its net changes never change, and computing them
    /// once per run (not once per page) keeps a page O(page size).
    run_cache: Option<(RunKey, Arc<Vec<NetChange>>)>,
}

/// The arguments of a cached [`History::net_changes`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunKey {
    base: u64,
    upto: u64,
    account_id: Option<String>,
    report_unseen_removals: bool,
}

impl History {
    /// Number of changes so far; version 0 is the empty history.
    pub(crate) fn version(&self) -> u64 {
        self.log.len() as u64
    }

    pub(crate) fn get(&self, transaction_id: &str) -> Option<&Transaction> {
        self.live.get(transaction_id)
    }

    /// Whether the id has ever been used in this item (live or removed).
    pub(crate) fn knows(&self, transaction_id: &str) -> bool {
        self.live.contains_key(transaction_id) || self.removed.contains_key(transaction_id)
    }

    pub(crate) fn live(&self) -> impl Iterator<Item = &Transaction> {
        self.live.values()
    }

    pub(crate) fn removed_ids(&self) -> impl Iterator<Item = &String> {
        self.removed.keys()
    }

    pub(crate) fn add(&mut self, txn: Transaction) -> Result<(), HistoryError> {
        if self.knows(&txn.transaction_id) {
            return Err(HistoryError::DuplicateId(txn.transaction_id));
        }
        self.push(ChangeKind::Added, &txn);
        self.live.insert(txn.transaction_id.clone(), txn);
        Ok(())
    }

    pub(crate) fn modify(
        &mut self,
        transaction_id: &str,
        patch: &TransactionPatch,
    ) -> Result<(), HistoryError> {
        let txn = self
            .live
            .get_mut(transaction_id)
            .ok_or_else(|| HistoryError::UnknownId(transaction_id.to_owned()))?;
        patch.apply(txn);
        let txn = txn.clone();
        self.push(ChangeKind::Modified, &txn);
        Ok(())
    }

    pub(crate) fn remove(&mut self, transaction_id: &str) -> Result<Transaction, HistoryError> {
        let txn = self
            .live
            .remove(transaction_id)
            .ok_or_else(|| HistoryError::UnknownId(transaction_id.to_owned()))?;
        self.push(ChangeKind::Removed, &txn);
        self.removed.insert(txn.transaction_id.clone(), txn.clone());
        Ok(txn)
    }

    fn push(&mut self, kind: ChangeKind, txn: &Transaction) {
        self.log.push(Change {
            kind,
            transaction_id: txn.transaction_id.clone(),
            account_id: txn.account_id.clone(),
        });
    }

    /// The net change from version `base` to version `upto`, optionally for one account,
    /// ordered by each transaction's last change.
    ///
    /// Per transaction touched in `(base, upto]`:
    /// - existed at `base` and still exists → `modified` (however many times it changed);
    /// - existed at `base` and is gone → `removed`;
    /// - did not exist at `base` and exists → `added` (with its latest content);
    /// - did not exist at `base` and is gone again (added *and* removed after the cursor) →
    ///   nothing, because the client never saw it. With `report_unseen_removals` it is reported
    ///   as `removed` instead, which Plaid is known to do occasionally; a robust client must
    ///   treat an unknown removed id as a no-op.
    ///
    /// "Existed at `base`" is read off the first change after `base`: only `Added` means the id
    /// is new, since ids are never reused.
    /// [`History::net_changes`], remembered for the next page of the same run.
    pub(crate) fn run_changes(
        &mut self,
        base: u64,
        upto: u64,
        account_id: Option<&str>,
        report_unseen_removals: bool,
    ) -> Arc<Vec<NetChange>> {
        let key = RunKey {
            base,
            upto,
            account_id: account_id.map(str::to_owned),
            report_unseen_removals,
        };
        if let Some((cached, changes)) = &self.run_cache
            && *cached == key
        {
            return changes.clone();
        }
        let changes = Arc::new(self.net_changes(base, upto, account_id, report_unseen_removals));
        self.run_cache = Some((key, changes.clone()));
        changes
    }

    pub(crate) fn net_changes(
        &self,
        base: u64,
        upto: u64,
        account_id: Option<&str>,
        report_unseen_removals: bool,
    ) -> Vec<NetChange> {
        struct Span<'a> {
            first: ChangeKind,
            last: ChangeKind,
            last_seq: u64,
            account_id: &'a str,
        }
        let mut spans: HashMap<&str, Span<'_>> = HashMap::new();
        let end = (upto as usize).min(self.log.len());
        let start = (base as usize).min(end);
        for (offset, change) in self.log[start..end].iter().enumerate() {
            if account_id.is_some_and(|a| a != change.account_id) {
                continue;
            }
            let seq = (start + offset + 1) as u64;
            spans
                .entry(change.transaction_id.as_str())
                .and_modify(|span| {
                    span.last = change.kind;
                    span.last_seq = seq;
                })
                .or_insert(Span {
                    first: change.kind,
                    last: change.kind,
                    last_seq: seq,
                    account_id: &change.account_id,
                });
        }
        let mut out: Vec<NetChange> = spans
            .into_iter()
            .filter_map(|(id, span)| {
                let existed = span.first != ChangeKind::Added;
                let exists = span.last != ChangeKind::Removed;
                let kind = match (existed, exists) {
                    (true, true) => NetKind::Modified,
                    (true, false) => NetKind::Removed,
                    (false, true) => NetKind::Added,
                    (false, false) if report_unseen_removals => NetKind::Removed,
                    (false, false) => return None,
                };
                Some(NetChange {
                    seq: span.last_seq,
                    kind,
                    transaction_id: id.to_owned(),
                    account_id: span.account_id.to_owned(),
                })
            })
            .collect();
        out.sort_by_key(|c| c.seq);
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::model::NewTransaction;

    fn txn(id: &str) -> Transaction {
        let date = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        NewTransaction::new("acct", 1.0, date, id).into_transaction(id.to_owned())
    }

    fn kinds(changes: &[NetChange]) -> Vec<(&str, NetKind)> {
        changes
            .iter()
            .map(|c| (c.transaction_id.as_str(), c.kind))
            .collect()
    }

    #[test]
    fn net_change_collapses_each_id_to_one_entry() {
        let mut h = History::default();
        h.add(txn("a")).unwrap();
        h.add(txn("b")).unwrap();
        h.add(txn("c")).unwrap();
        let base = h.version();
        h.modify("a", &TransactionPatch::default()).unwrap();
        h.add(txn("d")).unwrap();
        h.modify("d", &TransactionPatch::default()).unwrap();
        h.remove("b").unwrap();
        h.add(txn("e")).unwrap();
        h.remove("e").unwrap();
        h.modify("a", &TransactionPatch::default()).unwrap();

        let net = h.net_changes(base, h.version(), None, false);
        assert_eq!(
            kinds(&net),
            vec![
                ("d", NetKind::Added),
                ("b", NetKind::Removed),
                ("a", NetKind::Modified)
            ]
        );
        let with_unseen = h.net_changes(base, h.version(), None, true);
        assert!(kinds(&with_unseen).contains(&("e", NetKind::Removed)));
        // From the beginning everything live is simply added.
        let all = h.net_changes(0, h.version(), None, false);
        assert_eq!(
            kinds(&all),
            vec![
                ("c", NetKind::Added),
                ("d", NetKind::Added),
                ("a", NetKind::Added)
            ]
        );
        assert_eq!(h.add(txn("e")), Err(HistoryError::DuplicateId("e".to_owned())));
    }
}

//! Opaque `/transactions/sync` cursors.
//!
//! A cursor is standard base64 (so, like Plaid's, it may contain `+` and `/`) of
//! `psim1:<item_id>:<account_id or empty>:<base>:<snapshot>:<position>:<page>`, where
//! - `base` is the change-log version the pagination run started from,
//! - `snapshot` is the version the run is paging through (the item's version at its first page),
//! - `position` is the log sequence number of the last change already handed out, and
//! - `page` is how many pages of the run have been served.
//!
//! A cursor with `page == 0` is *settled* (`base == snapshot == position`): it is what a client
//! persists once `has_more` is false and it starts the next run. A cursor with `page > 0` is
//! *mid-run*; it is only valid while the item is still at `snapshot`, otherwise the request
//! fails with `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`. Binding the item id in lets us
//! reject another item's cursor the way Plaid does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const MAGIC: &str = "psim1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) item_id: String,
    pub(crate) account_id: Option<String>,
    pub(crate) base: u64,
    pub(crate) snapshot: u64,
    pub(crate) position: u64,
    pub(crate) page: u32,
}

impl Cursor {
    /// The cursor a client persists after finishing a run at `version`.
    pub(crate) fn settled(item_id: &str, account_id: Option<&str>, version: u64) -> Cursor {
        Cursor {
            item_id: item_id.to_owned(),
            account_id: account_id.map(str::to_owned),
            base: version,
            snapshot: version,
            position: version,
            page: 0,
        }
    }

    pub(crate) fn is_mid_run(&self) -> bool {
        self.page > 0
    }

    pub(crate) fn encode(&self) -> String {
        let raw = format!(
            "{MAGIC}:{}:{}:{}:{}:{}:{}",
            self.item_id,
            self.account_id.as_deref().unwrap_or(""),
            self.base,
            self.snapshot,
            self.position,
            self.page
        );
        STANDARD.encode(raw)
    }

    /// `None` for anything that is not a well-formed simulator cursor.
    pub(crate) fn decode(text: &str) -> Option<Cursor> {
        let raw = String::from_utf8(STANDARD.decode(text).ok()?).ok()?;
        let parts: Vec<&str> = raw.split(':').collect();
        let [magic, item_id, account_id, base, snapshot, position, page] = parts.as_slice() else {
            return None;
        };
        if *magic != MAGIC || item_id.is_empty() {
            return None;
        }
        let cursor = Cursor {
            item_id: (*item_id).to_owned(),
            account_id: (!account_id.is_empty()).then(|| (*account_id).to_owned()),
            base: base.parse().ok()?,
            snapshot: snapshot.parse().ok()?,
            position: position.parse().ok()?,
            page: page.parse().ok()?,
        };
        let consistent = cursor.base <= cursor.position && cursor.position <= cursor.snapshot;
        consistent.then_some(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let c = Cursor {
            item_id: "abc".into(),
            account_id: Some("acc".into()),
            base: 3,
            snapshot: 10,
            position: 7,
            page: 2,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        let s = Cursor::settled("abc", None, 4);
        assert_eq!(Cursor::decode(&s.encode()), Some(s));
        assert_eq!(Cursor::decode("not base64!"), None);
        assert_eq!(Cursor::decode(&STANDARD.encode("psim1:a::5:3:4:1")), None);
    }
}

//! The initial load: an item's first update, written by `COPY`.
//!
//! An update from an empty cursor into accounts that hold no transactions yet
//! is Plaid's whole history as `added` entries: nothing to update, nothing to
//! tombstone. Such pages are streamed into one `COPY … FROM STDIN` on the
//! run's transaction ([`CopySegment`]) instead of the general upsert
//! ([`super::apply::apply_page`]), which costs ~2.5× as much per row in
//! PostgreSQL (JSON unpacking, sorting, conflict checks). Each row gets
//! exactly what the upsert would write for an `added` entry: the same columns
//! from the same `->>` reads, and `raw_json` from the transaction's own JSON
//! text as Plaid sent it.
//!
//! A page qualifies only if it is all new rows: `modified` and `removed`
//! empty, no transaction id twice, no posted row replacing a pending row of
//! the same page, and every field of the kind the upsert reads (a string
//! where it reads text, a JSON number for the amount). Anything else goes
//! through the upsert, which handles every case. A transaction repeated on a
//! later page (Plaid does not do this in an initial update) makes `COPY` fail
//! on the table's unique key; the run then rolls back and redoes the update
//! through the upsert alone (see [`is_repeated_row`]).

use std::{borrow::Cow, collections::HashMap, collections::HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::{PgConnection, postgres::PgCopyIn};

/// The columns `COPY` fills, in order: the upsert's insert list.
const COPY_STATEMENT: &str = "copy transactions (account_id, external_id, amount, iso_currency_code, \
     unofficial_currency_code, date, authorized_date, name, merchant_name, pending, pending_external_id, \
     archived, raw_json) from stdin";

/// An update that may be loaded by `COPY`: the item's mapped accounts.
#[derive(Debug)]
pub struct InitialLoad {
    /// Plaid account id → our account id (active mappings only, as the upsert joins them).
    accounts: HashMap<String, i64>,
}

impl InitialLoad {
    /// The plan for an update starting at `cursor`: `Some` when the cursor is
    /// empty and none of the item's mapped accounts holds a transaction (on
    /// the run's transaction, so what it sees is what the pages will meet).
    pub async fn plan(
        conn: &mut PgConnection,
        plaid_item_id: i64,
        cursor: Option<&str>,
    ) -> Result<Option<Self>, sqlx::Error> {
        if cursor.is_some_and(|c| !c.is_empty()) {
            return Ok(None);
        }
        let has_rows: bool = sqlx::query_scalar(
            "select exists (select 1 from plaid_item_accounts m
                            join transactions t on t.account_id = m.account_id
                            where m.plaid_item_id = $1)",
        )
        .bind(plaid_item_id)
        .fetch_one(&mut *conn)
        .await?;
        if has_rows {
            return Ok(None);
        }
        let accounts: Vec<(String, i64)> = sqlx::query_as(
            "select plaid_account_id, account_id from plaid_item_accounts where plaid_item_id = $1 and active",
        )
        .bind(plaid_item_id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(Self {
            accounts: accounts.into_iter().collect(),
        }))
    }

    /// The page's rows in `COPY` text format, or `None` when the page must go
    /// through the upsert (see the module's rules).
    pub fn rows(&self, page: &str) -> Option<CopyRows> {
        let page: PageView<'_> = serde_json::from_str(page).ok()?;
        if !page.modified.is_empty() || !page.removed.is_empty() {
            return None;
        }
        let mut ids = HashSet::with_capacity(page.added.len());
        let mut rows = Vec::with_capacity(page.added.len());
        for raw in &page.added {
            let row: RowView<'_> = serde_json::from_str(raw.get()).ok()?;
            if !ids.insert(row.transaction_id.clone()) {
                return None;
            }
            rows.push((row, raw.get()));
        }
        let mut out = CopyRows::default();
        for (row, raw) in &rows {
            if row
                .pending_transaction_id
                .as_ref()
                .is_some_and(|p| ids.contains(p))
            {
                return None;
            }
            // Rows of accounts we no longer map are skipped, as the upsert's join skips them.
            let Some(&account_id) = self.accounts.get(row.account_id.as_ref()) else {
                continue;
            };
            row.write(account_id, raw, &mut out.text)?;
            out.rows += 1;
            out.replaces_pending |= row.pending_transaction_id.is_some();
        }
        Some(out)
    }
}

/// A page ready for `COPY`.
#[derive(Debug, Default)]
pub struct CopyRows {
    /// `COPY` text format, one line per row.
    text: Vec<u8>,
    /// Rows in `text`.
    rows: u64,
    /// Some row is a posted transaction naming the pending one it replaced.
    replaces_pending: bool,
}

/// One `COPY` statement open on the run's transaction, fed page by page.
/// PostgreSQL charges per statement far more than per row here (a `COPY` of
/// 500 rows per page cost ~1.5× one `COPY` of the same rows, measured), so
/// an initial load is one statement, not one per page.
pub struct CopySegment<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    /// The table's highest id before the segment: rows above it are ours.
    watermark: i64,
    accounts: Vec<i64>,
    replaces_pending: bool,
}

impl InitialLoad {
    /// Opens a `COPY` on `conn` (the run's transaction).
    pub async fn begin_copy<'c>(&self, conn: &'c mut PgConnection) -> Result<CopySegment<'c>, sqlx::Error> {
        let watermark: i64 = sqlx::query_scalar("select coalesce(max(id), 0) from transactions")
            .fetch_one(&mut *conn)
            .await?;
        Ok(CopySegment {
            copy: conn.copy_in_raw(COPY_STATEMENT).await?,
            watermark,
            accounts: self.accounts.values().copied().collect(),
            replaces_pending: false,
        })
    }
}

impl<'c> CopySegment<'c> {
    /// Streams a page's rows into the `COPY`.
    pub async fn send(&mut self, rows: CopyRows) -> Result<(), sqlx::Error> {
        self.replaces_pending |= rows.replaces_pending;
        if rows.rows > 0 {
            self.copy.send(rows.text).await?;
        }
        Ok(())
    }

    /// Ends the `COPY` (the run goes on to fail: its transaction is rolled back).
    pub async fn abort(self) {
        // The server answers an abort with an error, which `abort` expects;
        // anything else means the connection is gone, and the rollback that
        // follows reports it.
        let _ = self.copy.abort("the sync run failed").await;
    }

    /// Completes the `COPY`; the rows are in (uncommitted, like every page of the run).
    pub async fn finish(self) -> Result<CopiedSegment, sqlx::Error> {
        let written = self.copy.finish().await?;
        Ok(CopiedSegment {
            written,
            watermark: self.watermark,
            accounts: self.accounts,
            replaces_pending: self.replaces_pending,
        })
    }
}

/// A finished `COPY` whose posted rows may still have pending rows to tombstone.
pub struct CopiedSegment {
    written: u64,
    watermark: i64,
    accounts: Vec<i64>,
    replaces_pending: bool,
}

impl CopiedSegment {
    /// Tombstones the pending rows that the segment's posted rows replaced,
    /// as the upsert does page by page: a pending row written before its
    /// posted row (a lower id; the same page never holds both: such a page
    /// goes through the upsert). Returns (rows written, rows tombstoned).
    pub async fn tombstone_replaced_pending(
        self,
        conn: &mut PgConnection,
    ) -> Result<(u64, u64), sqlx::Error> {
        if !self.replaces_pending {
            return Ok((self.written, 0));
        }
        let tombstoned = sqlx::query(
            "update transactions t
             set archived = true, raw_json = t.raw_json || '{\"source_removed\": true}'::jsonb, updated_at = now()
             from transactions p
             where p.id > $1 and p.account_id = any($2) and p.pending_external_id is not null
               and t.account_id = p.account_id and t.external_id = p.pending_external_id and t.id < p.id
               and not (t.archived and coalesce((t.raw_json ->> 'source_removed')::boolean, false))",
        )
        .bind(self.watermark)
        .bind(&self.accounts)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok((self.written, tombstoned))
    }
}

/// Whether `error` is a `COPY` of this module meeting a row already in the
/// table (a transaction repeated across pages): the update is then redone
/// without `COPY`.
pub fn is_repeated_row(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.code().as_deref() == Some("23505") && e.table() == Some("transactions"))
}

/// The parts of a page this module reads.
#[derive(Deserialize)]
struct PageView<'a> {
    #[serde(borrow, default)]
    added: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    modified: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    removed: Vec<&'a RawValue>,
}

/// The fields the upsert reads from an entry, each as `->>` would see it: a
/// string, or absent/null (SQL `NULL`). Any other JSON type fails the parse,
/// and the page goes through the upsert.
#[derive(Deserialize)]
struct RowView<'a> {
    #[serde(borrow)]
    transaction_id: Cow<'a, str>,
    #[serde(borrow)]
    account_id: Cow<'a, str>,
    #[serde(borrow)]
    amount: &'a RawValue,
    #[serde(borrow, default)]
    iso_currency_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    unofficial_currency_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    date: Cow<'a, str>,
    #[serde(borrow, default)]
    authorized_date: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    merchant_name: Option<Cow<'a, str>>,
    #[serde(default)]
    pending: Option<bool>,
    #[serde(borrow, default)]
    pending_transaction_id: Option<Cow<'a, str>>,
}

impl RowView<'_> {
    /// Appends the row as one `COPY` text line; `None` if the amount is not a
    /// JSON number (the upsert casts `->>`'s text, which a `COPY` of the raw
    /// token would not match for a JSON string).
    fn write(&self, account_id: i64, raw: &str, out: &mut Vec<u8>) -> Option<()> {
        let amount = self.amount.get();
        if !amount.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return None;
        }
        out.extend_from_slice(account_id.to_string().as_bytes());
        field(out, Some(&self.transaction_id));
        field(out, Some(amount));
        field(out, self.iso_currency_code.as_deref());
        field(out, self.unofficial_currency_code.as_deref());
        field(out, Some(&self.date));
        field(out, self.authorized_date.as_deref());
        field(out, self.name.as_deref());
        field(out, self.merchant_name.as_deref());
        field(out, Some(if self.pending.unwrap_or(false) { "t" } else { "f" }));
        field(out, self.pending_transaction_id.as_deref());
        field(out, Some("f"));
        field(out, Some(raw));
        out.push(b'\n');
        Some(())
    }
}

/// Appends a tab and the value in `COPY` text format (`\N` for `NULL`;
/// backslash, newline, carriage return and tab escaped).
fn field(out: &mut Vec<u8>, value: Option<&str>) {
    out.push(b'\t');
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &byte in value.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> InitialLoad {
        InitialLoad {
            accounts: HashMap::from([("acc-1".to_owned(), 10), ("acc-2".to_owned(), 20)]),
        }
    }

    fn text(rows: &CopyRows) -> String {
        String::from_utf8(rows.text.clone()).unwrap()
    }

    #[test]
    fn a_page_of_new_rows_becomes_copy_lines_with_the_raw_json_escaped() {
        let page = r#"{"added": [
            {"transaction_id": "t1", "account_id": "acc-1", "amount": 12.30, "iso_currency_code": "USD",
             "date": "2026-11-20", "name": "Tab\there \\ back", "pending": false, "extra": {"k": [1, 2]}},
            {"transaction_id": "t2", "account_id": "acc-2", "amount": -5, "date": "2026-11-21",
             "authorized_date": null, "merchant_name": "Line\nbreak", "pending": true,
             "pending_transaction_id": "p0"}
        ], "modified": [], "removed": [], "next_cursor": "c", "has_more": false}"#;
        let rows = plan().rows(page).expect("a page of new rows qualifies");
        assert_eq!(rows.rows, 2);
        assert!(rows.replaces_pending);
        let all = text(&rows);
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(
            &first[..12],
            [
                "10",
                "t1",
                "12.30",
                "USD",
                "\\N",
                "2026-11-20",
                "\\N",
                "Tab\\there \\\\ back",
                "\\N",
                "f",
                "\\N",
                "f"
            ]
        );
        assert!(
            first[12].starts_with(r#"{"transaction_id": "t1""#),
            "raw JSON kept as sent: {}",
            first[12]
        );
        assert!(
            first[12].contains(r#"\\\\ back"#),
            "backslashes of the JSON text escaped for COPY"
        );
        let second: Vec<&str> = lines[1].split('\t').collect();
        assert_eq!(
            &second[..12],
            [
                "20",
                "t2",
                "-5",
                "\\N",
                "\\N",
                "2026-11-21",
                "\\N",
                "\\N",
                "Line\\nbreak",
                "t",
                "p0",
                "f"
            ]
        );
    }

    #[test]
    fn rows_of_unmapped_accounts_are_skipped() {
        let page = r#"{"added": [
            {"transaction_id": "t1", "account_id": "gone", "amount": 1, "date": "2026-11-20"},
            {"transaction_id": "t2", "account_id": "acc-1", "amount": 2, "date": "2026-11-20"}
        ]}"#;
        let rows = plan().rows(page).unwrap();
        assert_eq!(rows.rows, 1);
        assert!(text(&rows).starts_with("10\tt2\t"));
    }

    #[test]
    fn pages_the_upsert_must_handle_do_not_qualify() {
        let row = |id: &str, extra: &str| {
            format!(
                r#"{{"transaction_id": "{id}", "account_id": "acc-1", "amount": 1, "date": "2026-11-20"{extra}}}"#
            )
        };
        let cases = [
            ("modified entries", format!(r#"{{"added": [], "modified": [{}]}}"#, row("t1", ""))),
            ("removed entries", r#"{"added": [], "removed": [{"transaction_id": "t1"}]}"#.to_owned()),
            ("a repeated id", format!(r#"{{"added": [{}, {}]}}"#, row("t1", ""), row("t1", ""))),
            (
                "a posted row replacing a pending row of the page",
                format!(r#"{{"added": [{}, {}]}}"#, row("p1", ""), row("t1", r#", "pending_transaction_id": "p1""#)),
            ),
            ("an amount given as a string", r#"{"added": [{"transaction_id": "t1", "account_id": "acc-1", "amount": "1", "date": "2026-11-20"}]}"#.to_owned()),
            ("a name that is not a string", format!(r#"{{"added": [{}]}}"#, row("t1", r#", "name": 5"#))),
            ("a pending flag that is not a boolean", format!(r#"{{"added": [{}]}}"#, row("t1", r#", "pending": "yes""#))),
            ("a missing date", r#"{"added": [{"transaction_id": "t1", "account_id": "acc-1", "amount": 1}]}"#.to_owned()),
            ("not JSON", "{".to_owned()),
        ];
        for (what, page) in cases {
            assert!(plan().rows(&page).is_none(), "{what}: goes through the upsert");
        }
    }
}

//! The seal of the fair-share inputs: a digest of the bank and association
//! columns that the fair-share computation reads ([`INPUTS`]), kept in
//! `projection_meta` by the apply path, so that `update-fshare` can tell in
//! one read of those two tables (no replay, whatever the length of the log)
//! whether they are still what the apply path left.
//!
//! * `rebuild` writes the seal of the state it built from the log
//!   (`replay::history::rebuild_live`).
//! * A live transaction that changes those tables writes the seal of the
//!   rows after it only when the stored seal matched the rows before it:
//!   a seal, once broken (a hand edit, an old ledger that has none), is
//!   never rewritten over the rows the edit left, so the drift stays
//!   visible until a rebuild (or a check against a replay of the log)
//!   clears it.
//!
//! What the seal does not catch: an edit of the rows that also rewrites the
//! seal to match (deliberate forgery of bookkeeping; `rebuild --check`
//! compares with a replay and sees it), and any column outside
//! [`INPUTS`] (the fair-share does not read them). `projection_meta` is not
//! part of the canonical state (`replay::canonical::EXCLUDED`), so the seal
//! changes no state hash.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;

/// The columns the fair-share computation reads
/// ([`crate::usage::fairshare_values`]), by table.
pub const INPUTS: &[(&str, &[&str])] = &[
    ("bank_table", &["bank", "parent_bank", "active", "shares", "bank_id"]),
    ("association_table", &["username", "bank", "active", "shares", "job_usage"]),
];

/// The `projection_meta` key of the seal.
const KEY: &str = "fairshare_inputs_seal";

/// The prefix of the current form of the seal: the wrapping sum, lane by
/// lane, of one blake3 digest per row (so a change of some rows updates it
/// from those rows alone). A stored seal without it is the first form (one
/// blake3 over every row in key order), still recognised by [`intact`].
const V2: &str = "v2:";

/// Whether applying an event whose tables are `touched`
/// ([`crate::apply::tables_touched`]) can change an [`INPUTS`] column.
pub(crate) fn touches(touched: &[&str], fairshare_only: bool) -> bool {
    !fairshare_only && touched.iter().any(|t| INPUTS.iter().any(|(i, _)| i == t))
}

/// Feeds one value, tagged with its storage class.
fn feed(h: &mut blake3::Hasher, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h.update(b"n"),
        ValueRef::Integer(v) => h.update(b"i").update(&v.to_le_bytes()),
        ValueRef::Real(v) => h.update(b"r").update(&v.to_bits().to_le_bytes()),
        ValueRef::Text(t) => h.update(b"t").update(&(t.len() as u64).to_le_bytes()).update(t),
        ValueRef::Blob(b) => h.update(b"b").update(&(b.len() as u64).to_le_bytes()).update(b),
    };
}

/// A sum of row digests: four 64-bit lanes, added with wrap-around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Sum([u64; 4]);

impl Sum {
    /// Adds (`sign` > 0) or removes the digest of one row of `table`.
    fn add_row(&mut self, table: &str, values: &[ValueRef<'_>], sign: i64) {
        let mut h = blake3::Hasher::new();
        h.update(&(table.len() as u64).to_le_bytes()).update(table.as_bytes());
        for v in values {
            feed(&mut h, *v);
        }
        let d = h.finalize();
        for (i, lane) in self.0.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d.as_bytes()[i * 8..i * 8 + 8]);
            let x = u64::from_le_bytes(b);
            *lane = if sign > 0 { lane.wrapping_add(x) } else { lane.wrapping_sub(x) };
        }
    }

    fn text(&self) -> String {
        let mut s = String::from(V2);
        for lane in self.0 {
            s.push_str(&format!("{lane:016x}"));
        }
        s
    }

    fn parse(text: &str) -> Option<Sum> {
        let hex = text.strip_prefix(V2)?;
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut sum = Sum::default();
        for (i, lane) in sum.0.iter_mut().enumerate() {
            *lane = u64::from_str_radix(&hex[i * 16..i * 16 + 16], 16).ok()?;
        }
        Some(sum)
    }
}

/// The seal of the [`INPUTS`] columns of the tables on `conn`, from
/// scratch: the sum of one digest per row ([`V2`]).
pub fn compute(conn: &Connection) -> Result<String, Error> {
    let mut sum = Sum::default();
    for (table, cols) in INPUTS {
        let mut stmt = conn.prepare_cached(&format!("SELECT {} FROM main.{table}", cols.join(", ")))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(cols.len());
            for i in 0..cols.len() {
                values.push(r.get_ref(i)?);
            }
            sum.add_row(table, &values, 1);
        }
    }
    Ok(sum.text())
}

/// The first form of the seal (blake3 over every row in key order), for
/// ledgers sealed before the current form.
fn compute_v1(conn: &Connection) -> Result<String, Error> {
    let mut h = blake3::Hasher::new();
    for (table, cols) in INPUTS {
        let order = if *table == "bank_table" { "bank" } else { "username, bank" };
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {} FROM main.{table} ORDER BY {order}", cols.join(", ")))?;
        let mut rows = stmt.query([])?;
        h.update(table.as_bytes());
        while let Some(r) = rows.next()? {
            for i in 0..cols.len() {
                feed(&mut h, r.get_ref(i)?);
            }
        }
        h.update(b"\n");
    }
    Ok(h.finalize().to_hex().to_string())
}

/// The stored seal, if any.
pub fn stored(conn: &Connection) -> Result<Option<String>, Error> {
    let v: Option<Option<String>> = conn
        .prepare_cached("SELECT value FROM main.projection_meta WHERE key = ?1")?
        .query_row([KEY], |r| r.get(0))
        .optional()?;
    Ok(v.flatten())
}

/// Stores `seal`.
pub fn store(conn: &Connection, seal: &str) -> Result<(), Error> {
    conn.prepare_cached("INSERT OR REPLACE INTO main.projection_meta(key, value) VALUES (?1, ?2)")?
        .execute([KEY, seal])?;
    Ok(())
}

/// Whether a seal is stored and matches the rows on `conn`: the fair-share
/// inputs are what the apply path left (see the module documentation for
/// what this does not catch).
pub fn intact(conn: &Connection) -> Result<bool, Error> {
    Ok(match stored(conn)? {
        Some(s) if s.starts_with(V2) => s == compute(conn)?,
        Some(s) => s == compute_v1(conn)?,
        None => false,
    })
}

// The live path keeps the seal from the rows a transaction changes: while
// a transaction applies events that touch the inputs, temporary triggers
// (this connection's only) copy each changed row's input columns, before
// (-1) and after (+1), into `temp.seal_delta`; at the end the stored seal
// moves by the digests of those rows. A stored seal that did not match
// its rows (a hand edit) still does not after the move, so a broken seal
// stays broken without being checked.

/// Creates the temporary delta table and triggers on `conn` (once per
/// connection) and starts recording into it.
fn start_tracking(conn: &Connection) -> Result<(), Error> {
    let exists: bool = conn
        .prepare_cached("SELECT count(*) FROM temp.sqlite_master WHERE name = 'seal_delta'")?
        .query_row([], |r| r.get::<_, i64>(0))?
        > 0;
    if !exists {
        let mut sql = String::from(
            "CREATE TEMP TABLE seal_delta(sign, tbl, c0, c1, c2, c3, c4);\n\
             CREATE TEMP TABLE seal_on(x);\n",
        );
        for (table, cols) in INPUTS {
            let of = |row: &str| cols.iter().map(|c| format!("{row}.{c}")).collect::<Vec<_>>().join(", ");
            for (when, rows) in
                [("INSERT", vec![(1, "NEW")]), ("DELETE", vec![(-1, "OLD")]), ("UPDATE", vec![(-1, "OLD"), (1, "NEW")])]
            {
                sql.push_str(&format!(
                    "CREATE TEMP TRIGGER seal_{table}_{w} AFTER {when} ON main.{table} \
                     WHEN EXISTS (SELECT 1 FROM temp.seal_on) BEGIN\n",
                    w = when.to_lowercase()
                ));
                for (sign, row) in rows {
                    sql.push_str(&format!("INSERT INTO seal_delta VALUES ({sign}, '{table}', {});\n", of(row)));
                }
                sql.push_str("END;\n");
            }
        }
        conn.execute_batch(&sql)?;
    }
    conn.execute_batch("DELETE FROM temp.seal_delta; DELETE FROM temp.seal_on; INSERT INTO temp.seal_on VALUES (1);")?;
    Ok(())
}

/// Stops recording and returns `seal` moved by the recorded rows.
fn finish_tracking(conn: &Connection, seal: &str) -> Result<Option<String>, Error> {
    let Some(mut sum) = Sum::parse(seal) else { return Ok(None) };
    {
        let mut stmt = conn.prepare_cached("SELECT sign, tbl, c0, c1, c2, c3, c4 FROM temp.seal_delta")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let sign: i64 = r.get(0)?;
            let table = match r.get_ref(1)? {
                ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default().to_string(),
                _ => String::new(),
            };
            let mut values = Vec::with_capacity(5);
            for i in 2..7 {
                values.push(r.get_ref(i)?);
            }
            sum.add_row(&table, &values, sign);
        }
    }
    conn.execute_batch("DELETE FROM temp.seal_delta; DELETE FROM temp.seal_on;")?;
    Ok(Some(sum.text()))
}

/// What a live transaction does with the seal, decided at its first event
/// that touches the inputs ([`Tracking::begin`]) and carried out at its
/// end ([`Tracking::end`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tracking {
    /// No seal is stored, or a first-form one that did not match: nothing
    /// to keep (the drift stays visible).
    Nothing,
    /// A first-form seal that matched the rows before: the current form of
    /// the rows after is written (once per ledger, from scratch).
    Reseal,
    /// A current-form seal: moved by the rows the transaction changed.
    Move(String),
}

impl Tracking {
    /// Decides, before the transaction's first event that touches the
    /// inputs.
    pub(crate) fn begin(conn: &Connection) -> Result<Tracking, Error> {
        Ok(match stored(conn)? {
            Some(s) if s.starts_with(V2) => {
                start_tracking(conn)?;
                Tracking::Move(s)
            }
            Some(s) if s == compute_v1(conn)? => Tracking::Reseal,
            _ => Tracking::Nothing,
        })
    }

    /// Writes the seal of the rows after, as decided.
    pub(crate) fn end(self, conn: &Connection) -> Result<(), Error> {
        match self {
            Tracking::Nothing => Ok(()),
            Tracking::Reseal => store(conn, &compute(conn)?),
            Tracking::Move(s) => match finish_tracking(conn, &s)? {
                Some(moved) => store(conn, &moved),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::create(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('root', '', 1);
             INSERT INTO association_table(creation_time, username, userid, bank, default_bank, shares)
             VALUES (0, 'u1', 1, 'root', 'root', 1);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_sealed_state_is_intact_until_an_input_column_changes() {
        let conn = tables();
        assert!(!intact(&conn).unwrap(), "no seal stored: not known to be intact");
        store(&conn, &compute(&conn).unwrap()).unwrap();
        assert!(intact(&conn).unwrap());
        conn.execute_batch("UPDATE association_table SET fairshare = 0.25").unwrap();
        assert!(intact(&conn).unwrap(), "fairshare is not an input");
        conn.execute_batch("UPDATE association_table SET job_usage = 7").unwrap();
        assert!(!intact(&conn).unwrap());
    }

    #[test]
    fn a_tracked_change_moves_the_seal_to_the_seal_of_the_rows_after() {
        let conn = tables();
        for (table, cols) in INPUTS {
            assert_eq!(cols.len(), 5, "{table}: seal_delta has five value columns");
        }
        store(&conn, &compute(&conn).unwrap()).unwrap();
        let t = Tracking::begin(&conn).unwrap();
        assert!(matches!(t, Tracking::Move(_)));
        conn.execute_batch(
            "INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('A', 'root', 3);
             UPDATE association_table SET shares = 9, fairshare = 0.5;
             INSERT INTO association_table(creation_time, username, userid, bank, default_bank, shares)
             VALUES (0, 'u2', 2, 'A', 'A', 1);
             DELETE FROM association_table WHERE username = 'u1';",
        )
        .unwrap();
        t.end(&conn).unwrap();
        assert_eq!(stored(&conn).unwrap().unwrap(), compute(&conn).unwrap());
        // Untracked (a hand edit): the seal no longer matches, and a
        // tracked change after it does not make it match again.
        conn.execute_batch("UPDATE bank_table SET shares = 4 WHERE bank = 'A'").unwrap();
        assert!(!intact(&conn).unwrap());
        let t = Tracking::begin(&conn).unwrap();
        conn.execute_batch("UPDATE association_table SET job_usage = 1").unwrap();
        t.end(&conn).unwrap();
        assert!(!intact(&conn).unwrap());
    }

    #[test]
    fn a_first_form_seal_that_matched_is_resealed_in_the_current_form() {
        let conn = tables();
        store(&conn, &compute_v1(&conn).unwrap()).unwrap();
        assert!(intact(&conn).unwrap());
        let t = Tracking::begin(&conn).unwrap();
        assert_eq!(t, Tracking::Reseal);
        conn.execute_batch("UPDATE association_table SET shares = 2").unwrap();
        t.end(&conn).unwrap();
        assert!(stored(&conn).unwrap().unwrap().starts_with(V2));
        assert!(intact(&conn).unwrap());
    }
}

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

/// Whether applying an event whose tables are `touched`
/// ([`crate::apply::tables_touched`]) can change an [`INPUTS`] column.
pub(crate) fn touches(touched: &[&str], fairshare_only: bool) -> bool {
    !fairshare_only && touched.iter().any(|t| INPUTS.iter().any(|(i, _)| i == t))
}

/// The seal of the [`INPUTS`] columns of the tables on `conn`: blake3 over
/// every row in key order, each value tagged with its storage class.
pub fn compute(conn: &Connection) -> Result<String, Error> {
    let mut h = blake3::Hasher::new();
    for (table, cols) in INPUTS {
        let order = if *table == "bank_table" { "bank" } else { "username, bank" };
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {} FROM main.{table} ORDER BY {order}", cols.join(", ")))?;
        let mut rows = stmt.query([])?;
        h.update(table.as_bytes());
        while let Some(r) = rows.next()? {
            for i in 0..cols.len() {
                match r.get_ref(i)? {
                    ValueRef::Null => h.update(b"n"),
                    ValueRef::Integer(v) => h.update(b"i").update(&v.to_le_bytes()),
                    ValueRef::Real(v) => h.update(b"r").update(&v.to_bits().to_le_bytes()),
                    ValueRef::Text(t) => h.update(b"t").update(&(t.len() as u64).to_le_bytes()).update(t),
                    ValueRef::Blob(b) => h.update(b"b").update(&(b.len() as u64).to_le_bytes()).update(b),
                };
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
        Some(s) => s == compute(conn)?,
        None => false,
    })
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
}

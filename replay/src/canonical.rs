//! The canonical state of the projections and its blake3 hash.
//!
//! `docs/replay.md` is the normative description. In short:
//!
//! ```text
//! state = "fluxacct-state-v1" 0x00
//!         for each table T of PROJECTION_TABLES except projection_meta:
//!             str(T) || u32le(ncols) || str(col_1) .. str(col_n)
//!             for each row, in ascending primary-key order:
//!                 0x01 || value(col_1) .. value(col_n)
//!             0x00
//! value   = 0x00                                  NULL
//!         | 0x01 || i64le                          INTEGER
//!         | 0x02 || u64le(IEEE-754 bits)           REAL
//!         | 0x03 || u32le(len) || utf8 bytes       TEXT
//!         | 0x04 || u32le(len) || bytes            BLOB
//! str(s)  = u32le(len) || utf8 bytes
//! state_hash = blake3(state)
//! ```
//!
//! The same encoding (restricted to some tables) is the storage format of
//! projection checkpoints, so [`decode_into`] restores what
//! [`encode_tables`] wrote.

use std::cmp::Ordering;
use std::fmt;

use rusqlite::types::Value;
use rusqlite::Connection;

use crate::error::Error;
use crate::Result;

/// Domain-separation prefix of the canonical state encoding.
pub const DOMAIN: &[u8] = b"fluxacct-state-v1\0";

/// Bookkeeping tables left out of the canonical state: `projection_meta`
/// holds the schema version and the last applied seq, which say how the
/// tables were produced rather than what they hold.
pub const EXCLUDED: &[&str] = &["projection_meta"];

/// The tables whose rows make up the canonical state, in
/// `PROJECTION_TABLES` order.
pub fn state_tables() -> Vec<&'static str> {
    projections::schema::PROJECTION_TABLES.iter().copied().filter(|t| !EXCLUDED.contains(t)).collect()
}

/// A blake3 hash of the canonical state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateHash(pub [u8; 32]);

impl StateHash {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        fluxacct_core::EventHash(self.0).to_hex()
    }

    /// Parses 64 hex digits.
    pub fn parse(s: &str) -> Option<StateHash> {
        s.parse::<fluxacct_core::EventHash>().ok().map(|h| StateHash(h.0))
    }
}

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateHash({})", self.to_hex())
    }
}

/// Column names and primary-key columns of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<String>,
    /// Indexes into `columns` of the primary key, in key order.
    pub pk: Vec<usize>,
}

impl TableInfo {
    /// Reads the table's columns from the `main` schema of `conn`.
    pub fn read(conn: &Connection, table: &str) -> Result<TableInfo> {
        let mut stmt = conn.prepare(&format!("PRAGMA main.table_info({})", quote_ident(table)))?;
        let mut cols: Vec<(String, i64)> = Vec::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            cols.push((r.get(1)?, r.get(5)?));
        }
        if cols.is_empty() {
            return Err(Error::invalid(format!("projection table {table} is missing")));
        }
        let mut pk: Vec<(i64, usize)> =
            cols.iter().enumerate().filter(|(_, (_, k))| *k > 0).map(|(i, (_, k))| (*k, i)).collect();
        pk.sort();
        let mut pk: Vec<usize> = pk.into_iter().map(|(_, i)| i).collect();
        if pk.is_empty() {
            // No declared key: every column, which still gives a total order.
            pk = (0..cols.len()).collect();
        }
        Ok(TableInfo { name: table.to_string(), columns: cols.into_iter().map(|(c, _)| c).collect(), pk })
    }

    /// `SELECT cols FROM table ORDER BY pk` (the table name unqualified, so
    /// temp views of as-of connections are honoured).
    pub fn select_ordered(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        let order: Vec<String> = self.pk.iter().map(|&i| quote_ident(&self.columns[i])).collect();
        format!("SELECT {} FROM {} ORDER BY {}", cols.join(", "), quote_ident(&self.name), order.join(", "))
    }

    /// The primary-key values of a row.
    pub fn key<'r>(&self, row: &'r [Value]) -> Vec<&'r Value> {
        self.pk.iter().map(|&i| &row[i]).collect()
    }
}

/// Quotes an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Orders two values the way SQLite's `ORDER BY` does with the BINARY
/// collation: NULL < numbers < text < blob; numbers by value; text and
/// blobs bytewise.
pub fn cmp_values(a: &Value, b: &Value) -> Ordering {
    fn class(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Integer(x), Value::Real(y)) => (*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Real(x), Value::Integer(y)) => x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal),
        (Value::Real(x), Value::Real(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
        _ => class(a).cmp(&class(b)),
    }
}

/// Compares two keys element by element with [`cmp_values`].
pub fn cmp_keys(a: &[&Value], b: &[&Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match cmp_values(x, y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

/// Exact, typed equality (an INTEGER 1 differs from a REAL 1.0; reals are
/// compared bit for bit).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// Renders a value for reports: text quoted, NULL as `NULL`.
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => format!("{r:?}"),
        Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Blob(b) => format!("x'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

fn put_str(out: &mut impl Sink, s: &[u8]) {
    out.put(&(s.len() as u32).to_le_bytes());
    out.put(s);
}

/// Appends the canonical encoding of one value, borrowed from a row.
fn put_value_ref(out: &mut impl Sink, v: rusqlite::types::ValueRef<'_>) {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => out.put(&[0x00]),
        ValueRef::Integer(i) => {
            let mut b = [0x01; 9];
            b[1..].copy_from_slice(&i.to_le_bytes());
            out.put(&b);
        }
        ValueRef::Real(r) => {
            let mut b = [0x02; 9];
            b[1..].copy_from_slice(&r.to_bits().to_le_bytes());
            out.put(&b);
        }
        ValueRef::Text(s) => {
            out.put(&[0x03]);
            put_str(out, s);
        }
        ValueRef::Blob(b) => {
            out.put(&[0x04]);
            put_str(out, b);
        }
    }
}

/// Where encoded bytes go: a hasher or a buffer.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for blake3::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

fn encode_into(conn: &Connection, tables: &[&str], out: &mut impl Sink) -> Result<()> {
    out.put(DOMAIN);
    for t in tables {
        let info = TableInfo::read(conn, t)?;
        put_str(out, t.as_bytes());
        out.put(&(info.columns.len() as u32).to_le_bytes());
        for c in &info.columns {
            put_str(out, c.as_bytes());
        }
        // Straight from the row's borrowed values: no owned `Value` per column.
        let mut stmt = conn.prepare(&info.select_ordered())?;
        let n = info.columns.len();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.put(&[0x01]);
            for i in 0..n {
                put_value_ref(out, r.get_ref(i)?);
            }
        }
        out.put(&[0x00]);
    }
    Ok(())
}

/// The canonical state hash of the projection tables visible on `conn`
/// (see the module docs). Streams the rows; nothing is buffered.
pub fn state_hash(conn: &Connection) -> Result<StateHash> {
    let mut h = blake3::Hasher::new();
    encode_into(conn, &state_tables(), &mut h)?;
    Ok(StateHash(*h.finalize().as_bytes()))
}

/// The canonical encoding of `tables` as bytes (projection checkpoints).
pub fn encode_tables(conn: &Connection, tables: &[&str]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(conn, tables, &mut out)?;
    Ok(out)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| Error::invalid("projection checkpoint is truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Error::invalid("projection checkpoint: bad UTF-8"))
    }
    fn value(&mut self) -> Result<Value> {
        Ok(match self.u8()? {
            0x00 => Value::Null,
            0x01 => Value::Integer(self.u64()? as i64),
            0x02 => Value::Real(f64::from_bits(self.u64()?)),
            0x03 => Value::Text(self.string()?),
            0x04 => Value::Blob(self.bytes()?.to_vec()),
            t => return Err(Error::invalid(format!("projection checkpoint: bad value tag {t}"))),
        })
    }
}

/// Restores tables written by [`encode_tables`] into the (empty) tables of
/// the same names on `conn`. Refuses an encoding whose columns differ from
/// the tables'.
pub fn decode_into(conn: &Connection, bytes: &[u8]) -> Result<()> {
    let mut r = Reader { b: bytes, pos: 0 };
    if r.take(DOMAIN.len())? != DOMAIN {
        return Err(Error::invalid("projection checkpoint: bad prefix"));
    }
    while r.pos < bytes.len() {
        let table = r.string()?;
        let ncols = r.u32()? as usize;
        let mut cols = Vec::with_capacity(ncols);
        for _ in 0..ncols {
            cols.push(r.string()?);
        }
        let info = TableInfo::read(conn, &table)?;
        if info.columns != cols {
            return Err(Error::invalid(format!("projection checkpoint: columns of {table} differ from the schema")));
        }
        let placeholders: Vec<String> = (1..=ncols).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO main.{} ({}) VALUES ({})",
            quote_ident(&table),
            cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "),
            placeholders.join(", ")
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut row = Vec::with_capacity(ncols);
        loop {
            match r.u8()? {
                0x00 => break,
                0x01 => {
                    row.clear();
                    for _ in 0..ncols {
                        row.push(r.value()?);
                    }
                    stmt.execute(rusqlite::params_from_iter(row.iter()))?;
                }
                t => return Err(Error::invalid(format!("projection checkpoint: bad row tag {t}"))),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_follows_sqlite() {
        use Value::*;
        let mut v =
            vec![Text("b".into()), Integer(3), Null, Real(2.5), Blob(vec![0]), Text("a".into()), Text("B".into())];
        v.sort_by(cmp_values);
        assert_eq!(
            v,
            vec![Null, Real(2.5), Integer(3), Text("B".into()), Text("a".into()), Text("b".into()), Blob(vec![0])]
        );
    }

    #[test]
    fn encode_decode_round_trip() {
        let a = Connection::open_in_memory().unwrap();
        projections::schema::create(&a).unwrap();
        a.execute_batch(
            "INSERT INTO bank_table(bank, shares) VALUES ('root', 1), ('x''y', 2);
             INSERT INTO usage_state(key, value) VALUES ('a', 1.5), ('b', NULL), ('c', x'00ff'), ('d', 'z');",
        )
        .unwrap();
        let bytes = encode_tables(&a, &state_tables()).unwrap();
        let b = Connection::open_in_memory().unwrap();
        projections::schema::create(&b).unwrap();
        decode_into(&b, &bytes).unwrap();
        assert_eq!(state_hash(&a).unwrap(), state_hash(&b).unwrap());
        b.execute("UPDATE bank_table SET shares = 3 WHERE bank = 'root'", []).unwrap();
        assert_ne!(state_hash(&a).unwrap(), state_hash(&b).unwrap());
        assert!(decode_into(&b, &bytes[..bytes.len() - 3]).is_err());
    }

    /// Pins the encoding: an empty state hashes to this value. If this test
    /// fails, every stored checkpoint line stops verifying.
    #[test]
    fn empty_state_hash_is_pinned() {
        let a = Connection::open_in_memory().unwrap();
        projections::schema::create(&a).unwrap();
        let mut manual = DOMAIN.to_vec();
        for t in state_tables() {
            let info = TableInfo::read(&a, t).unwrap();
            manual.extend_from_slice(&(t.len() as u32).to_le_bytes());
            manual.extend_from_slice(t.as_bytes());
            manual.extend_from_slice(&(info.columns.len() as u32).to_le_bytes());
            for c in &info.columns {
                manual.extend_from_slice(&(c.len() as u32).to_le_bytes());
                manual.extend_from_slice(c.as_bytes());
            }
            manual.push(0);
        }
        assert_eq!(state_hash(&a).unwrap().0, *blake3::hash(&manual).as_bytes());
    }
}

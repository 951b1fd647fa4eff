//! Reading a flux-accounting database (any released schema, v0.10 to
//! v0.60) for `import-db`, without writing anything beside it.
//!
//! The file is opened with SQLite's `immutable` URI flag (no locks, no
//! `-shm`, no journal). When a `-wal` file lies beside it (flux-accounting
//! 0.60 leaves its database in WAL mode), the database and its `-wal` are
//! first copied into a private temporary directory and the copy is opened,
//! so that SQLite reads the committed frames of the WAL while the source
//! stays untouched.
//!
//! Reference: shared/specs/flux-accounting-reference.md §3 (schema and
//! which version added which table and column).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};

/// The newest flux-accounting schema (`PRAGMA user_version`) fluxacct knows.
pub const NEWEST_KNOWN_SCHEMA: i64 = 38;

/// An open flux-accounting database.
pub struct SourceDb {
    conn: Connection,
    /// The source file.
    pub path: PathBuf,
    /// `PRAGMA user_version`.
    pub user_version: i64,
    /// Holds the private copy when a `-wal` was read.
    _copy: Option<tempfile::TempDir>,
    /// (blake3 hex, size) of the `-wal` read, if any.
    pub wal: Option<(String, u64)>,
}

/// blake3 (hex) and size of a file's bytes, streamed.
pub fn file_digest(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io_msg(format!("{}: {e}", path.display())))?;
    let mut h = blake3::Hasher::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|e| Error::io_msg(format!("{}: {e}", path.display())))?;
    Ok((h.finalize().to_hex().to_string(), n))
}

fn uri(path: &Path, flags: &str) -> String {
    let mut s = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' | '?' | '#' => s.push_str(&format!("%{:02X}", c as u32)),
            _ => s.push(c),
        }
    }
    s.push('?');
    s.push_str(flags);
    s
}

impl SourceDb {
    /// Opens `path` read-only and checks that it is a flux-accounting
    /// database of a known schema.
    pub fn open(path: &Path) -> Result<SourceDb> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| Error::invalid(format!("import-db: {shown}: {e}")))?;
        if !meta.is_file() {
            return Err(Error::invalid(format!("import-db: {shown} is not a file")));
        }
        let wal_path = PathBuf::from(format!("{}-wal", path.display()));
        let wal_len = std::fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
        let (conn, copy, wal) = if wal_len > 0 {
            let dir = tempfile::tempdir()?;
            let db = dir.path().join("source.db");
            std::fs::copy(path, &db)?;
            std::fs::copy(&wal_path, dir.path().join("source.db-wal"))?;
            let conn =
                Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            (conn, Some(dir), Some(file_digest(&wal_path)?))
        } else {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            (Connection::open_with_flags(uri(path, "mode=ro&immutable=1"), flags)?, None, None)
        };
        let not_db = || Error::invalid(format!("import-db: {shown} is not a SQLite database"));
        let user_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|_| not_db())?;
        let tables = table_names(&conn).map_err(|_| not_db())?;
        if tables.contains("events") && tables.contains("projection_meta") {
            return Err(Error::invalid(format!(
                "import-db: {shown} is a fluxacct ledger, not a flux-accounting database"
            )));
        }
        if !tables.contains("association_table") || !tables.contains("bank_table") {
            return Err(Error::invalid(format!(
                "import-db: {shown} is not a flux-accounting database (no association_table or bank_table)"
            )));
        }
        if user_version > NEWEST_KNOWN_SCHEMA {
            return Err(Error::invalid(format!(
                "import-db: {shown} has flux-accounting schema version {user_version}, newer than any known \
                 (up to {NEWEST_KNOWN_SCHEMA})"
            )));
        }
        Ok(SourceDb { conn, path: path.to_path_buf(), user_version, _copy: copy, wal })
    }

    /// The connection (read-only use).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, for a thread that reads through it.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

fn table_names(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The columns of `table`, in order (empty if there is no such table).
pub fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(1))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A cell of a source row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// INTEGER.
    Int(i64),
    /// REAL.
    Real(f64),
    /// TEXT (or a BLOB read as text).
    Text(String),
}

impl Cell {
    fn of(v: ValueRef<'_>) -> Cell {
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        }
    }
}

/// One source row: its table, rowid and cells by column name.
#[derive(Debug, Clone)]
pub struct Row {
    /// Table name.
    pub table: &'static str,
    /// Position of the row in the table (1-based, in rowid order).
    pub n: usize,
    /// A short name of the row for messages (`username=…, bank=…`).
    pub label: String,
    cells: BTreeMap<String, Cell>,
}

impl Row {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        let label = if self.label.is_empty() { String::new() } else { format!(" ({})", self.label) };
        Error::invalid(format!("import-db: {} row {}{label}: {what}", self.table, self.n))
    }

    /// Whether the source has this column.
    pub fn has(&self, col: &str) -> bool {
        self.cells.contains_key(col)
    }

    fn cell(&self, col: &str) -> Option<&Cell> {
        self.cells.get(col)
    }

    /// A required text column (a NULL is refused).
    pub fn text(&self, col: &str) -> Result<String> {
        match self.cell(col) {
            None => Err(self.err(format_args!("no column {col}"))),
            Some(Cell::Null) => Err(self.err(format_args!("NULL in column {col}"))),
            Some(Cell::Text(s)) => Ok(s.clone()),
            Some(Cell::Int(i)) => Ok(i.to_string()),
            Some(Cell::Real(f)) => Ok(f.to_string()),
        }
    }

    /// A text column, `default` when the source lacks the column; NULL is
    /// refused unless `null_ok`, when it also gives `default`.
    pub fn text_or(&self, col: &str, default: &str, null_ok: bool) -> Result<String> {
        match self.cell(col) {
            None => Ok(default.to_string()),
            Some(Cell::Null) if null_ok => Ok(default.to_string()),
            Some(_) => self.text(col),
        }
    }

    /// A required integer column.
    pub fn int(&self, col: &str) -> Result<i64> {
        match self.cell(col) {
            None => Err(self.err(format_args!("no column {col}"))),
            Some(Cell::Null) => Err(self.err(format_args!("NULL in column {col}"))),
            Some(Cell::Int(i)) => Ok(*i),
            Some(Cell::Real(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(*f as i64),
            Some(Cell::Text(s)) => {
                s.trim().parse::<i64>().map_err(|_| self.err(format_args!("column {col} is not an integer: {s:?}")))
            }
            Some(Cell::Real(f)) => Err(self.err(format_args!("column {col} is not an integer: {f}"))),
        }
    }

    /// An integer column, `default` when the source lacks it.
    pub fn int_or(&self, col: &str, default: i64) -> Result<i64> {
        if self.has(col) {
            self.int(col)
        } else {
            Ok(default)
        }
    }

    /// A required real column.
    pub fn real(&self, col: &str) -> Result<f64> {
        let v = match self.cell(col) {
            None => return Err(self.err(format_args!("no column {col}"))),
            Some(Cell::Null) => return Err(self.err(format_args!("NULL in column {col}"))),
            Some(Cell::Int(i)) => *i as f64,
            Some(Cell::Real(f)) => *f,
            Some(Cell::Text(s)) => {
                s.trim().parse::<f64>().map_err(|_| self.err(format_args!("column {col} is not a number: {s:?}")))?
            }
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(format_args!("column {col} is not finite")))
        }
    }

    /// A real column, `default` when the source lacks it.
    pub fn real_or(&self, col: &str, default: f64) -> Result<f64> {
        if self.has(col) {
            self.real(col)
        } else {
            Ok(default)
        }
    }

    /// The raw cell as JSON (for job rows handed to [`fluxacct_ingest::record`]).
    pub fn json(&self, col: &str) -> serde_json::Value {
        match self.cell(col) {
            None | Some(Cell::Null) => serde_json::Value::Null,
            Some(Cell::Int(i)) => serde_json::json!(i),
            Some(Cell::Real(f)) => serde_json::json!(f),
            Some(Cell::Text(s)) => serde_json::Value::String(s.clone()),
        }
    }
}

/// Reads every row of `table` (in rowid order, or primary-key order for a
/// table without rowid), labelling each with the values of `label_cols`.
/// `None` when the source has no such table.
pub fn rows(conn: &Connection, table: &'static str, label_cols: &[&str]) -> Result<Option<Vec<Row>>> {
    let cols = columns(conn, table)?;
    if cols.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for_each_row(conn, table, label_cols, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(Some(out))
}

/// Calls `f` on every row of `table` in order, streaming.
pub fn for_each_row<F>(conn: &Connection, table: &'static str, label_cols: &[&str], mut f: F) -> Result<()>
where
    F: FnMut(Row) -> Result<()>,
{
    let cols = columns(conn, table)?;
    if cols.is_empty() {
        return Ok(());
    }
    let list = cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    let has_rowid = conn.prepare(&format!("SELECT rowid FROM \"{table}\" LIMIT 0")).is_ok();
    let order = if has_rowid { " ORDER BY rowid" } else { "" };
    let mut stmt = conn.prepare(&format!("SELECT {list} FROM \"{table}\"{order}"))?;
    let mut q = stmt.query([])?;
    let mut n = 0usize;
    while let Some(r) = q.next()? {
        n += 1;
        let mut cells = BTreeMap::new();
        for (i, c) in cols.iter().enumerate() {
            cells.insert(c.clone(), Cell::of(r.get_ref(i)?));
        }
        let label = label_cols
            .iter()
            .filter_map(|c| match cells.get(*c) {
                Some(Cell::Text(s)) => Some(format!("{c}={s}")),
                Some(Cell::Int(i)) => Some(format!("{c}={i}")),
                Some(Cell::Real(x)) => Some(format!("{c}={x}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(", ");
        f(Row { table, n, label, cells })?;
    }
    Ok(())
}

/// Number of rows of `table` (0 if it does not exist).
pub fn count(conn: &Connection, table: &str) -> Result<u64> {
    if columns(conn, table)?.is_empty() {
        return Ok(0);
    }
    Ok(conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get::<_, i64>(0))? as u64)
}

/// The source's `end_half_life_period`, if it has one.
pub fn end_half_life_period(conn: &Connection) -> Result<Option<f64>> {
    if columns(conn, "t_half_life_period_table")?.is_empty() {
        return Ok(None);
    }
    let v: Option<Option<f64>> = conn
        .query_row("SELECT end_half_life_period FROM t_half_life_period_table ORDER BY rowid LIMIT 1", [], |r| r.get(0))
        .optional()?;
    Ok(v.flatten().filter(|x| x.is_finite() && *x > 0.0))
}

//! Naming the real cause when a ledger cannot be opened: missing, no read
//! permission, read-only for a write, a directory, truncated or malformed,
//! SQLite but not a ledger, a flux-accounting database (only when its
//! tables say so), a ledger whose header was damaged. Each cause is one
//! line ([`Error::Unusable`] and its siblings).

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::file::{OpenMode, APPLICATION_ID};
use crate::Result;

/// The first bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn unusable(path: &Path, why: impl Into<String>) -> Error {
    Error::Unusable { path: path.display().to_string(), why: why.into() }
}

/// Checks what the file system and the file's header say before SQLite
/// opens the file, so that SQLite's generic errors are not the only word.
pub(crate) fn precheck(path: &Path, mode: OpenMode) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::Missing(path.display().to_string())),
        Err(e) => return Err(unusable(path, format!("cannot reach the file: {}", io_words(&e)))),
    };
    if let Some(what) = special_file(&meta) {
        return Err(unusable(path, format!("is {what}, not a ledger file")));
    }
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Err(unusable(path, format!("cannot read the file: {}", io_words(&e)))),
    };
    let mut header = [0u8; 100];
    let mut n = 0;
    while n < header.len() {
        match f.read(&mut header[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(unusable(path, format!("cannot read the file: {}", io_words(&e)))),
        }
    }
    if n == 0 {
        return Err(Error::NotALedger { path: path.display().to_string(), hint: "; the file is empty".into() });
    }
    if n < header.len() {
        if header[..n.min(16)] == MAGIC[..n.min(16)] {
            return Err(unusable(
                path,
                format!(
                    "is damaged: database disk image is malformed (truncated to {n} bytes, shorter than its header)"
                ),
            ));
        }
        return Err(not_sqlite(path));
    }
    if &header[..16] != MAGIC {
        return Err(not_sqlite(path));
    }
    // Page size (1 means 65536) and, when valid, the page count.
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        p => p as u64,
    };
    let pages = u32::from_be_bytes([header[28], header[29], header[30], header[31]]) as u64;
    let counter = &header[24..28];
    let valid_for = &header[92..96];
    // In WAL mode a checkpoint writes page 1 (with the new page count)
    // before the pages that extend the file: while the `-wal` file holds
    // frames, a short main file is not proof of truncation (SQLite's own
    // error then says what is wrong).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_busy = std::fs::metadata(std::path::PathBuf::from(wal)).is_ok_and(|m| m.len() > 0);
    if !wal_busy && counter == valid_for && pages > 0 && page_size >= 512 && meta.len() < pages * page_size {
        return Err(unusable(
            path,
            format!(
                "is damaged: database disk image is malformed (truncated: its header says {pages} pages of {page_size} \
                 bytes, {} bytes, but the file has {})",
                pages * page_size,
                meta.len()
            ),
        ));
    }
    if mode == OpenMode::ReadWrite {
        if let Err(e) = std::fs::OpenOptions::new().write(true).open(path) {
            return Err(unusable(path, format!("cannot write the file: {}", io_words(&e))));
        }
    }
    Ok(())
}

/// What a path that is not a regular file is ("a directory", "a FIFO",
/// ...), from its metadata (symbolic links followed). SQLite must never
/// see such a path: opening a FIFO blocks until a writer comes, and a
/// device such as `/dev/null` gets a `-journal` or `-wal` file created
/// beside it.
pub(crate) fn special_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    }
}

/// Refuses a path that exists and is not a regular file (before SQLite or
/// an `open` that could block sees it).
pub(crate) fn refuse_special(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) => match special_file(&m) {
            Some(what) => Err(unusable(path, format!("is {what}, not a ledger file"))),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

fn not_sqlite(path: &Path) -> Error {
    Error::NotALedger {
        path: path.display().to_string(),
        hint: "; the file is not a SQLite database (it does not start with the SQLite header)".into(),
    }
}

/// An I/O error in plain words (`permission denied`, `read-only file system`).
fn io_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(30) => "read-only file system".to_string(),
        _ => match e.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        },
    }
}

/// The error for a SQLite failure while opening `path` and reading its
/// header fields: SQLite's own words, with what they mean here.
pub(crate) fn sqlite_open_error(path: &Path, mode: OpenMode, e: rusqlite::Error) -> Error {
    use rusqlite::ffi::ErrorCode;
    let code = match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::NotADatabase) => not_sqlite(path),
        Some(ErrorCode::DatabaseCorrupt) => unusable(path, format!("is damaged: {e}")),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::CannotOpen) if mode == OpenMode::ReadWrite => unusable(
            path,
            format!(
                "cannot write it: {e} (the file and its directory must be writable: the log's -wal and -shm files \
                 live beside it)"
            ),
        ),
        Some(ErrorCode::PermissionDenied) | Some(ErrorCode::CannotOpen) => {
            unusable(path, format!("cannot read the file: {e}"))
        }
        _ => Error::Sqlite(e),
    }
}

/// Why a SQLite file whose `application_id` is not a ledger's is refused:
/// a ledger whose header was damaged (it has the log), a flux-accounting
/// database (only when its tables say so), or another SQLite file.
pub(crate) fn foreign(path: &Path, conn: &Connection, app_id: i64) -> Error {
    let has = |name: &str| -> bool {
        conn.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
            .optional()
            .ok()
            .flatten()
            .is_some()
    };
    if has("events") && has("ledger_state") || has("events") && has("projection_meta") {
        return unusable(
            path,
            format!(
                "is damaged: its header's application_id is {app_id:#x}, not a ledger's {:#x} (the file has the \
                 ledger's tables; restore it from a copy)",
                APPLICATION_ID
            ),
        );
    }
    if has("association_table") && has("bank_table") && !has("events") {
        return Error::NotALedger {
            path: path.display().to_string(),
            hint: "; it is a flux-accounting database (convert it with `flux-account import-db`)".into(),
        };
    }
    Error::NotALedger { path: path.display().to_string(), hint: String::new() }
}

/// The seqs of `events` that SQLite cannot read (a damaged page of the
/// log), as inclusive ranges in order: found by bisecting `SELECT … FROM
/// events WHERE seq BETWEEN ? AND ?` (every column read, so that overflow
/// pages are read too) down to single seqs. A range is the keys the
/// damaged page covers; the seqs themselves may or may not exist. Empty
/// when every row reads. Reads nothing else.
pub fn unreadable_event_ranges(conn: &Connection) -> Vec<(i64, i64)> {
    let readable = |lo: i64, hi: i64| -> bool {
        let run = || -> rusqlite::Result<()> {
            let mut stmt = conn.prepare_cached("SELECT * FROM events WHERE seq BETWEEN ?1 AND ?2")?;
            let n = stmt.column_count();
            let mut rows = stmt.query([lo, hi])?;
            while let Some(r) = rows.next()? {
                for i in 0..n {
                    r.get_ref(i)?;
                }
            }
            Ok(())
        };
        run().is_ok()
    };
    // The bounds: the log's largest seq if it reads, else every seq.
    let hi = conn
        .query_row("SELECT max(seq) FROM events", [], |r| r.get::<_, Option<i64>>(0))
        .ok()
        .flatten()
        .unwrap_or(i64::MAX / 2);
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut todo = vec![(0i64, hi)];
    while let Some((lo, hi)) = todo.pop() {
        if readable(lo, hi) {
            continue;
        }
        if lo == hi {
            match out.last_mut() {
                Some(last) if last.1 + 1 == lo => last.1 = lo,
                _ => out.push((lo, lo)),
            }
            continue;
        }
        let mid = lo + (hi - lo) / 2;
        // Upper half pushed first: the lower half is taken first, so the
        // ranges come out in order.
        todo.push((mid + 1, hi));
        todo.push((lo, mid));
    }
    out
}

/// `seq 7`, `seqs 7–9`, `seqs 7–9 and 12`: the ranges of
/// [`unreadable_event_ranges`] in words.
pub fn describe_seq_ranges(ranges: &[(i64, i64)]) -> String {
    let parts: Vec<String> =
        ranges.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}–{b}") }).collect();
    let single = ranges.len() == 1 && ranges[0].0 == ranges[0].1;
    let list = match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.join(""),
    };
    format!("{} {list}", if single { "seq" } else { "seqs" })
}

/// `err`, a failed read of the log, as [`Error::LogUnreadable`] naming the
/// unreadable seqs when SQLite reports damage and some seqs of `events`
/// cannot be read; else `err` itself.
pub fn name_unreadable_log(conn: &Connection, err: Error) -> Error {
    let damaged = match &err {
        Error::Sqlite(e) => matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        ),
        _ => false,
    };
    if !damaged {
        return err;
    }
    let ranges = unreadable_event_ranges(conn);
    if ranges.is_empty() {
        return err;
    }
    let why = match &err {
        Error::Sqlite(e) => e.to_string(),
        other => other.to_string(),
    };
    Error::LogUnreadable { seqs: describe_seq_ranges(&ranges), why }
}

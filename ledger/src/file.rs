//! What identifies a ledger file and how it is opened: shared by the store
//! and by `diagnose`, which names why a file cannot be opened.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// `PRAGMA application_id` of a fluxacct ledger ("FXAL").
pub const APPLICATION_ID: i64 = 0x4658_414c;

/// How to open an existing ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write (runs pending migrations).
    ReadWrite,
    /// Read only (refuses files that need migrating).
    ReadOnly,
}

/// Opens a read-only connection (`flags` include `SQLITE_OPEN_READ_ONLY`).
/// When SQLite cannot read the WAL database because its `-wal` file is
/// missing and cannot be created (another SQLite client closed the file
/// last and removed its side files; the caller may not write the
/// directory), the database file alone holds every commit, so it is opened
/// as it stands, with SQLite's `immutable` flag (docs/architecture.md,
/// "File modes and readers"). Also says whether it did so.
pub(crate) fn open_read_only_conn(path: &Path, flags: OpenFlags) -> rusqlite::Result<(Connection, bool)> {
    let conn = Connection::open_with_flags(path, flags)?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Err(e) if cannot_create_side_files(&e) && !side_file(path, "-wal").exists() => {
            drop(conn);
            Ok((Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)?, true))
        }
        _ => Ok((conn, false)),
    }
}

/// `path` with `suffix` appended (`-wal`, `-shm`).
fn side_file(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    std::path::PathBuf::from(p)
}

/// Whether a read-only open failed because SQLite could not create the
/// WAL's side files (`attempt to write a readonly database`, or cannot
/// open).
fn cannot_create_side_files(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen))
}

/// The URI that opens `path` read-only with SQLite's `immutable` flag
/// (no locks, no `-wal`/`-shm`).
fn immutable_uri(path: &Path) -> String {
    let mut s = uri_path(path);
    s.push_str("?mode=ro&immutable=1");
    s
}

/// `file:` and `path`, with the characters a URI's path cannot hold
/// escaped.
pub(crate) fn uri_path(path: &Path) -> String {
    let mut s = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' | '?' | '#' => s.push_str(&format!("%{:02X}", c as u32)),
            _ => s.push(c),
        }
    }
    s
}

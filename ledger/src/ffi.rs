//! The ledger's one call into SQLite's C API that rusqlite does not wrap.
//!
//! `SQLITE_FCNTL_PERSIST_WAL` keeps a ledger's `-wal` and `-shm` files when
//! the last writer closes, so that local users who may read the ledger but
//! not write its directory can still open it (SQLite opens a WAL database
//! read-only only when those files exist; see docs/architecture.md,
//! "File modes and readers").

use rusqlite::Connection;

/// Turns on `SQLITE_FCNTL_PERSIST_WAL` for the main database of `conn`.
pub(crate) fn persist_wal(conn: &Connection) -> crate::Result<()> {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: `conn.handle()` is the live sqlite3* owned by `conn`, which
    // outlives this call; the schema name is a NUL-terminated static
    // string; SQLITE_FCNTL_PERSIST_WAL takes a pointer to one int, which
    // `on` is and which lives until the call returns.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), Some("SQLITE_FCNTL_PERSIST_WAL".into()))
            .into())
    }
}

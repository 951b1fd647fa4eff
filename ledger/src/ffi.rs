//! The ledger's calls into SQLite's C API that rusqlite does not wrap.
//!
//! `SQLITE_FCNTL_PERSIST_WAL` keeps a ledger's `-wal` and `-shm` files when
//! the last writer closes, so that local users who may read the ledger but
//! not write its directory can still open it (SQLite opens a WAL database
//! read-only only when those files exist; see docs/architecture.md,
//! "File modes and readers").

use rusqlite::Connection;

/// Turns off SQLite's memory statistics (`SQLITE_CONFIG_MEMSTATUS`), once
/// per process, before the first connection: with them on, every
/// allocation SQLite makes takes a global mutex (about 3 % of a bulk
/// ingest's writer thread). fluxacct never reads those statistics
/// (`sqlite3_memory_used`). When another library has already initialised
/// SQLite the call is refused (`SQLITE_MISUSE`) and nothing changes, which
/// is harmless.
pub(crate) fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection of this
        // crate is opened (every open goes through `configure_library`
        // first) and only once (`Once`); SQLITE_CONFIG_MEMSTATUS takes one
        // int argument, which is passed. If SQLite is already initialised
        // it returns SQLITE_MISUSE without side effects.
        let _ =
            unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int) };
    });
}

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

//! SQLite storage of the log.

use std::collections::VecDeque;
use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::Error;
use crate::file::{open_read_only_conn, uri_path, OpenMode, APPLICATION_ID};
use crate::read::{read_event, read_head, row_to_event, Head, SELECT_EVENT};
use crate::Result;
use fluxacct_core::{EventHash, EventMeta, Seq, StoredEvent};

/// Ordered migrations of the ledger's own tables. Entry `i` takes the file
/// from `user_version = i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the event log and its write-once guards.
    r#"
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY,
        recorded_at INTEGER NOT NULL,
        actor_uid   INTEGER NOT NULL,
        actor_name  TEXT    NOT NULL,
        argv        TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        payload     BLOB    NOT NULL,
        prev_hash   BLOB    NOT NULL,
        hash        BLOB    NOT NULL
    );
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'fluxacct: events are write-once; UPDATE refused'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'fluxacct: events are write-once; DELETE refused'); END;
    "#,
    // 1 -> 2: bookkeeping outside the log (what verification found;
    // `crate::integrity`).
    "CREATE TABLE IF NOT EXISTS ledger_state (key TEXT NOT NULL PRIMARY KEY, value);",
];

/// The oldest ledger schema a read-only open accepts without migrating:
/// later migrations only add side tables, whose absence readers handle.
const MIN_READABLE_VERSION: i64 = 1;

/// Page size of new ledgers, in bytes.
pub const PAGE_SIZE: i64 = 16384;

/// The ledger schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open ledger file.
pub struct Ledger {
    conn: Connection,
    path: String,
    /// Opened with SQLite's `immutable` flag ([`open_read_only_conn`]).
    immutable: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

fn configure(conn: &Connection, read_only: bool) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        if conn.path().is_some_and(|p| !p.is_empty()) {
            // Keep -wal and -shm when the last writer closes (emptied: a
            // non-negative journal_size_limit truncates the WAL at close),
            // so that readers who cannot create them can still open the
            // ledger.
            crate::ffi::persist_wal(conn)?;
            conn.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Up to 64 MiB of page cache (allocated only as pages are read): bulk
    // ingest and rebuild touch large B-trees.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Mode of a new ledger file: the owner reads and writes, everyone else
/// reads (whatever the umask). SQLite gives the `-wal` and `-shm` files the
/// database's mode. See docs/architecture.md, "File modes and readers".
pub const FILE_MODE: u32 = 0o644;

/// Creates an empty file with [`FILE_MODE`].
fn create_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
}

/// Gives the ledger's `-wal` and `-shm` files the database's permission
/// bits when they differ (after a `chmod` of the ledger), so they never
/// show more than the ledger itself. Best effort: only the owner can.
fn sync_side_file_modes(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(db) = std::fs::metadata(path) else { return };
    let want = db.permissions().mode() & 0o777;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        if let Ok(m) = std::fs::metadata(&side) {
            if m.permissions().mode() & 0o777 != want {
                let _ = std::fs::set_permissions(&side, std::fs::Permissions::from_mode(want));
            }
        }
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        conn.execute_batch(sql)?;
        conn.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    Ok(())
}

impl Ledger {
    /// Creates a new ledger file (and its parent directories). Fails if a
    /// non-empty file is already there.
    pub fn create(path: &Path) -> Result<Ledger> {
        let display = path.display().to_string();
        crate::diagnose::refuse_special(path)?;
        if path.exists() && std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false) {
            return Err(Error::AlreadyExists(display));
        }
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
                    .create(dir)
                    .map_err(|e| Error::NotALedger {
                    path: display.clone(),
                    hint: format!("; cannot create directory {}: {e}", dir.display()),
                })?;
            }
        }
        if !path.exists() {
            create_readable(path)
                .map_err(|e| Error::NotALedger { path: display.clone(), hint: format!("; cannot create it: {e}") })?;
        }
        crate::ffi::configure_library();
        let conn = Connection::open(path)?;
        Self::init_new(conn, display)
    }

    /// Creates a ledger in memory (tests, as-of views).
    pub fn in_memory() -> Result<Ledger> {
        crate::ffi::configure_library();
        let conn = Connection::open_in_memory()?;
        Self::init_new(conn, ":memory:".into())
    }

    fn init_new(conn: Connection, path: String) -> Result<Ledger> {
        // Set before the first page is written. 16 KiB pages hold about 45
        // events each: full-log scans (verify, rebuild) cross a quarter of
        // the pages they would with SQLite's default 4 KiB.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        configure(&conn, false)?;
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        migrate(&tx)?;
        tx.commit()?;
        Ok(Ledger { conn, path, immutable: false })
    }

    /// Opens an existing ledger file.
    ///
    /// Refuses a missing file, a file that is not a fluxacct ledger, and a
    /// ledger written by a newer fluxacct.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Ledger> {
        let display = path.display().to_string();
        // The file system's and the header's word first (`crate::diagnose`).
        crate::diagnose::precheck(path, mode)?;
        let flags = match mode {
            OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        };
        let sqlite_err = |e: rusqlite::Error| crate::diagnose::sqlite_open_error(path, mode, e);
        crate::ffi::configure_library();
        let (conn, immutable) = match mode {
            OpenMode::ReadWrite => (Connection::open_with_flags(path, flags).map_err(sqlite_err)?, false),
            OpenMode::ReadOnly => open_read_only_conn(path, flags).map_err(sqlite_err)?,
        };
        let not_ledger = |hint: &str| Error::NotALedger { path: display.clone(), hint: hint.to_string() };
        let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(sqlite_err)?;
        if app_id != APPLICATION_ID {
            return Err(crate::diagnose::foreign(path, &conn, app_id));
        }
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::TooNew { path: display, found: version, supported: SCHEMA_VERSION });
        }
        configure(&conn, mode == OpenMode::ReadOnly)?;
        if mode == OpenMode::ReadWrite {
            sync_side_file_modes(path);
        }
        if version < SCHEMA_VERSION {
            if mode == OpenMode::ReadOnly && version >= MIN_READABLE_VERSION {
                return Ok(Ledger { conn, path: display, immutable });
            }
            if mode == OpenMode::ReadOnly {
                return Err(not_ledger("; it needs a schema upgrade, open it read-write once"));
            }
            // IMMEDIATE: a concurrent opener waits (busy timeout) and then
            // finds the schema migrated, instead of failing to upgrade a
            // read lock halfway through.
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            migrate(&tx)?;
            tx.commit()?;
        }
        Ok(Ledger { conn, path: display, immutable })
    }

    /// The path this ledger was opened from (`:memory:` for in-memory ones).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URI that opens this ledger's file read-only for another
    /// connection (for `ATTACH`): `mode=ro`, and `immutable=1` when this
    /// ledger was itself opened so (no `-wal` file it could create).
    pub fn read_only_uri(&self) -> String {
        let mut s = uri_path(Path::new(&self.path));
        s.push_str(if self.immutable { "?mode=ro&immutable=1" } else { "?mode=ro" });
        s
    }

    /// The file this ledger was opened from; `None` for an in-memory one.
    pub fn file_path(&self) -> Option<&str> {
        (self.path != ":memory:").then_some(self.path.as_str())
    }

    /// Moves WAL checkpoints off this connection for a bulk append: its
    /// automatic checkpoints are turned off until the returned
    /// [`Checkpointer`] (a second connection to the same file, `Send`, for
    /// another thread) is dropped and [`Ledger::restore_checkpoints`] is
    /// called. `None` for an in-memory ledger.
    ///
    /// A bulk append then spends its time appending, while the other
    /// thread copies committed pages into the database file (a passive
    /// checkpoint neither waits for nor blocks the writer). Checkpoints
    /// never change what the ledger holds.
    pub fn checkpointer(&self) -> Result<Option<Checkpointer>> {
        let Some(path) = self.file_path() else { return Ok(None) };
        crate::ffi::configure_library();
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        // Like every writer: if this connection were the last to close, it
        // must leave -wal and -shm for readers (docs/architecture.md).
        crate::ffi::persist_wal(&conn)?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(Some(Checkpointer { conn }))
    }

    /// Turns this connection's automatic WAL checkpoints back on (SQLite's
    /// default of 1000 pages) after [`Ledger::checkpointer`].
    pub fn restore_checkpoints(&self) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
        Ok(())
    }

    /// The underlying connection, for projections and read queries.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Mutable access to the connection (for projection-table DDL).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE`. A concurrent writer
    /// makes this wait (busy timeout), so the chain never forks.
    ///
    /// Refuses (with [`Error::ChainBroken`]) while a break of the hash chain
    /// is recorded, or when the head event no longer hashes to its stored
    /// hash or links to its predecessor (an O(1) check; the break is then
    /// recorded): the broken state is never extended. See
    /// [`crate::integrity`].
    pub fn transaction(&mut self) -> Result<Tx<'_>> {
        // `&mut self`: no other transaction or statement of this ledger is
        // live while the returned one is.
        let conn: &Connection = &self.conn;
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        if let Err((f, new)) = crate::integrity::guard(&tx)? {
            if new {
                crate::integrity::record_broken(&tx, &f)?;
                tx.commit()?;
            }
            return Err(Error::ChainBroken { seq: f.seq, reason: f.reason });
        }
        let head = read_head(&tx)?;
        Ok(Tx { insert: None, tx, conn, head, argv_cache: None, buf: Vec::new() })
    }

    /// A write transaction without the broken-chain guard, for recording
    /// that a break is accepted (`repair --accept-break`) and nothing else.
    pub fn transaction_despite_break(&mut self) -> Result<Tx<'_>> {
        let conn: &Connection = &self.conn;
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let head = read_head(&tx)?;
        Ok(Tx { insert: None, tx, conn, head, argv_cache: None, buf: Vec::new() })
    }

    /// The newest event's seq and hash, or `None` for an empty log.
    pub fn head(&self) -> Result<Option<(Seq, EventHash)>> {
        Ok(read_head(&self.conn)?.map(|h| (h.seq, h.hash)))
    }

    /// Number of events in the log (equal to the head seq when intact).
    pub fn count(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Reads one event.
    pub fn event(&self, seq: Seq) -> Result<Option<StoredEvent>> {
        read_event(&self.conn, seq)
    }

    /// Streams events with `seq >= from` in order, in pages, without loading
    /// the log whole.
    pub fn stream(&self, from: Seq) -> EventStream<'_> {
        EventStream::new(&self.conn, from, None)
    }

    /// Streams events with `from <= seq <= to`.
    pub fn stream_range(&self, from: Seq, to: Seq) -> EventStream<'_> {
        EventStream::new(&self.conn, from, Some(to))
    }

    /// The seq of the last event recorded at or before `t_us` (microseconds),
    /// using the fact that `recorded_at` never decreases along the log.
    pub fn seq_at_time(&self, t_us: i64) -> Result<Option<Seq>> {
        let seq: Option<i64> =
            self.conn.query_row("SELECT max(seq) FROM events WHERE recorded_at <= ?1", [t_us], |r| r.get(0))?;
        Ok(seq.map(|s| Seq(s as u64)))
    }
}

/// A streaming iterator over events in seq order (keyset pagination).
pub struct EventStream<'c> {
    conn: &'c Connection,
    next: u64,
    to: Option<u64>,
    buf: VecDeque<StoredEvent>,
    done: bool,
    page: usize,
}

impl<'c> EventStream<'c> {
    fn new(conn: &'c Connection, from: Seq, to: Option<Seq>) -> Self {
        EventStream { conn, next: from.0.max(1), to: to.map(|s| s.0), buf: VecDeque::new(), done: false, page: 4096 }
    }

    fn fill(&mut self) -> Result<()> {
        let to = self.to.unwrap_or(i64::MAX as u64) as i64;
        let mut stmt =
            self.conn.prepare_cached(&format!("{SELECT_EVENT} WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"))?;
        let mut rows = stmt.query(params![self.next as i64, to, self.page as i64])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let ev = row_to_event(r)?;
            self.next = ev.seq.0 + 1;
            self.buf.push_back(ev);
            n += 1;
        }
        if n < self.page {
            self.done = true;
        }
        Ok(())
    }
}

impl Iterator for EventStream<'_> {
    type Item = Result<StoredEvent>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.buf.pop_front().map(Ok)
    }
}

/// What [`Tx::append`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Seq of the new event.
    pub seq: Seq,
    /// Its hash.
    pub hash: EventHash,
    /// Its `recorded_at` (never earlier than the previous event's).
    pub recorded_at_us: i64,
}

/// An event's place in the chain: its seq, its (clamped) `recorded_at`
/// and the previous event's hash.
#[derive(Debug, Clone, Copy)]
struct Link {
    seq: Seq,
    recorded_at_us: i64,
    prev: EventHash,
}

/// An event to append: kind, version, payload.
pub type EventRow<'e> = (&'e str, u32, &'e [u8]);

/// The hash of an event: blake3 of its canonical encoding (written into
/// `buf`, reused).
fn link_hash(buf: &mut Vec<u8>, meta: &EventMeta, link: &Link, (kind, version, payload): EventRow<'_>) -> EventHash {
    fluxacct_core::encoding::encode_into(
        buf,
        link.seq,
        link.recorded_at_us,
        meta.actor.uid,
        &meta.actor.name,
        &meta.argv,
        kind,
        version,
        payload,
        &link.prev,
    );
    EventHash(*blake3::hash(buf).as_bytes())
}

/// A second connection to a ledger file that runs WAL checkpoints (see
/// [`Ledger::checkpointer`]).
pub struct Checkpointer {
    conn: Connection,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Copies the committed pages of the WAL into the database file, as far
    /// as readers allow, without waiting for the writer (`PASSIVE`).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// A write transaction (`BEGIN IMMEDIATE`). Dropping it without
/// [`Tx::commit`] rolls everything back: events and projection updates.
pub struct Tx<'c> {
    /// The event INSERT, prepared at the first append and kept for the
    /// others (declared first: dropped before the transaction ends).
    insert: Option<rusqlite::CachedStatement<'c>>,
    tx: rusqlite::Transaction<'c>,
    /// The connection `tx` runs on.
    conn: &'c Connection,
    head: Option<Head>,
    argv_cache: Option<(Vec<String>, String)>,
    /// Reused for each event's canonical encoding.
    buf: Vec<u8>,
}

impl<'c> Tx<'c> {
    /// The connection inside the transaction (for projection updates).
    pub fn conn(&self) -> &Connection {
        &self.tx
    }

    /// The connection inside the transaction, for as long as the
    /// transaction: statements prepared on it can be kept across
    /// [`Tx::append`] calls (bulk appends prepare their projection
    /// statements once). Everything run on it is part of this transaction.
    pub fn connection(&self) -> &'c Connection {
        self.conn
    }

    /// The current head (including events appended in this transaction).
    pub fn head(&self) -> Option<(Seq, EventHash)> {
        self.head.as_ref().map(|h| (h.seq, h.hash))
    }

    /// Appends one event and returns its seq and hash.
    ///
    /// `recorded_at` is clamped so that it never goes below the previous
    /// event's, which keeps time order equal to seq order.
    pub fn append(&mut self, meta: &EventMeta, kind: &str, version: u32, payload: &[u8]) -> Result<Appended> {
        let link = self.next_link(meta);
        let hash = link_hash(&mut self.buf, meta, &link, (kind, version, payload));
        self.insert_row(meta, link, (kind, version, payload), hash)
    }

    /// The link of the next event: `recorded_at` is clamped so that it
    /// never goes below the previous event's.
    fn next_link(&self, meta: &EventMeta) -> Link {
        let (seq, prev, prev_t) = match &self.head {
            None => (Seq::GENESIS, EventHash::ZERO, i64::MIN),
            Some(h) => (h.seq.next(), h.hash, h.recorded_at_us),
        };
        Link { seq, recorded_at_us: meta.recorded_at_us.max(prev_t), prev }
    }

    /// Inserts the event row (its hash computed by the caller from exactly
    /// these fields) and moves the head.
    fn insert_row(
        &mut self,
        meta: &EventMeta,
        link: Link,
        (kind, version, payload): EventRow<'_>,
        hash: EventHash,
    ) -> Result<Appended> {
        if !matches!(&self.argv_cache, Some((argv, _)) if *argv == meta.argv) {
            self.argv_cache = Some((meta.argv.clone(), serde_json::to_string(&meta.argv)?));
        }
        let argv_json = self.argv_cache.as_ref().map_or("", |(_, json)| json.as_str());
        let stmt = match &mut self.insert {
            Some(stmt) => stmt,
            None => self.insert.insert(self.conn.prepare_cached(
                "INSERT INTO events (seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?),
        };
        let Link { seq, recorded_at_us, prev } = link;
        stmt.execute(params![
            seq.0 as i64,
            recorded_at_us,
            meta.actor.uid as i64,
            meta.actor.name,
            argv_json,
            kind,
            version as i64,
            payload,
            &prev.0[..],
            &hash.0[..],
        ])?;
        self.head = Some(Head { seq, hash, recorded_at_us });
        Ok(Appended { seq, hash, recorded_at_us })
    }

    /// Appends `events` (kind, version, payload) in order, as many
    /// [`Tx::append`] calls would, and calls `each(connection, i, &appended)`
    /// after event `i` is in (projection updates, in this transaction).
    ///
    /// For a large batch the hash chain is computed on a second thread,
    /// ahead of the inserts on this one: each hash depends only on the
    /// event's fields and the previous hash, all known before the batch
    /// starts, so the chain is the same, byte for byte (a test pins it to
    /// `append`'s). On any error the thread stops and the caller's
    /// transaction is left to roll back.
    pub fn append_batch<E: From<Error>>(
        &mut self,
        meta: &EventMeta,
        events: &[EventRow<'_>],
        mut each: impl FnMut(&'c Connection, usize, &Appended) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        /// Below this, a thread costs more than the hashing it takes over.
        const PARALLEL_MIN: usize = 512;
        /// Hashes handed over at a time.
        const CHUNK: usize = 256;
        if events.len() < PARALLEL_MIN {
            for (i, &(kind, version, payload)) in events.iter().enumerate() {
                let a = self.append(meta, kind, version, payload)?;
                each(self.conn, i, &a)?;
            }
            return Ok(());
        }
        let first = self.next_link(meta);
        let link = |i: usize, prev: EventHash| Link { seq: Seq(first.seq.0 + i as u64), prev, ..first };
        std::thread::scope(|s| {
            let (send, hashes) = std::sync::mpsc::sync_channel::<Vec<EventHash>>(8);
            s.spawn(move || {
                let mut buf = Vec::with_capacity(1024);
                let mut prev = first.prev;
                let mut chunk = Vec::with_capacity(CHUNK);
                for (i, &ev) in events.iter().enumerate() {
                    prev = link_hash(&mut buf, meta, &link(i, prev), ev);
                    chunk.push(prev);
                    if chunk.len() == CHUNK
                        && send.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_err()
                    {
                        return;
                    }
                }
                let _ = send.send(chunk);
            });
            let mut hashes = hashes.into_iter().flatten();
            let mut prev = first.prev;
            for (i, &ev) in events.iter().enumerate() {
                let l = link(i, prev);
                // (Only if the hashing thread died, which the scope then
                // reports: hashed here instead.)
                let hash = match hashes.next() {
                    Some(h) => h,
                    None => link_hash(&mut self.buf, meta, &l, ev),
                };
                let a = self.insert_row(meta, l, ev, hash)?;
                prev = hash;
                each(self.conn, i, &a)?;
            }
            Ok(())
        })
    }
    /// Commits events and projection updates together.
    pub fn commit(mut self) -> Result<()> {
        self.insert = None;
        self.tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxacct_core::Actor;

    pub(crate) fn meta(t: i64) -> EventMeta {
        EventMeta { recorded_at_us: t, actor: Actor { uid: 7, name: "flux".into() }, argv: vec!["x".into()] }
    }

    #[test]
    fn append_links_and_streams() {
        let mut l = Ledger::in_memory().unwrap();
        let mut tx = l.transaction().unwrap();
        let a = tx.append(&meta(10), "A", 1, b"{}").unwrap();
        let b = tx.append(&meta(5), "B", 1, b"{\"x\":1}").unwrap();
        tx.commit().unwrap();
        assert_eq!(a.seq, Seq(1));
        assert_eq!(b.seq, Seq(2));
        assert_eq!(b.recorded_at_us, 10, "recorded_at never goes backwards");
        let evs: Vec<_> = l.stream(Seq(1)).collect::<Result<_>>().unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].prev_hash, EventHash::ZERO);
        assert_eq!(evs[1].prev_hash, evs[0].hash);
        assert_eq!(evs[1].compute_hash(), evs[1].hash);
        assert_eq!(l.head().unwrap(), Some((Seq(2), b.hash)));
        assert_eq!(l.seq_at_time(9).unwrap(), None);
        assert_eq!(l.seq_at_time(10).unwrap(), Some(Seq(2)));
    }

    /// `append_batch` (hashing on a second thread for a large batch) writes
    /// the same rows, byte for byte, as one `append` per event, and calls
    /// back once per event in order.
    #[test]
    fn append_batch_equals_appends() {
        let payloads: Vec<Vec<u8>> = (0..1500).map(|i| format!("{{\"i\":{i}}}").into_bytes()).collect();
        let events: Vec<(&str, u32, &[u8])> = payloads.iter().map(|p| ("A", 1, p.as_slice())).collect();
        /// seq, recorded_at, payload, prev_hash, hash.
        type Row = (i64, i64, Vec<u8>, Vec<u8>, Vec<u8>);
        let rows = |l: &Ledger| -> Vec<Row> {
            let mut st =
                l.conn().prepare("SELECT seq, recorded_at, payload, prev_hash, hash FROM events ORDER BY seq").unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        let mut one = Ledger::in_memory().unwrap();
        let mut tx = one.transaction().unwrap();
        tx.append(&meta(3), "B", 1, b"{}").unwrap();
        for &(k, v, p) in &events {
            tx.append(&meta(2), k, v, p).unwrap();
        }
        tx.commit().unwrap();
        let mut many = Ledger::in_memory().unwrap();
        let mut tx = many.transaction().unwrap();
        tx.append(&meta(3), "B", 1, b"{}").unwrap();
        let mut seen = Vec::new();
        tx.append_batch(&meta(2), &events, |_, i, a| -> Result<()> {
            seen.push((i, a.seq.0));
            Ok(())
        })
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(rows(&many), rows(&one));
        assert_eq!(seen, (0..1500).map(|i| (i, i as u64 + 2)).collect::<Vec<_>>());
        assert_eq!(many.head().unwrap(), one.head().unwrap());
        let evs: Vec<_> = many.stream(Seq(1)).collect::<Result<_>>().unwrap();
        assert!(evs.windows(2).all(|w| w[1].prev_hash == w[0].hash && w[1].compute_hash() == w[1].hash));
    }

    #[test]
    fn rollback_leaves_nothing() {
        let mut l = Ledger::in_memory().unwrap();
        {
            let mut tx = l.transaction().unwrap();
            tx.append(&meta(1), "A", 1, b"{}").unwrap();
        }
        assert_eq!(l.count().unwrap(), 0);
    }

    #[test]
    fn triggers_refuse_update_and_delete() {
        let mut l = Ledger::in_memory().unwrap();
        let mut tx = l.transaction().unwrap();
        tx.append(&meta(1), "A", 1, b"{}").unwrap();
        tx.commit().unwrap();
        let e = l.conn().execute("UPDATE events SET kind='B'", []).unwrap_err();
        assert!(e.to_string().contains("write-once"), "{e}");
        let e = l.conn().execute("DELETE FROM events", []).unwrap_err();
        assert!(e.to_string().contains("write-once"), "{e}");
    }

    #[test]
    fn open_refuses_missing_foreign_and_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.db");
        assert!(matches!(Ledger::open(&missing, OpenMode::ReadWrite), Err(Error::Missing(_))));

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"this is not sqlite at all, not even close............").unwrap();
        let e = Ledger::open(&garbage, OpenMode::ReadWrite).unwrap_err();
        assert!(matches!(e, Error::NotALedger { .. }), "{e}");

        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE association_table(x)").unwrap();
        let e = Ledger::open(&other, OpenMode::ReadWrite).unwrap_err();
        assert!(!e.to_string().contains("flux-accounting"), "one table is not enough: {e}");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE bank_table(x);").unwrap();
        let e = Ledger::open(&other, OpenMode::ReadWrite).unwrap_err();
        assert!(e.to_string().contains("flux-accounting"), "{e}");

        let newer = dir.path().join("newer.db");
        drop(Ledger::create(&newer).unwrap());
        Connection::open(&newer).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let e = Ledger::open(&newer, OpenMode::ReadWrite).unwrap_err();
        assert!(matches!(e, Error::TooNew { .. }), "{e}");
        assert!(e.to_string().contains("newer"), "{e}");

        let ok = dir.path().join("sub/dir/ok.db");
        let created = Ledger::create(&ok).unwrap();
        let page: i64 = created.conn().pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
        assert_eq!(page, PAGE_SIZE);
        drop(created);
        assert!(matches!(Ledger::create(&ok), Err(Error::AlreadyExists(_))));
        Ledger::open(&ok, OpenMode::ReadOnly).unwrap();
    }
}

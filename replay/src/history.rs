//! Replaying the log: into memory, into the live projections (rebuild),
//! and to any past seq (as-of views), with stored projection checkpoints.
//!
//! A *projection checkpoint* is a row of the side table
//! `projection_checkpoints` in the ledger file: the canonical encoding
//! ([`crate::canonical`]) of every state table except `jobs` at some seq,
//! with that event's hash and the projection schema version. `rebuild`
//! writes one every [`DEFAULT_CHECKPOINT_EVERY`] events and `checkpoint`
//! writes one at the seq it certifies. [`state_at`] starts from the
//! nearest valid one at or below the wanted seq and replays the rest.
//!
//! `jobs` is left out of projection checkpoints because it is large and
//! insert-only: every row carries the seq of the `JobRecorded` event that
//! made it and no event updates or deletes one. So the jobs as of a
//! checkpoint at seq `c` are exactly the live rows with `seq <= c`; an as-of
//! view reads them through a temporary view `jobs` (those live rows, then
//! the rows replayed after `c`) instead of copying them. Its triggers refuse
//! updates and deletes, so a future event that breaks the insert-only rule
//! fails loudly instead of giving a wrong past.

use ledger::{EventHash, Ledger, Seq, StoredEvent};
use rusqlite::{Connection, OptionalExtension};

use crate::canonical::{decode_into, encode_tables, quote_ident, state_tables, TableInfo};
use crate::error::Error;
use crate::Result;

/// Events between two projection checkpoints written by [`rebuild_live`].
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 50_000;

/// DDL of the side table holding projection checkpoints. It is not a
/// projection: `schema::drop_all` leaves it alone and rebuild rewrites it.
pub const CHECKPOINTS_DDL: &str = "CREATE TABLE IF NOT EXISTS projection_checkpoints (
    seq            INTEGER PRIMARY KEY,
    event_hash     BLOB    NOT NULL,
    schema_version INTEGER NOT NULL,
    state          BLOB    NOT NULL
)";

/// The tables a projection checkpoint stores: the state tables but `jobs`.
pub fn checkpoint_tables() -> Vec<&'static str> {
    state_tables().into_iter().filter(|t| *t != "jobs").collect()
}

/// Checks one streamed event against its predecessor: its seq follows, its
/// hash matches its content and it links to the previous hash.
pub fn check_link(prev: Option<(Seq, EventHash)>, ev: &StoredEvent) -> Result<(), String> {
    let (want_seq, want_prev) = match prev {
        None => (Seq::GENESIS, EventHash::ZERO),
        Some((s, h)) => (s.next(), h),
    };
    if ev.seq != want_seq {
        return Err(format!("seq {want_seq} is missing (found seq {})", ev.seq));
    }
    if ev.compute_hash() != ev.hash {
        return Err(format!("seq {}: stored hash does not match the event's content", ev.seq));
    }
    if ev.prev_hash != want_prev {
        return Err(format!("seq {}: prev_hash does not match the hash of the previous event", ev.seq));
    }
    Ok(())
}

/// Applies events `from..=to` of `ledger` to `target` (streamed). With
/// `verify`, also checks each link and fails on the first bad one. Returns
/// the number of events applied and the last (seq, hash).
fn apply_range(
    ledger: &Ledger,
    target: &Connection,
    from: Seq,
    to: Seq,
    verify: Option<Option<(Seq, EventHash)>>,
    mut each: impl FnMut(&Connection, &StoredEvent) -> Result<()>,
) -> Result<(u64, Option<(Seq, EventHash)>)> {
    let mut n = 0u64;
    let mut last = verify.flatten();
    for ev in ledger.stream_range(from, to) {
        let ev = ev?;
        if verify.is_some() {
            check_link(last, &ev).map_err(Error::Invalid)?;
        }
        projections::apply_stored(target, &ev)?;
        last = Some((ev.seq, ev.hash));
        n += 1;
        each(target, &ev)?;
    }
    Ok((n, last))
}

fn head_seq(ledger: &Ledger) -> Result<Seq> {
    Ok(ledger.head()?.map(|(s, _)| s).unwrap_or(Seq(0)))
}

/// Replays events `1..=upto` (default: the head) into fresh projection
/// tables of a new in-memory connection. Pure: uses the log only.
pub fn replay_to_memory(ledger: &Ledger, upto: Option<Seq>) -> Result<Connection> {
    replay_to_memory_checked(ledger, upto, false)
}

/// Like [`replay_to_memory`]; with `verify`, also checks every link of
/// `1..=upto` while streaming and fails on the first bad one (or on a
/// missing seq).
pub fn replay_to_memory_checked(ledger: &Ledger, upto: Option<Seq>, verify: bool) -> Result<Connection> {
    let to = match upto {
        Some(s) => s,
        None => head_seq(ledger)?,
    };
    let conn = Connection::open_in_memory()?;
    projections::schema::create(&conn)?;
    conn.execute_batch("BEGIN")?;
    let (n, _) = apply_range(ledger, &conn, Seq(1), to, if verify { Some(None) } else { None }, |_, _| Ok(()))?;
    conn.execute_batch("COMMIT")?;
    if verify && n != to.0 {
        return Err(Error::Invalid(format!("seq {} is missing: the log ends at seq {n}", n + 1)));
    }
    Ok(conn)
}

/// What [`rebuild_live`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildStats {
    /// Events replayed.
    pub events: u64,
    /// Projection checkpoints written.
    pub checkpoints: u64,
}

/// Rebuilds every projection table of `ledger` from its log in one
/// `BEGIN IMMEDIATE` transaction (all or nothing), streaming the log, and
/// rewrites the projection checkpoints (one every `every` events; 0: none).
/// `progress` is called with the number of events done so far.
///
/// It applies every event with [`projections::apply::apply`], the apply
/// path of the live commands, so the tables come out as incrementally kept
/// ones. What makes it fast is around that path, never in it:
///
/// * For a file ledger, a second thread reads and decodes the log on its
///   own read-only connection (WAL lets it read `events` while this
///   connection holds the write transaction) and hands batches of decoded
///   events over a bounded channel, so decoding overlaps applying.
/// * The page cache is enlarged for the transaction (sized from the file,
///   restored afterwards), so the one big transaction does not spill dirty
///   pages into the WAL half-way.
/// * The indexes of [`projections::schema::DEFERRED_INDEXES`] are built
///   once after the replay (or before the first event that scans by them)
///   instead of row by row.
/// * `applied_seq` is recorded once at the end (and before each projection
///   checkpoint) instead of after every event.
pub fn rebuild_live(ledger: &mut Ledger, every: u64, progress: &mut dyn FnMut(u64)) -> Result<RebuildStats> {
    match ledger.path() {
        ":memory:" => rebuild_in_place(ledger, every, progress),
        path => {
            let path = path.to_string();
            rebuild_via_scratch(ledger, &path, every, progress)
        }
    }
}

/// Rebuilds a file ledger's projections in two steps, so that the disk
/// used stays proportional to the size of the projections:
///
/// 1. replay the log into fresh tables in a scratch SQLite file beside the
///    ledger (no journal: pages are written once, however often a long
///    replay touches them; a single huge WAL transaction would append a
///    page again every time it spills);
/// 2. in one `BEGIN IMMEDIATE` transaction on the ledger, drop the live
///    projection tables, copy the rebuilt ones in, apply any events
///    appended since step 1 began, and commit. Readers see the old tables
///    or the new ones, never a mix; a failure leaves the old ones.
fn rebuild_via_scratch(
    ledger: &mut Ledger,
    path: &str,
    every: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<RebuildStats> {
    let scratch_path = format!("{path}.rebuild-{}", std::process::id());
    let _ = std::fs::remove_file(&scratch_path);
    let result = (|| -> Result<RebuildStats> {
        let head = head_seq(ledger)?;
        let stats = {
            let scratch = Connection::open(&scratch_path)?;
            scratch
                .execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY;")?;
            let file_bytes = std::fs::metadata(path).map(|m| m.len() as i64).unwrap_or(0);
            scratch.pragma_update(None, "cache_size", -rebuild_cache_kib(file_bytes, -65536))?;
            projections::schema::create(&scratch)?;
            for index in projections::schema::DEFERRED_INDEXES {
                scratch.execute_batch(&format!("DROP INDEX IF EXISTS {}", quote_ident(index)))?;
            }
            scratch.execute_batch(CHECKPOINTS_DDL)?;
            scratch.execute_batch("BEGIN")?;
            let applier = projections::apply::Applier::new(&scratch)?;
            let mut bulk = Bulk {
                conn: &scratch,
                applier,
                every,
                progress,
                indexes_built: false,
                checkpoints: 0,
                n: 0,
                last: None,
            };
            feed(&mut bulk, Some(open_reader(path)?), &scratch, head)?;
            let stats = bulk.finish()?;
            scratch.execute_batch("COMMIT")?;
            stats
        };
        swap_in(ledger, &scratch_path, head)?;
        Ok(stats)
    })();
    let _ = std::fs::remove_file(&scratch_path);
    result
}

/// Step 2 of [`rebuild_via_scratch`]: replaces the live projection tables
/// with the rebuilt ones in `scratch_path` (built to `built_to`) in one
/// transaction, then applies the events appended since.
fn swap_in(ledger: &Ledger, scratch_path: &str, built_to: Seq) -> Result<()> {
    let conn = ledger.conn();
    conn.execute("ATTACH DATABASE ?1 AS rebuilt", [scratch_path])?;
    let result = (|| -> Result<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let inner = (|| -> Result<()> {
            // Schema-qualified: with `rebuilt` attached, an unqualified name
            // missing from main would resolve to the rebuilt copy.
            for t in projections::schema::PROJECTION_TABLES.iter().rev() {
                conn.execute_batch(&format!("DROP TABLE IF EXISTS main.{}", quote_ident(t)))?;
            }
            projections::schema::create(conn)?;
            for index in projections::schema::DEFERRED_INDEXES {
                conn.execute_batch(&format!("DROP INDEX IF EXISTS main.{}", quote_ident(index)))?;
            }
            conn.execute_batch(CHECKPOINTS_DDL)?;
            conn.execute("DELETE FROM main.projection_checkpoints", [])?;
            let tables: Vec<&str> =
                projections::schema::PROJECTION_TABLES.iter().copied().chain(["projection_checkpoints"]).collect();
            for t in tables {
                let q = quote_ident(t);
                if t == "projection_meta" {
                    conn.execute_batch(&format!("DELETE FROM main.{q}"))?;
                }
                conn.execute_batch(&format!("INSERT INTO main.{q} SELECT * FROM rebuilt.{q}"))?;
            }
            // The deferred indexes, built once over the copied rows.
            conn.execute_batch(projections::schema::DDL)?;
            let head = head_seq(ledger)?;
            if head > built_to {
                for ev in ledger.stream_range(built_to.next(), head) {
                    projections::apply_stored(conn, &ev?)?;
                }
            }
            Ok(())
        })();
        match inner {
            Ok(()) => conn.execute_batch("COMMIT").map_err(Error::from),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    })();
    let detached = conn.execute_batch("DETACH DATABASE rebuilt");
    result?;
    detached?;
    Ok(())
}

/// Rebuilds in place, inside one transaction (in-memory ledgers).
fn rebuild_in_place(ledger: &mut Ledger, every: u64, progress: &mut dyn FnMut(u64)) -> Result<RebuildStats> {
    let conn = ledger.conn();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<RebuildStats> {
        let head = head_seq(ledger)?;
        projections::schema::drop_all(conn)?;
        projections::schema::create(conn)?;
        for index in projections::schema::DEFERRED_INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {}", quote_ident(index)))?;
        }
        conn.execute_batch(CHECKPOINTS_DDL)?;
        conn.execute("DELETE FROM projection_checkpoints", [])?;
        let applier = projections::apply::Applier::new(conn)?;
        let mut bulk = Bulk { conn, applier, every, progress, indexes_built: false, checkpoints: 0, n: 0, last: None };
        feed(&mut bulk, None, conn, head)?;
        bulk.finish()
    })();
    let result = match result {
        Ok(s) => conn.execute_batch("COMMIT").map(|_| s).map_err(Error::from),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// Streams events `1..=head` of the log into `bulk`. With `reader` (a
/// read-only connection to the ledger file), reading and decoding run on a
/// second thread, batches handed over a bounded channel; otherwise they run
/// here, on `log`.
fn feed(bulk: &mut Bulk<'_, '_>, reader: Option<Connection>, log: &Connection, head: Seq) -> Result<()> {
    match reader {
        Some(rconn) => std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Decoded>>>(READ_AHEAD);
            let handle = s.spawn(move || read_decoded(&rconn, head, &mut |b| tx.send(b).is_ok()));
            let mut res = Ok(());
            for batch in rx.iter() {
                res = batch.and_then(|b| bulk.apply_batch(b));
                if res.is_err() {
                    break;
                }
            }
            // Dropping the receiver (end of `rx`) stops the reader.
            drop(rx);
            let read = handle.join().map_err(|_| Error::invalid("rebuild: the log reader panicked"))?;
            res.and(read)
        }),
        None => {
            let mut res = Ok(());
            read_decoded(log, head, &mut |b| {
                res = b.and_then(|b| bulk.apply_batch(b));
                res.is_ok()
            })?;
            res
        }
    }
}

/// Decoded batches the log reader of [`rebuild_live`] may run ahead.
const READ_AHEAD: usize = 8;
/// Events per batch handed from the log reader to the applier.
const BATCH: usize = 4096;
/// Upper bound of the rebuild page cache, in KiB (4 GiB; allocated only as
/// pages are used).
const MAX_REBUILD_CACHE_KIB: i64 = 4 << 20;

/// The page cache for a rebuild, in KiB: room for every page of the file
/// (the projections written are smaller than the file, which also holds the
/// log), at least the configured cache and at most [`MAX_REBUILD_CACHE_KIB`].
fn rebuild_cache_kib(file_bytes: i64, configured: i64) -> i64 {
    let configured_kib = if configured < 0 { -configured } else { configured.saturating_mul(4) };
    (file_bytes / 1024 + 1024).clamp(configured_kib.max(1024), MAX_REBUILD_CACHE_KIB.max(configured_kib))
}

/// A read-only connection to the ledger file for the log reader.
fn open_reader(path: &str) -> Result<Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    Ok(conn)
}

/// One event of the log, decoded, with what applying it needs.
struct Decoded {
    seq: Seq,
    recorded_at: i64,
    hash: EventHash,
    event: projections::Event,
}

fn decode_row(r: &rusqlite::Row<'_>) -> Result<Decoded> {
    let seq = Seq(r.get::<_, i64>(0)? as u64);
    let corrupt = |what: &str| Error::Ledger(ledger::Error::Corrupt { seq, what: what.to_string() });
    let recorded_at: i64 = r.get(1).map_err(|_| corrupt("recorded_at is not an integer"))?;
    let kind = r.get_ref(2)?.as_str().map_err(|_| corrupt("kind is not text"))?;
    let version: i64 = r.get(3).map_err(|_| corrupt("version is not an integer"))?;
    let version = u32::try_from(version).map_err(|_| corrupt("version out of range"))?;
    let payload = r.get_ref(4)?.as_blob().map_err(|_| corrupt("payload is not a blob"))?;
    let hash = r.get_ref(5)?.as_blob().map_err(|_| corrupt("hash is not a blob"))?;
    let hash = EventHash::from_slice(hash).ok_or_else(|| corrupt("hash is not 32 bytes"))?;
    let event = projections::Event::decode(kind, version, payload)?;
    Ok(Decoded { seq, recorded_at, hash, event })
}

/// Reads and decodes events `1..=to` of the log on `conn` in one read
/// transaction, handing them to `send` in batches (an error ends the
/// stream); stops early when `send` returns false.
fn read_decoded(conn: &Connection, to: Seq, send: &mut dyn FnMut(Result<Vec<Decoded>>) -> bool) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT seq, recorded_at, kind, version, payload, hash FROM events WHERE seq >= 1 AND seq <= ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([to.0 as i64])?;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let row = match rows.next() {
            Ok(Some(r)) => decode_row(r),
            Ok(None) => break,
            Err(e) => Err(e.into()),
        };
        match row {
            Ok(d) => {
                batch.push(d);
                if batch.len() == BATCH && !send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))) {
                    return Ok(());
                }
            }
            Err(e) => {
                send(Err(e));
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        send(Ok(batch));
    }
    Ok(())
}

/// The applying side of [`rebuild_live`].
struct Bulk<'a, 'p> {
    conn: &'a Connection,
    applier: projections::apply::Applier<'a>,
    every: u64,
    progress: &'p mut dyn FnMut(u64),
    indexes_built: bool,
    checkpoints: u64,
    n: u64,
    last: Option<Seq>,
}

impl Bulk<'_, '_> {
    fn build_indexes(&mut self) -> Result<()> {
        if !self.indexes_built {
            self.conn.execute_batch(projections::schema::DDL)?;
            self.indexes_built = true;
        }
        Ok(())
    }

    fn apply_batch(&mut self, batch: Vec<Decoded>) -> Result<()> {
        for d in batch {
            if !self.indexes_built && projections::usage::may_scan_jobs_by_time(&d.event) {
                self.build_indexes()?;
            }
            let ctx = projections::apply::ApplyCtx { seq: d.seq.0, recorded_at: d.recorded_at };
            self.applier.apply(&ctx, &d.event)?;
            self.last = Some(d.seq);
            self.n += 1;
            if self.every > 0 && d.seq.0 % self.every == 0 {
                projections::apply::mark_applied(self.conn, d.seq.0)?;
                save_checkpoint(self.conn, self.conn, d.seq, d.hash)?;
                self.checkpoints += 1;
            }
            if d.seq.0 % 65_536 == 0 {
                (self.progress)(d.seq.0);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<RebuildStats> {
        if let Some(last) = self.last {
            projections::apply::mark_applied(self.conn, last.0)?;
        }
        self.build_indexes()?;
        (self.progress)(self.n);
        Ok(RebuildStats { events: self.n, checkpoints: self.checkpoints })
    }
}

/// Stores a projection checkpoint of the state on `state` (as of `seq`,
/// whose event hash is `hash`) in the ledger connection `store`.
pub fn save_checkpoint(store: &Connection, state: &Connection, seq: Seq, hash: EventHash) -> Result<()> {
    store.execute_batch(CHECKPOINTS_DDL)?;
    let blob = encode_tables(state, &checkpoint_tables())?;
    store.execute(
        "INSERT OR REPLACE INTO projection_checkpoints(seq, event_hash, schema_version, state) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![seq.0 as i64, &hash.0[..], projections::schema::PROJECTION_SCHEMA_VERSION, blob],
    )?;
    Ok(())
}

fn table_exists(conn: &Connection, schema: &str, table: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?1"),
        [table],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The nearest usable projection checkpoint at or below `seq`: written by
/// this schema version, its event still has the recorded hash, and the live
/// `jobs` table reaches at least that far.
fn nearest_checkpoint(ledger: &Ledger, seq: Seq) -> Result<Option<(Seq, Vec<u8>)>> {
    let conn = ledger.conn();
    if !table_exists(conn, "main", "projection_checkpoints")? || !table_exists(conn, "main", "jobs")? {
        return Ok(None);
    }
    if projections::schema::stored_version(conn)? != Some(projections::schema::PROJECTION_SCHEMA_VERSION) {
        return Ok(None);
    }
    let applied: Option<i64> = conn
        .query_row("SELECT value FROM projection_meta WHERE key = 'applied_seq'", [], |r| r.get(0))
        .optional()?
        .flatten();
    let row: Option<(i64, Vec<u8>, i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, event_hash, schema_version, state FROM projection_checkpoints \
             WHERE seq <= ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
            [seq.0 as i64, applied.unwrap_or(0)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((cs, hash, version, state)) = row else { return Ok(None) };
    let cs = Seq(cs as u64);
    if version != projections::schema::PROJECTION_SCHEMA_VERSION {
        return Ok(None);
    }
    match ledger.event(cs)? {
        Some(ev) if ev.hash.0[..] == hash[..] => Ok(Some((cs, state))),
        _ => Ok(None),
    }
}

/// Percent-encodes a path for an SQLite `file:` URI.
fn file_uri(path: &str) -> String {
    let mut s = String::from("file:");
    for c in path.chars() {
        match c {
            '%' | '?' | '#' => s.push_str(&format!("%{:02X}", c as u32)),
            _ => s.push(c),
        }
    }
    s.push_str("?mode=ro");
    s
}

/// The projections as they stood after some seq, on their own in-memory
/// connection (read-only use; nothing is written back).
pub struct AsOf {
    conn: Connection,
    seq: Seq,
    checkpoint: Option<Seq>,
}

impl std::fmt::Debug for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsOf").field("seq", &self.seq).field("checkpoint", &self.checkpoint).finish()
    }
}

impl AsOf {
    /// The connection: the projection tables as of [`AsOf::seq`], and (for
    /// file ledgers) a temporary view `events` holding the log up to it.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The seq this state is as of.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The projection checkpoint the replay started from, if any.
    pub fn checkpoint(&self) -> Option<Seq> {
        self.checkpoint
    }
}

/// The state as it stood after `seq` (0: before the first event): from the
/// nearest usable projection checkpoint at or below `seq`, replaying the
/// events after it. Refuses a seq beyond the head.
pub fn state_at(ledger: &Ledger, seq: Seq) -> Result<AsOf> {
    let head = head_seq(ledger)?;
    if seq > head {
        return Err(Error::invalid(format!("seq {seq} is beyond the ledger's head (seq {head})")));
    }
    let conn = Connection::open_in_memory()?;
    projections::schema::create(&conn)?;
    let file = ledger.path() != ":memory:";
    if file {
        conn.execute("ATTACH DATABASE ?1 AS src", [file_uri(ledger.path())])?;
    }
    let cp = if file { nearest_checkpoint(ledger, seq)? } else { None };
    conn.execute_batch("BEGIN")?;
    let start = match &cp {
        Some((cs, blob)) => {
            decode_into(&conn, blob)?;
            let info = TableInfo::read(&conn, "jobs")?;
            let cols: Vec<String> = info.columns.iter().map(|c| quote_ident(c)).collect();
            let news: Vec<String> = info.columns.iter().map(|c| format!("NEW.{}", quote_ident(c))).collect();
            // main.jobs stays empty (it describes the columns and key);
            // rows replayed after the checkpoint go to main.jobs_replayed.
            conn.execute_batch(&format!(
                "CREATE TABLE main.jobs_replayed AS SELECT * FROM main.jobs WHERE 0;
                 CREATE TEMP VIEW jobs AS SELECT {c} FROM src.jobs WHERE seq <= {cs}
                     UNION ALL SELECT {c} FROM main.jobs_replayed;
                 CREATE TEMP TRIGGER jobs_as_of_insert INSTEAD OF INSERT ON jobs
                 BEGIN INSERT INTO jobs_replayed ({c}) VALUES ({n}); END;
                 CREATE TEMP TRIGGER jobs_as_of_update INSTEAD OF UPDATE ON jobs
                 BEGIN SELECT RAISE(ABORT, 'fluxacct: jobs rows are insert-only'); END;
                 CREATE TEMP TRIGGER jobs_as_of_delete INSTEAD OF DELETE ON jobs
                 BEGIN SELECT RAISE(ABORT, 'fluxacct: jobs rows are insert-only'); END;",
                c = cols.join(", "),
                n = news.join(", "),
                cs = cs.0
            ))?;
            cs.next()
        }
        None => Seq(1),
    };
    if start <= seq {
        apply_range(ledger, &conn, start, seq, None, |_, _| Ok(()))?;
    }
    conn.execute_batch("COMMIT")?;
    if file {
        conn.execute_batch(&format!("CREATE TEMP VIEW events AS SELECT * FROM src.events WHERE seq <= {}", seq.0))?;
    }
    Ok(AsOf { conn, seq, checkpoint: cp.map(|(s, _)| s) })
}

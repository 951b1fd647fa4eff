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
//! Job records are not in projection checkpoints: `jobs` is a view over
//! the log (`projections::schema::JOBS_VIEW_BODY`), so an as-of view reads
//! them from the log, bounded at its seq, like everything else.

use fluxacct_core::{EventHash, Seq};
use ledger::Ledger;
use projections::apply::Skipped;
use projections::usage::{BankNames, PendingJob};
use rusqlite::{Connection, OptionalExtension};

use crate::canonical::{decode_into, encode_tables, state_tables};
use crate::error::Error;
use crate::Result;

/// Events between two projection checkpoints written by [`rebuild_live`]
/// (at least; see `Bulk::checkpoint_due`).
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 50_000;

/// DDL of the side table holding projection checkpoints. It is not a
/// projection: `schema::drop_all` leaves it alone and rebuild rewrites it.
pub const CHECKPOINTS_DDL: &str = "CREATE TABLE IF NOT EXISTS projection_checkpoints (
    seq            INTEGER PRIMARY KEY,
    event_hash     BLOB    NOT NULL,
    schema_version INTEGER NOT NULL,
    state          BLOB    NOT NULL
)";

fn head_seq(ledger: &Ledger) -> Result<Seq> {
    Ok(ledger.head()?.map(|(s, _)| s).unwrap_or(Seq(0)))
}

/// Replays events `1..=upto` (default: the head) into fresh projection
/// tables of a new in-memory connection. Pure: uses the log only.
pub fn replay_to_memory(ledger: &Ledger, upto: Option<Seq>) -> Result<Connection> {
    replay_to_memory_checked(ledger, upto, false)
}

/// Like [`replay_to_memory`]; with `verify`, first checks every link of
/// `1..=upto` ([`Ledger::verify_chain`], on all cores for a file ledger)
/// and fails on the first bad one (or on a missing seq).
pub fn replay_to_memory_checked(ledger: &Ledger, upto: Option<Seq>, verify: bool) -> Result<Connection> {
    replay_to_memory_noted(ledger, upto, verify).map(|(conn, _)| conn)
}

/// [`replay_to_memory_checked`], also returning the events the replay
/// skipped or carried ([`Skipped`]), for the caller to report.
pub fn replay_to_memory_noted(ledger: &Ledger, upto: Option<Seq>, verify: bool) -> Result<(Connection, Vec<Skipped>)> {
    let to = match upto {
        Some(s) => s,
        None => head_seq(ledger)?,
    };
    if verify {
        // Breaks accepted by `repair --accept-break` are stepped over, as
        // `verify` does; a break after `to` does not concern this replay.
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let accepted = ledger::integrity::chain_state(ledger.conn())?.accepted;
        let walk = ledger::integrity::walk(ledger, threads, Seq(1), &accepted)?;
        if let Some(f) = walk.report.failure.filter(|f| f.seq <= to) {
            return Err(Error::Invalid(format!("seq {}: {}", f.seq, f.reason)));
        }
        if walk.report.head.is_none_or(|(h, _)| h < to) {
            return Err(Error::Invalid(format!("seq {to}: missing from the log")));
        }
    }
    let conn = projections::scratch(ledger, None)?;
    conn.execute_batch("BEGIN")?;
    let mut quiet = |_| {};
    let mut bulk = Bulk::new(&conn, 0, &mut quiet);
    feed(&mut bulk, ledger.file_path(), ledger.conn(), Seq(1), to)?;
    let stats = bulk.finish()?;
    conn.execute_batch("COMMIT")?;
    Ok((conn, stats.skipped))
}

/// What [`rebuild_live`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildStats {
    /// Events replayed.
    pub events: u64,
    /// Projection checkpoints written.
    pub checkpoints: u64,
    /// The events passed over (unreadable payload) or carried (recorded
    /// digest not reproduced), in seq order: the caller reports them.
    pub skipped: Vec<Skipped>,
}

/// Rebuilds every projection table of `ledger` from its log in one
/// `BEGIN IMMEDIATE` transaction (all or nothing), streaming the log, and
/// rewrites the projection checkpoints (one every `every` events; 0: none).
/// `progress` is called with the number of events done so far.
///
/// It applies every event with [`projections::apply::Applier`], the apply
/// path of the live commands, so the tables come out as incrementally kept
/// ones. The projections are small (job records stay in the log), so the
/// transaction writes little. What makes it fast is around that path:
///
/// * For a file ledger, reader threads (one per core) read and decode the
///   log on their own read-only connections, each a share of fixed-size
///   seq ranges, and hand them over bounded channels; this thread applies
///   the ranges in seq order. (WAL lets them read `events` while this
///   connection holds the write transaction, and no event can be appended
///   meanwhile, so they all see the same log.)
/// * `applied_seq` is recorded once at the end (and before each projection
///   checkpoint) instead of after every event.
pub fn rebuild_live(ledger: &mut Ledger, every: u64, progress: &mut dyn FnMut(u64)) -> Result<RebuildStats> {
    let conn = ledger.conn();
    let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    conn.execute_batch(&format!("PRAGMA cache_size = {}", -REBUILD_CACHE_KIB))?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<RebuildStats> {
        let head = head_seq(ledger)?;
        projections::schema::drop_all(conn)?;
        projections::schema::create(conn)?;
        conn.execute_batch(CHECKPOINTS_DDL)?;
        conn.execute("DELETE FROM projection_checkpoints", [])?;
        let mut bulk = Bulk::new(conn, every, progress);
        feed(&mut bulk, ledger.file_path(), conn, Seq(1), head)?;
        let stats = bulk.finish()?;
        // The state the log implies: what `update-fshare` checks the
        // fair-share inputs against (`projections::seal`).
        projections::seal::store(conn, &projections::seal::compute(conn)?)?;
        Ok(stats)
    })();
    let result = match result {
        Ok(s) => conn.execute_batch("COMMIT").map(|_| s).map_err(Error::from),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.execute_batch(&format!("PRAGMA cache_size = {cache}"))?;
    result
}

/// The page cache of a rebuild, in KiB (allocated only as pages are used):
/// room for the projections and the projection checkpoints it writes, so
/// that the one transaction neither spills pages into the WAL half-way nor
/// evicts the small tables it keeps updating.
const REBUILD_CACHE_KIB: i64 = 1 << 20;

/// Seqs per range a log reader decodes and hands over at once.
const RANGE: u64 = 8192;
/// Ranges each log reader may run ahead.
const READ_AHEAD: usize = 2;

/// Streams events `from..=to` of the log into `bulk`, in seq order. With
/// `path` (the ledger file), reader threads decode the log in parallel on
/// their own read-only connections: the seqs are cut into ranges of
/// [`RANGE`], reader `r` of `k` takes ranges `r, r + k, ...`, and this
/// thread takes them from the readers in turn, so ranges arrive in order
/// and at most `k × READ_AHEAD` are in memory. Otherwise the log is read
/// here, on `log`.
fn feed(bulk: &mut Bulk<'_, '_>, path: Option<&str>, log: &Connection, from: Seq, to: Seq) -> Result<()> {
    if to < from {
        return Ok(());
    }
    let nranges = (to.0 - from.0) / RANGE + 1;
    let range = |i: u64| (from.0 + i * RANGE, (from.0 + (i + 1) * RANGE - 1).min(to.0));
    let Some(path) = path else {
        let mut banks = BankNames::default();
        for i in 0..nranges {
            let (lo, hi) = range(i);
            bulk.apply_batch(read_range(log, lo, hi, &mut banks)?)?;
        }
        return Ok(());
    };
    let k = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8).min(nranges as usize);
    let mut readers = Vec::with_capacity(k);
    for _ in 0..k {
        readers.push(ledger::open_read_only(std::path::Path::new(path))?);
    }
    std::thread::scope(|s| -> Result<()> {
        let mut rxs = Vec::with_capacity(k);
        let mut handles = Vec::with_capacity(k);
        for (r, conn) in readers.into_iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Decoded>>>(READ_AHEAD);
            rxs.push(rx);
            handles.push(s.spawn(move || {
                let mut banks = BankNames::default();
                let mut i = r as u64;
                while i < nranges {
                    let (lo, hi) = range(i);
                    let batch = read_range(&conn, lo, hi, &mut banks);
                    let failed = batch.is_err();
                    // A closed channel: the applier stopped.
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                    i += k as u64;
                }
            }));
        }
        let mut res = Ok(());
        for i in 0..nranges {
            let got = rxs[(i % k as u64) as usize].recv();
            let got = got.map_err(|_| Error::invalid("rebuild: a log reader stopped early")).and_then(|b| b);
            res = got.and_then(|b| bulk.apply_batch(b));
            if res.is_err() {
                break;
            }
        }
        // Dropping the receivers stops the readers.
        drop(rxs);
        for h in handles {
            h.join().map_err(|_| Error::invalid("rebuild: a log reader panicked"))?;
        }
        res
    })
}

/// One event of the log, decoded, with what applying it needs.
struct Decoded {
    seq: Seq,
    recorded_at_us: i64,
    hash: EventHash,
    item: Item,
}

/// A decoded event: a job record as its binning fields only (the bulk of
/// the log; see `PendingJob::decode`), or any other event whole.
enum Item {
    Job(Option<PendingJob>),
    Event(Box<fluxacct_core::Event>),
    /// A payload that cannot be read (not a blob, does not decode): the
    /// replay passes over it and says so (`Applier::skip`).
    Unreadable(String),
}

fn decode_row(r: &rusqlite::Row<'_>, banks: &mut BankNames) -> Result<Decoded> {
    let seq = Seq(r.get::<_, i64>(0)? as u64);
    let corrupt = |what: &str| Error::Ledger(ledger::Error::Corrupt { seq, what: what.to_string() });
    let recorded_at_us: i64 = r.get(1).map_err(|_| corrupt("recorded_at is not an integer"))?;
    let kind = r.get_ref(2)?.as_bytes().map_err(|_| corrupt("kind is not text"))?;
    let version: i64 = r.get(3).map_err(|_| corrupt("version is not an integer"))?;
    let version = u32::try_from(version).map_err(|_| corrupt("version out of range"))?;
    let hash = r.get_ref(5)?.as_blob().map_err(|_| corrupt("hash is not a blob"))?;
    let hash = EventHash::from_slice(hash).ok_or_else(|| corrupt("hash is not 32 bytes"))?;
    let name = String::from_utf8_lossy(kind);
    // A TEXT payload is read as its bytes, as `Ledger::stream` does
    // (`verify` reports the change of storage class).
    let payload = match r.get_ref(4)? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Ok(b),
        _ => Err(()),
    };
    let item = match payload {
        Err(_) => Item::Unreadable(format!("{name} payload is neither a blob nor text")),
        Ok(payload) if kind == b"JobRecorded" => match PendingJob::decode(seq.0, version, payload, banks) {
            Ok(job) => Item::Job(job),
            Err(e) => Item::Unreadable(format!("payload unreadable: {e}")),
        },
        Ok(payload) => match std::str::from_utf8(kind) {
            Err(_) => Item::Unreadable(format!("kind {name} is not UTF-8")),
            Ok(kind) => match fluxacct_core::Event::decode(kind, version, payload) {
                Ok(ev) => Item::Event(Box::new(ev)),
                Err(e) => Item::Unreadable(format!("payload unreadable: {e}")),
            },
        },
    };
    Ok(Decoded { seq, recorded_at_us, hash, item })
}

/// Reads and decodes events `lo..=hi` of the log on `conn`.
fn read_range(conn: &Connection, lo: u64, hi: u64, banks: &mut BankNames) -> Result<Vec<Decoded>> {
    read_range_raw(conn, lo, hi, banks).map_err(|e| match e {
        // A damaged page of the log: named by the seqs it holds.
        Error::Sqlite(e) => Error::Ledger(ledger::name_unreadable_log(conn, ledger::Error::Sqlite(e))),
        other => other,
    })
}

fn read_range_raw(conn: &Connection, lo: u64, hi: u64, banks: &mut BankNames) -> Result<Vec<Decoded>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, recorded_at, kind, version, payload, hash FROM events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query([lo as i64, hi as i64])?;
    let mut out = Vec::with_capacity((hi + 1 - lo) as usize);
    while let Some(r) = rows.next()? {
        out.push(decode_row(r, banks)?);
    }
    Ok(out)
}

/// The applying side of [`feed`].
struct Bulk<'a, 'p> {
    conn: &'a Connection,
    applier: projections::apply::Applier,
    every: u64,
    progress: &'p mut dyn FnMut(u64),
    checkpoints: u64,
    last_checkpoint: Seq,
    n: u64,
}

impl<'a, 'p> Bulk<'a, 'p> {
    fn new(conn: &'a Connection, every: u64, progress: &'p mut dyn FnMut(u64)) -> Self {
        Bulk {
            conn,
            applier: projections::apply::Applier::replaying(),
            every,
            progress,
            checkpoints: 0,
            last_checkpoint: Seq(0),
            n: 0,
        }
    }

    /// Whether to store a projection checkpoint after the event at `seq`:
    /// at least `every` events after the previous one, at a `UsageUpdated`
    /// (few jobs are still pending then, so the checkpoint is small and
    /// storing it does not write out a large pending buffer), or at `2 ×
    /// every` events whatever the event. So an as-of view replays fewer
    /// than `2 × every` events after the nearest checkpoint.
    fn checkpoint_due(&self, seq: Seq, usage_updated: bool) -> bool {
        if self.every == 0 {
            return false;
        }
        let since = seq.0.saturating_sub(self.last_checkpoint.0);
        since >= self.every.saturating_mul(2) || (since >= self.every && usage_updated)
    }

    fn apply_batch(&mut self, batch: Vec<Decoded>) -> Result<()> {
        for d in batch {
            let ctx = projections::ctx::ApplyCtx { seq: d.seq.0, recorded_at_us: d.recorded_at_us };
            let usage_updated = match d.item {
                Item::Job(job) => {
                    self.applier.apply_job(self.conn, &ctx, job)?;
                    false
                }
                Item::Event(ev) => {
                    self.applier.apply(self.conn, &ctx, &ev)?;
                    matches!(*ev, fluxacct_core::Event::UsageUpdated(_) | fluxacct_core::Event::UsageImported(_))
                }
                Item::Unreadable(why) => {
                    self.applier.skip(&ctx, why);
                    false
                }
            };
            self.n += 1;
            if self.checkpoint_due(d.seq, usage_updated) {
                self.last_checkpoint = d.seq;
                self.applier.sync(self.conn)?;
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
        self.applier.sync(self.conn)?;
        (self.progress)(self.n);
        Ok(RebuildStats { events: self.n, checkpoints: self.checkpoints, skipped: self.applier.skipped().to_vec() })
    }
}

/// Stores a projection checkpoint of the state on `state` (as of `seq`,
/// whose event hash is `hash`) in the ledger connection `store`.
pub fn save_checkpoint(store: &Connection, state: &Connection, seq: Seq, hash: EventHash) -> Result<()> {
    store.execute_batch(CHECKPOINTS_DDL)?;
    // A projection checkpoint stores the state tables.
    let blob = encode_tables(state, &state_tables())?;
    store.execute(
        "INSERT OR REPLACE INTO projection_checkpoints(seq, event_hash, schema_version, state) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![seq.0 as i64, &hash.0[..], projections::schema::PROJECTION_SCHEMA_VERSION, blob],
    )?;
    Ok(())
}

/// The nearest usable projection checkpoint at or below `seq`: written by
/// this schema version, its event still has the recorded hash, and the live
/// projections reach at least that far.
fn nearest_checkpoint(ledger: &Ledger, seq: Seq) -> Result<Option<(Seq, Vec<u8>)>> {
    let conn = ledger.conn();
    if projections::schema::object_type(conn, "main", "projection_checkpoints")?.as_deref() != Some("table") {
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

/// The projections as they stood after some seq, on their own in-memory
/// connection (read-only use; nothing is written back).
pub struct AsOf {
    conn: Connection,
    seq: Seq,
    checkpoint: Option<Seq>,
    skipped: Vec<Skipped>,
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

    /// The events the replay (after the checkpoint) skipped or carried.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
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
    let conn = projections::scratch(ledger, Some(seq))?;
    let cp = if ledger.file_path().is_some() { nearest_checkpoint(ledger, seq)? } else { None };
    conn.execute_batch("BEGIN")?;
    let start = match &cp {
        Some((cs, blob)) => {
            decode_into(&conn, blob)?;
            cs.next()
        }
        None => Seq(1),
    };
    let mut skipped = Vec::new();
    if start <= seq {
        let mut quiet = |_| {};
        let mut bulk = Bulk::new(&conn, 0, &mut quiet);
        feed(&mut bulk, None, ledger.conn(), start, seq)?;
        skipped = bulk.finish()?.skipped;
    }
    conn.execute_batch("COMMIT")?;
    Ok(AsOf { conn, seq, checkpoint: cp.map(|(s, _)| s), skipped })
}

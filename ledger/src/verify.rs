//! Chain verification, in parallel over seq ranges.
//!
//! Each link can be checked from stored values alone: event `n` is intact
//! when its recomputed hash equals its stored `hash`, its `prev_hash` equals
//! the stored `hash` of event `n - 1`, and no seq is missing. So the log is
//! cut into ranges that threads check independently, each with its own
//! read-only connection.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::error::Error;
use crate::Result;
use fluxacct_core::{EventHash, Seq};

/// Why verification failed, at the first bad seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// The first seq whose event or link is bad.
    pub seq: Seq,
    /// What is wrong with it.
    pub reason: String,
}

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of events read.
    pub events: u64,
    /// Head seq and stored hash (of the last row read).
    pub head: Option<(Seq, EventHash)>,
    /// The first failure, if any.
    pub failure: Option<VerifyFailure>,
}

impl VerifyReport {
    /// True when the chain is intact.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

struct RangeResult {
    events: u64,
    last: Option<(Seq, EventHash)>,
    failure: Option<VerifyFailure>,
}

/// Checks the events with `lo <= seq <= hi`, given the stored hash of `lo-1`.
fn check_range(conn: &Connection, lo: u64, hi: u64) -> Result<RangeResult> {
    let mut prev: Option<EventHash> = if lo <= 1 {
        Some(EventHash::ZERO)
    } else {
        // A missing row is a gap the range check reports; a failing read is an error.
        let h: Option<Vec<u8>> =
            conn.query_row("SELECT hash FROM events WHERE seq = ?1", [lo as i64 - 1], |r| r.get(0)).optional()?;
        h.and_then(|h| EventHash::from_slice(&h))
    };
    let mut stmt = conn.prepare(
        "SELECT seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash \
         FROM events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![lo as i64, hi as i64])?;
    let mut expected = lo;
    let mut out = RangeResult { events: 0, last: None, failure: None };
    let mut argv_cache = ArgvCache::default();
    // Events are encoded in pairs and the pair is hashed interleaved
    // (`hash_pair`), then checked in seq order.
    let mut pair = Pair::default();
    while let Some(r) = rows.next()? {
        let raw_seq: i64 = r.get(0)?;
        out.events += 1;
        let read = if raw_seq as u64 != expected {
            Err(format!("seq {expected} is missing (next stored seq is {raw_seq})"))
        } else {
            borrowed_event(r, expected, &mut argv_cache)
        };
        let ev = match read {
            Ok(ev) => ev,
            Err(what) => {
                // Events before this one come first.
                pair.check(&mut prev, &mut out);
                if out.failure.is_none() {
                    out.failure = Some(VerifyFailure { seq: Seq(expected), reason: what });
                }
                return Ok(out);
            }
        };
        pair.push(&ev, &argv_cache.encoded);
        if pair.len == 2 {
            pair.check(&mut prev, &mut out);
            if out.failure.is_some() {
                return Ok(out);
            }
        }
        expected += 1;
    }
    pair.check(&mut prev, &mut out);
    if out.failure.is_none() && expected <= hi {
        out.failure = Some(VerifyFailure { seq: Seq(expected), reason: format!("seq {expected} is missing") });
    }
    Ok(out)
}

/// Up to two encoded events waiting to be hashed.
#[derive(Default)]
struct Pair {
    len: usize,
    bufs: [Vec<u8>; 2],
    /// Seq, stored prev_hash and stored hash of each.
    meta: [(u64, EventHash, EventHash); 2],
}

impl Pair {
    fn push(&mut self, ev: &BorrowedEvent<'_>, encoded_argv: &[u8]) {
        let i = self.len;
        ev.encode(encoded_argv, &mut self.bufs[i]);
        self.meta[i] = (ev.seq, ev.prev_hash, ev.hash);
        self.len += 1;
    }

    /// Hashes the waiting events and checks them in order against their
    /// stored hashes and links, recording the first failure in `out`.
    fn check(&mut self, prev: &mut Option<EventHash>, out: &mut RangeResult) {
        let computed = match self.len {
            0 => return,
            1 => [EventHash(*blake3::hash(&self.bufs[0]).as_bytes()), EventHash::ZERO],
            _ => fluxacct_core::encoding::hash_pair(&self.bufs[0], &self.bufs[1]),
        };
        let len = std::mem::take(&mut self.len);
        for (computed, &(seq, prev_hash, hash)) in computed.iter().zip(&self.meta).take(len) {
            let fail = |reason: String| Some(VerifyFailure { seq: Seq(seq), reason });
            if *computed != hash {
                out.failure = fail("stored hash does not match the event's content".into());
                return;
            }
            match prev {
                Some(p) if *p == prev_hash => {}
                Some(_) if seq == 1 => {
                    out.failure = fail("genesis prev_hash is not zero".into());
                    return;
                }
                _ => {
                    out.failure = fail(format!("prev_hash does not match the hash of seq {}", seq - 1));
                    return;
                }
            }
            *prev = Some(hash);
            out.last = Some((Seq(seq), hash));
        }
    }
}

/// The last argv text read and its canonical encoding: consecutive events
/// usually share their command line, so its JSON is parsed once per
/// distinct text.
#[derive(Default)]
struct ArgvCache {
    text: Option<Vec<u8>>,
    encoded: Vec<u8>,
}

/// An event row read without copying its text and blob columns (argv is
/// parsed into the caller's cache).
struct BorrowedEvent<'r> {
    seq: u64,
    recorded_at_us: i64,
    uid: u32,
    name: &'r [u8],
    kind: &'r [u8],
    version: u32,
    payload: &'r [u8],
    prev_hash: EventHash,
    hash: EventHash,
}

impl BorrowedEvent<'_> {
    /// Writes the event's canonical encoding into the reusable `buf`. Text
    /// columns are encoded as the bytes stored: verification is about
    /// bytes, and any changed byte changes the hash.
    fn encode(&self, encoded_argv: &[u8], buf: &mut Vec<u8>) {
        fluxacct_core::encoding::encode_raw(
            buf,
            Seq(self.seq),
            self.recorded_at_us,
            self.uid,
            self.name,
            encoded_argv,
            self.kind,
            self.version,
            self.payload,
            &self.prev_hash,
        );
    }
}

/// Reads the row of event `seq` (its seq column already read and checked).
fn borrowed_event<'r>(
    r: &'r rusqlite::Row<'_>,
    seq: u64,
    argv_cache: &mut ArgvCache,
) -> std::result::Result<BorrowedEvent<'r>, String> {
    use rusqlite::types::ValueRef;
    let int = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Integer(v)) => Ok(v),
        _ => Err(format!("{what} is not an integer")),
    };
    let raw_text = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Text(t)) => Ok(t),
        _ => Err(format!("{what} is not text")),
    };
    let blob = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Blob(b)) => Ok(b),
        _ => Err(format!("{what} is not a blob")),
    };
    let argv = raw_text(4, "argv")?;
    if argv_cache.text.as_deref() != Some(argv) {
        let parsed: Vec<String> = std::str::from_utf8(argv)
            .ok()
            .and_then(|t| serde_json::from_str(t).ok())
            .ok_or("argv is not a JSON list of strings")?;
        argv_cache.text = Some(argv.to_vec());
        argv_cache.encoded.clear();
        fluxacct_core::encoding::encode_argv(&mut argv_cache.encoded, &parsed);
    }
    Ok(BorrowedEvent {
        seq,
        recorded_at_us: int(1, "recorded_at")?,
        uid: u32::try_from(int(2, "actor_uid")?).map_err(|_| "actor_uid out of range".to_string())?,
        name: raw_text(3, "actor_name")?,
        kind: raw_text(5, "kind")?,
        version: u32::try_from(int(6, "version")?).map_err(|_| "version out of range".to_string())?,
        payload: blob(7, "payload")?,
        prev_hash: EventHash::from_slice(blob(8, "prev_hash")?).ok_or("prev_hash is not 32 bytes")?,
        hash: EventHash::from_slice(blob(9, "hash")?).ok_or("hash is not 32 bytes")?,
    })
}

/// Opens another, read-only connection to the ledger file at `path`, for a
/// thread that reads the log (verification, replay readers): no mutex,
/// the ledger's busy timeout, pages read through a memory map (no copy per
/// page for a scan).
pub fn open_read_only(path: &Path) -> Result<Connection> {
    let (conn, _) =
        crate::file::open_read_only_conn(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
    Ok(conn)
}

/// Verifies the whole chain of the ledger file at `path` with `threads`
/// worker threads (at least 1). Reports the first bad seq.
pub fn verify_chain(path: &Path, threads: usize) -> Result<VerifyReport> {
    verify_chain_to(path, threads, None)
}

/// [`verify_chain`] of the events up to `upto` only (all when `None`); a log
/// that ends before `upto` fails at the first missing seq.
pub fn verify_chain_to(path: &Path, threads: usize, upto: Option<Seq>) -> Result<VerifyReport> {
    verify_chain_range(path, threads, Seq(1), upto)
}

/// [`verify_chain_to`] of the events from `from` on; the link into `from`
/// is checked against the stored hash of `from - 1`.
pub fn verify_chain_range(path: &Path, threads: usize, from: Seq, upto: Option<Seq>) -> Result<VerifyReport> {
    let conn = open_read_only(path)?;
    let (ranges, short) = match plan(&conn, threads, from, upto)? {
        Plan::Done(report) => return Ok(report),
        Plan::Ranges(ranges, short) => (ranges, short),
    };
    let threads = threads.max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<(usize, RangeResult)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Vec<(usize, RangeResult)>> {
                    let conn = open_read_only(path)?;
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(lo, hi)) = ranges.get(i) else { break };
                        mine.push((i, check_range(&conn, lo, hi)?));
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Corrupt { seq: Seq(0), what: "verifier thread panicked".into() }))
            })
            .collect()
    });
    let mut all: Vec<(usize, RangeResult)> = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(merge(all.into_iter().map(|(_, r)| r), short))
}

impl crate::Ledger {
    /// Verifies the chain up to `upto` (all when `None`): in parallel with
    /// `threads` workers on their own connections for a file ledger, on the
    /// ledger's own connection for an in-memory one.
    pub fn verify_chain(&self, threads: usize, upto: Option<Seq>) -> Result<VerifyReport> {
        if let Some(path) = self.file_path() {
            return verify_chain_to(Path::new(path), threads, upto);
        }
        self.verify_chain_from(Seq(1), upto)
    }

    /// Verifies the events from `from` to `upto` (the head when `None`) on
    /// this ledger's own connection.
    pub fn verify_chain_from(&self, from: Seq, upto: Option<Seq>) -> Result<VerifyReport> {
        let (ranges, short) = match plan(self.conn(), 1, from, upto)? {
            Plan::Done(report) => return Ok(report),
            Plan::Ranges(ranges, short) => (ranges, short),
        };
        let mut all = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            all.push(check_range(self.conn(), lo, hi)?);
        }
        Ok(merge(all.into_iter(), short))
    }
}

/// What to check.
enum Plan {
    /// Nothing to walk: the log is empty or does not start at seq 1.
    Done(VerifyReport),
    /// The seq ranges to check, and the failure to report after them when
    /// the log ends before the requested seq.
    Ranges(Vec<(u64, u64)>, Option<VerifyFailure>),
}

/// Reads the log's bounds (in one read transaction: workers see at least
/// these rows) and cuts `1..=min(max, upto)` into ranges: many small ones,
/// taken in turn, so that no thread idles at the end.
fn plan(conn: &Connection, threads: usize, from: Seq, upto: Option<Seq>) -> Result<Plan> {
    let (min, max): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT (SELECT min(seq) FROM events), (SELECT max(seq) FROM events)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(min), Some(max)) = (min, max) else {
        let failure = upto.map(|s| VerifyFailure { seq: Seq(1), reason: format!("the log is empty, not at seq {s}") });
        return Ok(Plan::Done(VerifyReport { events: 0, head: None, failure }));
    };
    if min != 1 {
        return Ok(Plan::Done(VerifyReport {
            events: 0,
            head: None,
            failure: Some(VerifyFailure { seq: Seq(1), reason: format!("log starts at seq {min}, not 1") }),
        }));
    }
    let max = max as u64;
    let (last, short) = match upto {
        Some(s) if s.0 > max => (
            max,
            Some(VerifyFailure {
                seq: Seq(max + 1),
                reason: format!("seq {} is missing: the log ends at seq {max}", max + 1),
            }),
        ),
        Some(s) => (s.0, None),
        None => (max, None),
    };
    let first = from.0.max(1);
    if first > last {
        return Ok(Plan::Done(VerifyReport { events: 0, head: None, failure: short }));
    }
    let span = last - first + 1;
    let chunks = (threads.max(1) as u64 * 32).min(span).max(1);
    let size = span.div_ceil(chunks).max(1);
    let ranges = (0..chunks)
        .map(|i| (first + i * size, (first + (i + 1) * size - 1).min(last)))
        .filter(|(lo, hi)| lo <= hi)
        .collect();
    Ok(Plan::Ranges(ranges, short))
}

/// Joins the ranges' results, in seq order, into one report.
fn merge(results: impl Iterator<Item = RangeResult>, short: Option<VerifyFailure>) -> VerifyReport {
    let mut report = VerifyReport { events: 0, head: None, failure: None };
    for r in results {
        report.events += r.events;
        if r.last.is_some() {
            report.head = r.last;
        }
        if report.failure.is_none() {
            report.failure = r.failure;
        }
    }
    if report.failure.is_none() {
        report.failure = short;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ledger;
    use fluxacct_core::{Actor, EventMeta};

    fn build(path: &Path, n: usize) {
        fill(&mut Ledger::create(path).unwrap(), n);
    }

    fn fill(l: &mut Ledger, n: usize) {
        let meta = EventMeta { recorded_at_us: 1, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
        let mut tx = l.transaction().unwrap();
        for i in 0..n {
            tx.append(&meta, "K", 1, format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        }
        tx.commit().unwrap();
    }

    fn tamper(path: &Path, sql: &str) {
        let c = Connection::open(path).unwrap();
        c.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;").unwrap();
        c.execute_batch(sql).unwrap();
    }

    #[test]
    fn intact_chain_verifies_with_any_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.db");
        build(&p, 1000);
        for t in [1, 2, 3, 8] {
            let r = verify_chain(&p, t).unwrap();
            assert!(r.ok(), "{r:?}");
            assert_eq!(r.events, 1000);
            assert_eq!(r.head.unwrap().0, Seq(1000));
        }
    }

    #[test]
    fn payload_edit_is_found_at_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.db");
        build(&p, 500);
        tamper(&p, "UPDATE events SET payload = CAST('{\"i\":9}' AS BLOB) WHERE seq = 377");
        let r = verify_chain(&p, 2).unwrap();
        assert_eq!(r.failure.unwrap().seq, Seq(377));
    }

    /// Events are hashed in pairs: a bad event is reported as itself,
    /// whether it is first or second of its pair, and before a later gap.
    #[test]
    fn each_tampered_seq_is_reported_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        let clean = dir.path().join("clean.db");
        // 200 events: 1, 2 and 3 threads cut ranges of 7, 4 and 3 events,
        // so the seqs below fall first and second in their pairs.
        build(&clean, 200);
        for seq in 1..=16 {
            for (what, sql) in [
                ("edit", format!("UPDATE events SET payload = CAST('{{}}' AS BLOB) WHERE seq = {seq}")),
                (
                    "edit+gap",
                    format!(
                        "UPDATE events SET actor_uid = 5 WHERE seq = {seq}; DELETE FROM events WHERE seq = {}",
                        seq + 1
                    ),
                ),
                ("delete", format!("DELETE FROM events WHERE seq = {seq}")),
            ] {
                let p = dir.path().join(format!("{what}-{seq}.db"));
                std::fs::copy(&clean, &p).unwrap();
                tamper(&p, &sql);
                for threads in [1, 2, 3] {
                    let r = verify_chain(&p, threads).unwrap();
                    assert_eq!(r.failure.map(|f| f.seq), Some(Seq(seq)), "{what} at {seq}, {threads} threads");
                }
            }
        }
    }

    /// `upto` bounds the walk: damage after it is not seen, damage before
    /// it is, and a log that ends before it fails at the first missing seq.
    /// An in-memory ledger walks the same way on its own connection.
    #[test]
    fn verification_up_to_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.db");
        build(&p, 300);
        tamper(&p, "UPDATE events SET actor_uid = 9 WHERE seq = 250");
        let l = Ledger::open(&p, crate::OpenMode::ReadOnly).unwrap();
        for threads in [1, 2] {
            let r = l.verify_chain(threads, Some(Seq(249))).unwrap();
            assert!(r.ok(), "{r:?}");
            assert_eq!((r.events, r.head.map(|h| h.0)), (249, Some(Seq(249))));
            assert_eq!(l.verify_chain(threads, Some(Seq(250))).unwrap().failure.unwrap().seq, Seq(250));
            let r = l.verify_chain(threads, Some(Seq(400))).unwrap();
            assert_eq!(r.failure.unwrap().seq, Seq(250));
        }
        let p2 = dir.path().join("l2.db");
        build(&p2, 300);
        let l2 = Ledger::open(&p2, crate::OpenMode::ReadOnly).unwrap();
        let f = l2.verify_chain(2, Some(Seq(301))).unwrap().failure.unwrap();
        assert_eq!((f.seq, f.reason.as_str()), (Seq(301), "seq 301 is missing: the log ends at seq 300"));

        let mut mem = Ledger::in_memory().unwrap();
        fill(&mut mem, 100);
        assert!(mem.verify_chain(4, None).unwrap().ok());
        assert_eq!(mem.verify_chain(4, Some(Seq(60))).unwrap().head.unwrap().0, Seq(60));
        mem.conn().execute_batch("DROP TRIGGER events_no_update; UPDATE events SET kind = 'L' WHERE seq = 33").unwrap();
        assert_eq!(mem.verify_chain(1, None).unwrap().failure.unwrap().seq, Seq(33));
        assert!(mem.verify_chain(1, Some(Seq(32))).unwrap().ok());
    }

    #[test]
    fn deletion_and_swap_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.db");
        build(&p, 100);
        tamper(&p, "DELETE FROM events WHERE seq = 40");
        assert_eq!(verify_chain(&p, 2).unwrap().failure.unwrap().seq, Seq(40));

        let p2 = dir.path().join("l2.db");
        build(&p2, 100);
        tamper(&p2, "UPDATE events SET seq = -1 WHERE seq = 10; UPDATE events SET seq = 10 WHERE seq = 11; UPDATE events SET seq = 11 WHERE seq = -1;");
        assert_eq!(verify_chain(&p2, 2).unwrap().failure.unwrap().seq, Seq(10));
    }
}

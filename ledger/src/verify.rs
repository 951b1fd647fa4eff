//! Chain verification, in parallel over seq ranges.
//!
//! Each link can be checked from stored values alone: event `n` is intact
//! when its recomputed hash equals its stored `hash`, its `prev_hash` equals
//! the stored `hash` of event `n - 1`, and no seq is missing. So the log is
//! cut into ranges that threads check independently, each with its own
//! read-only connection.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use crate::error::Error;
use crate::types::{EventHash, Seq};
use crate::Result;

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
        let h: Option<Vec<u8>> =
            conn.query_row("SELECT hash FROM events WHERE seq = ?1", [lo as i64 - 1], |r| r.get(0)).ok();
        h.and_then(|h| EventHash::from_slice(&h))
    };
    let mut stmt = conn.prepare(
        "SELECT seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash \
         FROM events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![lo as i64, hi as i64])?;
    let mut expected = lo;
    let mut out = RangeResult { events: 0, last: None, failure: None };
    let fail = |seq: u64, reason: String| Some(VerifyFailure { seq: Seq(seq), reason });
    // Consecutive events usually share their command line: parse the argv
    // JSON once per distinct text.
    let mut argv_cache: (Vec<u8>, Vec<String>) = (Vec::new(), Vec::new());
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    while let Some(r) = rows.next()? {
        let raw_seq: i64 = r.get(0)?;
        out.events += 1;
        if raw_seq as u64 != expected {
            out.failure = fail(expected, format!("seq {expected} is missing (next stored seq is {raw_seq})"));
            return Ok(out);
        }
        let ev = match borrowed_event(r, &mut argv_cache) {
            Ok(ev) => ev,
            Err(what) => {
                out.failure = fail(expected, what);
                return Ok(out);
            }
        };
        if ev.compute_hash(&argv_cache.1, &mut buf) != ev.hash {
            out.failure = fail(expected, "stored hash does not match the event's content".into());
            return Ok(out);
        }
        match prev {
            Some(p) if p == ev.prev_hash => {}
            Some(_) if expected == 1 => {
                out.failure = fail(1, "genesis prev_hash is not zero".into());
                return Ok(out);
            }
            _ => {
                out.failure = fail(expected, format!("prev_hash does not match the hash of seq {}", expected - 1));
                return Ok(out);
            }
        }
        prev = Some(ev.hash);
        out.last = Some((Seq(expected), ev.hash));
        expected += 1;
    }
    if expected <= hi {
        out.failure = fail(expected, format!("seq {expected} is missing"));
    }
    Ok(out)
}

/// An event row read without copying its text and blob columns (argv is
/// parsed into the caller's cache).
struct BorrowedEvent<'r> {
    seq: u64,
    recorded_at: i64,
    uid: u32,
    name: &'r [u8],
    kind: &'r [u8],
    version: u32,
    payload: &'r [u8],
    prev_hash: EventHash,
    hash: EventHash,
}

impl BorrowedEvent<'_> {
    /// Hashes the event, encoding it into the reusable `buf`. Text columns
    /// are hashed as the bytes stored: verification is about bytes, and any
    /// changed byte changes the hash.
    fn compute_hash(&self, argv: &[String], buf: &mut Vec<u8>) -> EventHash {
        crate::encoding::encode_raw(
            buf,
            Seq(self.seq),
            self.recorded_at,
            self.uid,
            self.name,
            argv,
            self.kind,
            self.version,
            self.payload,
            &self.prev_hash,
        );
        EventHash(*blake3::hash(buf).as_bytes())
    }
}

fn borrowed_event<'r>(
    r: &'r rusqlite::Row<'_>,
    argv_cache: &mut (Vec<u8>, Vec<String>),
) -> std::result::Result<BorrowedEvent<'r>, String> {
    use rusqlite::types::ValueRef;
    let int = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Integer(v)) => Ok(v),
        _ => Err(format!("{what} is not an integer")),
    };
    let text = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Text(t)) => std::str::from_utf8(t).map_err(|_| format!("{what} is not text")),
        _ => Err(format!("{what} is not text")),
    };
    let raw_text = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Text(t)) => Ok(t),
        _ => Err(format!("{what} is not text")),
    };
    let blob = |i: usize, what: &str| match r.get_ref(i) {
        Ok(ValueRef::Blob(b)) => Ok(b),
        _ => Err(format!("{what} is not a blob")),
    };
    let argv = text(4, "argv")?;
    if argv_cache.0 != argv.as_bytes() {
        argv_cache.1 = serde_json::from_str(argv).map_err(|_| "argv is not a JSON list of strings".to_string())?;
        argv_cache.0 = argv.as_bytes().to_vec();
    }
    Ok(BorrowedEvent {
        seq: int(0, "seq")? as u64,
        recorded_at: int(1, "recorded_at")?,
        uid: u32::try_from(int(2, "actor_uid")?).map_err(|_| "actor_uid out of range".to_string())?,
        name: raw_text(3, "actor_name")?,
        kind: raw_text(5, "kind")?,
        version: u32::try_from(int(6, "version")?).map_err(|_| "version out of range".to_string())?,
        payload: blob(7, "payload")?,
        prev_hash: EventHash::from_slice(blob(8, "prev_hash")?).ok_or("prev_hash is not 32 bytes")?,
        hash: EventHash::from_slice(blob(9, "hash")?).ok_or("hash is not 32 bytes")?,
    })
}

fn open_ro(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    // Read pages through a memory map: no copy per page for a full scan.
    conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
    Ok(conn)
}

/// Verifies the whole chain of the ledger file at `path` with `threads`
/// worker threads (at least 1). Reports the first bad seq.
pub fn verify_chain(path: &Path, threads: usize) -> Result<VerifyReport> {
    let conn = open_ro(path)?;
    // One read transaction for the bounds; workers see at least these rows.
    let (min, max): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT (SELECT min(seq) FROM events), (SELECT max(seq) FROM events)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(VerifyReport { events: 0, head: None, failure: None });
    };
    if min != 1 {
        return Ok(VerifyReport {
            events: 0,
            head: None,
            failure: Some(VerifyFailure { seq: Seq(1), reason: format!("log starts at seq {min}, not 1") }),
        });
    }
    let max = max as u64;
    let threads = threads.max(1);
    // Many small ranges, taken in turn: no thread idles at the end.
    let chunks = (threads as u64 * 32).min(max).max(1);
    let size = max.div_ceil(chunks);
    let ranges: Vec<(u64, u64)> =
        (0..chunks).map(|i| (1 + i * size, ((i + 1) * size).min(max))).filter(|(lo, hi)| lo <= hi).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<(usize, RangeResult)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Vec<(usize, RangeResult)>> {
                    let conn = open_ro(path)?;
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
    let mut report = VerifyReport { events: 0, head: None, failure: None };
    for (_, r) in all {
        report.events += r.events;
        if r.last.is_some() {
            report.head = r.last;
        }
        if report.failure.is_none() {
            report.failure = r.failure;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, EventMeta, Ledger};

    fn build(path: &Path, n: usize) {
        let mut l = Ledger::create(path).unwrap();
        let meta = EventMeta { recorded_at: 1, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
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

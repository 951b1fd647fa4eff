//! What verification found, kept in the ledger's own bookkeeping (the table
//! `ledger_state`, outside the event log), and the guard that refuses
//! writes on a broken chain.
//!
//! * `verify` (run by the owner) and the incremental check of
//!   `update-usage` record the last verified seq, or the first bad seq and
//!   why ([`record_verified`], [`record_broken`]).
//! * Every write transaction ([`crate::Ledger::transaction`]) refuses to
//!   start while a break is recorded, and checks in O(1) that the head
//!   event still hashes to its stored hash and links to its predecessor
//!   ([`check_head`]); a bad head is recorded as a break.
//! * A break can be accepted by an event (`repair --accept-break`); the
//!   bookkeeping lists accepted breaks with the seq of the event that
//!   accepted them, and the chain walk ([`walk`]) steps over them.
//!
//! The bookkeeping is not hashed: deleting it only makes fluxacct check
//! again, and an accepted break listed there is honoured only when the
//! event it names, in the hashed log, accepted that very seq.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::verify::{VerifyFailure, VerifyReport};
use crate::Result;
use fluxacct_core::{EventHash, Seq};

/// The event kind that accepts a break (`repair --accept-break`); its
/// payload is `{"seq": N, "reason": "..."}`.
pub const BREAK_ACCEPTED_KIND: &str = "BreakAccepted";

/// DDL of the bookkeeping table (ledger schema 2).
pub const LEDGER_STATE_DDL: &str = "CREATE TABLE IF NOT EXISTS ledger_state (key TEXT NOT NULL PRIMARY KEY, value)";

/// A break in the chain that an event accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedBreak {
    /// The first bad seq of the break.
    pub seq: Seq,
    /// Seq of the `BreakAccepted` event.
    pub by: Seq,
    /// The reason it gives.
    pub reason: String,
}

/// What the bookkeeping says about the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainState {
    /// Every event up to this seq was verified (stepping over accepted breaks).
    pub verified: Option<Seq>,
    /// A break found and not accepted: its first bad seq and why.
    pub broken: Option<VerifyFailure>,
    /// Accepted breaks, in seq order.
    pub accepted: Vec<AcceptedBreak>,
}

fn has_table(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'ledger_state'", [], |_| Ok(()))
        .optional()?
        .is_some())
}

fn get(conn: &Connection, key: &str) -> Result<Option<rusqlite::types::Value>> {
    Ok(conn
        .prepare_cached("SELECT value FROM main.ledger_state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn set(conn: &Connection, key: &str, value: rusqlite::types::Value) -> Result<()> {
    conn.execute_batch(LEDGER_STATE_DDL)?;
    conn.prepare_cached("INSERT OR REPLACE INTO main.ledger_state(key, value) VALUES (?1, ?2)")?
        .execute(rusqlite::params![key, value])?;
    Ok(())
}

fn del(conn: &Connection, key: &str) -> Result<()> {
    if has_table(conn)? {
        conn.prepare_cached("DELETE FROM main.ledger_state WHERE key = ?1")?.execute([key])?;
    }
    Ok(())
}

/// Reads the bookkeeping (empty when the file has none yet).
pub fn chain_state(conn: &Connection) -> Result<ChainState> {
    use rusqlite::types::Value;
    let mut st = ChainState::default();
    if !has_table(conn)? {
        return Ok(st);
    }
    if let Some(Value::Integer(s)) = get(conn, "verified_seq")? {
        st.verified = Some(Seq(s.max(0) as u64));
    }
    if let Some(Value::Integer(s)) = get(conn, "broken_seq")? {
        let reason = match get(conn, "broken_reason")? {
            Some(Value::Text(t)) => t,
            _ => String::new(),
        };
        st.broken = Some(VerifyFailure { seq: Seq(s.max(0) as u64), reason });
    }
    if let Some(Value::Text(t)) = get(conn, "accepted_breaks")? {
        let list: Vec<(u64, u64, String)> = serde_json::from_str(&t).unwrap_or_default();
        for (seq, by, reason) in list {
            // Honoured only when the hashed log says so.
            if accepting_event(conn, Seq(by)).ok().flatten().is_some_and(|(s, _)| s == Seq(seq)) {
                st.accepted.push(AcceptedBreak { seq: Seq(seq), by: Seq(by), reason });
            }
        }
    }
    Ok(st)
}

/// The (seq, reason) a `BreakAccepted` event at `by` accepts, if it is one.
fn accepting_event(conn: &Connection, by: Seq) -> Result<Option<(Seq, String)>> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT kind, payload FROM main.events WHERE seq = ?1")?
        .query_row([by.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((kind, payload)) = row else { return Ok(None) };
    if kind != BREAK_ACCEPTED_KIND {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct P {
        seq: u64,
        reason: String,
    }
    Ok(serde_json::from_slice::<P>(&payload).ok().map(|p| (Seq(p.seq), p.reason)))
}

/// Records that every event up to `seq` verified, and that no break is
/// pending.
pub fn record_verified(conn: &Connection, seq: Seq) -> Result<()> {
    set(conn, "verified_seq", rusqlite::types::Value::Integer(seq.0 as i64))?;
    del(conn, "broken_seq")?;
    del(conn, "broken_reason")
}

/// Records a break at `f.seq`, refusing writes until it is resolved.
pub fn record_broken(conn: &Connection, f: &VerifyFailure) -> Result<()> {
    set(conn, "broken_seq", rusqlite::types::Value::Integer(f.seq.0 as i64))?;
    set(conn, "broken_reason", rusqlite::types::Value::Text(f.reason.clone()))
}

/// Records that the `BreakAccepted` event at `by` accepted the break at
/// `seq`, and clears the pending break.
pub fn record_accepted(conn: &Connection, seq: Seq, by: Seq, reason: &str) -> Result<()> {
    let mut list: Vec<(u64, u64, String)> = match get(conn, "accepted_breaks").ok().flatten() {
        Some(rusqlite::types::Value::Text(t)) => serde_json::from_str(&t).unwrap_or_default(),
        _ => Vec::new(),
    };
    list.retain(|(s, _, _)| *s != seq.0);
    list.push((seq.0, by.0, reason.to_string()));
    list.sort();
    set(conn, "accepted_breaks", rusqlite::types::Value::Text(serde_json::to_string(&list)?))?;
    del(conn, "broken_seq")?;
    del(conn, "broken_reason")
}

/// Checks the head event in O(1): its stored hash is the hash of its
/// content, and its `prev_hash` is the stored hash of its predecessor (zero
/// for seq 1). Returns the failure, if any.
pub fn check_head(conn: &Connection) -> Result<Option<VerifyFailure>> {
    let Some((seq, _)) = crate::read::head_of(conn)? else { return Ok(None) };
    let fail = |reason: &str| Ok(Some(VerifyFailure { seq, reason: reason.to_string() }));
    let ev = match crate::read::event_of(conn, seq) {
        Ok(Some(ev)) => ev,
        Ok(None) => return fail("the head event cannot be read"),
        Err(Error::Corrupt { what, .. }) => return fail(&what),
        Err(e) => return Err(e),
    };
    if ev.compute_hash() != ev.hash {
        return fail("stored hash does not match the event's content");
    }
    let prev = if seq.0 <= 1 {
        Some(EventHash::ZERO)
    } else {
        let h: Option<Vec<u8>> = conn
            .prepare_cached("SELECT hash FROM main.events WHERE seq = ?1")?
            .query_row([seq.0 as i64 - 1], |r| r.get(0))
            .optional()?;
        h.and_then(|h| EventHash::from_slice(&h))
    };
    if prev != Some(ev.prev_hash) {
        return fail(&format!("prev_hash does not match the hash of seq {}", seq.0.saturating_sub(1)));
    }
    Ok(None)
}

/// The guard of every write transaction: `Err(ChainBroken)` while a break
/// is recorded or the head check fails (a newly found bad head is recorded
/// on `conn`, inside the caller's transaction, which the caller commits).
pub(crate) fn guard(conn: &Connection) -> Result<std::result::Result<(), (VerifyFailure, bool)>> {
    let st = chain_state(conn)?;
    if let Some(f) = st.broken {
        return Ok(Err((f, false)));
    }
    if let Some(f) = check_head(conn)? {
        if !st.accepted.iter().any(|a| a.seq == f.seq) {
            return Ok(Err((f, true)));
        }
    }
    Ok(Ok(()))
}

/// What [`walk`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Events read, head reached and the first break that was not accepted.
    pub report: VerifyReport,
    /// Accepted breaks stepped over, in seq order.
    pub accepted: Vec<AcceptedBreak>,
}

/// Walks the chain from `from` to the head with `threads` workers (the
/// link into `from` is checked against the stored hash of `from - 1`),
/// stepping over the breaks in `accepted`.
pub fn walk(ledger: &crate::Ledger, threads: usize, from: Seq, accepted: &[AcceptedBreak]) -> Result<Walk> {
    let head = ledger.head()?;
    let mut lo = Seq(from.0.max(1));
    let mut out = Walk { report: VerifyReport { events: 0, head: None, failure: None }, accepted: Vec::new() };
    loop {
        let r = match ledger.file_path() {
            Some(p) => crate::verify::verify_chain_range(Path::new(p), threads, lo, None),
            None => ledger.verify_chain_from(lo, None),
        };
        // A page of the log that cannot be read: named by its seqs.
        let r = r.map_err(|e| crate::diagnose::name_unreadable_log(ledger.conn(), e))?;
        out.report.events += r.events;
        if r.head.is_some() {
            out.report.head = r.head;
        }
        match r.failure {
            Some(f) => match accepted.iter().find(|a| a.seq == f.seq) {
                Some(a) => {
                    out.accepted.push(a.clone());
                    lo = f.seq.next();
                    if head.is_none_or(|(h, _)| lo > h) {
                        out.report.head = head;
                        out.report.events = head.map_or(0, |(h, _)| h.0 + 1 - from.0.max(1));
                        return Ok(out);
                    }
                }
                None => {
                    out.report.failure = Some(f);
                    return Ok(out);
                }
            },
            None => {
                // Intact from `from` to the head: no seq is missing.
                if let Some((h, _)) = out.report.head {
                    out.report.events = h.0 + 1 - from.0.max(1);
                }
                return Ok(out);
            }
        }
    }
}

/// SQLite's own check of the file: `PRAGMA quick_check`, or with `full`
/// `PRAGMA integrity_check` (which also compares every index with its
/// table). Returns the problems found (empty when the file is sound), each
/// naming the table or index it concerns where SQLite says which b-tree
/// (`Tree N` is mapped to the object whose root page is N). A file whose
/// damage stops the check itself gives that error as its one problem.
pub fn file_check(path: &Path, full: bool) -> Result<Vec<String>> {
    let conn = crate::verify::open_read_only(path)?;
    let pragma = if full { "PRAGMA integrity_check" } else { "PRAGMA quick_check" };
    let rows: std::result::Result<Vec<String>, rusqlite::Error> = (|| {
        let mut stmt = conn.prepare(pragma)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    })();
    let roots: Vec<(i64, String, String)> = conn
        .prepare("SELECT rootpage, type, name FROM sqlite_master WHERE rootpage > 0")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
        .unwrap_or_default();
    let mut found: Vec<String> = match rows {
        Ok(r) if r.len() == 1 && r[0] == "ok" => return Ok(Vec::new()),
        Ok(r) => r.iter().flat_map(|l| lines(l)).map(|line| name_tree(&line, &roots)).collect(),
        Err(e) => vec![e.to_string()],
    };
    if found.iter().any(|l| roots.iter().any(|(_, ty, name)| l.starts_with(&format!("{ty} {name}: ")))) {
        name_event_seqs(&conn, &mut found);
        return Ok(found);
    }
    // SQLite did not say where (e.g. `database disk image is malformed` for
    // a record it cannot decode): check each table on its own to name it.
    let mut named = Vec::new();
    for (_, ty, name) in roots.iter().filter(|(_, ty, _)| ty == "table") {
        let q = format!("{pragma}(\"{}\")", name.replace('"', "\"\""));
        let res: std::result::Result<Vec<String>, rusqlite::Error> =
            conn.prepare(&q).and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect());
        match res {
            Ok(r) if r.len() == 1 && r[0] == "ok" => {}
            Ok(r) => named.extend(r.iter().flat_map(|l| lines(l)).map(|l| format!("{ty} {name}: {l}"))),
            Err(e) => named.push(format!("{ty} {name}: {e}")),
        }
    }
    let mut out = if named.is_empty() { found } else { named };
    name_event_seqs(&conn, &mut out);
    Ok(out)
}

/// Adds the unreadable seqs to the problems that concern `table events`.
fn name_event_seqs(conn: &rusqlite::Connection, found: &mut [String]) {
    if !found.iter().any(|l| l.starts_with("table events: ")) {
        return;
    }
    let ranges = crate::diagnose::unreadable_event_ranges(conn);
    if ranges.is_empty() {
        return;
    }
    let seqs = crate::diagnose::describe_seq_ranges(&ranges);
    for l in found.iter_mut().filter(|l| l.starts_with("table events: ")) {
        l.push_str(&format!(" ({seqs} cannot be read)"));
    }
}

/// The lines of one check result, without SQLite's `*** in database main
/// ***` headings.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("***")).map(str::to_string).collect()
}

/// Prefixes a check message that names `Tree N` with the object whose root
/// page is N (`index events_job_id: Tree 5 page 7: ...`).
fn name_tree(line: &str, roots: &[(i64, String, String)]) -> String {
    let tree = line.strip_prefix("Tree ").or_else(|| line.split("Tree ").nth(1)).and_then(|rest| {
        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
        n.parse::<i64>().ok()
    });
    match tree.and_then(|n| roots.iter().find(|(r, _, _)| *r == n)) {
        Some((_, ty, name)) => format!("{ty} {name}: {line}"),
        None => line.to_string(),
    }
}

/// The `ledger_state` key holding the cluster name this ledger ships to
/// the centre under (`flux account ship --cluster`, kept after the first
/// ship: docs/centre.md).
pub const CENTRE_CLUSTER_KEY: &str = "centre_cluster";

/// The cluster name recorded by the first ship, if any.
pub fn centre_cluster(conn: &Connection) -> Result<Option<String>> {
    if !has_table(conn)? {
        return Ok(None);
    }
    Ok(match get(conn, CENTRE_CLUSTER_KEY)? {
        Some(rusqlite::types::Value::Text(s)) => Some(s),
        _ => None,
    })
}

/// Records the cluster name the ledger ships under.
pub fn record_centre_cluster(conn: &Connection, name: &str) -> Result<()> {
    set(conn, CENTRE_CLUSTER_KEY, rusqlite::types::Value::Text(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ledger;
    use fluxacct_core::{Actor, EventMeta};

    fn meta() -> EventMeta {
        EventMeta { recorded_at_us: 1, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] }
    }

    fn ledger(path: &Path, n: usize) -> Ledger {
        let mut l = Ledger::create(path).unwrap();
        let mut tx = l.transaction().unwrap();
        for i in 0..n {
            tx.append(&meta(), "K", 1, format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        }
        tx.commit().unwrap();
        l
    }

    fn edit(l: &Ledger, seq: i64) {
        l.conn()
            .execute_batch(&format!(
                "DROP TRIGGER IF EXISTS events_no_update; UPDATE events SET actor_uid = 9 WHERE seq = {seq}"
            ))
            .unwrap();
    }

    #[test]
    fn head_check_and_guard() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = ledger(&dir.path().join("l.db"), 10);
        assert_eq!(check_head(l.conn()).unwrap(), None);
        edit(&l, 5);
        // Not the head: the O(1) check does not see it, writes go on.
        assert_eq!(check_head(l.conn()).unwrap(), None);
        drop(l.transaction().unwrap());
        edit(&l, 10);
        assert_eq!(check_head(l.conn()).unwrap().map(|f| f.seq), Some(Seq(10)));
        let e = l.transaction().err().unwrap();
        assert!(matches!(e, Error::ChainBroken { seq: Seq(10), .. }), "{e}");
        // Recorded: refused without looking at the head again.
        assert_eq!(chain_state(l.conn()).unwrap().broken.map(|f| f.seq), Some(Seq(10)));
        assert!(l.transaction().is_err());
        assert_eq!(l.count().unwrap(), 10);
    }

    #[test]
    fn walk_steps_over_accepted_breaks_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = ledger(&dir.path().join("l.db"), 300);
        edit(&l, 40);
        edit(&l, 200);
        let w = walk(&l, 2, Seq(1), &[]).unwrap();
        assert_eq!(w.report.failure.map(|f| f.seq), Some(Seq(40)));
        // Accepting 40 needs its BreakAccepted event in the log.
        let mut tx = l.transaction_despite_break().unwrap();
        let by = tx.append(&meta(), BREAK_ACCEPTED_KIND, 1, br#"{"seq":40,"reason":"checked"}"#).unwrap().seq;
        tx.commit().unwrap();
        record_accepted(l.conn(), Seq(40), by, "checked").unwrap();
        let st = chain_state(l.conn()).unwrap();
        assert_eq!(st.accepted.len(), 1);
        let w = walk(&l, 2, Seq(1), &st.accepted).unwrap();
        assert_eq!(w.report.failure.map(|f| f.seq), Some(Seq(200)));
        assert_eq!(w.accepted.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![Seq(40)]);
        // From a later seq the walk starts there (the link into it checked).
        let w = walk(&l, 2, Seq(201), &st.accepted).unwrap();
        assert!(w.report.ok(), "{w:?}");
        assert_eq!((w.report.events, w.report.head.map(|h| h.0)), (101, Some(Seq(301))));
        // A bookkeeping entry the log does not back is ignored.
        record_accepted(l.conn(), Seq(200), Seq(3), "forged").unwrap();
        assert_eq!(chain_state(l.conn()).unwrap().accepted.len(), 1);
    }
}

//! The writing pipeline: each batch of checked records is decided against
//! the ledger (new jobs recorded, repeats skipped, records that break a
//! rule or contradict a recorded job rejected) and appended with its
//! projection updates in one transaction; the [`Summary`] counts what
//! happened. [`pipeline`] runs a source on its own thread and checkpoints
//! the WAL on another while this thread appends.

use std::collections::{BTreeSet, HashMap, HashSet};

use fluxacct_core::events::{Event, JobRecorded, JobRejected};
use fluxacct_core::EventMeta;
use ledger::Ledger;
use projections::model::State;
use projections::Encoded;

use crate::error::{Error, Result};
use crate::source::{Item, Position, Sink, SourceError};

/// How many rejection reasons the summary line quotes.
const SUMMARY_REASONS: usize = 3;

/// The outcome of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Events to append, in input order.
    pub events: Vec<Encoded>,
    /// Records skipped: already recorded with the same content (in the
    /// ledger or earlier in the batch).
    pub already: u64,
    /// Records skipped: rejected by an earlier fetch.
    pub rejected_before: u64,
}

/// The fields in which two records of the same job differ. `username`,
/// `ranks` and `R` count only when both records have them.
pub fn differing_fields(a: &JobRecorded, b: &JobRecorded) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut cmp = |name: &'static str, same: bool| {
        if !same {
            out.push(name);
        }
    };
    cmp("userid", a.userid == b.userid);
    cmp("username", a.username.is_none() || b.username.is_none() || a.username == b.username);
    cmp("bank", a.bank == b.bank);
    cmp("project", a.project == b.project);
    cmp("queue", a.queue == b.queue);
    cmp("t_submit", a.t_submit == b.t_submit);
    cmp("t_run", a.t_run == b.t_run);
    cmp("t_inactive", a.t_inactive == b.t_inactive);
    cmp("nnodes", a.nnodes == b.nnodes);
    cmp("ncores", a.ncores == b.ncores);
    cmp("ngpus", a.ngpus == b.ngpus);
    cmp("requested_duration", a.requested_duration == b.requested_duration);
    cmp("ranks", a.ranks.is_none() || b.ranks.is_none() || a.ranks == b.ranks);
    cmp("R", a.r.is_none() || b.r.is_none() || a.r == b.r);
    out
}

fn rejected(id: Option<u64>, pos: Position, reason: String) -> Event {
    Event::JobRejected(JobRejected { id, position: pos.to_string(), reason })
}

fn encoded(e: Event) -> Encoded {
    // A JobRejected holds no float: encoding it cannot fail.
    Encoded::new(e).expect("a JobRejected always encodes")
}

/// What earlier fetches rejected: the job ids of rejected records that had
/// one, and the (position, reason) of those that had none (a line that is
/// not JSON, a record without an id). A record is rejected once: seen
/// again (the same file read again) it is counted as rejected before, not
/// appended again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EarlierRejections {
    /// Ids of rejected records.
    pub ids: BTreeSet<u64>,
    /// `(position, reason)` of rejected records without an id.
    pub places: HashSet<(String, String)>,
}

impl EarlierRejections {
    /// Whether a rejection of a record (id, position, reason) was recorded.
    fn has(&self, id: Option<u64>, pos: &Position, reason: &str) -> bool {
        match id {
            Some(id) => self.ids.contains(&id),
            None => self.places.contains(&(pos.to_string(), reason.to_string())),
        }
    }
}

/// Pure decision for one batch of checked records, given the jobs of the
/// batch already in the ledger (`known`) and what earlier fetches
/// rejected: a `JobRecorded` for each new job, a `JobRejected` for each
/// record that broke a rule or repeats a job with different content, and
/// nothing for repeats with the same content or earlier rejections.
pub fn decide(batch: Vec<Item>, known: &HashMap<u64, JobRecorded>, earlier: &EarlierRejections) -> Decision {
    let rejected_before = &earlier.ids;
    let mut d = Decision { events: Vec::with_capacity(batch.len()), ..Decision::default() };
    // id -> (index of its JobRecorded in d.events, its position)
    let mut seen: HashMap<u64, (usize, Position)> = HashMap::with_capacity(batch.len());
    for Item { pos, rec } in batch {
        let enc = match rec {
            Ok(enc) => enc,
            Err(r) => {
                if earlier.has(r.id, &pos, &r.reason) {
                    d.rejected_before += 1;
                } else {
                    d.events.push(encoded(rejected(r.id, pos, r.reason)));
                }
                continue;
            }
        };
        let Event::JobRecorded(job) = enc.event() else { continue };
        let id = job.id;
        if let Some(old) = known.get(&id) {
            let diff = differing_fields(old, job);
            if diff.is_empty() {
                d.already += 1;
            } else if rejected_before.contains(&id) {
                d.rejected_before += 1;
            } else {
                let reason = format!("job already recorded with a different {}", diff.join(", "));
                d.events.push(encoded(rejected(Some(id), pos, reason)));
            }
            continue;
        }
        if let Some(&(i, first)) = seen.get(&id) {
            let Event::JobRecorded(old) = d.events[i].event() else { continue };
            let diff = differing_fields(old, job);
            if diff.is_empty() {
                d.already += 1;
            } else {
                let reason = format!("job repeated from {first} with a different {}", diff.join(", "));
                d.events.push(encoded(rejected(Some(id), pos, reason)));
            }
            continue;
        }
        if rejected_before.contains(&id) {
            d.rejected_before += 1;
            continue;
        }
        seen.insert(id, (d.events.len(), pos));
        d.events.push(enc);
    }
    d
}

/// The recorded jobs among `ids` (sorted), with their stored payloads.
/// Reads the id range through `job_ids`, or looks the ids up one by one
/// when the range holds many other jobs (or crosses 2^63, where the keys
/// wrap).
pub fn known_jobs(state: &State<'_>, ids: &[u64]) -> Result<HashMap<u64, JobRecorded>> {
    use projections::schema::id_key;
    let mut out = HashMap::new();
    let (Some(&lo), Some(&hi)) = (ids.first(), ids.last()) else { return Ok(out) };
    let conn = state.conn();
    let (klo, khi) = (id_key(lo), id_key(hi));
    let in_range: Option<i64> = if klo <= khi {
        Some(
            conn.prepare_cached("SELECT count(*) FROM job_ids WHERE id BETWEEN ?1 AND ?2")?
                .query_row([klo, khi], |r| r.get(0))?,
        )
    } else {
        None
    };
    if in_range == Some(0) {
        return Ok(out);
    }
    let mut keep = |seq: i64, version: u32, payload: Vec<u8>| -> Result<()> {
        match Event::decode("JobRecorded", version, &payload) {
            Ok(Event::JobRecorded(j)) => {
                out.insert(j.id, j);
                Ok(())
            }
            Ok(_) | Err(_) => Err(Error::invalid(format!("event {seq}: undecodable JobRecorded payload"))),
        }
    };
    if in_range.is_some_and(|n| n as usize <= 4 * ids.len()) {
        let wanted: BTreeSet<u64> = ids.iter().copied().collect();
        let mut stmt = conn.prepare_cached(
            "SELECT e.seq, e.version, e.payload, j.id FROM job_ids j JOIN events e ON e.seq = j.seq \
             WHERE j.id BETWEEN ?1 AND ?2",
        )?;
        let mut rows = stmt.query([klo, khi])?;
        while let Some(r) = rows.next()? {
            if wanted.contains(&(r.get::<_, i64>(3)? as u64)) {
                keep(r.get(0)?, r.get(1)?, r.get(2)?)?;
            }
        }
    } else {
        let mut stmt = conn.prepare_cached(
            "SELECT e.seq, e.version, e.payload FROM job_ids j JOIN events e ON e.seq = j.seq WHERE j.id = ?1",
        )?;
        for &id in ids {
            let mut rows = stmt.query([id_key(id)])?;
            while let Some(r) = rows.next()? {
                keep(r.get(0)?, r.get(1)?, r.get(2)?)?;
            }
        }
    }
    Ok(out)
}

/// What earlier fetches rejected, read once per ingest through the log's
/// small `events_job_rejected` index (not once per record).
///
/// Each payload is decoded in Rust, not with SQLite's `json_extract`: that
/// gives ids from 2^63 up (legal Flux ids) as floats, which no integer
/// column type takes. A payload that does not decode (a damaged or edited
/// event, which `verify` names) is only left out: it is no reason to stop
/// every later ingest.
pub fn earlier_rejections(state: &State<'_>) -> Result<EarlierRejections> {
    #[derive(serde::Deserialize)]
    struct Rejected {
        #[serde(default)]
        id: Option<u64>,
        #[serde(default)]
        position: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    }
    let mut out = EarlierRejections::default();
    let mut stmt = state.conn().prepare_cached("SELECT payload FROM events WHERE kind = 'JobRejected'")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let bytes: &[u8] = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b,
            rusqlite::types::ValueRef::Null
            | rusqlite::types::ValueRef::Integer(_)
            | rusqlite::types::ValueRef::Real(_) => continue,
        };
        match serde_json::from_slice::<Rejected>(bytes) {
            Ok(Rejected { id: Some(id), .. }) => {
                out.ids.insert(id);
            }
            Ok(Rejected { id: None, position, reason }) => {
                out.places.insert((position.unwrap_or_default(), reason.unwrap_or_default()));
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// How many orphan kinds the summary line names.
const SUMMARY_ORPHANS: usize = 3;

/// The banks and associations job records are matched against: a record
/// whose bank is empty or unknown, or whose uid has no association in its
/// bank, is recorded (as flux-accounting records it) but is an orphan,
/// charged to nobody.
#[derive(Debug, Clone, Default)]
pub struct Orphans {
    banks: HashSet<String>,
    assocs: HashSet<(i64, String)>,
    uids: HashSet<i64>,
}

impl Orphans {
    /// Reads the banks and associations (active or not).
    pub fn read(state: &State<'_>) -> Result<Orphans> {
        let mut o = Orphans::default();
        for b in state.banks()? {
            o.banks.insert(b.bank);
        }
        for a in state.associations()? {
            o.uids.insert(a.userid);
            o.assocs.insert((a.userid, a.bank));
        }
        Ok(o)
    }

    /// Why a record of `userid` in `bank` matches no association (`no
    /// bank`, `bank B`, `uid U`, `uid U in bank B`), or None when it
    /// matches one.
    pub fn why(&self, userid: i64, bank: &str) -> Option<String> {
        if bank.is_empty() {
            Some("no bank".into())
        } else if !self.banks.contains(bank) {
            Some(format!("bank {bank}"))
        } else if self.assocs.contains(&(userid, bank.to_string())) {
            None
        } else if self.uids.contains(&userid) {
            Some(format!("uid {userid} in bank {bank}"))
        } else {
            Some(format!("uid {userid}"))
        }
    }
}

/// Counts of an ingest, and the first rejection reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records appended as `JobRecorded`.
    pub recorded: u64,
    /// Records skipped: already recorded with the same content.
    pub already: u64,
    /// Records appended as `JobRejected`.
    pub rejected: u64,
    /// Records skipped: rejected by an earlier fetch.
    pub rejected_before: u64,
    /// Transactions committed.
    pub batches: u64,
    /// `position: reason` of the first rejections.
    pub first_reasons: Vec<String>,
    /// `position: reason` of every rejection (only with `-v`).
    pub all_reasons: Vec<String>,
    /// Live source: inactive jobs that never ran (skipped, as
    /// flux-accounting skips them).
    pub never_ran: u64,
    /// Recorded records that match no association, by why
    /// ([`Orphans::why`]), with the first position of each.
    pub orphans: HashMap<String, (u64, u64)>,
}

impl Summary {
    /// The summary line: `recorded N, already recorded M, rejected K: first
    /// reasons …`.
    pub fn line(&self) -> String {
        let mut s =
            format!("recorded {}, already recorded {}, rejected {}", self.recorded, self.already, self.rejected);
        if self.rejected_before > 0 {
            s.push_str(&format!(" (and {} rejected by an earlier fetch)", self.rejected_before));
        }
        if self.never_ran > 0 {
            s.push_str(&format!(", {} never ran (skipped)", self.never_ran));
        }
        if !self.first_reasons.is_empty() {
            s.push_str(": ");
            s.push_str(&self.first_reasons.join("; "));
            if self.rejected as usize > self.first_reasons.len() {
                s.push_str("; …");
            }
        }
        if let Some(o) = self.orphans_line() {
            s.push_str("; ");
            s.push_str(&o);
        }
        s
    }

    /// `N records match no association: uid 9999 ×10, bank x ×1, no bank
    /// ×1` (the most frequent kinds first), or None when every recorded
    /// record matched one.
    pub fn orphans_line(&self) -> Option<String> {
        let total: u64 = self.orphans.values().map(|(n, _)| n).sum();
        if total == 0 {
            return None;
        }
        let mut kinds: Vec<(&String, &(u64, u64))> = self.orphans.iter().collect();
        // Most frequent first, then in input order.
        kinds.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
        let named: Vec<String> = kinds.iter().take(SUMMARY_ORPHANS).map(|(k, (n, _))| format!("{k} ×{n}")).collect();
        let more = if kinds.len() > SUMMARY_ORPHANS { ", …" } else { "" };
        let rec = if total == 1 { "record matches" } else { "records match" };
        Some(format!("{total} {rec} no association: {}{more}", named.join(", ")))
    }

    fn add_orphan(&mut self, why: String, n: u64, first: u64) {
        let e = self.orphans.entry(why).or_insert((0, first));
        e.0 += n;
    }

    /// What was committed, for the message of an input that went bad.
    fn committed(&self) -> String {
        let b = if self.batches == 1 { "batch" } else { "batches" };
        let mut s = format!("recorded {} records in {} {b}", self.recorded, self.batches);
        if self.already > 0 || self.rejected > 0 {
            s.push_str(&format!(" (already recorded {}, rejected {})", self.already, self.rejected));
        }
        s
    }
}

/// What the writing pipeline is told by its caller.
pub struct Options<'a> {
    /// The metadata recorded with every appended event.
    pub meta: EventMeta,
    /// Keep every rejection reason ([`Summary::all_reasons`]).
    pub verbose: bool,
    /// Called with the number of records of each committed batch.
    pub progress: &'a dyn Fn(u64),
}

/// The ingest loop: for each batch from `batches`, decides and appends its
/// events in one transaction, and counts; the appended events are handed
/// to `dispose`. A source error stops it; the
/// message of a malformed input names what was committed before it.
pub fn ingest<I>(
    opts: &Options<'_>,
    ledger: &mut Ledger,
    batches: I,
    dispose: &mut dyn FnMut(Vec<Encoded>),
) -> Result<Summary>
where
    I: IntoIterator<Item = std::result::Result<Vec<Item>, SourceError>>,
{
    let meta = &opts.meta;
    let verbose = opts.verbose;
    let mut sum = Summary::default();
    let earlier = earlier_rejections(&State::new(ledger.conn()))?;
    let orphans = Orphans::read(&State::new(ledger.conn()))?;
    let mut nth: u64 = 0;
    for batch in batches {
        let batch = match batch {
            Ok(b) => b,
            Err(SourceError::Other(e)) => return Err(e),
            Err(SourceError::Malformed { line, what, pending_from }) => {
                let tail = match pending_from {
                    Some(p) if p < line => format!("; nothing from line {p} on was recorded"),
                    _ => String::new(),
                };
                return Err(Error::invalid(format!("{} before line {line}: {what}{tail}", sum.committed())));
            }
        };
        let n = batch.len() as u64;
        let mut ids: Vec<u64> = batch
            .iter()
            .filter_map(|i| match i.rec.as_ref().map(Encoded::event) {
                Ok(Event::JobRecorded(j)) => Some(j.id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut part = Summary::default();
        // As projections::Writer::run, keeping the events afterwards so
        // that `dispose` can free them off this thread.
        let mut tx = ledger.transaction()?;
        let d = {
            let s = State::new(tx.conn());
            let known = known_jobs(&s, &ids)?;
            decide(batch, &known, &earlier)
        };
        part.already = d.already;
        part.rejected_before = d.rejected_before;
        for e in &d.events {
            match e.event() {
                Event::JobRecorded(j) => {
                    part.recorded += 1;
                    nth += 1;
                    if let Some(why) = orphans.why(j.userid, &j.bank) {
                        part.add_orphan(why, 1, nth);
                    }
                }
                _ => part.rejected += 1,
            }
        }
        note_reasons(&mut part, &d.events, verbose);
        projections::append_and_apply_encoded(&mut tx, meta, &d.events)?;
        tx.commit()?;
        dispose(d.events);
        sum.batches += 1;
        sum.recorded += part.recorded;
        sum.rejected += part.rejected;
        sum.already += part.already;
        sum.rejected_before += part.rejected_before;
        for r in part.first_reasons {
            if sum.first_reasons.len() < SUMMARY_REASONS {
                sum.first_reasons.push(r);
            }
        }
        sum.all_reasons.extend(part.all_reasons);
        for (why, (n, first)) in part.orphans {
            sum.add_orphan(why, n, first);
        }
        (opts.progress)(n);
    }
    Ok(sum)
}

/// Collects the rejection reasons of the appended events of a batch.
fn note_reasons(sum: &mut Summary, events: &[Encoded], verbose: bool) {
    for e in events {
        if let Event::JobRejected(r) = e.event() {
            let line = format!("{}: {}", r.position, r.reason);
            if sum.first_reasons.len() < SUMMARY_REASONS {
                sum.first_reasons.push(line.clone());
            }
            if verbose {
                sum.all_reasons.push(line);
            }
        }
    }
}

/// Runs `produce` (a source reading and checking records) on its own
/// thread, handing batches to `ingest` on this one: parsing overlaps the
/// SQLite work, and at most two batches wait in between. A third thread
/// frees the appended batches, and a fourth copies each committed batch
/// from the WAL into the ledger file (`ledger::Checkpointer`), so that
/// this thread only appends.
pub fn pipeline<P>(opts: &Options<'_>, ledger: &mut Ledger, produce: P) -> Result<Summary>
where
    P: FnOnce(&mut Sink<'_>) -> std::result::Result<(), SourceError> + Send,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::result::Result<Vec<Item>, SourceError>>(1);
    let (garbage, dump) = std::sync::mpsc::sync_channel::<Vec<Encoded>>(1);
    let (committed, commits) = std::sync::mpsc::sync_channel::<()>(1);
    let checkpointer = ledger.checkpointer()?;
    let out = std::thread::scope(|s| {
        s.spawn(move || {
            let mut sink = |b: Vec<Item>| tx.send(Ok(b)).is_ok();
            if let Err(e) = produce(&mut sink) {
                let _ = tx.send(Err(e));
            }
        });
        // Freeing a batch's records (a few allocations each) is done here,
        // off the writer's thread.
        s.spawn(move || dump.into_iter().for_each(drop));
        if let Some(c) = checkpointer {
            // A failed checkpoint is retried after the next commit; the
            // ledger's own checkpoints (restored below) catch up at the end.
            s.spawn(move || commits.into_iter().for_each(|()| drop(c.checkpoint())));
        }
        // `move`: the senders must be dropped when ingest returns, before
        // the scope joins the threads that drain them.
        let mut dispose = move |v: Vec<Encoded>| {
            // Without waiting: a checkpoint still running covers this batch
            // at the next commit.
            let _ = committed.try_send(());
            let _ = garbage.send(v);
        };
        ingest(opts, ledger, rx, &mut dispose)
        // Dropping rx on an error stops the producer at its next batch;
        // dropping `dispose` ends the other threads.
    });
    // The ingest's own error first, if it failed.
    let restored = ledger.restore_checkpoints();
    let sum = out?;
    restored?;
    Ok(sum)
}

/// The newest `t_inactive` already recorded (0 if none).
pub fn newest_t_inactive(state: &State<'_>) -> Result<f64> {
    // The newest integer microsecond through `job_times`, then the exact
    // float of the records there, each payload decoded once in Rust.
    let mut stmt = state.conn().prepare_cached(
        "SELECT e.seq, e.version, e.payload FROM job_times j JOIN events e ON e.seq = j.seq \
         WHERE j.t_inactive_us = (SELECT max(t_inactive_us) FROM job_times)",
    )?;
    let mut q = stmt.query([])?;
    let mut newest: Option<f64> = None;
    while let Some(r) = q.next()? {
        let seq: i64 = r.get(0)?;
        let version = u32::try_from(r.get::<_, i64>(1)?)
            .map_err(|_| projections::Error::Apply { seq: seq as u64, what: "version out of range".into() })?;
        let payload = r.get_ref(2)?.as_bytes().map_err(rusqlite::Error::from)?;
        let (_, t) = projections::schema::job_key(version, payload)?;
        newest = Some(newest.map_or(t, |n| n.max(t)));
    }
    Ok(newest.unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Rejection;
    use fluxacct_core::events::DbCreated;
    use fluxacct_core::Actor;

    enum Given {
        Event(Event),
    }

    /// An in-memory ledger holding a genesis event and the given ones.
    struct World {
        ledger: Ledger,
    }

    impl World {
        fn state(&self) -> State<'_> {
            State::new(self.ledger.conn())
        }
    }

    fn given(facts: &[Given]) -> World {
        let mut ledger = Ledger::in_memory().expect("in-memory ledger");
        projections::schema::create(ledger.conn()).expect("schema");
        let meta = EventMeta { recorded_at_us: 1_000_000, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
        let mut events = vec![Event::DbCreated(DbCreated::with_defaults(1.0))];
        events.extend(facts.iter().map(|Given::Event(e)| e.clone()));
        let mut tx = ledger.transaction().expect("tx");
        projections::append_and_apply(&mut tx, &meta, &events).expect("given events apply");
        tx.commit().expect("commit");
        World { ledger }
    }

    fn job(id: u64) -> JobRecorded {
        JobRecorded {
            id,
            userid: 1,
            username: None,
            bank: "A".into(),
            project: String::new(),
            queue: String::new(),
            t_submit: 1.0,
            t_run: 2.0,
            t_inactive: 3.0,
            nnodes: 1,
            ncores: 0,
            ngpus: 0,
            requested_duration: 0.0,
            ranks: None,
            r: None,
        }
    }

    fn ok(n: u64, j: JobRecorded) -> Item {
        crate::source::checked(Position::Line(n), Ok(j))
    }

    fn events(d: &Decision) -> Vec<Event> {
        d.events.iter().map(|e| e.event().clone()).collect()
    }

    #[test]
    fn given_recorded_job_when_fetched_again_then_skipped_and_repeats_counted() {
        let g = given(&[Given::Event(Event::JobRecorded(job(1)))]);
        let s = g.state();
        let known = known_jobs(&s, &[1, 2]).unwrap();
        let d = decide(vec![ok(1, job(1)), ok(2, job(2)), ok(3, job(2))], &known, &EarlierRejections::default());
        assert_eq!(events(&d), vec![Event::JobRecorded(job(2))]);
        assert_eq!(d.already, 2);
    }

    #[test]
    fn given_recorded_job_when_fetched_with_other_content_then_rejected_naming_fields() {
        let g = given(&[Given::Event(Event::JobRecorded(job(1)))]);
        let known = known_jobs(&g.state(), &[1]).unwrap();
        let changed = JobRecorded { t_run: 2.5, nnodes: 4, ..job(1) };
        let d = decide(
            vec![ok(7, changed.clone()), ok(8, job(2)), ok(9, JobRecorded { bank: "B".into(), ..job(2) })],
            &known,
            &EarlierRejections::default(),
        );
        assert_eq!(
            events(&d),
            vec![
                rejected(Some(1), Position::Line(7), "job already recorded with a different t_run, nnodes".into()),
                Event::JobRecorded(job(2)),
                rejected(Some(2), Position::Line(9), "job repeated from line 8 with a different bank".into()),
            ]
        );
    }

    #[test]
    fn given_earlier_rejection_when_seen_again_then_not_rejected_twice() {
        let d = decide(
            vec![
                Item { pos: Position::Line(1), rec: Err(Rejection { id: Some(5), reason: "x".into() }) },
                ok(2, job(6)),
            ],
            &HashMap::new(),
            &EarlierRejections { ids: BTreeSet::from([5, 6]), ..EarlierRejections::default() },
        );
        assert!(d.events.is_empty());
        assert_eq!(d.rejected_before, 2);
    }

    #[test]
    fn given_earlier_rejection_without_id_when_the_same_line_is_seen_again_then_not_rejected_twice() {
        let bad = |n: u64, reason: &str| Item {
            pos: Position::Line(n),
            rec: Err(Rejection { id: None, reason: reason.into() }),
        };
        let earlier = EarlierRejections {
            places: HashSet::from([("line 3".to_string(), "not JSON".to_string())]),
            ..EarlierRejections::default()
        };
        let d = decide(vec![bad(3, "not JSON"), bad(4, "not JSON"), bad(3, "no id")], &HashMap::new(), &earlier);
        assert_eq!(
            events(&d),
            vec![
                rejected(None, Position::Line(4), "not JSON".into()),
                rejected(None, Position::Line(3), "no id".into()),
            ]
        );
        assert_eq!(d.rejected_before, 1);
    }

    #[test]
    fn earlier_rejections_are_read_from_the_log_with_and_without_ids() {
        let g = given(&[
            Given::Event(rejected(Some(9), Position::Line(1), "bad".into())),
            Given::Event(rejected(None, Position::Line(2), "not JSON".into())),
        ]);
        let e = earlier_rejections(&g.state()).unwrap();
        assert_eq!(e.ids, BTreeSet::from([9]));
        assert_eq!(e.places, HashSet::from([("line 2".to_string(), "not JSON".to_string())]));
    }

    #[test]
    fn summary_line_counts_orphans_most_frequent_first() {
        let mut s = Summary { recorded: 12, ..Summary::default() };
        s.add_orphan("bank nosuchbank".into(), 1, 1);
        s.add_orphan("uid 9999".into(), 10, 2);
        s.add_orphan("no bank".into(), 1, 3);
        assert_eq!(
            s.line(),
            "recorded 12, already recorded 0, rejected 0; 12 records match no association: uid 9999 ×10, \
             bank nosuchbank ×1, no bank ×1"
        );
        assert_eq!(Summary::default().orphans_line(), None);
    }

    #[test]
    fn orphans_are_records_of_no_bank_an_unknown_bank_or_no_association() {
        let g = given(&[]);
        let mut o = Orphans::read(&g.state()).unwrap();
        o.banks.insert("A".into());
        o.assocs.insert((1, "A".into()));
        o.uids.insert(2);
        assert_eq!(o.why(1, "A"), None);
        assert_eq!(o.why(1, ""), Some("no bank".into()));
        assert_eq!(o.why(1, "Z"), Some("bank Z".into()));
        assert_eq!(o.why(9, "A"), Some("uid 9".into()));
        assert_eq!(o.why(2, "A"), Some("uid 2 in bank A".into()));
    }

    #[test]
    fn summary_line_counts_and_quotes_the_first_reasons() {
        let mut s = Summary { recorded: 5, already: 2, rejected: 4, ..Summary::default() };
        note_reasons(
            &mut s,
            &(1..=4).map(|i| encoded(rejected(None, Position::Line(i), format!("r{i}")))).collect::<Vec<_>>(),
            false,
        );
        assert_eq!(s.line(), "recorded 5, already recorded 2, rejected 4: line 1: r1; line 2: r2; line 3: r3; …");
    }
}

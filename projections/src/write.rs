//! Appending events and applying them in the same transaction, and
//! rebuilding projections from the log.

use rusqlite::Connection;

use fluxacct_core::{EventMeta, Seq, StoredEvent};
use ledger::{Appended, Ledger, Tx};

use crate::apply::Applier;
use crate::ctx::ApplyCtx;
use crate::error::Error;
use crate::schema::JobIndexWriter;
use fluxacct_core::events::Event;

/// Appends `events` to the log inside `tx` and applies each to the
/// projection tables in the same transaction.
pub fn append_and_apply(tx: &mut Tx<'_>, meta: &EventMeta, events: &[Event]) -> Result<Vec<Appended>, Error> {
    let mut out = Vec::with_capacity(events.len());
    let mut applier = Applier::new();
    let mut index = JobIndexWriter::new(tx.connection());
    for ev in events {
        out.push(append_one(tx, meta, &mut applier, &mut index, ev, &ev.encode()?)?);
    }
    index.flush()?;
    applier.sync(tx.conn())?;
    Ok(out)
}

/// Appends one event with its encoded payload, applies it, and keeps
/// `job_times` and `job_ids` for a job record.
fn append_one(
    tx: &mut Tx<'_>,
    meta: &EventMeta,
    applier: &mut Applier,
    index: &mut JobIndexWriter<'_>,
    ev: &Event,
    payload: &[u8],
) -> Result<Appended, Error> {
    let a = tx.append(meta, ev.kind(), ev.version(), payload)?;
    project_one(tx.conn(), applier, index, ev, &a)?;
    Ok(a)
}

/// The projection side of appending `ev` (at `a`): applies it, and keeps
/// `job_times` and `job_ids` for a job record.
fn project_one(
    conn: &rusqlite::Connection,
    applier: &mut Applier,
    index: &mut JobIndexWriter<'_>,
    ev: &Event,
    a: &Appended,
) -> Result<(), Error> {
    match ev {
        Event::JobRecorded(j) => index.add(a.seq.0, j.id, j.t_inactive),
        Event::JobRejected(_) => {}
        // Other events' apply may read `job_times` (re-binning).
        _ => index.flush()?,
    }
    applier.apply(conn, &ApplyCtx { seq: a.seq.0, recorded_at_us: a.recorded_at_us }, ev)
}

/// An event with its canonical payload already encoded, so that the
/// encoding can happen off the writer's thread (`fetch-job-records` encodes
/// job records while it parses them). The payload is always
/// `event.encode()`: the fields are private.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    event: Event,
    payload: Vec<u8>,
}

impl Encoded {
    /// Encodes `event`.
    pub fn new(event: Event) -> Result<Encoded, Error> {
        let payload = event.encode()?;
        Ok(Encoded { event, payload })
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event, without its payload.
    pub fn into_event(self) -> Event {
        self.event
    }
}

/// [`append_and_apply`] for events encoded beforehand.
pub fn append_and_apply_encoded(tx: &mut Tx<'_>, meta: &EventMeta, events: &[Encoded]) -> Result<Vec<Appended>, Error> {
    let mut out = Vec::with_capacity(events.len());
    let mut applier = Applier::new();
    let mut index = JobIndexWriter::new(tx.connection());
    let rows: Vec<ledger::EventRow<'_>> =
        events.iter().map(|e| (e.event.kind(), e.event.version(), e.payload.as_slice())).collect();
    // The chain is hashed on another thread while this one inserts.
    tx.append_batch(meta, &rows, |conn, i, a| -> Result<(), Error> {
        project_one(conn, &mut applier, &mut index, &events[i].event, a)?;
        out.push(*a);
        Ok(())
    })?;
    index.flush()?;
    applier.sync(tx.conn())?;
    Ok(out)
}

/// Decodes a stored event, applies it and records it as the last applied.
pub fn apply_stored(conn: &Connection, ev: &StoredEvent) -> Result<(), Error> {
    let decoded = Event::decode(&ev.kind, ev.version, &ev.payload)?;
    let mut applier = Applier::new();
    applier.apply(conn, &ApplyCtx { seq: ev.seq.0, recorded_at_us: ev.recorded_at_us }, &decoded)?;
    applier.sync(conn)
}

/// A new in-memory connection to replay `ledger` into: its log readable
/// as the temporary view `events` (up to `visible`, or all of it), and the
/// projection schema created (empty tables, and the view `jobs` over that
/// `events`). A file ledger is attached read-only as `src`; an in-memory
/// one is copied (with SQLite's backup API), its projection tables dropped.
///
/// Applying an event never reads events at or after its own seq, so any
/// replay is correct on an unbounded scratch; `visible` is for as-of views,
/// whose readers must not see the log beyond their seq. A replay must not
/// go on past `visible`.
pub fn scratch(ledger: &Ledger, visible: Option<Seq>) -> Result<Connection, Error> {
    let mut conn = Connection::open_in_memory()?;
    conn.set_prepared_statement_cache_capacity(64);
    let bound = visible.map(|s| s.0.min(i64::MAX as u64) as i64).unwrap_or(i64::MAX);
    if ledger.file_path().is_none() {
        rusqlite::backup::Backup::new(ledger.conn(), &mut conn)?.run_to_completion(
            i32::MAX,
            std::time::Duration::ZERO,
            None,
        )?;
        crate::schema::drop_all(&conn)?;
        conn.execute_batch(&format!("CREATE TEMP VIEW events AS SELECT * FROM main.events WHERE seq <= {bound}"))?;
    } else {
        conn.execute("ATTACH DATABASE ?1 AS src", [ledger.read_only_uri()])?;
        conn.execute_batch(&format!("CREATE TEMP VIEW events AS SELECT * FROM src.events WHERE seq <= {bound}"))?;
    }
    crate::schema::create(&conn)?;
    // Over the temporary `events` (for a copied ledger it hides the
    // `main.jobs` that `create` made over the whole copy).
    conn.execute_batch(&format!("CREATE TEMP VIEW jobs AS {}", crate::schema::JOBS_VIEW_BODY))?;
    Ok(conn)
}

/// Replays the log of `ledger` (events with `seq <= upto`, or all) into a
/// new [`scratch`] connection, streaming the log, in one transaction.
pub fn replay(ledger: &Ledger, upto: Option<Seq>) -> Result<Connection, Error> {
    let target = scratch(ledger, None)?;
    target.execute_batch("BEGIN")?;
    let mut applier = Applier::new();
    let stream = match upto {
        Some(to) => ledger.stream_range(Seq(1), to),
        None => ledger.stream(Seq(1)),
    };
    for ev in stream {
        let ev = ev?;
        let decoded = Event::decode(&ev.kind, ev.version, &ev.payload)?;
        applier.apply(&target, &ApplyCtx { seq: ev.seq.0, recorded_at_us: ev.recorded_at_us }, &decoded)?;
    }
    applier.sync(&target)?;
    target.execute_batch("COMMIT")?;
    Ok(target)
}

/// A convenience wrapper used by commands and tests: one write transaction
/// over a ledger with projections.
pub struct Writer;

impl Writer {
    /// Runs `decide` against the read model inside a `BEGIN IMMEDIATE`
    /// transaction, appends and applies the events it returns, and commits.
    /// When `decide` fails, nothing is written.
    pub fn run<E, F>(ledger: &mut Ledger, meta: &EventMeta, decide: F) -> Result<Vec<Appended>, E>
    where
        E: From<Error>,
        F: FnOnce(&crate::model::State<'_>) -> Result<Vec<Event>, E>,
    {
        let mut tx = ledger.transaction().map_err(Error::from)?;
        let events = {
            let state = crate::model::State::new(tx.conn());
            decide(&state)?
        };
        let out = append_and_apply(&mut tx, meta, &events)?;
        tx.commit().map_err(Error::from)?;
        Ok(out)
    }
}

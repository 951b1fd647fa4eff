//! Appending events and applying them in the same transaction, and
//! rebuilding projections from the log.

use rusqlite::Connection;

use ledger::{Appended, EventMeta, Ledger, Seq, StoredEvent, Tx};

use crate::apply::{apply, mark_applied, ApplyCtx};
use crate::error::Error;
use crate::events::Event;

/// Appends `events` to the log inside `tx` and applies each to the
/// projection tables in the same transaction.
pub fn append_and_apply(tx: &mut Tx<'_>, meta: &EventMeta, events: &[Event]) -> Result<Vec<Appended>, Error> {
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        let payload = ev.encode()?;
        let a = tx.append(meta, ev.kind(), ev.version(), &payload)?;
        apply(tx.conn(), &ApplyCtx { seq: a.seq.0, recorded_at: a.recorded_at }, ev)?;
        out.push(a);
    }
    if let Some(last) = out.last() {
        mark_applied(tx.conn(), last.seq.0)?;
    }
    Ok(out)
}

/// Decodes a stored event, applies it and records it as the last applied.
pub fn apply_stored(conn: &Connection, ev: &StoredEvent) -> Result<(), Error> {
    apply_decoded(conn, ev)?;
    mark_applied(conn, ev.seq.0)
}

fn apply_decoded(conn: &Connection, ev: &StoredEvent) -> Result<(), Error> {
    let decoded = Event::decode(&ev.kind, ev.version, &ev.payload)?;
    apply(conn, &ApplyCtx { seq: ev.seq.0, recorded_at: ev.recorded_at }, &decoded)
}

/// Replays the log of `ledger` (events with `seq <= upto`, or all) into
/// fresh projection tables on `target`, streaming the log. `target` must
/// not hold projection tables yet (see [`crate::schema::drop_all`]). It
/// opens no transaction of its own: run it inside one for speed and
/// atomicity. `target` may be the ledger's own connection.
pub fn rebuild_into(ledger: &Ledger, target: &Connection, upto: Option<Seq>) -> Result<u64, Error> {
    crate::schema::create(target)?;
    let tx = target;
    let mut n = 0;
    let mut last = None;
    let stream = match upto {
        Some(to) => ledger.stream_range(Seq(1), to),
        None => ledger.stream(Seq(1)),
    };
    for ev in stream {
        let ev = ev?;
        apply_decoded(tx, &ev)?;
        last = Some(ev.seq.0);
        n += 1;
    }
    if let Some(seq) = last {
        mark_applied(tx, seq)?;
    }
    Ok(n)
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

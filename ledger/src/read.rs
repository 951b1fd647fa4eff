//! Reading the head and single events on any connection to a ledger: shared
//! by the store and by `integrity`, which the store calls before appending.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::Result;
use fluxacct_core::{Actor, EventHash, Seq, StoredEvent};

/// The head's seq and stored hash, on any connection to a ledger.
pub(crate) fn head_of(conn: &Connection) -> Result<Option<(Seq, EventHash)>> {
    Ok(read_head(conn)?.map(|h| (h.seq, h.hash)))
}

/// One event, on any connection to a ledger.
pub(crate) fn event_of(conn: &Connection, seq: Seq) -> Result<Option<StoredEvent>> {
    read_event(conn, seq)
}

pub(crate) struct Head {
    pub(crate) seq: Seq,
    pub(crate) hash: EventHash,
    pub(crate) recorded_at_us: i64,
}

pub(crate) fn read_head(conn: &Connection) -> Result<Option<Head>> {
    let row = conn
        .prepare_cached("SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((seq, hash, recorded_at_us)) => {
            let seq = Seq(seq as u64);
            let hash = EventHash::from_slice(&hash)
                .ok_or_else(|| Error::Corrupt { seq, what: "hash is not 32 bytes".into() })?;
            Ok(Some(Head { seq, hash, recorded_at_us }))
        }
    }
}

pub(crate) const SELECT_EVENT: &str =
    "SELECT seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash FROM events";

pub(crate) fn row_to_event(r: &rusqlite::Row<'_>) -> Result<StoredEvent> {
    let seq = Seq(r.get::<_, i64>(0)? as u64);
    let corrupt = |what: &str| Error::Corrupt { seq, what: what.to_string() };
    let argv_text: String = r.get(4).map_err(|_| corrupt("argv is not text"))?;
    let argv: Vec<String> =
        serde_json::from_str(&argv_text).map_err(|_| corrupt("argv is not a JSON list of strings"))?;
    let prev: Vec<u8> = r.get(8).map_err(|_| corrupt("prev_hash is not a blob"))?;
    let hash: Vec<u8> = r.get(9).map_err(|_| corrupt("hash is not a blob"))?;
    let uid: i64 = r.get(2).map_err(|_| corrupt("actor_uid is not an integer"))?;
    let version: i64 = r.get(6).map_err(|_| corrupt("version is not an integer"))?;
    Ok(StoredEvent {
        seq,
        recorded_at_us: r.get(1).map_err(|_| corrupt("recorded_at is not an integer"))?,
        actor: Actor {
            uid: u32::try_from(uid).map_err(|_| corrupt("actor_uid out of range"))?,
            name: r.get(3).map_err(|_| corrupt("actor_name is not text"))?,
        },
        argv,
        kind: r.get(5).map_err(|_| corrupt("kind is not text"))?,
        version: u32::try_from(version).map_err(|_| corrupt("version out of range"))?,
        // A payload of another storage class (turned into TEXT: the same
        // bytes; a number or NULL by a hand edit) is read as its bytes, so
        // that the log, the break that records it included, stays
        // readable; `verify` reports the change, and decoding it names
        // what is wrong.
        payload: match r.get_ref(7)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b.to_vec(),
            rusqlite::types::ValueRef::Integer(i) => i.to_string().into_bytes(),
            rusqlite::types::ValueRef::Real(x) => x.to_string().into_bytes(),
            rusqlite::types::ValueRef::Null => Vec::new(),
        },
        prev_hash: EventHash::from_slice(&prev).ok_or_else(|| corrupt("prev_hash is not 32 bytes"))?,
        hash: EventHash::from_slice(&hash).ok_or_else(|| corrupt("hash is not 32 bytes"))?,
    })
}

pub(crate) fn read_event(conn: &Connection, seq: Seq) -> Result<Option<StoredEvent>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_EVENT} WHERE seq = ?1"))?;
    let mut rows = stmt.query([seq.0 as i64])?;
    match rows.next()? {
        Some(r) => Ok(Some(row_to_event(r)?)),
        None => Ok(None),
    }
}

//! An event as the log stores it ([`StoredEvent`]) and the context a new
//! event is appended with ([`EventMeta`]). Kept apart from the ids in
//! `types.rs` because hashing a stored event needs the canonical encoding,
//! which itself is written in terms of those ids.

use crate::encoding;
use crate::types::{Actor, EventHash, Seq};

/// Everything about a new event that comes from the command's context
/// rather than from the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// Wall-clock time of the append, in microseconds since the Unix epoch.
    pub recorded_at_us: i64,
    /// The actor.
    pub actor: Actor,
    /// The command line that produced the event.
    pub argv: Vec<String>,
}

/// One event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the log.
    pub seq: Seq,
    /// Microseconds since the Unix epoch at append time.
    pub recorded_at_us: i64,
    /// Who appended it.
    pub actor: Actor,
    /// The command line.
    pub argv: Vec<String>,
    /// Event kind, e.g. `BankAdded`.
    pub kind: String,
    /// Schema version of the payload for this kind.
    pub version: u32,
    /// Canonical JSON payload bytes, exactly as stored and hashed.
    pub payload: Vec<u8>,
    /// Hash of the previous event ([`EventHash::ZERO`] for genesis).
    pub prev_hash: EventHash,
    /// Hash of this event.
    pub hash: EventHash,
}

impl StoredEvent {
    /// Recomputes this event's hash from its stored fields.
    pub fn compute_hash(&self) -> EventHash {
        encoding::event_hash(
            self.seq,
            self.recorded_at_us,
            &self.actor,
            &self.argv,
            &self.kind,
            self.version,
            &self.payload,
            &self.prev_hash,
        )
    }

    /// `recorded_at_us` in (fractional) seconds since the epoch.
    pub fn recorded_at_secs(&self) -> f64 {
        self.recorded_at_us as f64 / 1e6
    }
}

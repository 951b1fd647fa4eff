//! The auditor's checkpoint: one JSON line naming a seq, that event's hash
//! and the canonical state hash of the projections replayed to it.
//!
//! ```text
//! {"seq":120,"hash":"<64 hex>","state_hash":"<64 hex>","time":"2026-03-01T08:00:00.000000Z"}
//! ```
//!
//! Verifying it against a ledger checks that the event at `seq` still has
//! `hash` (so nothing at or before it was rewritten, reordered or dropped,
//! however consistently the chain was recomputed: the hash of event `seq`
//! commits to every event before it), that every link of `1..=seq` holds,
//! and that replaying `1..=seq` gives `state_hash`.

use std::fmt;

use fluxacct_core::{EventHash, Seq};
use ledger::Ledger;
use serde::{Deserialize, Serialize};

use crate::canonical::{state_hash, StateHash};
use crate::error::Error;
use crate::history::replay_to_memory_checked;
use crate::Result;

/// A checkpoint line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The seq it certifies (the head when it was taken).
    pub seq: u64,
    /// The hash of the event at `seq`.
    pub hash: EventHash,
    /// blake3 of the canonical state of the projections at `seq`, hex.
    pub state_hash: String,
    /// When the checkpoint was taken (RFC 3339 UTC).
    pub time: String,
}

impl Checkpoint {
    /// Parses one JSON line.
    pub fn parse(line: &str) -> Result<Checkpoint> {
        let cp: Checkpoint = serde_json::from_str(line.trim())
            .map_err(|e| Error::invalid(format!("not a checkpoint line ({e}): {}", line.trim())))?;
        if StateHash::parse(&cp.state_hash).is_none() {
            return Err(Error::invalid(format!("checkpoint state_hash is not 64 hex digits: {}", cp.state_hash)));
        }
        if cp.seq == 0 {
            return Err(Error::invalid("checkpoint seq must be at least 1"));
        }
        Ok(cp)
    }

    /// The JSON line (without a newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Takes a checkpoint of `ledger` at `at` (default: the head) by a pure
/// replay of the log, with `time` as its time stamp. Returns the checkpoint
/// and the replayed state (so that callers can store it as a projection
/// checkpoint).
pub fn take(ledger: &Ledger, at: Option<Seq>, time: String) -> Result<(Checkpoint, rusqlite::Connection)> {
    take_noted(ledger, at, time).map(|(cp, state, _)| (cp, state))
}

/// [`take`], also returning the events the replay skipped or carried
/// ([`projections::apply::Skipped`]), for the caller to report.
pub fn take_noted(
    ledger: &Ledger,
    at: Option<Seq>,
    time: String,
) -> Result<(Checkpoint, rusqlite::Connection, Vec<projections::apply::Skipped>)> {
    let seq = match at {
        Some(s) => s,
        None => ledger.head()?.map(|(s, _)| s).ok_or_else(|| Error::invalid("the ledger is empty"))?,
    };
    let ev = ledger.event(seq)?.ok_or_else(|| Error::invalid(format!("there is no event at seq {seq}")))?;
    let (state, skipped) = crate::history::replay_to_memory_noted(ledger, Some(seq), true)?;
    let h = state_hash(&state)?;
    Ok((Checkpoint { seq: seq.0, hash: ev.hash, state_hash: h.to_hex(), time }, state, skipped))
}

/// Why a ledger does not extend a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointFailure {
    /// The log no longer reaches the checkpoint's seq.
    Truncated {
        /// The checkpoint's seq.
        seq: u64,
        /// The ledger's head now (0: empty).
        head: u64,
    },
    /// The event at the checkpoint's seq has another hash: history at or
    /// before it was rewritten, reordered, or had events removed or
    /// inserted.
    Rewritten {
        /// The checkpoint's seq.
        seq: u64,
        /// Hash in the checkpoint.
        expected: EventHash,
        /// Hash in the ledger now.
        found: EventHash,
    },
    /// A link at or before the checkpoint is broken.
    ChainBroken {
        /// The checkpoint's seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Replaying to the checkpoint's seq gives another state.
    StateMismatch {
        /// The checkpoint's seq.
        seq: u64,
        /// State hash in the checkpoint.
        expected: String,
        /// State hash replayed now.
        found: String,
    },
}

impl fmt::Display for CheckpointFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointFailure::Truncated { seq, head } => write!(
                f,
                "log truncated: the checkpoint is at seq {seq} but the ledger ends at seq {head}"
            ),
            CheckpointFailure::Rewritten { seq, expected, found } => write!(
                f,
                "history rewritten or reordered at or before seq {seq}: the event at seq {seq} has hash {found}, \
                 the checkpoint says {expected}"
            ),
            CheckpointFailure::ChainBroken { seq, reason } => {
                write!(f, "chain broken before the checkpoint at seq {seq}: {reason}")
            }
            CheckpointFailure::StateMismatch { seq, expected, found } => write!(
                f,
                "state mismatch at seq {seq}: replaying the log gives state hash {found}, the checkpoint says {expected}"
            ),
        }
    }
}

/// Checks that `ledger` still extends `cp` and that replaying to it gives
/// its state hash. The chain after the checkpoint is not walked here (see
/// `ledger::verify_chain`). `Ok(Err(_))` names what failed.
pub fn verify(ledger: &Ledger, cp: &Checkpoint) -> Result<Result<(), CheckpointFailure>> {
    verify_inner(ledger, cp, true)
}

/// [`verify`] for a caller that has just walked the chain: when `walked`
/// found it intact up to the checkpoint's seq or beyond, the links are not
/// walked a second time (the replay and the hash comparisons still run).
/// Any other report is ignored and the links are walked as in [`verify`].
pub fn verify_after_walk(
    ledger: &Ledger,
    cp: &Checkpoint,
    walked: &ledger::VerifyReport,
) -> Result<Result<(), CheckpointFailure>> {
    let covered = walked.ok() && walked.head.is_some_and(|(head, _)| head.0 >= cp.seq);
    verify_inner(ledger, cp, !covered)
}

fn verify_inner(ledger: &Ledger, cp: &Checkpoint, walk: bool) -> Result<Result<(), CheckpointFailure>> {
    let seq = Seq(cp.seq);
    let head = ledger.head()?.map(|(s, _)| s.0).unwrap_or(0);
    let ev = match ledger.event(seq)? {
        Some(ev) => ev,
        None => return Ok(Err(CheckpointFailure::Truncated { seq: cp.seq, head })),
    };
    if ev.hash != cp.hash {
        return Ok(Err(CheckpointFailure::Rewritten { seq: cp.seq, expected: cp.hash, found: ev.hash }));
    }
    let state = match replay_to_memory_checked(ledger, Some(seq), walk) {
        Ok(s) => s,
        Err(Error::Invalid(reason)) => return Ok(Err(CheckpointFailure::ChainBroken { seq: cp.seq, reason })),
        Err(e) => return Err(e),
    };
    let found = state_hash(&state)?.to_hex();
    if !found.eq_ignore_ascii_case(&cp.state_hash) {
        return Ok(Err(CheckpointFailure::StateMismatch { seq: cp.seq, expected: cp.state_hash.clone(), found }));
    }
    Ok(Ok(()))
}

//! # fluxacct-replay
//!
//! Everything an auditor does with the log, built on the single apply path
//! of `fluxacct-projections`:
//!
//! * [`canonical`]: the canonical encoding of the projection state and its
//!   blake3 state hash (`docs/replay.md` specifies it byte for byte).
//! * [`compare`]: row-by-row differences between two sets of projection
//!   tables (`rebuild --check`, `diff`).
//! * [`history`]: replaying into memory, rebuilding the live projections in
//!   one transaction, stored projection checkpoints, and the state as of any
//!   seq ([`history::state_at`]).
//! * [`checkpoint`]: the auditor's checkpoint line and its verification.
//!
//! The log is always streamed ([`ledger::Ledger::stream_range`]); it is
//! never loaded whole.

#![forbid(unsafe_code)]

pub mod canonical;
pub mod checkpoint;
pub mod compare;
mod error;
pub mod history;

pub use canonical::{state_hash, StateHash};
pub use checkpoint::{Checkpoint, CheckpointFailure};
pub use compare::{cell_value, compare, jobs_added_after, RowDiff};
pub use error::Error;
pub use history::{rebuild_live, replay_to_memory, state_at, AsOf, RebuildStats};

/// Result alias for replay operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

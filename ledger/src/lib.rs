//! # fluxacct-ledger
//!
//! The append-only, hash-chained event log at the bottom of fluxacct.
//!
//! * `Seq`, `EventHash`, `Actor` and `StoredEvent` describe events and
//!   `encoding` holds the canonical byte encoding that is hashed with blake3
//!   (`docs/canonical-encoding.md` specifies it byte for byte). They live in
//!   the SQLite-free `fluxacct-core`; import them from there.
//! * [`Ledger`] stores the log in one SQLite file (WAL mode, `user_version`
//!   migrations, write-once triggers) and appends inside `BEGIN IMMEDIATE`
//!   transactions ([`Tx`]).
//!
//! The ledger knows nothing about what events mean: payloads are opaque
//! canonical-JSON bytes tagged with a kind and a schema version.

#![deny(unsafe_code)]

mod diagnose;
mod error;
#[allow(unsafe_code)]
mod ffi;
mod file;
pub mod follower;
pub mod integrity;
mod read;
pub mod runs;
mod store;
mod verify;

pub use diagnose::{describe_seq_ranges, name_unreadable_log, unreadable_event_ranges};
pub use error::Error;
pub use file::{OpenMode, APPLICATION_ID};
pub use store::{Appended, Checkpointer, EventRow, EventStream, Ledger, Tx, SCHEMA_VERSION};
pub use verify::{open_read_only, verify_chain, verify_chain_range, verify_chain_to, VerifyFailure, VerifyReport};

/// Result alias for ledger operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

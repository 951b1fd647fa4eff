//! # fluxacct-ledger
//!
//! The append-only, hash-chained event log at the bottom of fluxacct.
//!
//! * [`Seq`], [`EventHash`], [`Actor`] and [`StoredEvent`] describe events and
//!   compile without SQLite (the priority plugin uses them).
//! * [`encoding`] holds the canonical byte encoding that is hashed with
//!   blake3; `docs/canonical-encoding.md` specifies it byte for byte.
//! * With the default `sqlite` feature, [`Ledger`] stores the log in one
//!   SQLite file (WAL mode, `user_version` migrations, write-once triggers)
//!   and appends inside `BEGIN IMMEDIATE` transactions ([`Tx`]).
//!
//! The ledger knows nothing about what events mean: payloads are opaque
//! canonical-JSON bytes tagged with a kind and a schema version.

#[cfg(feature = "sqlite")]
mod diagnose;
pub mod encoding;
mod error;
#[cfg(feature = "sqlite")]
pub mod integrity;
#[cfg(feature = "sqlite")]
mod store;
mod types;
#[cfg(feature = "sqlite")]
mod verify;

pub use encoding::event_hash;
pub use error::Error;
#[cfg(feature = "sqlite")]
pub use store::{Appended, EventStream, Ledger, OpenMode, Tx, APPLICATION_ID, SCHEMA_VERSION};
pub use types::{Actor, EventHash, EventMeta, Seq, StoredEvent};
#[cfg(feature = "sqlite")]
pub use verify::{open_read_only, verify_chain, verify_chain_range, verify_chain_to, VerifyFailure, VerifyReport};

/// Result alias for ledger operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

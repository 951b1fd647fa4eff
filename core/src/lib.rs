//! # fluxacct-core
//!
//! Everything fluxacct knows that needs no database, shared by the SQLite
//! side (`ledger`, `projections`) and the priority plugin, which depends on
//! this crate alone and so never links SQLite:
//!
//! * [`Seq`], [`EventHash`], [`Actor`], [`EventMeta`], [`StoredEvent`]: an
//!   event as the log stores it, and [`encoding`], the canonical byte
//!   encoding that is hashed with blake3 (`docs/canonical-encoding.md`).
//! * [`events`]: the event catalogue (kinds, versions, canonical payloads,
//!   upcasting).
//! * [`fairshare`]: the weighted-tree fair-share algorithm.
//! * [`priority`]: the multi-factor priority formula.
//! * [`usage`]: the usage arithmetic (periods, half-life decay, job usage,
//!   config durations).
//! * [`limits`]: flux-accounting's `INTEGER_MAX` and an association's
//!   limits ([`limits::AssocLimits`]).
//! * [`queue`]: a queue's limits and their defaults.
//! * [`allocation`]: allocation units, charges in milli-units, the
//!   exhausted policy.
//! * [`snapshot`]: the compact MessagePack snapshot the plugin loads, and
//!   its codec.
//!
//! Nothing here reads the clock, the environment or randomness.

#![forbid(unsafe_code)]

pub mod allocation;
pub mod encoding;
mod error;
pub mod events;
pub mod fairshare;
pub mod job_state;
pub mod limits;
pub mod priority;
pub mod queue;
pub mod snapshot;
mod stored;
mod types;
pub mod usage;

/// Splits one of flux-accounting's comma lists (`queues`, `projects`),
/// trimming items and dropping empty ones.
pub fn split_list(s: &str) -> Vec<&str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect()
}

pub use encoding::event_hash;
pub use error::EventError;
pub use events::Event;
pub use stored::{EventMeta, StoredEvent};
pub use types::{Actor, EventHash, ParseHashError, Seq};

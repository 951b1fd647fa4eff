//! # fluxacct-projections
//!
//! Everything derived from the log:
//!
//! * [`events`]: the event catalogue (kinds, versions, canonical payloads,
//!   upcasting).
//! * [`schema`], [`apply`], [`model`], [`usage`] (SQLite feature): the
//!   projection tables, the single apply path that keeps them, and the read
//!   model that commands decide against.
//! * [`fairshare`]: the weighted-tree fair-share algorithm (pure).
//! * [`snapshot`]: the compact MessagePack snapshot the priority plugin
//!   loads (no SQLite needed to decode it).
//!
//! Projections depend only on the log: no wall clock, no randomness and no
//! hash-map iteration order.

mod error;
pub mod events;
pub mod fairshare;
pub mod snapshot;

#[cfg(feature = "sqlite")]
pub mod apply;
#[cfg(feature = "sqlite")]
pub mod model;
#[cfg(feature = "sqlite")]
pub mod schema;
#[cfg(feature = "sqlite")]
pub mod snapshot_build;
#[cfg(feature = "sqlite")]
pub mod usage;
#[cfg(feature = "sqlite")]
mod write;

pub use error::Error;
pub use events::Event;
#[cfg(feature = "sqlite")]
pub use write::{append_and_apply, append_and_apply_encoded, apply_stored, replay, scratch, Encoded, Writer};

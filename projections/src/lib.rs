//! # fluxacct-projections
//!
//! The SQLite side of everything derived from the log:
//!
//! * [`schema`], [`apply`], [`ctx`], [`model`], [`usage`]: the projection tables, the
//!   single apply path that keeps them, and the read model that commands
//!   decide against.
//! * [`snapshot_build`]: the plugin snapshot built from the tables.
//!
//! What needs no database (the event catalogue, the fair-share algorithm,
//! the plugin snapshot format) lives in `fluxacct-core`; import it from there.
//!
//! Projections depend only on the log: no wall clock, no randomness and no
//! hash-map iteration order.

#![forbid(unsafe_code)]

mod error;

pub mod allocation;
pub mod apply;
pub mod ctx;
pub mod model;
pub mod repair;
pub mod schema;
pub mod seal;
pub mod snapshot_build;
pub mod usage;
mod write;

pub use error::Error;
pub use write::{append_and_apply, append_and_apply_encoded, apply_stored, replay, scratch, Encoded, Writer};

//! # fluxacct-projections
//!
//! The SQLite side of everything derived from the log:
//!
//! * [`schema`], [`apply`], [`model`], [`usage`]: the projection tables, the
//!   single apply path that keeps them, and the read model that commands
//!   decide against.
//! * [`snapshot_build`]: the plugin snapshot built from the tables.
//!
//! What needs no database lives in `fluxacct-core` and is re-exported here
//! under its old paths: [`events`] (the event catalogue), [`fairshare`] (the
//! weighted-tree algorithm) and [`snapshot`] (the plugin snapshot format).
//!
//! Projections depend only on the log: no wall clock, no randomness and no
//! hash-map iteration order.

#![forbid(unsafe_code)]

mod error;

pub mod apply;
pub mod model;
pub mod repair;
pub mod schema;
pub mod snapshot_build;
pub mod usage;
mod write;

pub use error::Error;
pub use fluxacct_core::{events, fairshare, queue, snapshot, Event, EventError};
pub use write::{append_and_apply, append_and_apply_encoded, apply_stored, replay, scratch, Encoded, Writer};

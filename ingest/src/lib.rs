//! # fluxacct-ingest
//!
//! Job records, from wherever they come to the ledger:
//!
//! * [`record`]: the record model and the ingest rules (docs/ingest.md): a
//!   job object is parsed into [`record::JobInput`], which borrows from its
//!   text, and checked into a `JobRecorded` with its `R` in canonical text;
//!   FLUID job id forms. [`counts`]: idsets and the resource counts of an
//!   `R`. `canon`: the fast canonicaliser of `R` (the tree path in
//!   [`record::canonical_r_tree`] is its general twin).
//! * [`source`]: one module per source (JSON lines and `{"jobs": [...]}`
//!   documents, job-archive copies, the live job-list through
//!   `fluxacct-flux`), each producing batches of checked [`source::Item`]s.
//! * [`write`]: the writing pipeline: each batch decided against the
//!   ledger and appended in one transaction, WAL checkpoints on their own
//!   thread, and the [`write::Summary`] counts.
//!
//! The crate does no terminal I/O and reads no environment variables: the
//! caller passes the event metadata, the ingest time, a progress callback
//! and the Flux environment.

#![forbid(unsafe_code)]

#[doc(hidden)] // The fast path of `record::canonical_r`, public for its proptest.
pub mod canon;
pub mod counts;
mod error;
pub mod record;
pub mod source;
pub mod write;

pub use error::{Error, Result};

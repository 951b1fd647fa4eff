//! # fluxacct-commands
//!
//! The `flux-account` command line as a library: every subcommand is a
//! module in [`cmd`] with its `Args`, its `cmd_*` function and, for write
//! commands, a pure `decide(state, args) -> Result<Vec<Event>>`. A write
//! command validates, appends its events and updates the projections in
//! one `BEGIN IMMEDIATE` transaction; a rejected command writes nothing.
//!
//! The library does no terminal I/O and reads no environment variables:
//! [`Context`] carries the clock, the actor, the command line, the passwd
//! lookups and the progress sink; commands return an [`Output`].
//!
//! A command file names no other command file: what several commands
//! share lives beside [`cmd`] ([`snapshot`], [`usage_view`], [`assoc_edit`],
//! [`bank_tree`], [`names`], [`admin`], [`format`](mod@format), [`demo_site`],
//! [`centre_view`]), and
//! moving a site from and to flux-accounting lives in [`migrate`].

#![forbid(unsafe_code)]

pub mod admin;
pub mod allocation_view;
pub mod assoc_edit;
pub mod bank_tree;
pub mod centre_view;
pub mod chain;
pub mod checkpoint_hook;
pub mod cli;
pub mod cli_parse;
pub mod cmd;
pub mod context;
pub mod db;
pub mod demo_site;
mod error;
pub mod follow;
pub mod format;
pub mod litter;
pub mod migrate;
pub mod names;
pub mod pipeline_runs;
pub mod service;
pub mod snapshot;
#[cfg(test)]
pub mod testing;
pub mod time;
pub mod usage_view;
pub mod validate;

pub use context::{Clock, Context, NoProcesses, NoProgress, NoUsers, Output, Processes, Progress, Users};
pub use error::{Error, Result};

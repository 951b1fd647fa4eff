//! The `flux-account` command line: one clap definition from which help,
//! the man page and completions are generated.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::context::{Context, Output};
use crate::error::Result;

/// Default ledger path (as flux-accounting's).
pub const DEFAULT_DB: &str = "/var/lib/flux/FluxAccounting.db";

/// fluxacct: an auditable accounting ledger for Flux. Banks, associations,
/// queues, projects and limits; job usage with half-life decay; fair-share;
/// and a snapshot for the mf_priority.so priority plugin. Every change is an
/// event in a hash-chained, append-only log.
#[derive(Debug, Parser)]
#[command(name = "flux-account", version, max_term_width = 100)]
pub struct Cli {
    /// Path of the ledger (a SQLite file).
    #[arg(short = 'p', long = "path", global = true, default_value = DEFAULT_DB, value_name = "DB")]
    pub path: PathBuf,
    /// Run a read-only command on the state as it stood after this seq, or
    /// at this time (epoch seconds or a date).
    #[arg(long = "as-of", global = true, value_name = "SEQ|TIME")]
    pub as_of: Option<String>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the ledger and write its genesis event.
    CreateDb(cmd::create_db::Args),
    /// Add a bank (or reactivate a disabled one).
    AddBank(cmd::add_bank::Args),
    /// Show a bank, its users, or its subtree.
    ViewBank(cmd::view_bank::Args),
    /// Add a user to a bank (or reactivate a disabled association).
    AddUser(cmd::add_user::Args),
    /// List the ledger's events.
    Log(cmd::log::Args),
    /// Verify the hash chain.
    Verify(cmd::verify::Args),
}

impl Command {
    /// Whether the command appends to the ledger (and so refuses `--as-of`).
    pub fn is_write(&self) -> bool {
        matches!(self, Command::CreateDb(_) | Command::AddBank(_) | Command::AddUser(_))
    }
}

/// Runs a parsed command line.
pub fn run(ctx: &Context, command: &Command) -> Result<Output> {
    if ctx.as_of.is_some() && command.is_write() {
        return Err(crate::error::Error::invalid("--as-of cannot be used with commands that change the ledger"));
    }
    match command {
        Command::CreateDb(a) => cmd::create_db::cmd_create_db(ctx, a),
        Command::AddBank(a) => cmd::add_bank::cmd_add_bank(ctx, a),
        Command::ViewBank(a) => cmd::view_bank::cmd_view_bank(ctx, a),
        Command::AddUser(a) => cmd::add_user::cmd_add_user(ctx, a),
        Command::Log(a) => cmd::log::cmd_log(ctx, a),
        Command::Verify(a) => cmd::verify::cmd_verify(ctx, a),
    }
}

/// Maps an alias executable name (`flux-account-update-usage`) to the
/// subcommand it stands for (`update-usage`).
pub fn alias_subcommand(argv0: &str) -> Option<String> {
    let base = std::path::Path::new(argv0).file_name()?.to_str()?;
    let sub = base.strip_prefix("flux-account-")?;
    Some(sub.to_string())
}

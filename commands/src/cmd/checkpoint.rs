//! `checkpoint`: print an auditor's checkpoint line.

use ledger::{Ledger, OpenMode};

use crate::context::{Context, Output};
use crate::db::{as_of_seq, replay_err};
use crate::error::Result;

/// Print one JSON line an auditor keeps outside the box: the head seq and
/// hash, the blake3 hash of the canonical state of all projections replayed
/// to that seq (docs/replay.md), and the time. `verify --checkpoint LINE`
/// later checks that the log still extends it. With `--as-of`, the
/// checkpoint is taken at that point instead of the head. Also stores a
/// projection checkpoint at that seq (used to speed up --as-of) unless
/// `--no-store` is given or the file is read-only. Storing is a write:
/// anyone but the ledger's owner (or root) is refused in the same one line
/// as every other write, before anything is printed, unless `--no-store`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Do not store a projection checkpoint in the ledger file.
    #[arg(long = "no-store")]
    pub no_store: bool,
}

/// Runs `checkpoint`.
pub fn cmd_checkpoint(ctx: &Context, args: &Args) -> Result<Output> {
    if !args.no_store {
        crate::db::check_owner(ctx)?;
    }
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    let at = as_of_seq(ctx, &ledger)?;
    let time = crate::time::json_time(ctx.clock.now_us());
    let (cp, state, skipped) = replay::checkpoint::take_noted(&ledger, at, time).map_err(replay_err)?;
    crate::db::report_skipped(ctx, &skipped);
    drop(ledger);
    let mut out = Output::line(cp.to_line());
    if !args.no_store {
        let stored = Ledger::open(&ctx.db_path, OpenMode::ReadWrite).map_err(crate::Error::from);
        let stored = stored.and_then(|l| {
            replay::history::save_checkpoint(l.conn(), &state, fluxacct_core::Seq(cp.seq), cp.hash).map_err(replay_err)
        });
        if let Err(e) = stored {
            out.notes.push(format!("flux-account: warning: projection checkpoint not stored: {e}"));
        }
    }
    Ok(out)
}

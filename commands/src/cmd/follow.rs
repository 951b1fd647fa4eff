//! `follow`: record jobs as they end, from the job-manager's journal.

use std::sync::atomic::AtomicBool;

use crate::context::{Context, Output};
use crate::error::Result;
use crate::follow::{follow, Options};

/// Record finished jobs as they end, with their usage, fair-share and the
/// plugin's factors, seconds after each job (docs/follower.md).
///
/// Holds the job-manager's journal (`job-manager.events-journal`) and
/// records every job that reaches `clean` exactly as `fetch-job-records`
/// records it (same rules, `JobRejected` for bad records, jobs already in
/// the ledger skipped), in small batches. Each batch updates the usage of
/// its jobs' associations; fair-share is recomputed at most once per
/// second when usage changed, and when it changed the plugin snapshot is
/// written and mf_priority.so told to load it. At start and after a lost
/// connection the whole backlog is read again and what the ledger has is
/// skipped. The hourly cron chain stays valid beside it.
///
/// Runs until killed; `--once` stops once the backlog is recorded.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Record the jobs that ended so far (up to the journal's backlog
    /// sentinel) and exit.
    #[arg(long)]
    pub once: bool,
    /// Print one line per batch on stderr: jobs recorded, rejected, lag.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Where to write the plugin snapshot (default: `<db>.snapshot`).
    #[arg(long)]
    pub snapshot: Option<std::path::PathBuf>,
    /// Write the snapshot but do not tell mf_priority.so to load it.
    #[arg(long = "no-plugin")]
    pub no_plugin: bool,
}

/// The follower's options from the command line.
pub fn options(ctx: &Context, args: &Args) -> Options {
    let mut o = Options::new(&ctx.db_path);
    o.once = args.once;
    o.verbose = args.verbose;
    if let Some(s) = &args.snapshot {
        o.snapshot = s.clone();
    }
    o.notify_plugin = !args.no_plugin;
    o
}

/// Runs `follow` (until killed, or with `--once` until caught up).
pub fn cmd_follow(ctx: &Context, args: &Args) -> Result<Output> {
    let stop = AtomicBool::new(false);
    let totals = follow(ctx, &options(ctx, args), &stop)?;
    Ok(Output::line(totals.line()))
}

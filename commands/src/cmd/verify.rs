//! `verify`: walk the hash chain and check the file.

use std::fmt::Write as _;
use std::path::Path;

use fluxacct_core::Seq;
use ledger::integrity::{self, ChainState};
use ledger::{Ledger, OpenMode};

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Verify the ledger: every event's hash, every link and that no seq is
/// missing (breaks accepted by `repair --accept-break` are reported as
/// accepted); with `--file`, also SQLite's `quick_check` of the file (every
/// page and b-tree readable and well formed), run beside the walk. Prints
/// the head seq and hash when intact; otherwise the first bad seq or the
/// damaged table or index, and exits non-zero. Run by the ledger's owner,
/// it records what it found: while a break is recorded, every write is
/// refused.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also check that the log still extends this checkpoint (a JSON line
    /// printed by `checkpoint`, or a file holding one).
    #[arg(long)]
    pub checkpoint: Option<String>,
    /// Also check the file with SQLite's `quick_check` (run it daily from
    /// cron: it reads every page; see docs/integrity.md).
    #[arg(long)]
    pub file: bool,
    /// Check the file with SQLite's full `integrity_check`, which also
    /// compares every index with its table (implies --file; weekly).
    #[arg(long)]
    pub full: bool,
}

/// Records what a walk found in the ledger's bookkeeping when the caller
/// owns the file; others (root included, whose `-wal`/`-shm` files the
/// owner could not use) only read.
fn record(path: &Path, failure: Option<&ledger::VerifyFailure>, head: Option<Seq>) {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(path).map(|m| m.uid()).ok();
    if owner != Some(nix::unistd::geteuid().as_raw()) {
        return;
    }
    let Ok(l) = Ledger::open(path, OpenMode::ReadWrite) else { return };
    let _ = match failure {
        Some(f) => integrity::record_broken(l.conn(), f),
        None => integrity::record_verified(l.conn(), head.unwrap_or(Seq(0))),
    };
}

/// Runs `verify`.
pub fn cmd_verify(ctx: &Context, args: &Args) -> Result<Output> {
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    let state: ChainState = integrity::chain_state(ledger.conn())?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // The chain walk and SQLite's check of the file side by side.
    let (path, full) = (ctx.db_path.as_path(), args.full);
    let check_file = args.file || args.full;
    // The chain walk and, with --file, SQLite's check of the file side by side.
    let (walk, file) = std::thread::scope(|s| {
        let file = check_file.then(|| s.spawn(move || integrity::file_check(path, full)));
        let walk = integrity::walk(&ledger, threads, Seq(1), &state.accepted);
        (walk, file.map(|h| h.join()))
    });
    let walk = walk?;
    let file = match file {
        Some(joined) => Some(joined.map_err(|_| Error::invalid("the file check panicked"))??),
        None => None,
    };
    let file_checked = file.is_some();
    let file = file.unwrap_or_default();
    drop(ledger);
    let report = &walk.report;
    record(&ctx.db_path, report.failure.as_ref(), report.head.map(|h| h.0));
    let check = if args.full { "integrity_check" } else { "quick_check" };
    let mut out = String::new();
    match (&report.failure, report.head) {
        (Some(f), _) => {
            let _ = writeln!(out, "FAILED at seq {}: {}", f.seq, f.reason);
        }
        (None, Some((seq, hash))) => {
            let _ = writeln!(out, "ok: {} events, head seq {} hash {}", report.events, seq, hash);
        }
        (None, None) => out.push_str("ok: empty ledger\n"),
    }
    for a in &walk.accepted {
        let _ = writeln!(out, "accepted break at seq {} (BreakAccepted at seq {}): {}", a.seq, a.by, a.reason);
    }
    for p in &file {
        let _ = writeln!(out, "file damaged ({check}): {p}");
    }
    if file_checked && file.is_empty() {
        let _ = writeln!(out, "file: ok ({check})");
    }
    if let Some(f) = &report.failure {
        return Err(Error::CheckFailed {
            message: format!("chain broken at seq {}: {}", f.seq, f.reason),
            report: out,
        });
    }
    if let Some(first) = file.first() {
        let more = if file.len() > 1 { format!(" (and {} more problems)", file.len() - 1) } else { String::new() };
        return Err(Error::CheckFailed {
            message: format!("the ledger file is damaged: {first}{more}; run `flux-account rebuild` to repair indexes and projections"),
            report: out,
        });
    }
    if let Some(cp) = &args.checkpoint {
        out.push_str(&crate::checkpoint_hook::verify_checkpoint(ctx, cp, report)?);
    }
    Ok(Output::text(out))
}

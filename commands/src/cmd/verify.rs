//! `verify`: walk the hash chain.

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Verify the ledger's hash chain: every event's hash, every link, and that
/// no seq is missing. Prints the head seq and hash when intact; otherwise
/// the first bad seq, and exits non-zero.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also check that the log still extends this checkpoint (a JSON line
    /// printed by `checkpoint`, or a file holding one).
    #[arg(long)]
    pub checkpoint: Option<String>,
}

/// Runs `verify`.
pub fn cmd_verify(ctx: &Context, args: &Args) -> Result<Output> {
    // Opening checks the file is a ledger; the walk uses its own connections.
    let ledger = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadOnly)?;
    drop(ledger);
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let report = ledger::verify_chain(&ctx.db_path, threads)?;
    if let Some(f) = &report.failure {
        return Err(Error::CheckFailed {
            message: format!("chain broken at seq {}: {}", f.seq, f.reason),
            report: format!("FAILED at seq {}: {}\n", f.seq, f.reason),
        });
    }
    let mut out = match report.head {
        Some((seq, hash)) => format!("ok: {} events, head seq {} hash {}\n", report.events, seq, hash),
        None => "ok: empty ledger\n".to_string(),
    };
    if let Some(cp) = &args.checkpoint {
        out.push_str(&crate::checkpoint_hook::verify_checkpoint(ctx, cp, &report)?);
    }
    Ok(Output::text(out))
}

//! Checkpoint verification used by `verify --checkpoint`.

use std::fmt::Write as _;

use ledger::{Ledger, OpenMode};
use replay::Checkpoint;

use crate::context::Context;
use crate::db::replay_err;
use crate::error::{Error, Result};

/// The checkpoint lines named by `--checkpoint`: the argument itself when it
/// is a JSON object, otherwise every non-empty line of the file it names.
pub fn checkpoint_lines(arg: &str) -> Result<Vec<String>> {
    let t = arg.trim();
    if t.starts_with('{') {
        return Ok(vec![t.to_string()]);
    }
    let text =
        std::fs::read_to_string(t).map_err(|e| Error::invalid(format!("cannot read checkpoint file {t}: {e}")))?;
    let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if lines.is_empty() {
        return Err(Error::invalid(format!("checkpoint file {t} holds no checkpoint line")));
    }
    Ok(lines)
}

/// Verifies a checkpoint line, or every line of a checkpoint file, against
/// the ledger: the event at the checkpoint's seq still has its hash, every
/// link up to it holds, and replaying to it gives its state hash. `walked`
/// is the report of the chain walk `verify` has just made: links it found
/// intact are not walked again. Fails with [`Error::CheckFailed`] naming
/// what failed.
pub fn verify_checkpoint(ctx: &Context, cp: &str, walked: &ledger::VerifyReport) -> Result<String> {
    let lines = checkpoint_lines(cp)?;
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    let mut report = String::new();
    let mut first_failure: Option<String> = None;
    for line in &lines {
        let cp = Checkpoint::parse(line).map_err(replay_err)?;
        match replay::checkpoint::verify_after_walk(&ledger, &cp, walked).map_err(replay_err)? {
            Ok(()) => {
                let _ = writeln!(
                    report,
                    "checkpoint seq {} ok: the log extends it and replay gives state hash {}",
                    cp.seq, cp.state_hash
                );
            }
            Err(f) => {
                let _ = writeln!(report, "checkpoint seq {} FAILED: {f}", cp.seq);
                first_failure.get_or_insert_with(|| f.to_string());
            }
        }
    }
    match first_failure {
        None => Ok(report),
        Some(message) => Err(Error::CheckFailed { message: format!("checkpoint: {message}"), report }),
    }
}

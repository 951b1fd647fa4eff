//! The pipeline stages' last runs, in the ledger's bookkeeping
//! (`ledger::runs`): each of `fetch-job-records`, `update-usage`,
//! `update-fshare` and `priority-update` records, after it finished, when
//! it last succeeded or failed (and why), for `metrics`. The write happens
//! after the command's own transaction, so a failed command's log and
//! projections stay as they were; only the bookkeeping table changes.

use crate::context::Context;
use crate::error::Error;

/// Records how a run of `stage` ended. Best effort: nothing is recorded
/// when the caller may not write the ledger (not its owner), when the
/// file is missing or is not a ledger, or when the bookkeeping write
/// fails; the command's own outcome stands either way.
pub fn record<T>(ctx: &Context, stage: &str, outcome: &Result<T, Error>) {
    if !ctx.db_path.exists() || crate::db::check_owner(ctx).is_err() {
        return;
    }
    let Ok(ledger) = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadWrite) else { return };
    let conn = ledger.conn();
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let now_us = ctx.clock.now_us();
    let _ = match outcome {
        Ok(_) => ledger::runs::record_ok(conn, stage, now_us),
        Err(e) => ledger::runs::record_error(conn, stage, now_us, &one_line(&e.to_string())),
    };
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

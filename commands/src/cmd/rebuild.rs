//! `rebuild`: rebuild every projection from the log, or check them.

use std::fmt::Write as _;

use fluxacct_core::Seq;
use ledger::{Ledger, OpenMode};
use replay::RowDiff;

use crate::context::{Context, Output};
use crate::db::replay_err;
use crate::error::{Error, Result};

/// Rebuild every projection (banks, associations, queues, projects, factors,
/// config, usage and fair-share; job records are read from the log itself
/// through the `jobs` view) from the log, in one transaction, and
/// rewrite the plugin snapshot when `<db>.snapshot` exists. With `--check`,
/// change nothing: replay the log into memory, compare it with the live
/// tables, list every difference (table, key, column, live value, replayed
/// value) and exit 1 when there is any.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Compare only; list differences and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
    /// Store a projection checkpoint (used by --as-of) about every N events:
    /// after the first usage update at least N events after the previous
    /// one, or after 2N events without one; 0 stores none.
    #[arg(long, value_name = "N", default_value_t = replay::history::DEFAULT_CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
}

fn check(ctx: &Context) -> Result<Output> {
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    if projections::schema::stored_version(ledger.conn())?.is_none() {
        return Err(Error::invalid("the ledger has no projection tables; run rebuild"));
    }
    // One read transaction: the log and the live tables seen at one instant.
    ledger.conn().execute_batch("BEGIN")?;
    let result = (|| -> Result<(Seq, Vec<RowDiff>, Vec<String>)> {
        let head = ledger.head()?.map(|(s, _)| s).unwrap_or(Seq(0));
        let (replayed, skipped) =
            replay::history::replay_to_memory_noted(&ledger, Some(head), false).map_err(replay_err)?;
        crate::db::report_skipped(ctx, &skipped);
        let mut diffs = Vec::new();
        let mut unreadable = Vec::new();
        // Table by table: a live table that cannot be read is a difference.
        for t in replay::canonical::state_tables() {
            match replay::compare(ledger.conn(), &replayed, &[t]) {
                Ok(d) => diffs.extend(d),
                Err(e) => unreadable.push(format!("{t}: live table unreadable: {e}")),
            }
        }
        let expected = projections::schema::job_index_of_log(ledger.conn(), head.0 as i64);
        match expected.and_then(|rows| projections::repair::job_index_diffs(ledger.conn(), head.0 as i64, &rows)) {
            Ok(d) => unreadable.extend(d.iter().map(ToString::to_string)),
            Err(e) => unreadable.push(format!("job_times, job_ids: live table unreadable: {e}")),
        }
        Ok((head, diffs, unreadable))
    })();
    let _ = ledger.conn().execute_batch("COMMIT");
    let (head, diffs, unreadable) = result?;
    if diffs.is_empty() && unreadable.is_empty() {
        return Ok(Output::line(format!("ok: the projections match a replay of the log to seq {head}")));
    }
    let mut report = crate::format::render_check(&diffs);
    for u in &unreadable {
        let _ = writeln!(report, "{u}");
    }
    let n = report.lines().count();
    Err(Error::CheckFailed {
        message: format!("rebuild --check: {n} difference(s) between the live projections and a replay of the log"),
        report,
    })
}

/// Runs `rebuild`.
pub fn cmd_rebuild(ctx: &Context, args: &Args) -> Result<Output> {
    if args.check {
        return check(ctx);
    }
    crate::db::check_owner(ctx)?;
    // Opening refuses what is not a ledger before anything is changed.
    drop(Ledger::open(&ctx.db_path, OpenMode::ReadWrite)?);
    let mut out = String::new();
    let damage = ledger::integrity::file_check(&ctx.db_path, false)?;
    if !damage.is_empty() {
        projections::repair::forget_derived_and_vacuum(&ctx.db_path).map_err(|e| {
            Error::invalid(format!(
                "cannot repair the damaged file ({}): {e}; restore the ledger from a copy",
                damage.join("; ")
            ))
        })?;
        for d in &damage {
            let _ = writeln!(out, "repaired damaged file structure: {d}");
        }
    }
    let mut ledger = Ledger::open(&ctx.db_path, OpenMode::ReadWrite)?;
    let total = ledger.head()?.map(|(s, _)| s.0).unwrap_or(0);
    // `job_times` and `job_ids` are kept with the log (re-binning and the
    // duplicate checks read them): compared with the log first, and
    // rewritten when they differ.
    if let Some(fixed) = projections::repair::repair_job_index(ledger.conn(), total as i64)? {
        let _ = writeln!(
            out,
            "repaired {}: {} difference(s) from the log; rewrote {} rows each",
            fixed.tables.join(", "),
            fixed.differences,
            fixed.rows
        );
    }
    ctx.progress.start("rebuild", Some(total));
    let mut done = 0u64;
    let stats = replay::rebuild_live(&mut ledger, args.checkpoint_every, &mut |n| {
        ctx.progress.inc(n.saturating_sub(done));
        done = n;
    })
    .map_err(replay_err)?;
    ctx.progress.finish();
    crate::db::report_skipped(ctx, &stats.skipped);
    let indexes = projections::repair::reindex_all(ledger.conn())?;
    drop(ledger);
    let left = ledger::integrity::file_check(&ctx.db_path, false)?;
    if let Some(first) = left.first() {
        return Err(Error::invalid(format!(
            "the ledger file is still damaged after the rebuild ({first}): the log itself is damaged; restore it from a copy"
        )));
    }
    let _ = writeln!(
        out,
        "rebuilt the projections from {} events ({} projection checkpoints)",
        stats.events, stats.checkpoints
    );
    let _ = writeln!(out, "reindexed {} indexes: {}", indexes.len(), indexes.join(", "));
    out.push_str(&crate::snapshot::rewrite_if_present(ctx)?);
    Ok(Output::text(out))
}

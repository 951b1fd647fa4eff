//! `rebuild`: rebuild every projection from the log, or check them.

use std::fmt::Write as _;

use ledger::{Ledger, OpenMode, Seq};
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

/// Renders differences between live (side A) and replayed (side B) tables,
/// one line each.
pub fn render_check(diffs: &[RowDiff]) -> String {
    let mut out = String::new();
    for d in diffs {
        let head = format!("{} [{}]", d.table(), d.key_text());
        match d {
            RowDiff::Changed { columns, .. } => {
                for (c, live, replayed) in columns {
                    let _ = writeln!(
                        out,
                        "{head}: {c}: live {}, replayed {}",
                        replay::canonical::show_value(live),
                        replay::canonical::show_value(replayed)
                    );
                }
            }
            RowDiff::Removed { row, .. } => {
                let _ = writeln!(out, "{head}: row in live only (not produced by the log): {}", row_text(row));
            }
            RowDiff::Added { row, .. } => {
                let _ = writeln!(out, "{head}: row missing from live (produced by the log): {}", row_text(row));
            }
        }
    }
    out
}

/// `col=value, ...` for a whole row.
pub fn row_text(row: &[(String, rusqlite::types::Value)]) -> String {
    row.iter().map(|(c, v)| format!("{c}={}", replay::canonical::show_value(v))).collect::<Vec<_>>().join(", ")
}

fn check(ctx: &Context) -> Result<Output> {
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    if projections::schema::stored_version(ledger.conn())?.is_none() {
        return Err(Error::invalid("the ledger has no projection tables; run rebuild"));
    }
    // One read transaction: the log and the live tables seen at one instant.
    ledger.conn().execute_batch("BEGIN")?;
    let result = (|| -> Result<(Seq, Vec<RowDiff>)> {
        let head = ledger.head()?.map(|(s, _)| s).unwrap_or(Seq(0));
        let replayed = replay::replay_to_memory(&ledger, Some(head)).map_err(replay_err)?;
        let tables = replay::canonical::state_tables();
        let diffs = replay::compare(ledger.conn(), &replayed, &tables).map_err(replay_err)?;
        Ok((head, diffs))
    })();
    let _ = ledger.conn().execute_batch("COMMIT");
    let (head, diffs) = result?;
    if diffs.is_empty() {
        return Ok(Output::line(format!("ok: the projections match a replay of the log to seq {head}")));
    }
    let report = render_check(&diffs);
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
    let mut ledger = Ledger::open(&ctx.db_path, OpenMode::ReadWrite)?;
    let total = ledger.head()?.map(|(s, _)| s.0).unwrap_or(0);
    ctx.progress.start("rebuild", Some(total));
    let mut done = 0u64;
    let stats = replay::rebuild_live(&mut ledger, args.checkpoint_every, &mut |n| {
        ctx.progress.inc(n.saturating_sub(done));
        done = n;
    })
    .map_err(replay_err)?;
    ctx.progress.finish();
    drop(ledger);
    let mut out = format!(
        "rebuilt the projections from {} events ({} projection checkpoints)\n",
        stats.events, stats.checkpoints
    );
    out.push_str(&rewrite_snapshot_if_present(ctx)?);
    Ok(Output::text(out))
}

/// Rewrites the plugin snapshot from the rebuilt projections when the
/// default snapshot file (`<db>.snapshot`) exists. Returns a report line.
pub fn rewrite_snapshot_if_present(ctx: &Context) -> Result<String> {
    let path = crate::cmd::priority_update::default_snapshot_path(&ctx.db_path);
    if !path.exists() {
        return Ok(String::new());
    }
    let head = crate::cmd::priority_update::write_snapshot(ctx, &path)?;
    Ok(format!("rewrote the plugin snapshot {} (seq {})\n", path.display(), head.seq))
}

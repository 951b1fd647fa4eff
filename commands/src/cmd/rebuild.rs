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
///
/// On a damaged file (`file_check` finds problems) nothing is changed in
/// place: when a damaged object is not derived from the log (the log
/// itself, its bookkeeping), it refuses, naming the object and the seqs it
/// cannot read; else the structure repair (forget every derived object,
/// `VACUUM`) and the rebuild run on a copy made with SQLite's backup API,
/// the copy is checked, and only a sound copy is written back over the
/// ledger (backup API again). A failure leaves the ledger as it was.
pub fn cmd_rebuild(ctx: &Context, args: &Args) -> Result<Output> {
    if args.check {
        return check(ctx);
    }
    crate::db::check_owner(ctx)?;
    // Opening refuses what is not a ledger before anything is changed.
    drop(Ledger::open(&ctx.db_path, OpenMode::ReadWrite)?);
    let mut out = String::new();
    let damage = ledger::integrity::file_check(&ctx.db_path, false)?;
    let (stats, indexes) = if damage.is_empty() {
        rebuild_file(ctx, &ctx.db_path, args, &mut out)?
    } else {
        refuse_underived(ctx, &damage)?;
        let r = repair_on_copy(ctx, args, &damage, &mut out)?;
        for d in &damage {
            let _ = writeln!(out, "repaired damaged file structure: {d}");
        }
        r
    };
    let _ = writeln!(
        out,
        "rebuilt the projections from {} events ({} projection checkpoints)",
        stats.events, stats.checkpoints
    );
    let _ = writeln!(out, "reindexed {} indexes: {}", indexes.len(), indexes.join(", "));
    out.push_str(&crate::snapshot::rewrite_if_present(ctx)?);
    Ok(Output::text(out))
}

/// Refuses, before anything is changed, when a damaged object is not
/// derived from the log: no rebuild can recreate it.
fn refuse_underived(ctx: &Context, damage: &[String]) -> Result<()> {
    let conn = ledger::open_read_only(&ctx.db_path)?;
    for d in damage {
        if let Some((name, false)) = projections::repair::damaged_object(&conn, d) {
            let seqs = if name == "events" {
                let ranges = ledger::unreadable_event_ranges(&conn);
                if ranges.is_empty() {
                    String::new()
                } else {
                    format!(" ({} cannot be read)", ledger::describe_seq_ranges(&ranges))
                }
            } else {
                String::new()
            };
            return Err(Error::invalid(format!(
                "cannot rebuild: table {name}, which the log is or the ledger keeps, is damaged{seqs} ({d}); \
                 nothing was changed; restore the ledger from a copy"
            )));
        }
    }
    Ok(())
}

/// The structure repair and the rebuild on a copy of the ledger, written
/// back over it only when the copy is sound.
fn repair_on_copy(
    ctx: &Context,
    args: &Args,
    damage: &[String],
    out: &mut String,
) -> Result<(replay::RebuildStats, Vec<String>)> {
    use rusqlite::{Connection, OpenFlags};
    let path = &ctx.db_path;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.rebuild-"))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io_msg(format!("{}: {e}", dir.display())))?;
    let copy = tmp.path().to_path_buf();
    let remove_sidecars = || {
        for ext in ["-wal", "-shm", "-journal"] {
            let mut p = copy.clone().into_os_string();
            p.push(ext);
            let _ = std::fs::remove_file(p);
        }
    };
    let cannot = |e: String| {
        Error::invalid(format!(
            "cannot repair the damaged file ({}): {e}; nothing was changed; restore the ledger from a copy",
            damage.join("; ")
        ))
    };
    let result = (|| -> Result<(replay::RebuildStats, Vec<String>, Option<Head>)> {
        let src = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let head = read_head(&src);
        {
            let mut dst = Connection::open(&copy)?;
            copy_all(&src, &mut dst)?;
        }
        drop(src);
        projections::repair::forget_derived_and_vacuum(&copy).map_err(|e| cannot(e.to_string()))?;
        let (stats, indexes) = rebuild_file(ctx, &copy, args, out).map_err(|e| cannot(e.to_string()))?;
        Ok((stats, indexes, head))
    })();
    let (stats, indexes, head) = match result {
        Ok(r) => r,
        Err(e) => {
            remove_sidecars();
            return Err(e);
        }
    };
    // Written back only if nobody appended since the copy was taken.
    let restored = (|| -> Result<()> {
        let src = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut dst = Connection::open(path)?;
        dst.busy_timeout(std::time::Duration::from_secs(60))?;
        if read_head(&dst) != head {
            return Err(Error::invalid(
                "the ledger changed while it was being repaired; nothing was changed; run rebuild again",
            ));
        }
        copy_all(&src, &mut dst)
    })();
    remove_sidecars();
    restored?;
    let left = ledger::integrity::file_check(path, false)?;
    if let Some(first) = left.first() {
        return Err(Error::invalid(format!(
            "the ledger file is still damaged after the rebuild ({first}): the log itself is damaged; restore it from a copy"
        )));
    }
    Ok((stats, indexes))
}

/// Copies every page of `src` into `dst` in one step of SQLite's backup
/// API (one write transaction on `dst`: it is replaced whole or not at
/// all). Pages are copied as they are, damaged ones included.
fn copy_all(src: &rusqlite::Connection, dst: &mut rusqlite::Connection) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let b = Backup::new(src, dst)?;
    match b.step(-1)? {
        StepResult::Done => Ok(()),
        StepResult::More | StepResult::Busy | StepResult::Locked => {
            Err(Error::invalid("the ledger is busy (another command holds it); nothing was changed; run rebuild again"))
        }
        _ => Err(Error::invalid("the copy of the ledger did not complete; nothing was changed")),
    }
}

/// The log's head: its seq and hash.
type Head = (fluxacct_core::Seq, Vec<u8>);

/// The log's head, if it reads.
fn read_head(conn: &rusqlite::Connection) -> Option<Head> {
    conn.query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| {
        Ok((fluxacct_core::Seq(r.get::<_, i64>(0)? as u64), r.get::<_, Vec<u8>>(1)?))
    })
    .ok()
}

/// Rewrites the job index where it differs from the log, rebuilds every
/// projection and reindexes the ledger at `path`; then checks the file.
fn rebuild_file(
    ctx: &Context,
    path: &std::path::Path,
    args: &Args,
    out: &mut String,
) -> Result<(replay::RebuildStats, Vec<String>)> {
    let mut ledger = Ledger::open(path, OpenMode::ReadWrite)?;
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
    let left = ledger::integrity::file_check(path, false)?;
    if let Some(first) = left.first() {
        return Err(Error::invalid(format!(
            "the ledger file is still damaged after the rebuild ({first}): the log itself is damaged; restore it from a copy"
        )));
    }
    Ok((stats, indexes))
}

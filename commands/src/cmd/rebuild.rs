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
    let result = (|| -> Result<(Seq, Vec<RowDiff>, Vec<String>)> {
        let head = ledger.head()?.map(|(s, _)| s).unwrap_or(Seq(0));
        let replayed = replay::replay_to_memory(&ledger, Some(head)).map_err(replay_err)?;
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
        match expected.map_err(Error::from).and_then(|rows| job_index_diffs(ledger.conn(), head, &rows)) {
            Ok(d) => unreadable.extend(d),
            Err(e) => unreadable.push(format!("job_times, job_ids: live table unreadable: {e}")),
        }
        Ok((head, diffs, unreadable))
    })();
    let _ = ledger.conn().execute_batch("COMMIT");
    let (head, diffs, unreadable) = result?;
    if diffs.is_empty() && unreadable.is_empty() {
        return Ok(Output::line(format!("ok: the projections match a replay of the log to seq {head}")));
    }
    let mut report = render_check(&diffs);
    for u in &unreadable {
        let _ = writeln!(report, "{u}");
    }
    let n = report.lines().count();
    Err(Error::CheckFailed {
        message: format!("rebuild --check: {n} difference(s) between the live projections and a replay of the log"),
        report,
    })
}

/// Compares `job_times` and `job_ids` with the job records of the log up
/// to `head`: one row each per `JobRecorded`, at
/// [`projections::schema::t_us`] of its `t_inactive` and at its job id.
/// Both sides are compared in each table's key order, so SQLite sorts
/// nothing. Returns one line per difference.
fn job_index_diffs(
    conn: &rusqlite::Connection,
    head: Seq,
    expected: &projections::schema::JobIndexRows,
) -> Result<Vec<String>> {
    let mut out = table_diffs(conn, head, "job_times", "t_inactive_us", &expected.times)?;
    out.extend(table_diffs(conn, head, "job_ids", "id", &expected.ids)?);
    Ok(out)
}

/// Compares the (`key`, `seq`) rows of `table` with `expected` (sorted).
fn table_diffs(
    conn: &rusqlite::Connection,
    head: Seq,
    table: &str,
    key: &str,
    expected: &[(i64, i64)],
) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare(&format!("SELECT {key}, seq FROM {table} NOT INDEXED WHERE seq <= ?1 ORDER BY {key}, seq"))?;
    let mut rows = stmt.query([head.0 as i64])?;
    let mut out = Vec::new();
    let mut want = expected.iter().peekable();
    let show = |(k, seq): (i64, i64)| format!("{table} [seq={seq}, {key}={k}]");
    loop {
        let live = match rows.next()? {
            Some(r) => {
                let cell = |i: usize| match r.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Integer(v)) => Some(v),
                    _ => None,
                };
                match (cell(0), cell(1)) {
                    (Some(k), Some(seq)) => Some((k, seq)),
                    _ => {
                        out.push(format!("{table}: a row is not two integers"));
                        continue;
                    }
                }
            }
            None => None,
        };
        // Rows of the log before this live row are missing from live.
        while let Some(&&w) = want.peek() {
            if live.is_some_and(|l| l <= w) {
                break;
            }
            out.push(format!("{}: row missing from live (produced by the log)", show(w)));
            want.next();
        }
        let Some(l) = live else { break };
        if want.peek().is_some_and(|&&w| w == l) {
            want.next();
        } else {
            out.push(format!("{}: row in live only (not produced by the log)", show(l)));
        }
    }
    Ok(out)
}

/// Every object derived from the log: the projection tables (with their
/// indexes), the `jobs` view, `job_times`, `job_ids`, the projection
/// checkpoints and the log's expression indexes of older schemas. Never
/// `events` or the ledger's bookkeeping.
fn derived_tables() -> Vec<&'static str> {
    let mut t: Vec<&str> = projections::schema::PROJECTION_TABLES.to_vec();
    t.extend(projections::schema::PROJECTION_VIEWS);
    t.extend(["job_times", "job_ids", "projection_checkpoints"]);
    t
}

/// Repairs damaged file structures (pages of indexes or projection tables
/// that SQLite cannot read): forgets every derived object (their pages are
/// not read, so damage there cannot stop it), then `VACUUM` writes the file
/// anew from the tables that remain (the log and the bookkeeping). The
/// rebuild that follows recreates everything derived.
fn repair_structure(path: &std::path::Path) -> Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    let list: Vec<String> = derived_tables().iter().map(|t| format!("'{t}'")).collect();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<()> {
        let v: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA writable_schema = ON")?;
        conn.execute(
            &format!(
                "DELETE FROM sqlite_master WHERE tbl_name IN ({}) OR name IN ('events_job_id', 'events_job_t_inactive', 'events_job_rejected')",
                list.join(", ")
            ),
            [],
        )?;
        conn.execute_batch(&format!("PRAGMA schema_version = {}; PRAGMA writable_schema = OFF;", v + 1))?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    // SQLite's own temporary copy of the file, on disk (removed by SQLite).
    conn.execute_batch("PRAGMA temp_store = FILE; VACUUM;")?;
    Ok(())
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
        repair_structure(&ctx.db_path).map_err(|e| {
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
    if projections::schema::object_type(ledger.conn(), "main", "job_times")?.is_some()
        && projections::schema::object_type(ledger.conn(), "main", "job_ids")?.is_some()
    {
        // The log is read once: the rows it gives are compared and, when
        // they differ, written.
        let expected = projections::schema::job_index_of_log(ledger.conn(), total as i64)?;
        let diffs = job_index_diffs(ledger.conn(), Seq(total), &expected)?;
        if !diffs.is_empty() {
            let conn = ledger.conn();
            conn.execute_batch("BEGIN IMMEDIATE")?;
            match projections::schema::replace_job_index(conn, &expected) {
                Ok(n) => {
                    conn.execute_batch("COMMIT")?;
                    let tables: Vec<&str> = ["job_times", "job_ids"]
                        .into_iter()
                        .filter(|t| {
                            diffs.iter().any(|d| d.starts_with(&format!("{t} ")) || d.starts_with(&format!("{t}:")))
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "repaired {}: {} difference(s) from the log; rewrote {n} rows each",
                        tables.join(", "),
                        diffs.len()
                    );
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
            }
        }
    }
    ctx.progress.start("rebuild", Some(total));
    let mut done = 0u64;
    let stats = replay::rebuild_live(&mut ledger, args.checkpoint_every, &mut |n| {
        ctx.progress.inc(n.saturating_sub(done));
        done = n;
    })
    .map_err(replay_err)?;
    ctx.progress.finish();
    // Every index, the log's own included, rebuilt from its table.
    let indexes: Vec<String> = ledger
        .conn()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    ledger.conn().execute_batch("REINDEX")?;
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

//! Repairs of what is derived from the log, below the apply path: the job
//! index (`job_times`, `job_ids`) compared with the log and rewritten, and
//! a damaged file's derived objects forgotten so that `VACUUM` can write it
//! anew (`rebuild` recreates them from the log), and every index rebuilt
//! from its table.

use std::fmt;
use std::path::Path;

use rusqlite::Connection;

use crate::schema::{self, JobIndexRows};
use crate::Error;

/// One difference between a job index table and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobIndexDiff {
    /// A row the log gives that the table lacks.
    Missing {
        /// `job_times` or `job_ids`.
        table: &'static str,
        /// The key column (`t_inactive_us` or `id`).
        key: &'static str,
        /// The key.
        value: i64,
        /// The seq of the row.
        seq: i64,
    },
    /// A row of the table the log does not give.
    Extra {
        /// `job_times` or `job_ids`.
        table: &'static str,
        /// The key column (`t_inactive_us` or `id`).
        key: &'static str,
        /// The key.
        value: i64,
        /// The seq of the row.
        seq: i64,
    },
    /// A row that is not two integers.
    NotIntegers {
        /// `job_times` or `job_ids`.
        table: &'static str,
    },
}

impl JobIndexDiff {
    /// The table of the difference.
    pub fn table(&self) -> &'static str {
        match self {
            JobIndexDiff::Missing { table, .. }
            | JobIndexDiff::Extra { table, .. }
            | JobIndexDiff::NotIntegers { table } => table,
        }
    }
}

impl fmt::Display for JobIndexDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobIndexDiff::Missing { table, key, value, seq } => {
                write!(f, "{table} [seq={seq}, {key}={value}]: row missing from live (produced by the log)")
            }
            JobIndexDiff::Extra { table, key, value, seq } => {
                write!(f, "{table} [seq={seq}, {key}={value}]: row in live only (not produced by the log)")
            }
            JobIndexDiff::NotIntegers { table } => write!(f, "{table}: a row is not two integers"),
        }
    }
}

/// Compares `job_times` and `job_ids` with `expected` (the job records of
/// the log up to `head`, [`schema::job_index_of_log`]): one row each per
/// `JobRecorded`, at [`schema::t_us`] of its `t_inactive` and at its job
/// id. Both sides are compared in each table's key order, so SQLite sorts
/// nothing.
pub fn job_index_diffs(conn: &Connection, head: i64, expected: &JobIndexRows) -> Result<Vec<JobIndexDiff>, Error> {
    let mut out = table_diffs(conn, head, "job_times", "t_inactive_us", &expected.times)?;
    out.extend(table_diffs(conn, head, "job_ids", "id", &expected.ids)?);
    Ok(out)
}

/// Compares the (`key`, `seq`) rows of `table` with `expected` (sorted).
fn table_diffs(
    conn: &Connection,
    head: i64,
    table: &'static str,
    key: &'static str,
    expected: &[(i64, i64)],
) -> Result<Vec<JobIndexDiff>, Error> {
    let mut stmt =
        conn.prepare(&format!("SELECT {key}, seq FROM {table} NOT INDEXED WHERE seq <= ?1 ORDER BY {key}, seq"))?;
    let mut rows = stmt.query([head])?;
    let mut out = Vec::new();
    let mut want = expected.iter().peekable();
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
                        out.push(JobIndexDiff::NotIntegers { table });
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
            out.push(JobIndexDiff::Missing { table, key, value: w.0, seq: w.1 });
            want.next();
        }
        let Some(l) = live else { break };
        if want.peek().is_some_and(|&&w| w == l) {
            want.next();
        } else {
            out.push(JobIndexDiff::Extra { table, key, value: l.0, seq: l.1 });
        }
    }
    Ok(out)
}

/// What [`repair_job_index`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIndexRepair {
    /// The tables that differed from the log.
    pub tables: Vec<&'static str>,
    /// How many differences there were.
    pub differences: usize,
    /// How many rows each table holds now.
    pub rows: u64,
}

/// Compares `job_times` and `job_ids` (when both exist) with the log up to
/// `head` and, when they differ, rewrites both in one `BEGIN IMMEDIATE`
/// transaction. The log is read once: the rows it gives are compared and,
/// when they differ, written. `None` when there was nothing to repair.
pub fn repair_job_index(conn: &Connection, head: i64) -> Result<Option<JobIndexRepair>, Error> {
    if schema::object_type(conn, "main", "job_times")?.is_none()
        || schema::object_type(conn, "main", "job_ids")?.is_none()
    {
        return Ok(None);
    }
    let expected = schema::job_index_of_log(conn, head)?;
    let diffs = job_index_diffs(conn, head, &expected)?;
    if diffs.is_empty() {
        return Ok(None);
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match schema::replace_job_index(conn, &expected) {
        Ok(rows) => {
            conn.execute_batch("COMMIT")?;
            let tables =
                ["job_times", "job_ids"].into_iter().filter(|t| diffs.iter().any(|d| d.table() == *t)).collect();
            Ok(Some(JobIndexRepair { tables, differences: diffs.len(), rows }))
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Every object derived from the log: the projection tables (with their
/// indexes), the `jobs` view, `job_times`, `job_ids`, the projection
/// checkpoints and the log's expression indexes of older schemas. Never
/// `events` or the ledger's bookkeeping.
fn derived_tables() -> Vec<&'static str> {
    let mut t: Vec<&str> = schema::PROJECTION_TABLES.to_vec();
    t.extend(schema::PROJECTION_VIEWS);
    t.extend(["job_times", "job_ids", "projection_checkpoints"]);
    t
}

/// The object a damage line of `ledger::integrity::file_check` names
/// (`table association_table: …`, `index events_job_rejected: …`), and
/// whether it is derived from the log (so that [`forget_derived_and_vacuum`]
/// and a rebuild recreate it): `None` when the line names no object (the
/// file's own structure, e.g. a page never used).
pub fn damaged_object(conn: &Connection, line: &str) -> Option<(String, bool)> {
    let rest = ["table ", "index ", "view ", "trigger "].iter().find_map(|p| line.strip_prefix(p))?;
    let name = rest.split(": ").next()?.to_string();
    let tbl: Option<String> =
        conn.query_row("SELECT tbl_name FROM sqlite_master WHERE name = ?1", [&name], |r| r.get(0)).ok();
    let derived = derived_tables().contains(&name.as_str())
        || ["events_job_id", "events_job_t_inactive", "events_job_rejected"].contains(&name.as_str())
        || tbl.is_some_and(|t| derived_tables().contains(&t.as_str()));
    Some((name, derived))
}

/// Repairs damaged file structures (pages of indexes or projection tables
/// that SQLite cannot read) of the ledger at `path`: forgets every derived
/// object (their pages are not read, so damage there cannot stop it), then
/// `VACUUM` writes the file anew from the tables that remain (the log and
/// the bookkeeping). A rebuild must follow: it recreates everything
/// derived.
pub fn forget_derived_and_vacuum(path: &Path) -> Result<(), Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    let list: Vec<String> = derived_tables().iter().map(|t| format!("'{t}'")).collect();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), Error> {
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

/// Rebuilds every index, the log's own included, from its table; returns
/// their names, sorted.
pub fn reindex_all(conn: &Connection) -> Result<Vec<String>, Error> {
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.execute_batch("REINDEX")?;
    Ok(indexes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(times: &[(i64, i64)], ids: &[(i64, i64)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE job_times (t_inactive_us INTEGER, seq INTEGER); CREATE TABLE job_ids (id INTEGER, seq INTEGER);",
        )
        .unwrap();
        for (k, s) in times {
            conn.execute("INSERT INTO job_times VALUES (?1, ?2)", [k, s]).unwrap();
        }
        for (k, s) in ids {
            conn.execute("INSERT INTO job_ids VALUES (?1, ?2)", [k, s]).unwrap();
        }
        conn
    }

    #[test]
    fn job_index_diffs_name_missing_extra_and_malformed_rows_up_to_head() {
        let conn = index(&[(10, 1), (30, 3), (50, 9)], &[(7, 1), (8, 2)]);
        conn.execute("INSERT INTO job_ids VALUES ('x', 2)", []).unwrap();
        let expected = JobIndexRows { times: vec![(10, 1), (20, 2)], ids: vec![(7, 1), (8, 2)] };
        let lines: Vec<String> =
            job_index_diffs(&conn, 5, &expected).unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "job_times [seq=2, t_inactive_us=20]: row missing from live (produced by the log)",
                "job_times [seq=3, t_inactive_us=30]: row in live only (not produced by the log)",
                "job_ids: a row is not two integers",
            ]
        );
    }

    #[test]
    fn a_job_index_that_matches_the_log_is_left_alone() {
        let conn = index(&[], &[]);
        conn.execute_batch("CREATE TABLE events (seq INTEGER, kind TEXT, version INTEGER, payload BLOB);").unwrap();
        assert_eq!(repair_job_index(&conn, 0).unwrap(), None);
        let without = Connection::open_in_memory().unwrap();
        assert_eq!(repair_job_index(&without, 0).unwrap(), None, "no job index, nothing to repair");
    }
}
